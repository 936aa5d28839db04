"""Closed-set label scores from an OpenAI-compatible server's log-probabilities.

In process, every label of a closed set is scored whole from the model's logits
(LlamaRuntime.score). A server gives less: the top log-probabilities of the first
generated token, without the grammar applied (llama.cpp's server and llama-cpp-python's
report them from the raw logits; vLLM's default ``raw_logprobs`` mode too). So a label is
scored by its first token: the listed token that its text (after the space the grammar
writes) starts with, longest first. That is the in-process score where a label is one
token (" yes", " no", " positive", " 1" ... in the bundled models) and its first-token
part otherwise. Where two labels would share that token, or none of them is listed,
the row cannot be scored from that list alone: :func:`label_logprobs` says so.

In a completion the answer can be continued, so labels that open with one token
(" very good" / " very bad") are told apart by asking again with that token appended to
the prompt: :func:`chained_label_logprobs` scores each label as the chain of its tokens
up to where the labels part (log P(" very") + log P(" good" | " very")), which is the
in-process whole-label score where the rest of each label is one token. Rows it still
cannot score (none listed, a label that is another's prefix, more than
``MAX_CONTINUATIONS`` levels) are decoded greedily under the grammar by the runtime, as
for a server without log-probabilities. A label not in the list gets the smallest listed
log-probability, an upper bound.

A chat reply is the assistant's own turn: an instruct model starts it without a space
and, as a sentence, often capitalised ("Yes", "No"). So in a chat turn a label is
matched without the space and in both its written and capitalised forms, and its score
is the total probability of the tokens that start either form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

TOP_LOGPROBS = 20  # vLLM's default cap on top log-probabilities per token
MAX_CONTINUATIONS = 3  # requests past the first for labels that share leading tokens


def top_logprobs(choice: dict) -> dict[str, float] | None:
    """The first generated position's top tokens -> log-probability, from either reply
    shape: the completions API's ``logprobs.top_logprobs`` (a list of dicts) or the chat
    shape ``logprobs.content[0].top_logprobs`` (a list of {token, logprob})."""
    logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
    if not isinstance(logprobs, dict):
        return None
    top = logprobs.get("top_logprobs")
    if isinstance(top, list) and top and isinstance(top[0], dict):
        return {str(k): float(v) for k, v in top[0].items()}
    content = logprobs.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        entries = content[0].get("top_logprobs") or []
        return {str(e["token"]): float(e["logprob"]) for e in entries if "token" in e}
    return None


def first_token(top: dict[str, float], text: str) -> str | None:
    """The longest listed token that ``text`` starts with (a bare space is not one)."""
    prefixes = [t for t in top if t.strip() and text.startswith(t)]
    return max(prefixes, key=len) if prefixes else None


def label_logprobs(
    top: dict[str, float], labels: Sequence[str], chat: bool = False
) -> list[float] | None:
    """Each label's first-token log-probability from ``top``, or None where the labels
    cannot be told apart from it (none listed, or two labels on one token). ``chat``: the
    answer opens the assistant's turn (see the module docstring)."""
    found: list[set[str]] = []
    for label in labels:
        forms = {label, label[:1].upper() + label[1:]} if chat else {" " + label}
        found.append({t for t in (first_token(top, text) for text in forms) if t is not None})
    listed = [t for tokens in found for t in tokens]
    if not listed or len(set(listed)) != len(listed):
        return None
    floor = min(top.values())
    return [
        float(np.logaddexp.reduce([top[t] for t in tokens])) if tokens else floor
        for tokens in found
    ]


def chained_label_logprobs(
    top_after: Callable[[str], dict[str, float] | None],
    labels: Sequence[str],
    depth: int = MAX_CONTINUATIONS,
) -> list[float] | None:
    """Each label's log-probability in a completion, from ``top_after(text)``: the top
    log-probabilities of the next token after the prompt continued by ``text``. Labels
    that open with one listed token are scored on from the prompt continued by it (at
    most ``depth`` more requests deep); None where the labels cannot be told apart."""
    return _chain(top_after, "", [" " + label for label in labels], depth)


def _chain(top_after, written: str, texts: list[str], depth: int) -> list[float] | None:
    top = top_after(written)
    if not top:
        return None
    firsts = [first_token(top, text) for text in texts]
    if all(t is None for t in firsts):
        return None
    floor = min(top.values())
    scores: list[float] = [floor] * len(texts)
    # in the labels' order, so a row's requests go out in one order run after run
    for token in dict.fromkeys(t for t in firsts if t is not None):
        at = [i for i, t in enumerate(firsts) if t == token]
        if len(at) == 1:
            scores[at[0]] = top[token]
            continue
        rests = [texts[i][len(token) :] for i in at]
        if depth == 0 or not all(rests) or len(set(rests)) < len(rests):
            return None
        deeper = _chain(top_after, written + token, rests, depth - 1)
        if deeper is None:
            return None
        for i, score in zip(at, deeper, strict=True):
            scores[i] = top[token] + score
    return scores
