"""The ``semql`` REPL driven through a real terminal (tmux send-keys / capture-pane).

tmux renders what prompt_toolkit draws, so the tests read the screen a person would see.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

SEMQL = str(Path(sys.executable).with_name("semql"))

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="needs tmux (apt-get install tmux; .ci/run does)"
)


class Terminal:
    """One semql process in a detached tmux session of its own server."""

    def __init__(self, args: str, history: Path, cwd: Path):
        self.server = f"semql-test-{uuid.uuid4().hex[:8]}"
        # The exit status is echoed: tmux reports a dead pane's status only now and then.
        command = (
            f"sh -c 'env SEMQL_HISTORY={history} COLUMNS=140 {SEMQL} {args}; "
            f"echo semql-exit-status=$?'"
        )
        self._tmux("new-session", "-d", "-s", "t", "-x", "140", "-y", "50", "-c", str(cwd))
        self._tmux("set-option", "-t", "t", "remain-on-exit", "on")
        self._tmux("respawn-pane", "-k", "-t", "t", command)

    def _tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.server, *args], capture_output=True, text=True, check=True
        )
        return out.stdout

    def type(self, text: str, enter: bool = True) -> None:
        """Type ``text`` literally (tmux would read a trailing ';' as its own separator)."""
        body, semicolon = (text[:-1], True) if text.endswith(";") else (text, False)
        if body:
            self._tmux("send-keys", "-t", "t", "-l", body)
        if semicolon:
            self._tmux("send-keys", "-t", "t", "-H", "3b")
        if enter:
            self._tmux("send-keys", "-t", "t", "Enter")

    def key(self, name: str) -> None:
        self._tmux("send-keys", "-t", "t", name)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t", "-S", "-500")

    def wait_for(self, pattern: str, timeout: float = 60, after: int = 0) -> str:
        """Wait until ``pattern`` appears on screen past character ``after``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if re.search(pattern, text[after:]):
                return text
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} did not appear; screen:\n{self.screen()}")

    def prompt_count(self) -> int:
        return len(re.findall(r"^semql>", self.screen(), re.M))

    def wait_prompt(self, count: int, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.prompt_count() >= count:
                return self.screen()
            time.sleep(0.1)
        raise AssertionError(f"prompt #{count} did not appear; screen:\n{self.screen()}")

    def wait_exit(self, timeout: float = 15) -> str:
        """The exit status of semql once it ended."""
        screen = self.wait_for(r"semql-exit-status=\d+", timeout)
        return re.search(r"semql-exit-status=(\d+)", screen).group(1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True)


@pytest.fixture()
def term(tmp_path):
    made: list[Terminal] = []

    def start(args: str = "--sample --no-cache") -> Terminal:
        t = Terminal(args, tmp_path / "history", tmp_path)
        made.append(t)
        t.wait_prompt(1)
        return t

    yield start
    for t in made:
        t.close()


@pytest.mark.model
def test_multiline_semantic_query_on_the_bundled_model(term):
    t = term()
    t.type("SELECT reviewId,")
    t.wait_for(r"\.\.\.>")  # a continuation line, not a run
    t.type("  LLMMap('Is the review positive?', reviewText, return_type='bool') AS positive")
    t.type("FROM Reviews WHERE id = 'taken_3' ORDER BY reviewId LIMIT 3;")
    screen = t.wait_prompt(2, timeout=120)
    assert "(3 rows)" in screen and "positive" in screen
    assert re.search(r"┆ (true|false) ", screen)
    assert "Traceback" not in screen


def test_load_csv_schema_and_query(term, tmp_path):
    (tmp_path / "people.csv").write_text("name,age\nAda,36\nAlan,41\n")
    t = term("--no-cache")
    t.type(".load people.csv AS people")
    t.wait_for("loaded 2 rows into table people")
    t.type(".schema people")
    t.wait_for(r'CREATE TABLE "people"')
    screen = t.wait_for(r'"age" BIGINT')
    assert '"name" VARCHAR' in screen
    t.type("SELECT sum(age) AS total FROM people;")
    t.wait_for(r"│ 77 ")


def test_error_then_a_good_query(term):
    t = term("--no-cache")
    t.type("SELEC 1;")
    t.wait_for("Error: ")
    t.type("SELECT * FROM missing_table;")
    t.wait_for("Error: .*missing_table")
    t.type("SELECT 41 + 1 AS answer;")
    screen = t.wait_for(r"│ 42 ")
    assert "Traceback" not in screen


@pytest.mark.model
def test_ctrl_c_cancels_an_lm_query_and_the_session_goes_on(term):
    t = term()
    t.type("SELECT count(*) AS n FROM Reviews WHERE LLMMap('Is the review positive?', reviewText);")
    t.wait_for(r"LM calls · \d+ cached", timeout=120)  # the live progress line
    time.sleep(1)
    pressed = time.monotonic()
    t.key("C-c")
    t.wait_for("cancelled after [1-9][0-9]* LM calls", timeout=10)
    assert time.monotonic() - pressed < 5
    t.type("SELECT count(*) AS leftover FROM duckdb_tables() WHERE table_name LIKE '__semql%';")
    screen = t.wait_for(r"│ 0 ")
    t.type("SELECT 6 * 7 AS again;")
    screen = t.wait_for(r"│ 42 ")
    assert "Traceback" not in screen


def test_history_persists_across_runs_and_ctrl_c_twice_exits(term):
    first = term("--no-cache")
    first.type("SELECT 'remember me' AS h;")
    first.wait_for(r"│ remember me")
    first.type(".quit")
    assert first.wait_exit() == "0"
    second = term("--no-cache")
    second.key("Up")  # the last entry: .quit
    second.wait_for(r"semql> \.quit")
    second.key("Up")
    second.wait_for(r"semql> SELECT 'remember me' AS h;")
    second.key("Enter")
    second.wait_prompt(2)
    assert second.screen().count("remember me") >= 2
    second.key("C-c")
    second.wait_for("press Ctrl-C again")
    second.key("C-c")
    assert second.wait_exit() == "0"


def _semql(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SEMQL, *args], input=stdin, capture_output=True, text=True)


def test_piped_statements_and_dot_commands():
    run = _semql(
        "--no-cache", "--format", "csv", stdin="SELECT 1 AS a;\n.mode json\nSELECT 2 AS b;\n"
    )
    assert run.returncode == 0
    assert run.stdout.startswith("a\n1\n") and '[{"b":2}]' in run.stdout


def test_piped_load_then_query(tmp_path):
    """The statement right after .load runs (DuckDB 2 refused it while .load's row count
    was an unfinished result)."""
    (tmp_path / "people.csv").write_text("name,age\nAda,36\nAlan,41\n")
    script = f".load {tmp_path / 'people.csv'} AS people\nSELECT sum(age) AS total FROM people;\n"
    run = _semql("--no-cache", "--format", "csv", stdin=script)
    assert run.returncode == 0, run.stderr
    assert "loaded 2 rows into table people" in run.stderr and run.stdout == "total\n77\n"


def test_piped_error_stops_with_status_1_and_no_traceback():
    run = _semql("--no-cache", stdin="SELECT 1 AS a;\nSELEC 2;\nSELECT 3 AS c;\n")
    assert run.returncode == 1
    assert "Error:" in run.stderr and "Traceback" not in run.stderr
    assert "c" not in run.stdout.split("(1 row)")[-1]


def test_one_shot_formats_and_output_file(tmp_path):
    run = _semql("--no-cache", "-c", "SELECT 1 AS a, 'x' AS b", "--format", "markdown")
    assert run.returncode == 0 and "| a" in run.stdout
    out = tmp_path / "out.csv"
    script = f".output {out}\n.mode csv\nSELECT 5 AS five;\n.output\n"
    assert _semql("--no-cache", stdin=script).returncode == 0
    assert out.read_text() == "five\n5\n"


@pytest.mark.model
def test_calibration_and_wording_check_from_the_command_line():
    """--calibration and --check-wording reach the connection: the plan names the method
    and .stats shows the wording check of the statement that ran."""
    sql = (
        "SELECT {{LLMMap('Is it positive?', reviewText)}} AS p FROM Reviews "
        "WHERE id = 'taken_3' AND reviewId % 20 = 0 LIMIT 1;\n"
    )
    run = _semql(
        "--sample",
        "--no-cache",
        "--calibration",
        "batch",
        "--check-wording",
        stdin=".explain on\n" + sql + ".stats\n",
    )
    assert run.returncode == 0, run.stderr
    assert "calibration batch" in run.stdout
    assert "when the question mark is dropped" in run.stdout


def test_read_only_opens_a_database_another_process_holds_open_read_only(tmp_path):
    """--read-only: two processes read one file at once, and writes are refused with
    DuckDB's message, not a traceback; --safe refuses file access from SQL."""
    db = tmp_path / "shared.duckdb"
    assert _semql(str(db), "-c", "CREATE TABLE t AS SELECT 7 AS x").returncode == 0
    holder = subprocess.Popen(
        [SEMQL, str(db), "--read-only", "--no-cache"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        holder.stdin.write("SELECT x FROM t;\n")
        holder.stdin.flush()  # the holder has the file open, read-only, until stdin closes
        time.sleep(1.0)
        run = _semql(str(db), "--read-only", "--format", "csv", "-c", "SELECT x FROM t")
        assert run.returncode == 0, run.stderr
        assert run.stdout == "x\n7\n"
        write = _semql(str(db), "--read-only", "-c", "CREATE TABLE u AS SELECT 1 AS y")
        assert write.returncode == 1 and "read-only" in write.stderr
        assert "Traceback" not in write.stderr
    finally:
        out, _ = holder.communicate(timeout=60)
    assert holder.returncode == 0 and "7" in out
    assert "needs a DATABASE" in _semql("--read-only", "-c", "SELECT 1").stderr
    safe = _semql("--safe", "-c", f"SELECT * FROM read_csv('{db}')")
    assert safe.returncode == 1 and "safe mode" in safe.stderr
