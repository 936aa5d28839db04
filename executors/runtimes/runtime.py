"""The contract every LM backend meets, and the one place a backend is chosen.

Two backends: llama.cpp in-process (``llama_runtime.LlamaRuntime``, a GGUF file) and an
OpenAI-compatible server (``http_runtime.HTTPRuntime``, an ``http(s)://`` URL). The LM
executor and the cost model read only what :class:`Runtime` declares; what only an
in-process model can do (count tokens, time itself) is declared by
:class:`LocalRuntime` and announced by ``local = True``, never guessed from attributes.
This module imports neither backend until one is chosen, so an HTTP connection never
loads llama.cpp.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from semql.errors import ModelError
from semql.grammar.types import OutputType

if TYPE_CHECKING:
    from .cpu_backend import Verdict

# Rows handed to a batched runtime per call (the LM executor's batch_ahead.py, a Ray
# actor's block), in batches of ``batch_rows``: a stream whose row ends takes the next row
# at once, so only a call's last rows wait for its longest one (16 rows a call kept 4.8
# decodes a batch where 3 sufficed, bench/batch_recipe.py); and few enough that progress,
# caps and cancels are seen every few seconds.
CALL_BATCHES = 4


@dataclass
class Generation:
    """One constrained generation and what it cost."""

    text: str
    prompt_tokens: int
    cached_tokens: int
    generated_tokens: int
    worker: str = ""  # the cluster actor that ran it ("" in-process and on servers)


@dataclass
class Scored:
    """Log-probabilities of a closed set's labels after one prompt, and their cost."""

    logprobs: list[float]
    prompt_tokens: int
    cached_tokens: int
    extra_steps: int  # label tokens decoded after the prompt: one a label prefix
    worker: str = ""  # the cluster actor that ran it ("" in-process and on servers)


class WorkerLost(Exception):
    """A cluster's worker died (or its node did) before it returned a block of prompts."""


class Runtime(Protocol):
    """What every backend offers."""

    model_id: str  # identifies the weights: part of every result-cache key
    path: str  # the file or URL, for messages
    name: str  # for EXPLAIN, the REPL and reports
    style: str  # "completion" (plain text prompts) or "chat" (the model's template)
    n_ctx: int | None  # the context window in tokens; None when unknown (a server)
    decoding: int | str  # version of the decoding rules: part of every result-cache key
    local: bool  # True: also a LocalRuntime
    concurrency: int  # requests it takes at once (1: one at a time, in-process models)
    blocks: bool  # takes contiguous blocks of prompts per worker (a Ray cluster)
    batch_rows: int  # prompts it answers in one decode (score_many, generate_many); 1: one
    placement: str  # where LM work runs, for EXPLAIN ("in-process, 2 threads"...)
    remote_speeds: bool  # a server whose speeds are learnt from runs (model_profile.py)
    label_scores: bool  # closed sets are decided from score() (else generated greedily)

    def generate(self, prompt: str, out_type: OutputType) -> Generation:
        """Greedy decoding of ``prompt`` under ``out_type``'s grammar."""
        ...

    def score(self, prompt: str, out_type: OutputType) -> Scored:
        """Log-probability of every label of a closed set (executors/lm/closed_set.py)."""
        ...

    def score_many(self, prompts: list[str], out_type: OutputType) -> list[Scored]:
        """:meth:`score` of each prompt, up to ``batch_rows`` of them in one decode."""
        ...

    def generate_many(self, prompts: list[str], out_type: OutputType) -> list[Generation]:
        """:meth:`generate` of each prompt, up to ``batch_rows`` of them in one decode."""
        ...

    def close(self) -> None: ...


class LocalRuntime(Runtime, Protocol):
    """An in-process model: its tokenizer, label scores and speeds are at hand."""

    n_threads: int  # the most threads it uses (the speed profile's key)
    threads_reason: str  # why that many (``semql info``)
    batch_rows_reason: str  # rows per decode and why (``semql info``)
    backend: Verdict  # the CPU kernel path chosen and why (cpu_backend.py)
    reuses_prefix: bool  # whether the KV cache serves a prompt prefix shared with the last

    def tokenize(self, text: str) -> list[int]: ...

    def format_chat(self, messages: list[dict]) -> str: ...

    def measure_speeds(self, text: str) -> dict[str, float]:
        """Prefill and decode rates and the fixed cost of one call (model_profile.py)."""
        ...


def model_choice(model: str | list[str] | tuple | None) -> str | None:
    """The model asked for: the argument, else ``SEMQL_MODEL``, else None (bundled).
    Several server URLs (a list) become one comma-separated choice."""
    if isinstance(model, (list, tuple)):
        return ",".join(str(m) for m in model)
    return model or os.environ.get("SEMQL_MODEL")


def cluster_choice(cluster: str | None) -> str | None:
    """The Ray cluster asked for: the argument, else ``SEMQL_CLUSTER``, else None."""
    return cluster or os.environ.get("SEMQL_CLUSTER") or None


def placement_of(runtime: Runtime | None, choice: str | None, cluster: str | None) -> str:
    """Where LM operators run, for EXPLAIN: the loaded runtime's own account, else what
    the connection's arguments will open (without loading a model)."""
    if runtime is not None:
        return runtime.placement
    cluster = cluster_choice(cluster)
    if cluster is not None:
        return f"Ray cluster at {cluster} (actors start with the first LM query)"
    if is_remote(choice):
        return f"server endpoint(s) {choice}"
    return "in-process (llama.cpp)"


def is_remote(choice: str | None) -> bool:
    return bool(choice) and str(choice).startswith(("http://", "https://"))


def open_runtime(
    choice: str | None,
    max_concurrency: int = 4,
    server: dict | None = None,
    cluster: str | None = None,
    actors: int | None = None,
    **args,
) -> Runtime:
    """The backend for a model choice: servers for URLs, else llama.cpp in-process
    (a GGUF path, a bundled model's name, or the default), or on Ray actors when a
    ``cluster`` is given (or ``SEMQL_CLUSTER``; ``actors`` of ``n_threads`` each).
    ``args`` are the in-process runtime's (threads, context, seed...); servers take
    the seed, ``max_concurrency`` (requests in flight per endpoint) and ``server``:
    HTTPRuntime's options (http_runtime.SERVER_OPTIONS)."""
    cluster = cluster_choice(cluster)
    if cluster is not None and (is_remote(choice) or server):
        raise ModelError(
            f"cluster={cluster!r} runs a GGUF model on Ray actors, but the model is a "
            "server; drop cluster= (servers spread the work themselves) or pass a GGUF"
        )
    if server is not None and not isinstance(server, dict):
        raise ModelError(f"server= takes a dict of server options, got {server!r}")
    server = dict(server or {})
    if is_remote(choice):
        from .http_runtime import SERVER_OPTIONS, HTTPRuntime

        unknown = sorted(set(server) - set(SERVER_OPTIONS))
        if unknown:
            raise ModelError(
                f"unknown server option {', '.join(map(repr, unknown))}; "
                f"expected any of {', '.join(SERVER_OPTIONS)}"
            )
        try:
            return HTTPRuntime(
                str(choice),
                seed=args.get("seed", 0),
                max_concurrency=max_concurrency,
                **server,
            )
        except ValueError as err:
            raise ModelError(str(err)) from None
    if server:
        raise ModelError(
            f"server options ({', '.join(sorted(server))}) apply to a model server, but the "
            f"model is {choice or 'the bundled default'}, not an http(s):// URL"
        )
    from .model_files import resolve_model_path

    try:
        from .llama_runtime import LlamaRuntime
    except ImportError as err:
        raise ModelError(
            f"the in-process LM runtime cannot load: {err}. SemQL needs "
            "llama-cpp-python and xgrammar (pip install --no-deps xgrammar==0.2.9; "
            "see the README's quick start)"
        ) from None
    if cluster is not None:
        from .ray_runtime import RayRuntime

        threads = args.pop("n_threads", None) or 1
        return RayRuntime(resolve_model_path(choice), str(cluster), actors, threads, **args)
    if actors is not None:
        raise ModelError("actors= applies to a Ray cluster; pass cluster= as well")
    return LlamaRuntime(resolve_model_path(choice), **args)
