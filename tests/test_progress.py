"""The live progress line of the Python API: shown by default where stderr is a terminal,
left behind nowhere."""

from __future__ import annotations

import io

import pytest

import semql
from semql.progress import ProgressLine, progress_for

CLEAR = "\r\x1b[2K"


class Terminal(io.StringIO):
    """What a terminal on stderr receives (it says it is one)."""

    def isatty(self) -> bool:
        return True


def test_a_connection_shows_progress_by_default_only_on_a_terminal():
    with semql.connect() as con:
        assert isinstance(con.progress, ProgressLine)
        assert con.progress.enabled is False  # pytest captures stderr: no terminal
    with semql.connect(progress=False) as con:
        assert con.progress is None
    own = []
    assert progress_for(own.append) == own.append
    assert ProgressLine(Terminal()).enabled


@pytest.mark.model
def test_a_long_query_draws_its_line_and_clears_it(gemma_runtime):
    """Rows done of planned and an ETA while the query runs; nothing left once it ends,
    also when it ends in an error."""
    screen = Terminal()
    line = ProgressLine(screen)
    con = semql.connect(runtime=gemma_runtime, cache=False, progress=line)
    semql.load_sample(con)
    sql = (
        "SELECT {{LLMMap('Is the review positive?', reviewText)}} AS p FROM "
        "(SELECT * FROM Reviews WHERE id = 'taken_3' ORDER BY reviewId LIMIT 12)"
    )
    try:
        con.query(sql, calibration="off")
        drawn = screen.getvalue().split(CLEAR)
        assert any("/12 rows" in d and "ETA" in d for d in drawn)
        assert screen.getvalue().endswith(CLEAR) and not line._shown
        with pytest.raises(semql.LimitExceeded):
            con.query(sql.replace("LIMIT 12", "LIMIT 11"), calibration="off", max_lm_calls=5)
        assert screen.getvalue().endswith(CLEAR) and not line._shown
    finally:
        con._runtime = None  # shared by the session
        con.close()
