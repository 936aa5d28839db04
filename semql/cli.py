"""The ``semql`` command: one-shot queries, SQL files, the demo, and a simple prompt.

    semql demo                          run example semantic queries on the sample data
    semql -c "SQL" [--sample] [DB]      one query, printed as a table (or --format csv/json)
    semql run FILE.sql [DB]             every statement of a file
    semql [DB]                          read statements ending in ';' from standard input
    semql bench movie [options]         the SemBench runner (see semql bench --help)

Errors print as one message (parse errors with a caret), exit status 1; --debug shows
the traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import polars as pl

from .connection import Connection
from .errors import SemQLError
from .sample import load_sample

DEMO_QUERIES = [
    (
        "Five positive reviews of 'taken_3' (LM filter, relational filter first, early exit)",
        "SELECT reviewId, reviewText FROM Reviews\n"
        "WHERE id = 'taken_3'\n"
        "  AND {{LLMMap('Is this movie review positive?', reviewText,\n"
        "        examples=(('A joyless, plodding mess.', FALSE),\n"
        "                  ('Funny, warm and beautifully made.', TRUE)))}}\n"
        "LIMIT 5",
    ),
    (
        "Sentiment counts for 'taken_3' (LM classification grouped by DuckDB)",
        "SELECT {{LLMMap('What is the sentiment of this review?', reviewText,\n"
        "        options=('positive', 'negative'))}} AS sentiment, count(*) AS n\n"
        "FROM Reviews WHERE id = 'taken_3' GROUP BY sentiment ORDER BY n DESC",
    ),
]


def _print_frame(df: pl.DataFrame, fmt: str, out) -> None:
    if fmt == "csv":
        out.write(df.write_csv())
    elif fmt == "json":
        out.write(df.write_json() + "\n")
    else:
        with pl.Config(tbl_rows=50, fmt_str_lengths=60, tbl_width_chars=120):
            out.write(f"{df}\n")


def _split_statements(text: str) -> list[str]:
    """Split on ';' outside quotes and comments (the dialect's scanner knows where)."""
    from .dialect import _code_spans

    cuts, start = [], 0
    for span in _code_spans(text):
        i = text.find(";", span.start, span.end)
        while i >= 0:
            cuts.append(text[start:i])
            start = i + 1
            i = text.find(";", start, span.end)
    cuts.append(text[start:])
    return [c.strip() for c in cuts if c.strip()]


def _run_statements(con: Connection, text: str, fmt: str, timer: bool) -> None:
    for stmt in _split_statements(text):
        started = time.perf_counter()
        df = con.query(stmt)
        if df.width:
            _print_frame(df, fmt, sys.stdout)
        if timer:
            s = con.stats
            print(
                f"-- {time.perf_counter() - started:.2f}s, {s.lm_calls} LM calls, "
                f"{s.cache_hits} cache hits",
                file=sys.stderr,
            )


def _demo(con: Connection) -> None:
    load_sample(con)
    print(f"SemQL demo on the sample SemBench movie reviews (model: {con.runtime.name})\n")
    for title, sql in DEMO_QUERIES:
        print(f"== {title}\n{sql}\n")
        started = time.perf_counter()
        _print_frame(con.query(sql), "table", sys.stdout)
        s = con.stats
        print(
            f"{time.perf_counter() - started:.1f}s, {s.lm_calls} LM calls, {s.prompt_tokens} "
            f"prompt tokens ({s.cached_prompt_tokens} from the KV cache)\n"
        )


def _prompt_loop(con: Connection, fmt: str) -> None:
    buffer = ""
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("semql> " if not buffer else "   ...> ") if interactive else input()
        except EOFError:
            break
        if not buffer and line.strip() in (".quit", ".exit"):
            break
        if not buffer and line.strip() == ".tables":
            print("\n".join(con.tables()))
            continue
        buffer += line + "\n"
        if buffer.rstrip().endswith(";"):
            try:
                _run_statements(con, buffer, fmt, timer=interactive)
            except SemQLError as err:
                print(f"Error: {err}", file=sys.stderr)
                if not interactive:
                    raise
            buffer = ""
    if buffer.strip():
        _run_statements(con, buffer, fmt, timer=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semql", description="Semantic SQL on DuckDB with local LMs")
    p.add_argument("args", nargs="*", help="[demo | run FILE.sql] [DATABASE]")
    p.add_argument("-c", "--command", help="run one SQL statement and exit")
    p.add_argument("--model", help="path to a GGUF model (default: bundled Gemma 3 270M)")
    p.add_argument("--sample", action="store_true", help="load the sample Reviews/Movies tables")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--no-cache", action="store_true", help="do not use the LM result cache")
    p.add_argument("--naive", action="store_true", help="turn every optimisation off")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from semql.sembench.runner import main as bench_main

        return bench_main(argv[1:])
    opts = build_parser().parse_args(argv)
    words = list(opts.args)
    mode = words.pop(0) if words and words[0] in ("demo", "run") else None
    file = words.pop(0) if mode == "run" and words else None
    database = words[0] if words else ":memory:"
    try:
        with Connection(
            database,
            model=opts.model,
            cache=not opts.no_cache,
            **({"optimize": False} if opts.naive else {}),
        ) as con:
            if opts.sample:
                load_sample(con)
            if mode == "demo":
                _demo(con)
            elif mode == "run":
                if file is None:
                    raise SemQLError("semql run needs a .sql file")
                try:
                    text = Path(file).read_text()
                except OSError as err:
                    raise SemQLError(f"cannot read {file}: {err.strerror}") from None
                _run_statements(con, text, opts.format, timer=False)
            elif opts.command is not None:
                _run_statements(con, opts.command, opts.format, timer=False)
            else:
                _prompt_loop(con, opts.format)
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
