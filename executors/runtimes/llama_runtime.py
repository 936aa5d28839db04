"""In-process LM runtime: llama.cpp through llama-cpp-python, outputs constrained by xgrammar.

Why a hand-written decoding loop instead of ``Llama.__call__``:

* every step applies the xgrammar token bitmask to the logits (0.1-0.4 ms a token,
  against 10-80 ms for llama.cpp's own GBNF sampler, measured on this CPU);
* the KV cache keeps the longest common token prefix with the previous prompt, and we
  count those tokens, so prefix reuse is visible in the stats;
* rows go one at a time, or ``batch_rows`` to a fixed-shape decode in a second context
  (label_scores.py and batch_scorer.py for closed sets, batch_generator.py for generated
  answers); one at a time, a map's generated rows still share their answer steps there
  (shared_steps.py); greedy.py picks every generated token for all of them.
"""

from __future__ import annotations

import os
import threading

import llama_cpp
import numpy as np
import xgrammar as xgr

from semql.errors import ExecutionError, ModelError
from semql.grammar.compile import to_xgrammar
from semql.grammar.types import GrammarSpec, OutputType

from . import (
    batch_generator,
    cpu_backend,
    label_scores,
    llama_log,
    output_head,
    shared_steps,
    speed_probe,
)
from .closing import ClosingTokens
from .decoding import BATCHED_DECODING, DECODING, STEPS_DECODING
from .greedy import GreedyDecoder
from .model_files import check_gguf, model_sha256
from .runtime import Generation, Scored
from .thread_policy import ThreadPolicy
from .vocab import chat_prompt, stop_tokens, token_pieces, tokenizer_info

# Tokens per prefill decode of a row alone. 64 rather than 16, with the answer cue in the
# row's chunk: a row's ~39 tokens after the head go in one decode, not three. AMD EPYC, 2
# threads, median of 6 rounds: bool 8.42 -> 9.08 rows/s, options 8.27 -> 9.52
# (bench/prefill_chunk.py, results/throughput/prefill-chunk-20261206-115933); closed-set
# quality unchanged (docs/benchmarks.md). The batched recipe keeps 16 (batch_scorer.CHUNK).
PREFILL_CHUNK = 64
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
        batch_rows: int | None = None,
    ):
        if batch_rows is None:
            batch_rows, self.batch_rows_reason = cpu_backend.default_batch_rows()
        elif not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
            raise ModelError(f"batch_rows must be a whole number >= 1, got {batch_rows!r}")
        else:
            shown = "one row at a time" if batch_rows == 1 else f"{batch_rows} rows per decode"
            self.batch_rows_reason = f"{shown} (batch_rows={batch_rows})"
        check_gguf(path)
        self.path = path
        self.n_ctx = n_ctx
        self.closed_set_fast_path = closed_set_fast_path
        self.prefix_reuse = prefix_reuse
        self.threads = ThreadPolicy(n_threads)
        threads = self.threads.max_threads
        self.n_threads = threads  # the most it uses (idle); the speed profile's key
        self._applied_threads = threads
        self.reuses_prefix = prefix_reuse
        # Extra buffer types (AMX, repacked weights) only where a probe ran them: on some
        # AMX CPUs their worker threads die with SIGILL (executors/runtimes/cpu_backend.py).
        self.backend = cpu_backend.decide(path, extra_bufts)
        self._tap = output_head.HiddenTap()  # outlives the context that calls it
        try:
            with (
                cpu_backend.model_params(self.backend.extra_bufts),
                output_head.tapped_contexts(self._tap, label_scores.BRANCH_SEQS + 1),
            ):
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
        # Rows per decode: 1 answers a row at a time (lowest latency for a few rows); more
        # share fixed-shape decodes (batch_scorer.py), the same numbers for a row whatever
        # its batch mates, faster on many rows where the CPU gains from wide decodes.
        self.batch_rows = batch_rows
        self.decoding = DECODING if batch_rows == 1 else f"{BATCHED_DECODING}x{batch_rows}"
        # Rows one at a time: the generated answers of a map's or filter's rows share their
        # answer steps (shared_steps.py), another recipe with its own result-cache key.
        self.step_rows = shared_steps.STEP_ROWS if batch_rows == 1 else 0
        self.rows_decoding = (
            f"{DECODING}+steps{self.step_rows}.{STEPS_DECODING}" if self.step_rows else None
        )
        self._scorer = None  # the batched context, allocated on the first batched score
        self.n_vocab = self._llm.n_vocab()
        self.chat_template = self._llm.metadata.get("tokenizer.chat_template")
        self.style = "chat" if self.chat_template else "completion"
        self.name = self._llm.metadata.get("general.name") or os.path.basename(path)
        self.placement = f"in-process, {threads} threads" + (
            f", {batch_rows} rows per decode" if batch_rows > 1 else ""
        )
        self._pieces = token_pieces(self._llm.model)
        self._stops = stop_tokens(self._llm.model)
        self._stop_mask = np.zeros(self.n_vocab, dtype=bool)
        self._stop_mask[self._stops] = True
        self._closing = ClosingTokens.of(self._pieces, self._stop_mask)
        # each token's first byte, 256 for none (greedy.py ``lookahead``)
        self._first_bytes = np.array([p[0] if p else 256 for p in self._pieces], np.int16)
        self._compiler = xgr.GrammarCompiler(tokenizer_info(self._pieces, self._stops))
        self._compiled: dict[GrammarSpec, xgr.CompiledGrammar] = {}
        self._chunk_starts: list[int] = []  # chunk starts of the prompt in the KV cache
        self._lock = threading.Lock()
        # A closed set's label logits without the vocabulary's output layer, where they
        # match the full layer's on this model (output_head.py); None: the full layer.
        self.head, self.head_reason = self._load_head()

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

    def _load_head(self) -> tuple[output_head.OutputHead | None, str]:
        return output_head.attach(self)

    def _prefill(
        self, tokens: list[int], segments: list[int] | None = None, hidden: bool = False
    ) -> int:
        """Evaluate ``tokens`` reusing the longest common prefix in the KV cache.

        Tokens are evaluated in chunks of at most PREFILL_CHUNK that start at every
        segment start (``segments``; the head, each field) and every PREFILL_CHUNK tokens
        within a segment, and only whole chunks are reused. The answer cue (the last of
        three or more segments) goes in the last field's chunk: it follows the row's own
        tokens, so no other prompt shares it, and a chunk of its own cost a decode a row.
        llama.cpp's numerics depend on how tokens are batched, so reusing an arbitrary
        prefix made answers depend on the previous prompt (2 of 20 bool answers flipped
        in a test); with chunks fixed by the prompt's own segments every prompt is
        computed the same way whatever the cache holds, so row order, dedup and early
        exit cannot change an answer — and a row that repeats the previous row's leading
        fields reuses all of them. ``hidden``: the last decode stops at the final norm
        (:meth:`_decode`).
        """
        llm = self._llm
        segments = segments or [0]
        if len(segments) > 2:  # the answer cue continues the last field's chunk
            segments = segments[:-1]
        starts = _chunk_starts(segments, len(tokens), PREFILL_CHUNK)
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
            self._clear_cache()
            reuse = 0
        llm.n_tokens = reuse
        bounds = [*starts, len(tokens)]
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            if start >= reuse:
                last = end == len(tokens)
                self._decode(tokens[start:end], logits=last, hidden=hidden and last)
        self._chunk_starts = starts
        return reuse

    def _decode(self, tokens: list[int], logits: bool, hidden: bool = False) -> None:
        """Append ``tokens`` to the KV cache; compute output logits only when asked.

        The output layer of a 262k-token vocabulary costs as much as tens of prompt tokens,
        so chunks before the last one skip it (``Llama.eval`` always computes it), and with
        ``hidden`` the last token's final-norm state is kept instead (``self._tap.hidden``,
        for :attr:`head`) and the output layer skipped.
        """
        llm = self._llm
        n_past = llm.n_tokens
        llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=False)
        llm._batch.batch.logits[len(tokens) - 1] = logits or hidden
        tap = self._tap
        tap.armed, tap.hidden = hidden, None
        try:
            llm._ctx.decode(llm._batch)
        finally:
            tap.armed = False
        # the tokens are in the KV cache now: counted before a Ctrl-C is raised, so the
        # next prompt removes them instead of decoding over them
        llm.input_ids[n_past : n_past + len(tokens)] = tokens
        llm.n_tokens += len(tokens)
        tap.raise_pending()
        if hidden and tap.hidden is None:
            raise ExecutionError(f"the decode kept no final-norm state (model {self.path})")

    def _logits(self) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def generate(self, prompt: str, out_type: OutputType) -> Generation:
        """Greedy decoding of ``prompt`` under the grammar of ``out_type`` (greedy.py; one
        row at a time, or ``batch_rows`` rows per decode as :meth:`generate_many`)."""
        if self.batch_rows > 1:
            return self.generate_many([prompt], out_type)[0]
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
        return self._generate_tokens(tokens, segments, out_type, max_tokens)

    def _generate_tokens(
        self, tokens: list[int], segments: list[int], out_type: OutputType, max_tokens: int
    ) -> Generation:
        """A row alone in the runtime's context (its KV prefix reused chunk by chunk); a
        step whose few allowed tokens decide it computes only their logits (greedy.py)."""
        decoder = GreedyDecoder(self, out_type, max_tokens)
        few = decoder.head_tokens()
        cached = self._prefill(tokens, segments, hidden=few is not None)
        while (token := self._step(decoder, few)) is not None:
            few = decoder.head_tokens()
            self._decode([token], logits=True, hidden=few is not None)
        return decoder.generation(len(tokens), cached)

    def _step(self, decoder: GreedyDecoder, few: list[int] | None) -> int | None:
        if few is None:
            return decoder.step(self._logits())
        return decoder.step_hidden(few, self._tap.hidden[-1])

    def generate_many(self, prompts: list, out_type: OutputType) -> list[Generation]:
        """:meth:`generate` of each prompt; with ``batch_rows`` > 1 they share decodes
        (batch_generator.py), each row's tokens those it would get alone."""
        if self.batch_rows == 1:
            return [self.generate(p, out_type) for p in prompts]
        with self._lock:
            self._fit_threads()
            return batch_generator.generate(self, prompts, out_type)

    def generate_rows(self, prompts: list, out_type: OutputType) -> list[Generation]:
        """Generated answers of an LM map's or filter's rows, their answer steps shared
        (shared_steps.py); only where ``step_rows`` is set (rows one at a time)."""
        with self._lock:
            self._fit_threads()
            return shared_steps.generate(self, prompts, out_type)

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
        return self.text_tokens((" " + label).encode("utf-8"))

    def text_tokens(self, text: bytes) -> list[int]:
        """The tokenizer's own tokens for ``text`` alone: no BOS, no special tokens."""
        return self._llm.tokenize(text, add_bos=False, special=False)

    def measure_speeds(self, text: str) -> dict[str, float]:
        """Prefill and decode speed, and the fixed cost of one call (speed_probe.py)."""
        return speed_probe.measure(self, text)

    def empty_cache(self) -> None:
        """Drop every cached token, so the next prompt is computed from scratch: how a row
        alone is checked against rows asked in a run (answers never depend on it)."""
        with self._lock:
            self._clear_cache()

    def _clear_cache(self) -> None:
        """:meth:`empty_cache` for a caller that holds the lock."""
        self._llm.reset()
        self._llm._ctx.kv_cache_clear()
        self._chunk_starts = []

    def close(self) -> None:
        scorer, self._scorer = getattr(self, "_scorer", None), None
        if scorer is not None:
            scorer.close()
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()


def _chunk_starts(segments: list[int], n: int, chunk: int) -> list[int]:
    """Where prefill chunks start: each segment start, then every ``chunk`` tokens."""
    starts: list[int] = []
    bounds = [*segments, n]
    for seg, end in zip(bounds[:-1], bounds[1:], strict=True):
        starts += range(seg, end, chunk)
    return starts
