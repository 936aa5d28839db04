"""LM work on a Ray cluster: a pool of actors, each holding SemQL's in-process runtime.

The coordinator (the user's process) keeps everything that decides answers: prompts,
dedup, the result cache, the calibration prior, caps and progress. Each actor
(ray_worker.LMWorker, one per CPU by default) holds the same llama.cpp + xgrammar runtime
that runs locally and returns label log-probabilities or generated text for a block of
prompts; executors/lm/block_prefetch.py cuts the blocks in the planner's prefix order.
Because a prompt's numbers depend only on its own tokens (llama_runtime.py's fixed
prefill chunks), any actor gives any row the scores the local runtime would, and the
coordinator decides from them as it does locally.

The coordinator loads only the model's vocabulary, to count tokens and render chat
templates as the local runtime does. Ray is imported only when a cluster is asked for.
"""

from __future__ import annotations

import itertools
import re
import socket
from urllib.parse import urlsplit

import llama_cpp

from semql.errors import ClusterError, ModelError
from semql.grammar.types import OutputType

from . import llama_log
from .model_files import check_gguf, model_sha256
from .ray_worker import LMWorker
from .runtime import Generation, Scored, WorkerLost
from .vocab import chat_prompt

CONNECT_TIMEOUT_S = 5.0  # a TCP check first: ray.init retries an absent head for minutes
READY_TIMEOUT_S = 180.0  # actors loading the model; past it the cluster has no room
llama_log.errors_only()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError(
            "cluster= needs Ray: pip install 'semql[ray]' (README: a Ray cluster)"
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail in seconds, naming the address, where nothing listens (ray.init would retry
    for minutes and print a warning every few seconds)."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ClusterError(
            f"cluster address {address!r} is not ray://HOST:PORT, HOST:PORT or 'auto'"
        )
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def _connect(ray, address: str) -> bool:
    """Join the cluster; True when this call started Ray's client (close leaves it).

    A process already connected to Ray keeps that connection: ``auto`` and its own
    address use it; another address is an error rather than a silent switch."""
    _check_reachable(address)
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        if address not in ("auto", current):
            raise ClusterError(
                f"this process is already connected to the Ray cluster at {current}; "
                f"cluster={address!r} would need a second one (use 'auto', or ray.shutdown())"
            )
        return False
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ClusterError(f"cannot join the Ray cluster at {address}: {err}") from None
    return True


def _init_error(err: Exception) -> str:
    """The cause an actor gave for failing to start (Ray wraps it in its traceback)."""
    found = re.search(r"(?:ModelError|ClusterError): (.+)", str(err))
    return found.group(1).strip() if found else str(err).strip().splitlines()[-1]


class RayRuntime:
    """A :class:`~semql.executors.runtimes.runtime.LocalRuntime` whose model calls run
    on Ray actors: ``actors`` of ``threads`` threads each (default: one per free CPU)."""

    local = True
    remote_speeds = False
    label_scores = True
    blocks = True
    batch_rows = 1  # its actors batch within a block (ray_worker.py)

    def __init__(
        self, path: str, address: str, actors: int | None = None, threads: int = 1, **args
    ):
        check_gguf(path)
        ray = _import_ray()
        self._ray = ray
        self.address = address
        self._owns_ray = _connect(ray, address)
        free = int(ray.available_resources().get("CPU", 0))
        n = actors if actors is not None else max(free // threads, 1)
        if n < 1 or threads < 1:
            raise ClusterError(f"a cluster needs an actor of a thread or more, not {n}x{threads}")
        if n * threads > free:
            raise ClusterError(
                f"the Ray cluster at {address} has {free} free CPUs; {n} actors of "
                f"{threads} threads need {n * threads} (pass fewer actors= or threads)"
            )
        self.path = path
        self.model_id = model_sha256(path)  # each actor checks its file against it
        options = {**args, "n_threads": threads}
        worker = ray.remote(LMWorker)
        self.actors = [
            worker.options(num_cpus=threads, scheduling_strategy="SPREAD").remote(
                path, self.model_id, options
            )
            for _ in range(n)
        ]
        try:
            facts = ray.get([a.facts.remote() for a in self.actors], timeout=READY_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise ClusterError(
                f"the Ray cluster at {address} started none or only some of {n} actors in "
                f"{READY_TIMEOUT_S:.0f}s: it has no room for them (CPUs or memory)"
            ) from None
        except ray.exceptions.RayError as err:
            self.close()
            raise ModelError(f"a Ray actor could not load the model: {_init_error(err)}") from None
        first = facts[0]
        self.workers = [f"actor {i} on node {f['node_id'][:8]}" for i, f in enumerate(facts)]
        self._live = list(range(n))
        self._turn = itertools.count()
        self.n_actors = n
        self.concurrency = 2 * n  # a block running and one queued per actor
        self.decoding = first["decoding"]
        self.step_rows = first["step_rows"]  # the actors share a map's answer steps
        self.rows_decoding = first["rows_decoding"]
        self.n_ctx = first["n_ctx"]
        self.n_threads = threads
        self.threads_reason = f"per actor, {n} actors ({first['threads_reason']})"
        self.batch_rows_reason = f"per actor, {first['batch_rows_reason']}"
        self.head_reason = f"per actor, {first['head_reason']}"
        self.actor_batch_rows = first["batch_rows"]  # blocks come in multiples of it
        self.backend = first["backend"]
        self.reuses_prefix = first["reuses_prefix"]
        self.name = first["name"]
        self.style = first["style"]
        self.placement = f"Ray cluster at {address}, {n} actor(s) x {threads} thread(s)"
        self._vocab = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        self._template = self._vocab.metadata.get("tokenizer.chat_template")

    # -- the pool (executors/lm/block_prefetch.py) ------------------------------------

    @property
    def live(self) -> list[int]:
        """The actors still alive, by index."""
        return list(self._live)

    def submit(
        self, worker: int, prompts: list[str], out_type: OutputType, scored: bool, steps=False
    ):
        """Send a block of prompts to one actor; the reference to its results."""
        return self.actors[worker].run_block.remote(list(prompts), out_type, scored, steps)

    def collect(self, worker: int, ref) -> list[Scored | Generation]:
        """A block's results, each marked with its actor; WorkerLost if the actor died."""
        ray = self._ray
        try:
            results = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError):
            if worker in self._live:
                self._live.remove(worker)
            if not self._live:
                raise ClusterError(
                    f"every actor of the Ray cluster at {self.address} was lost "
                    f"({len(self.actors)} started)"
                ) from None
            raise WorkerLost(self.workers[worker]) from None
        for result in results:
            result.worker = self.workers[worker]
        return results

    def cancel(self, refs) -> None:
        """Cancel blocks not finished: queued ones never run, a running one stops after
        the prompt in progress (ray_worker.LMWorker.run_block)."""
        for ref in refs:
            try:
                self._ray.cancel(ref)
            except Exception:  # an actor already gone has nothing to cancel
                pass

    def _block(self, prompts: list[str], out_type: OutputType, scored: bool, steps=False):
        while True:  # collect raises ClusterError once no actor is left
            live = self._live
            worker = live[next(self._turn) % len(live)]
            try:
                return self.collect(worker, self.submit(worker, prompts, out_type, scored, steps))
            except WorkerLost:
                continue

    # -- the runtime contract ---------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return self._vocab.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def format_chat(self, messages: list[dict]) -> str:
        return chat_prompt(self._vocab, self._template, messages)

    def score_many(self, prompts: list[str], out_type: OutputType) -> list[Scored]:
        return [self.score(p, out_type) for p in prompts]  # batch_rows = 1: one at a time

    def generate_many(self, prompts: list[str], out_type: OutputType) -> list[Generation]:
        return [self.generate(p, out_type) for p in prompts]

    def score(self, prompt: str, out_type: OutputType) -> Scored:
        return self._block([prompt], out_type, True)[0]

    def generate(self, prompt: str, out_type: OutputType) -> Generation:
        return self._block([prompt], out_type, False)[0]

    def generate_rows(self, prompts: list[str], out_type: OutputType) -> list[Generation]:
        """A map's generated rows on one actor, their answer steps shared there."""
        return self._block(prompts, out_type, False, True)

    def measure_speeds(self, text: str) -> dict[str, float]:
        """One actor's speeds: the cost model's per-call rates."""
        return self._ray.get(self.actors[self._live[0]].measure_speeds.remote(text))

    def close(self) -> None:
        """Stop this runtime's actors; a Ray connection the user made stays theirs."""
        ray, actors = self._ray, getattr(self, "actors", [])
        self.actors = []
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # an actor already gone
                pass
        if getattr(self, "_owns_ray", False) and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False
