"""``semql serve``: llama-cpp-python's OpenAI-compatible server, loaded the way SemQL
loads a model on this machine.

A plain ``python -m llama_cpp.server`` loads with llama.cpp's extra CPU buffer types
(AMX tiles, repacked weights) whatever the CPU; where those kernels crash (some AMX
Xeons in VMs and containers: SIGILL or SIGSEGV on the first request) the server dies on
the first completion with no hint why. ``semql serve`` applies the same kernel verdict
as an in-process query (executors/runtimes/cpu_backend.py: forced setting, stored
verdict or a probe) for the server's whole life, and the thread count of the thread
policy (the affinity mask bounded by the cgroup's CPU quota), and says both on start.
"""

from __future__ import annotations

import sys

from semql.errors import ModelError
from semql.executors.runtimes import cpu_backend
from semql.executors.runtimes.model_files import resolve_model_path
from semql.executors.runtimes.thread_policy import core_budget


def serve(
    model: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    n_threads: int | None = None,
    n_ctx: int = 2048,
    extra_bufts: object = None,
    verbose: bool = False,
) -> None:
    """Serve ``model`` (a GGUF path, a bundled model's name, or the default) until
    interrupted; ``verbose`` shows llama.cpp's load log and every request."""
    try:
        import uvicorn
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError as err:
        raise ModelError(
            f"semql serve needs llama-cpp-python's server ({err.name} is missing): "
            "pip install 'semql[serve]'"
        ) from None
    if not verbose:
        from semql.executors.runtimes import llama_log

        llama_log.errors_only()
    path = resolve_model_path(model)
    verdict = cpu_backend.decide(path, extra_bufts)
    if n_threads:
        threads, why = n_threads, "as configured"
    else:
        threads, why = core_budget()
    state = "on" if verdict.extra_bufts else "off"
    print(
        f"semql serve: {path} at http://{host}:{port}/v1\n"
        f"  threads: {threads} ({why})\n"
        f"  extra buffer types (AMX / repacked weights): {state}: {verdict.reason}",
        file=sys.stderr,
        flush=True,
    )
    settings = ModelSettings(
        model=path,
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        seed=0,
        verbose=verbose,
    )
    # Held for the server's life: every load it makes (also a reload) gets the verdict.
    with cpu_backend.model_params(verdict.extra_bufts):
        app = create_app(
            server_settings=ServerSettings(host=host, port=port), model_settings=[settings]
        )
        # Gateways in front of servers (SMG, and Kubernetes probes) register a worker only
        # once GET /health answers; llama-cpp-python's app has no such route.
        app.add_api_route("/health", lambda: {"status": "ok"}, methods=["GET"])
        uvicorn.run(app, host=host, port=port, log_level="info" if verbose else "warning")


def main(argv: list[str]) -> int:
    """``semql serve [MODEL] [--host H] [--port N] [--threads N] [--n-ctx N]
    [--extra-bufts on|off|auto] [--verbose]``; errors print as one line, exit status 1."""
    import argparse

    p = argparse.ArgumentParser(
        prog="semql serve",
        description="Serve a GGUF model over HTTP (OpenAI-compatible) with the CPU kernels "
        "and threads SemQL chooses on this machine",
    )
    p.add_argument("model", nargs="?", help="GGUF path, gemma3-270m or smollm2 (default: bundled)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    p.add_argument("--threads", type=int, help="llama.cpp threads (default: all cores allowed)")
    p.add_argument("--n-ctx", type=int, default=2048, help="context length in tokens (2048)")
    p.add_argument("--extra-bufts", default=None, help="on, off or auto (default: auto)")
    p.add_argument("--verbose", action="store_true", help="llama.cpp's log and every request")
    opts = p.parse_args(argv)
    try:
        serve(
            opts.model,
            host=opts.host,
            port=opts.port,
            n_threads=opts.threads,
            n_ctx=opts.n_ctx,
            extra_bufts=opts.extra_bufts,
            verbose=opts.verbose,
        )
    except ModelError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
