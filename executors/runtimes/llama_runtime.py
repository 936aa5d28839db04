"""In-process LM runtime: llama.cpp through llama-cpp-python, outputs constrained by xgrammar.

Why a hand-written decoding loop instead of ``Llama.__call__``:

* every step applies the xgrammar token bitmask to the logits (0.1-0.4 ms a token,
  against 10-80 ms for llama.cpp's own GBNF sampler, measured on this CPU);
* the KV cache keeps the longest common token prefix with the previous prompt, and we
  count those tokens, so prefix reuse is visible in the stats;
* closed sets (bool, options) stop as soon as the decoded prefix fits exactly one label:
  greedy decoding under the same grammar could only complete that label, so the answer is
  identical while most rows need a single forward pass.
"""

from __future__ import annotations

import os
import threading
import time

import llama_cpp
import numpy as np
import xgrammar as xgr

from semql.errors import ExecutionError, ModelError
from semql.grammar.compile import to_xgrammar
from semql.grammar.types import GrammarSpec, OutputType

from . import cpu_backend, label_scores, llama_log
from .closing import ClosingTokens
from .model_files import check_gguf, model_sha256
from .runtime import Generation, Scored
from .thread_policy import ThreadPolicy
from .vocab import chat_prompt, stop_tokens, token_pieces, tokenizer_info

PREFILL_CHUNK = 16
# Bumped whenever a change in decoding can change answers: it is part of the result-cache
# key, so a cache filled by an older SemQL never serves answers decoded the old way.
# 2: where the grammar may end, a next token of the model's outside it ends the answer.
# 3: closed-set rows scored BATCH_ROWS at a time in fixed-shape decodes (batch_scorer.py);
# the key names the rows per decode, since the shape is part of the numbers.
DECODING = 2
BATCHED_DECODING = 3
# Closed-set rows per decode (bench/batch_recipe.py): 8 keeps most of 16's speed on many
# rows (71% of llama.cpp's prefill limit against 78%), costs half its latency for a row
# alone, and fills the batches of 8 rows an early exit asks for; 32 was slower than 16.
BATCH_ROWS = 8
llama_log.errors_only()  # llama.cpp's warnings stay out of the user's output


class LlamaRuntime:
    """One GGUF model loaded once and shared by every LM operator of a connection
    (a :class:`~semql.executors.runtimes.runtime.LocalRuntime`)."""

    local = True
    concurrency = 1  # one llama.cpp context: one request at a time
    blocks = False
    remote_speeds = False
    label_scores = True

    def __init__(
        self,
        path: str,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        n_batch: int = 512,
        closed_set_fast_path: bool = True,
        prefix_reuse: bool = True,
        extra_bufts: bool | None = None,
        batch_rows: int = BATCH_ROWS,
    ):
        if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
            raise ModelError(f"batch_rows must be a whole number >= 1, got {batch_rows!r}")
        check_gguf(path)
        self.path = path
        self.n_ctx = n_ctx
        self.closed_set_fast_path = closed_set_fast_path
        self.prefix_reuse = prefix_reuse
        self.threads = ThreadPolicy(n_threads)
        threads = self.threads.max_threads
        self.n_threads = threads  # the most it uses (idle); the speed profile's key
        self._applied_threads = threads
        self.reuse_chunk = PREFILL_CHUNK if prefix_reuse else 0
        # Extra buffer types (AMX, repacked weights) only where a probe ran them: on some
        # AMX CPUs their worker threads die with SIGILL (executors/runtimes/cpu_backend.py).
        self.backend = cpu_backend.decide(path, extra_bufts)
        try:
            with cpu_backend.model_params(self.backend.extra_bufts):
                self._llm = llama_cpp.Llama(
                    model_path=path,
                    n_ctx=n_ctx,
                    n_batch=n_batch,
                    n_threads=threads,
                    n_threads_batch=threads,
                    seed=seed,
                    logits_all=False,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as err:
            raise ModelError(f"cannot load model {path}: {err}") from None
        self.model_id = model_sha256(path)
        # Closed-set rows per decode: 1 scores a row at a time (lowest latency for a few
        # rows); more share fixed-shape decodes (batch_scorer.py), the same numbers for a
        # row whatever its batch mates, faster on many rows.
        self.batch_rows = batch_rows
        self.decoding = DECODING if batch_rows == 1 else f"{BATCHED_DECODING}x{batch_rows}"
        self._scorer = None  # the batched context, allocated on the first batched score
        self.n_vocab = self._llm.n_vocab()
        self.chat_template = self._llm.metadata.get("tokenizer.chat_template")
        self.style = "chat" if self.chat_template else "completion"
        self.name = self._llm.metadata.get("general.name") or os.path.basename(path)
        self.placement = f"in-process, {threads} threads" + (
            f", closed sets {batch_rows} rows per decode" if batch_rows > 1 else ""
        )
        self._pieces = token_pieces(self._llm.model)
        self._stops = stop_tokens(self._llm.model)
        self._stop_mask = np.zeros(self.n_vocab, dtype=bool)
        self._stop_mask[self._stops] = True
        self._closing = ClosingTokens.of(self._pieces, self._stop_mask)
        self._compiler = xgr.GrammarCompiler(tokenizer_info(self._pieces, self._stops))
        self._compiled: dict[GrammarSpec, xgr.CompiledGrammar] = {}
        self._bitmask = xgr.allocate_token_bitmask(1, self.n_vocab)
        self._chunk_starts: list[int] = []  # chunk starts of the prompt in the KV cache
        self._lock = threading.Lock()

    # -- text and tokens -------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def tokenize_segments(self, prompt: str) -> tuple[list[int], list[int]]:
        """Tokens of a prompt and the start of each of its segments (prompts.Prompt).

        Each segment is tokenised on its own, so a field's tokens are the same whatever
        precedes it, and a shared field is a shared token prefix.
        """
        segments = getattr(prompt, "segments", None) or (prompt,)
        tokens: list[int] = []
        starts: list[int] = []
        for i, text in enumerate(segments):
            if not text:
                continue
            starts.append(len(tokens))
            tokens += self._llm.tokenize(text.encode("utf-8"), add_bos=i == 0, special=True)
        return tokens, starts

    def format_chat(self, messages: list[dict]) -> str:
        """Render messages with the model's own chat template, ready for the answer."""
        return chat_prompt(self._llm, self.chat_template, messages)

    # -- grammar ---------------------------------------------------------------------

    def compiled(self, spec: GrammarSpec) -> xgr.CompiledGrammar:
        grammar = self._compiled.get(spec)
        if grammar is None:
            grammar = self._compiler.compile_grammar(to_xgrammar(spec))
            self._compiled[spec] = grammar
        return grammar

    # -- decoding --------------------------------------------------------------------

    @property
    def threads_reason(self) -> str:
        return self.threads.reason

    def _fit_threads(self) -> None:
        """Run on the cores other processes leave free (executors/runtimes/thread_policy.py)."""
        n = self.threads.threads_now()
        if n != self._applied_threads:
            llama_cpp.llama_set_n_threads(self._llm._ctx.ctx, n, n)
            if self._scorer is not None:
                self._scorer.set_threads(n)
            self._applied_threads = n

    def _prefill(self, tokens: list[int], segments: list[int] | None = None) -> int:
        """Evaluate ``tokens`` reusing the longest common prefix in the KV cache.

        Tokens are evaluated in chunks of at most PREFILL_CHUNK that start at every
        segment start (``segments``; the head, each field, the answer cue) and every
        PREFILL_CHUNK tokens within a segment, and only whole chunks are reused.
        llama.cpp's numerics depend on how tokens are batched, so reusing an arbitrary
        prefix made answers depend on the previous prompt (2 of 20 bool answers flipped
        in a test); with chunks fixed by the prompt's own segments every prompt is
        computed the same way whatever the cache holds, so row order, dedup and early
        exit cannot change an answer — and a row that repeats the previous row's leading
        fields reuses all of them.
        """
        llm = self._llm
        starts = _chunk_starts(segments or [0], len(tokens))
        prev = llm.input_ids[: llm.n_tokens]
        new = np.asarray(tokens, dtype=prev.dtype)
        m = min(len(prev), len(new))
        diff = np.nonzero(prev[:m] != new[:m])[0]
        common = int(diff[0]) if len(diff) else m
        common = min(common, len(tokens) - 1)  # the last token must run to give logits
        reuse = 0
        if self.prefix_reuse:
            for a, b in zip(starts, self._chunk_starts, strict=False):
                if a != b or a > common:
                    break
                reuse = a  # the chunks before ``a`` were batched identically
        if reuse < llm.n_tokens and not llm._ctx.kv_cache_seq_rm(-1, reuse, -1):
            llm.reset()
            llm._ctx.kv_cache_clear()
            reuse = 0
        llm.n_tokens = reuse
        bounds = [*starts, len(tokens)]
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            if start >= reuse:
                self._decode(tokens[start:end], logits=end == len(tokens))
        self._chunk_starts = starts
        return reuse

    def _decode(self, tokens: list[int], logits: bool) -> None:
        """Append ``tokens`` to the KV cache; compute output logits only when asked.

        The output layer of a 262k-token vocabulary costs as much as tens of prompt tokens,
        so chunks before the last one skip it (``Llama.eval`` always computes it).
        """
        llm = self._llm
        n_past = llm.n_tokens
        llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=False)
        llm._batch.batch.logits[len(tokens) - 1] = logits
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past : n_past + len(tokens)] = tokens
        llm.n_tokens += len(tokens)

    def _logits(self) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _allowed(self, matcher: xgr.GrammarMatcher) -> np.ndarray:
        matcher.fill_next_token_bitmask(self._bitmask)
        bits = self._bitmask.numpy().view(np.uint8)
        return np.unpackbits(bits, bitorder="little")[: self.n_vocab].astype(bool)

    def generate(self, prompt: str, out_type: OutputType) -> Generation:
        """Greedy decoding of ``prompt`` under the grammar of ``out_type``."""
        with self._lock:
            self._fit_threads()
            return self._generate(prompt, out_type, out_type.token_budget())

    def _generate(self, prompt: str, out_type: OutputType, max_tokens: int) -> Generation:
        tokens, segments = self.tokenize_segments(prompt)
        if len(tokens) + max_tokens > self.n_ctx:
            raise ExecutionError(
                f"prompt of {len(tokens)} tokens plus {max_tokens} output tokens exceeds the "
                f"model context of {self.n_ctx} tokens (model {self.path})"
            )
        cached = self._prefill(tokens, segments)
        matcher = xgr.GrammarMatcher(self.compiled(out_type.spec()))
        labels = out_type.labels() if self.closed_set_fast_path else None
        out = bytearray()
        generated = 0
        while generated < max_tokens:
            allowed = self._allowed(matcher)
            if not (allowed & ~self._stop_mask).any():
                break  # only end-of-text is allowed: the answer is complete
            if generated >= max_tokens // 2:
                # Past half the budget, prefer tokens that close what is open (a string,
                # a list, an object, or end-of-text): tiny models otherwise repeat
                # until the budget runs out and leave the grammar unfinished.
                closing = allowed & self._closing.after(bytes(out))
                if closing.any():
                    allowed = closing
            logits = self._logits()
            if allowed[self._stops].any() and not allowed[int(logits.argmax())]:
                # The answer may end here and the model's own next token leaves the
                # grammar (" stars" after "100", a newline): the value is done. Forcing
                # the best allowed token instead wrote "100" on as "1000000".
                break
            token = int(np.where(allowed, logits, -np.inf).argmax())
            if self._stop_mask[token]:
                break
            if not matcher.accept_token(token):
                raise ExecutionError(f"grammar rejected token {token} (model {self.path})")
            out += self._pieces[token]
            generated += 1
            if labels is not None and _determined(out, labels):
                out = bytearray(b" " + _determined(out, labels).encode("utf-8"))
                break
            self._decode([token], logits=True)
        else:
            if not self._allowed(matcher)[self._stops].any():
                raise ExecutionError(
                    f"output cut off after {max_tokens} tokens before the grammar of "
                    f"{out_type} was complete (model {self.path})"
                )
        text = out.decode("utf-8", errors="replace")
        return Generation(text, len(tokens), cached, generated)

    def score(self, prompt: str, out_type: OutputType) -> Scored:
        """Log-probability of every label of a closed set (bool, options) after ``prompt``
        (label_scores.py: one row at a time, or ``batch_rows`` rows per decode)."""
        if self.batch_rows > 1:
            return self.score_many([prompt], out_type)[0]
        with self._lock:
            self._fit_threads()
            return label_scores.one_row(self, prompt, out_type)

    def score_many(self, prompts: list, out_type: OutputType) -> list[Scored]:
        """:meth:`score` of each prompt; with ``batch_rows`` > 1 they share decodes."""
        if self.batch_rows == 1:
            return [self.score(p, out_type) for p in prompts]
        with self._lock:
            self._fit_threads()
            return label_scores.batched(self, prompts, out_type)

    def label_tokens(self, label: str) -> list[int]:
        """A label's tokens as the grammar writes it (" " + label)."""
        text = (" " + label).encode("utf-8")
        return self._llm.tokenize(text, add_bos=False, special=False)

    def measure_speeds(self, text: str) -> dict[str, float]:
        """Prefill and decode speed, and the fixed cost of one constrained call
        (executors/runtimes/model_profile.py): 256 prompt tokens from an empty KV cache, 16
        single-token decode steps, then short bool calls whose prompt is cached."""
        from semql.grammar.types import BoolType
        from semql.planner.prompt_format import PromptBuilder

        tokens = self.tokenize(text)
        with self._lock:
            self._llm.reset()
            self._llm._ctx.kv_cache_clear()
            started = time.perf_counter()
            self._prefill(tokens[:256])
            prefill = min(len(tokens), 256) / (time.perf_counter() - started)
            started = time.perf_counter()
            for token in tokens[256:272]:
                self._decode([token], logits=True)
            decode = len(tokens[256:272]) / (time.perf_counter() - started)
        prompt = PromptBuilder("completion").build(
            "Is this positive?", BoolType(), ["text"], ["good"]
        )
        self.generate(prompt, BoolType())  # grammar compiled, prompt in the KV cache
        runs = 4
        started = time.perf_counter()
        for _ in range(runs):
            gen = self.generate(prompt, BoolType())
        per_call = (time.perf_counter() - started) / runs
        fresh = gen.prompt_tokens - gen.cached_tokens
        overhead = per_call - fresh / prefill - gen.generated_tokens / decode
        return {
            "prefill_tokens_per_s": prefill,
            "decode_tokens_per_s": decode,
            "seconds_per_call": max(overhead, 0.001),
            "chars_per_token": len(text) / max(len(tokens), 1),
        }

    def close(self) -> None:
        scorer, self._scorer = getattr(self, "_scorer", None), None
        if scorer is not None:
            scorer.close()
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def _chunk_starts(segments: list[int], n: int) -> list[int]:
    """Where prefill chunks start: each segment start, then every PREFILL_CHUNK tokens."""
    starts: list[int] = []
    bounds = [*segments, n]
    for seg, end in zip(bounds[:-1], bounds[1:], strict=True):
        starts += range(seg, end, PREFILL_CHUNK)
    return starts


def _determined(out: bytearray, labels: list[str]) -> str | None:
    """The one label that the decoded prefix (after its leading space) can still become."""
    text = bytes(out[1:] if out[:1] == b" " else out).decode("utf-8", errors="ignore")
    if not out.startswith(b" "):
        return None
    fitting = [lab for lab in labels if lab.startswith(text)]
    return fitting[0] if len(fitting) == 1 else None
