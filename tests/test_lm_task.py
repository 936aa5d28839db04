"""LM tasks are plain values that travel: every LM operator of the SemBench movie
queries carries one, it pickles, and one run in a fresh interpreter answers exactly as
it does in this process (the Ray issue's actors need no more than the task and rows)."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import semql
from semql.executors.lm.lm_executor import LMExecutor
from semql.executors.lm.result_cache import ResultCache
from semql.executors.lm.stats import OperatorStats
from semql.planner import logical as L
from semql.planner.physical import LMTask
from semql.sembench import scenario

WORKER = Path(__file__).with_name("task_worker.py")


def movie_tasks() -> dict[str, list[LMTask]]:
    """Every LMMap/LMFilter task of the movie scenario's plans, by query."""
    scen = scenario.load("movie")
    con = semql.connect(cache=False)
    scen.register(con, rows=40)
    tasks = {}
    for q in scen.queries:
        plan = con.plan(q.sql)
        tasks[q.name] = [
            node.task
            for scope in plan.scopes
            for node in scope.root.walk()
            if isinstance(node, L.LMOperator)
        ]
    con.close()
    return tasks


def test_every_movie_task_pickles_whole():
    tasks = movie_tasks()
    assert len(tasks) == 10 and all(tasks.values())
    for name, found in tasks.items():
        for task in found:
            assert isinstance(task, LMTask), name
            back = pickle.loads(pickle.dumps(task))
            assert (back.question, back.names, back.examples, back.calibration) == (
                task.question,
                task.names,
                task.examples,
                task.calibration,
            ), name
            assert back.output.spec() == task.output.spec(), name
            assert (back.layout is None) == (task.layout is None), name
            if task.layout is not None:
                assert back.layout.orders == task.layout.orders, name
            assert back.reorder_rows == task.reorder_rows, name
            # a value, not a view of the plan: no AST, plan node or call travels with it
            data = pickle.dumps(task)
            for module in (b"sqlglot", b"semql.planner.logical", b"semql.planner.calls"):
                assert module not in data, (name, module)


@pytest.mark.model
def test_a_task_answers_in_a_fresh_process_as_the_query_did(gemma_runtime, tmp_path):
    """Q9's call (a 1-5 scale with examples), asked per row by a query here under AVG, so
    each answer is the expected value of its calibrated label scores (a float that any
    change to the prompt, prior or decision moves), then its task and rows pickled to a
    fresh interpreter: once alone (it computes the content-free prior itself), once with
    the prior computed here (it asks for none and decides the same). content_free, since
    a task alone has no table to sample: a coordinator sends a table or batch prior."""
    scen = scenario.load("movie")
    q9 = next(q for q in scen.queries if q.name == "Q9")
    call = re.search(r"\{\{.*?\}\}", q9.sql, re.S).group(0)
    con = semql.connect(runtime=gemma_runtime, cache=False, calibration="content_free")
    scen.register(con, rows=40)
    rows = con.query(
        f"SELECT reviewText, avg({call}) AS s FROM Reviews "
        "WHERE reviewId IN (SELECT reviewId FROM Reviews ORDER BY reviewId LIMIT 5) "
        "GROUP BY reviewText ORDER BY reviewText"
    )
    (task,) = [n.task for n in con.last_plan.scopes[0].root.walk() if isinstance(n, L.LMOperator)]
    con._runtime = None  # the session's runtime: not closed with this connection
    con.close()
    values = [(text,) for text in rows["reviewText"].to_list()]
    prior = LMExecutor(gemma_runtime, ResultCache(None)).task_prior(task, OperatorStats("here"))
    assert prior is not None and prior.probs is not None
    alone = _in_fresh_process(task, values, None, tmp_path)
    sent = _in_fresh_process(task, values, prior, tmp_path)
    assert alone["calibration_calls"] > 0 and sent["calibration_calls"] == 0
    assert alone["answers"] == sent["answers"] == rows["s"].to_list()
    assert task.output.expected
    assert len(set(sent["answers"])) > 1  # rows answered apart, not one constant


def _in_fresh_process(task, values, prior, tmp_path) -> dict:
    source, target = tmp_path / "task.pickle", tmp_path / "answers.json"
    source.write_bytes(pickle.dumps((task, values, prior)))
    subprocess.run(
        [sys.executable, str(WORKER), str(source), str(target)],
        check=True,
        cwd=WORKER.parent,
        capture_output=True,
        timeout=300,
    )
    return json.loads(target.read_text())
