"""Statements and dot-commands of one ``semql`` session, from a terminal, a pipe or a file.

The interactive front (line editing, history, Ctrl-C) is in semql/repl.py; this class
does the work, so a script piped to ``semql`` and a person at the prompt get the same
commands and the same output.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import duckdb

from .catalog import quote_ident
from .connection import Connection
from .dialect import _code_spans
from .errors import SemQLError
from .output import MODES, format_frame
from .progress import ProgressLine

HELP = """\
Statements end with ';' and may span lines. Dot-commands:
  .tables                  list tables and views
  .schema [TABLE]          columns and types (of every table, or one)
  .load FILE [AS name]     CSV / TSV / Parquet / JSON file into a new table
  .model [PATH]            show the model, or switch to another GGUF
  .timer on|off            time, LM calls and cache hits after each statement
  .stats                   figures of the last statement, per operator
  .curve FILE.png          the last statement's proxy-model learning curve (accuracy=...)
  .explain on|off          show each LM statement's plan (with estimates) before it runs
  .mode table|csv|json|markdown
  .output [FILE]           write results to FILE (no FILE: back to the terminal)
  .read FILE.sql           run the statements of a file
  .help                    this text
  .quit                    leave (also Ctrl-D, or Ctrl-C twice at an empty prompt)
Ctrl-C while a statement runs cancels it.
"""


class QuitShell(Exception):
    """Raised by .quit."""


def split_statements(text: str) -> list[str]:
    """Split on ';' outside quotes and comments (the dialect's scanner knows where)."""
    cuts, start = [], 0
    for span in _code_spans(text):
        i = text.find(";", span.start, span.end)
        while i >= 0:
            cuts.append(text[start:i])
            start = i + 1
            i = text.find(";", start, span.end)
    cuts.append(text[start:])
    return [c.strip() for c in cuts if c.strip()]


def statement_complete(text: str) -> bool:
    """A dot-command, or SQL whose last code character is a ';'."""
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.startswith("."):
        return True
    last = None
    for span in _code_spans(text):
        code = text[span.start : span.end].rstrip()
        if code.strip():
            last = code[-1]
    return last == ";"


class Shell:
    """One session's settings (mode, timer, output file) and its commands."""

    def __init__(
        self,
        con: Connection,
        *,
        mode: str = "table",
        timer: bool = False,
        debug: bool = False,
        out=None,
        err=None,
    ):
        self.con = con
        self.mode = mode
        self.timer = timer
        self.explain = False
        self.debug = debug
        self.terminal = out or sys.stdout
        self.out = self.terminal
        self.err = err or sys.stderr
        self.progress = ProgressLine(self.err)
        con.progress = self.progress

    # -- statements --------------------------------------------------------------------

    def run_text(self, text: str, stop_on_error: bool) -> bool:
        """Run dot-command lines and ';'-separated statements in order; False on error."""
        ok = True
        buffer: list[str] = []
        for line in text.splitlines():
            if not buffer and line.strip().startswith("."):
                ok = self.command(line) and ok
            else:
                buffer.append(line)
                if not statement_complete("\n".join(buffer)):
                    continue
                ok = self.run_sql("\n".join(buffer)) and ok
                buffer = []
            if not ok and stop_on_error:
                return False
        if "\n".join(buffer).strip():
            ok = self.run_sql("\n".join(buffer)) and ok
        return ok

    def run_sql(self, text: str) -> bool:
        for statement in split_statements(text):
            if not self._run_one(statement):
                return False
        return True

    def _run_one(self, sql: str) -> bool:
        started = time.perf_counter()
        try:
            if self.explain:
                plan = self.con.explain(sql)
                if not plan.startswith("DuckDB (no LM functions)"):
                    self.err.write(plan + "\n\n")
            df = self.con.query(sql)
        except KeyboardInterrupt:
            self.progress.clear()
            s = self.con.stats
            s.total()
            self.err.write(
                f"cancelled after {s.lm_calls} LM calls; their answers are kept in the "
                f"result cache\n"
            )
            return False
        except SemQLError as err:
            self.progress.clear()
            self.err.write(f"Error: {err}\n")
            return False
        except Exception as err:  # a bug: say so plainly, keep the session
            self.progress.clear()
            if self.debug:
                traceback.print_exc(file=self.err)
            self.err.write(
                f"Internal error: {type(err).__name__}: {err} (run with --debug for the "
                f"traceback)\n"
            )
            return False
        self.progress.clear()
        if df.width:
            self.out.write(format_frame(df, self.mode))
            self.out.flush()
        for warning in self.con.stats.warnings:  # e.g. a (nearly) constant LM answer
            self.err.write(f"warning: {warning}\n")
        if self.timer:
            s = self.con.stats
            self.err.write(
                f"Run time: {time.perf_counter() - started:.2f}s, {s.lm_calls} LM calls, "
                f"{s.cache_hits} cache hits, {s.prompt_tokens} prompt tokens "
                f"({s.cached_prompt_tokens} from the KV cache)\n"
            )
        return True

    # -- dot-commands ------------------------------------------------------------------

    def command(self, line: str) -> bool:
        """Run one dot-command; False when it failed. Raises QuitShell for .quit."""
        words = line.strip().split()
        name, args = words[0].lower(), words[1:]
        handler = getattr(self, "_cmd_" + name[1:], None)
        if handler is None:
            self.err.write(f"Error: unknown command {name}; .help lists them\n")
            return False
        try:
            handler(args)
            return True
        except SemQLError as err:
            self.err.write(f"Error: {err}\n")
            return False

    def _cmd_help(self, args) -> None:
        self.err.write(HELP)

    def _cmd_quit(self, args) -> None:
        raise QuitShell

    _cmd_exit = _cmd_quit

    def _cmd_tables(self, args) -> None:
        names = self.con.tables()
        self.out.write(("\n".join(names) + "\n") if names else "(no tables)\n")

    def _cmd_schema(self, args) -> None:
        names = args or self.con.tables()
        for name in names:
            try:
                rows = self.con.duckdb.execute(f"DESCRIBE {quote_ident(name)}").fetchall()
            except duckdb.Error:
                raise SemQLError(f".schema: no table or view named {name!r}") from None
            cols = ",\n  ".join(f"{quote_ident(r[0])} {r[1]}" for r in rows)
            self.out.write(f"CREATE TABLE {quote_ident(name)} (\n  {cols}\n);\n")

    def _cmd_load(self, args) -> None:
        if len(args) not in (1, 3) or (len(args) == 3 and args[1].upper() != "AS"):
            raise SemQLError("usage: .load FILE [AS name]")
        name = self.con.load(args[0], args[2] if len(args) == 3 else None)
        # fetchall, not fetchone: DuckDB 2 refuses the connection's next query while a
        # result from execute() is unfinished
        [(count,)] = self.con.duckdb.execute(f"SELECT count(*) FROM {quote_ident(name)}").fetchall()
        self.err.write(f"loaded {count} rows into table {name}\n")

    def _cmd_model(self, args) -> None:
        if args:
            from semql.executors.runtimes.model_files import check_gguf

            check_gguf(args[0])
            self.con.set_model(args[0])
        path = self.con.model_path or "the bundled Gemma 3 270M (loads on first use)"
        self.err.write(f"model: {path}\nspeeds: {self.con.profile().describe()}\n")

    def _switch(self, args, what: str) -> bool:
        if len(args) != 1 or args[0].lower() not in ("on", "off"):
            raise SemQLError(f"usage: .{what} on|off")
        return args[0].lower() == "on"

    def _cmd_timer(self, args) -> None:
        self.timer = self._switch(args, "timer")

    def _cmd_explain(self, args) -> None:
        self.explain = self._switch(args, "explain")

    def _cmd_stats(self, args) -> None:
        s = self.con.stats
        lines = [
            f"{s.lm_calls} LM calls, {s.prompt_tokens} prompt tokens "
            f"({s.cached_prompt_tokens} from the KV cache), {s.generated_tokens} generated, "
            f"{s.cache_hits} result-cache hits, {s.seconds:.2f}s"
        ]
        lines += [f"  {op.operator}: {op.summary()}" for op in s.operators]
        lines += [f"  {p.summary()}" for p in self.con.proxy_reports()]
        lines += [f"  warning: {w}" for w in s.warnings]
        self.out.write("\n".join(lines) + "\n")

    def _cmd_curve(self, args) -> None:
        from semql.proxy_curve import save_report_curve

        if len(args) != 1:
            raise SemQLError("usage: .curve FILE.png")
        trained = [p for p in self.con.proxy_reports() if p.curve]
        if not trained:
            raise SemQLError(".curve: the last statement trained no proxy model")
        try:
            path = save_report_curve(trained[0], args[0])
        except OSError as err:
            raise SemQLError(f".curve: cannot write {args[0]}: {err.strerror}") from None
        self.err.write(f"learning curve written to {path}\n")

    def _cmd_mode(self, args) -> None:
        if len(args) != 1 or args[0].lower() not in MODES:
            raise SemQLError(f"usage: .mode {'|'.join(MODES)}")
        self.mode = args[0].lower()

    def _cmd_output(self, args) -> None:
        if self.out is not self.terminal:
            self.out.close()
            self.out = self.terminal
        if args:
            try:
                self.out = open(args[0], "w", encoding="utf-8")  # noqa: SIM115 (kept open)
            except OSError as err:
                raise SemQLError(f".output: cannot write {args[0]}: {err.strerror}") from None

    def _cmd_read(self, args) -> None:
        if len(args) != 1:
            raise SemQLError("usage: .read FILE.sql")
        try:
            text = Path(args[0]).read_text(encoding="utf-8")
        except OSError as err:
            raise SemQLError(f".read: cannot read {args[0]}: {err.strerror}") from None
        self.run_text(text, stop_on_error=True)

    def close(self) -> None:
        if self.out is not self.terminal:
            self.out.close()
            self.out = self.terminal
