"""The ``semql`` command: the REPL, one-shot queries, SQL files, the demo, SemBench.

    semql [DB]                          the REPL on a terminal (in-memory without DB);
                                        with standard input from a pipe, runs it instead
    semql -c "SQL" [--sample] [DB]      one statement (--format table|csv|json|markdown)
    semql run FILE.sql [DB]             every statement of a file
    semql demo                          example semantic queries on the sample data
    semql info                          version, model, threads, CPU kernels in use and why
    semql serve [MODEL] [--port N]      the model over HTTP, with SemQL's kernels and threads
    semql bench movie [options]         the SemBench runner (see semql bench --help)

Errors print as one message (parse errors with a caret) and the exit status is 1; --debug
shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .connection import Connection
from .errors import SemQLError
from .output import MODES, format_frame
from .planner.physical.task import CALIBRATIONS
from .sample import load_sample
from .shell import Shell

DEMO_QUERIES = [
    (
        "Five positive reviews of 'taken_3' (relational filter first; its 120 reviews are more "
        "than precision-first ranks by default, 64, so the first 5 the model passes)",
        "SELECT reviewId, reviewText FROM Reviews\n"
        "WHERE id = 'taken_3'\n"
        "  AND {{LLMMap('Is this movie review positive?', reviewText,\n"
        "        examples=(('A joyless, plodding mess that wastes its talented cast.', FALSE),\n"
        "                  ('Funny, warm and beautifully made: a delight from start to finish.',"
        " TRUE),\n"
        "                  ('It has a few good moments, but mostly it drags.', FALSE),\n"
        "                  ('A thrilling, confident film that earns every one of its surprises.',"
        " TRUE)))}}\n"
        "LIMIT 5",
    ),
    (
        "Sentiment counts for 'taken_3' (LM classification grouped by DuckDB)",
        "SELECT {{LLMMap('What is the sentiment of this review?', reviewText,\n"
        "        options=('positive', 'negative'))}} AS sentiment, count(*) AS n\n"
        "FROM Reviews WHERE id = 'taken_3' GROUP BY sentiment ORDER BY n DESC",
    ),
]


def _demo(con: Connection) -> None:
    load_sample(con)
    print(f"SemQL demo on the sample SemBench movie reviews (model: {con.runtime.name})\n")
    for title, sql in DEMO_QUERIES:
        print(f"== {title}\n{sql}\n")
        started = time.perf_counter()
        sys.stdout.write(format_frame(con.query(sql), "table"))
        s = con.stats
        print(
            f"{time.perf_counter() - started:.1f}s, {s.lm_calls} LM calls, {s.prompt_tokens} "
            f"prompt tokens ({s.cached_prompt_tokens} from the KV cache)\n"
        )


def _info(con: Connection) -> None:
    """What the runtime uses on this machine: model, threads, the CPU kernel path."""
    import llama_cpp

    from semql import __version__
    from semql.executors.runtimes.cpu_backend import simd_flags

    runtime = con.runtime
    simd = simd_flags()
    lines = [
        f"semql {__version__}, llama-cpp-python {llama_cpp.__version__}",
        f"model: {runtime.path} ({runtime.name})",
        f"LM operators run: {runtime.placement}",
    ]
    if runtime.local:
        lines.append(f"threads: {runtime.n_threads} ({runtime.threads_reason})")
        lines.append(f"rows: {runtime.batch_rows_reason}")
        lines.append(f"output layer: {runtime.head_reason}")
    lines.append(f"CPU flags: {' '.join(simd) or 'none of avx2/avx512f/amx'}")
    if runtime.local:
        state = "on" if runtime.backend.extra_bufts else "off"
        lines.append(
            f"extra buffer types (AMX / repacked weights): {state}: {runtime.backend.reason}"
        )
    print("\n".join(lines))


def _kernels_line(model: str | None) -> str:
    """The kernel path already decided for the model, without loading or probing it."""
    from semql.executors.runtimes import cpu_backend
    from semql.executors.runtimes.model_files import resolve_model_path

    try:
        path = resolve_model_path(model)
        forced = cpu_backend.forced_setting()
        verdict = cpu_backend.stored_verdict(path) if forced is None else None
    except SemQLError as err:
        return f"CPU kernels: unknown ({err})"
    if forced is not None:
        return f"CPU kernels: extra buffer types {'on' if forced else 'off'} (SEMQL_EXTRA_BUFTS)"
    if verdict is None:
        return "CPU kernels: not probed yet for this model (semql info probes and shows them)"
    state = "on" if verdict.extra_bufts else "off"
    return f"CPU kernels: extra buffer types (AMX / repacked weights) {state}: {verdict.reason}"


def _banner(con: Connection, database: str) -> str:
    where = "an in-memory database" if database == ":memory:" else database
    model = con.model_path or "the bundled Gemma 3 270M"
    return (
        f"SemQL on {where}, model {model}.\n"
        f"Statements end with ';'. .help lists commands; Ctrl-C cancels a running query.\n"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semql", description="Semantic SQL on DuckDB with local LMs")
    p.add_argument("args", nargs="*", help="[demo | info | run FILE.sql] [DATABASE]")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("-c", "--command", help="run one SQL statement and exit")
    p.add_argument("--model", help="path to a GGUF model (default: bundled Gemma 3 270M)")
    p.add_argument("--sample", action="store_true", help="load the sample Reviews/Movies tables")
    p.add_argument("--format", choices=MODES, default="table", help="how results print")
    p.add_argument("--no-cache", action="store_true", help="do not use the LM result cache")
    p.add_argument(
        "--read-only",
        action="store_true",
        help="open DATABASE read-only: other processes may read it too; its result cache is "
        "read, new answers kept in memory",
    )
    p.add_argument(
        "--safe",
        action="store_true",
        help="no file access, extensions or settings from SQL (for untrusted queries)",
    )
    p.add_argument("--naive", action="store_true", help="turn every optimisation off")
    p.add_argument(
        "--calibration",
        choices=CALIBRATIONS,
        help="how bool and options answers are decided (default: table)",
    )
    p.add_argument(
        "--check-wording",
        action="store_true",
        help="report how many sampled answers change under a trivial rewording",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from semql.sembench.runner import main as bench_main

        return bench_main(argv[1:])
    if argv[:1] == ["serve"]:
        from semql.serve import main as serve_main

        return serve_main(argv[1:])
    opts = build_parser().parse_args(argv)
    words = list(opts.args)
    if opts.version:
        from semql import __version__

        print(f"semql {__version__}\n{_kernels_line(opts.model)}")
        return 0
    mode = words.pop(0) if words and words[0] in ("demo", "info", "run") else None
    file = words.pop(0) if mode == "run" and words else None
    database = words[0] if words else ":memory:"
    if opts.read_only and database == ":memory:":
        print("Error: --read-only needs a DATABASE file to open", file=sys.stderr)
        return 1
    try:
        with Connection(
            database,
            model=opts.model,
            cache=not opts.no_cache,
            read_only=opts.read_only,
            safe=opts.safe,
            **({"optimize": False} if opts.naive else {}),
            **({"calibration": opts.calibration} if opts.calibration else {}),
            **({"check_wording": True} if opts.check_wording else {}),
        ) as con:
            if opts.sample:
                load_sample(con)
            shell = Shell(con, mode=opts.format, debug=opts.debug)
            if mode == "demo":
                _demo(con)
                return 0
            if mode == "info":
                _info(con)
                return 0
            if mode == "run":
                if file is None:
                    raise SemQLError("semql run needs a .sql file")
                try:
                    text = Path(file).read_text()
                except OSError as err:
                    raise SemQLError(f"cannot read {file}: {err.strerror}") from None
            elif opts.command is not None:
                text = opts.command
            elif sys.stdin.isatty():
                from .repl import run

                run(shell, _banner(con, database))
                return 0
            else:
                text = sys.stdin.read()
            return 0 if shell.run_text(text, stop_on_error=True) else 1
    except SemQLError as err:
        if opts.debug:
            raise
        print(f"Error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
