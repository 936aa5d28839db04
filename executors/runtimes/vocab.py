"""The exact bytes of every token of a GGUF vocabulary, and xgrammar's view of them.

llama-cpp-python's ``detokenize`` drops pieces longer than 32 bytes (hundreds of Gemma
tokens), so output text is decoded from this table instead; xgrammar's TokenizerInfo
is built from the same table so that the grammar and the decoded text always agree.
"""

from __future__ import annotations

import ctypes

import llama_cpp
import xgrammar as xgr


def token_pieces(model) -> list[bytes]:
    """The bytes llama.cpp emits for each token id (control tokens come out empty)."""
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    size = 64
    buf = ctypes.create_string_buffer(size)
    pieces: list[bytes] = []
    for token in range(n_vocab):
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, False)
        if n < 0:  # buffer too small: -n is the size needed
            big = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(vocab, token, big, -n, 0, False)
            pieces.append(big.raw[:n])
        else:
            pieces.append(buf.raw[:n])
    return pieces


def stop_tokens(model) -> list[int]:
    """Ids that end generation (end-of-text, end-of-turn ...)."""
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    return [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)]


def tokenizer_info(pieces: list[bytes], stops: list[int]) -> xgr.TokenizerInfo:
    """xgrammar's tokenizer description: raw bytes per token, our stop tokens."""
    return xgr.TokenizerInfo(
        pieces,
        xgr.VocabType.RAW,
        vocab_size=len(pieces),
        stop_token_ids=stops,
        add_prefix_space=False,
    )


def chat_prompt(llm: llama_cpp.Llama, template: str, messages: list[dict]) -> str:
    """Messages rendered with the model's own chat template, ready for the answer (the
    same text in-process and on a cluster's coordinator, which loads only the vocabulary)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    model = llm._model
    eos = model.token_get_text(llm.token_eos())
    bos = model.token_get_text(llm.token_bos())
    formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
    prompt = formatter(messages=messages).prompt
    return prompt[len(bos) :] if bos and prompt.startswith(bos) else prompt
