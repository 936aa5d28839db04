"""LM operators on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``, 2 nodes
in this machine, bounded object stores), against the in-process runtime.

Each test names what it guards; each was checked to fail with its feature broken (the
session note says how)."""

from __future__ import annotations

import time

import polars as pl
import pytest
import ray
from ray.cluster_utils import Cluster
from sampled_rows import SAMPLE_ROWS

import semql
from semql.executors.lm.block_prefetch import BlockPrefetch
from semql.executors.lm.lm_executor import LMExecutor
from semql.executors.lm.result_cache import ResultCache
from semql.grammar.types import BoolType

pytestmark = pytest.mark.model

STORE = 80 * 1024 * 1024  # object-store bytes per node: prompts and scores are small
TAKEN_3 = "FROM Reviews WHERE id = 'taken_3' ORDER BY reviewId"
SCHEMA = '{"type":"object","properties":{"positive":{"type":"boolean"}},"required":["positive"]}'
CALLS = {  # one LM call each, over the first rows of taken_3
    "bool": ("LLMMap('Is the review positive?', reviewText)", 8),
    "options": ("LLMMap('Sentiment?', reviewText, options=('positive', 'negative'))", 8),
    "int": ("LLMMap('How many stars, 0 to 5?', reviewText, return_type='int')", 4),
    "json": (f"LLMMap('Describe the review.', reviewText, return_type='{SCHEMA}')", 3),
    "text": ("LLMMap('Name the main actor mentioned.', reviewText)", 3),
}
QUERIES = {
    name: "SELECT reviewId, {{" + call + "}} AS v " + TAKEN_3 + f" LIMIT {n}"
    for name, (call, n) in CALLS.items()
}
QUERIES["two operators"] = (
    "SELECT reviewId, {{LLMMap('Stars?', reviewText, options=(1, 2, 3, 4, 5))}} AS v "
    f"FROM (SELECT * {TAKEN_3} LIMIT 16) AS r "
    "WHERE {{LLMMap('Is the review positive?', reviewText)}} = TRUE ORDER BY reviewId"
)


@pytest.fixture(scope="module")
def cluster():
    # two nodes of two logical CPUs: two connections of two actors each can coexist
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "object_store_memory": STORE})
    c.add_node(num_cpus=2, object_store_memory=STORE)
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def ray_con(cluster):
    con = semql.connect(cluster="auto", actors=2, cache=False, calibration_rows=SAMPLE_ROWS)
    semql.load_sample(con)
    yield con
    con.close()


@pytest.fixture(scope="module")
def local_con():
    con = semql.connect(cache=False, n_threads=2, calibration_rows=SAMPLE_ROWS)
    semql.load_sample(con)
    yield con
    con.close()


def _prompts_run(con) -> int:
    return sum(f["prompts_run"] for f in ray.get([a.facts.remote() for a in con.runtime.actors]))


def test_same_answers_as_in_process(ray_con, local_con):
    """bool, options, int, JSON, free text and two LM operators: the same frames, LM calls
    and prompt tokens as in-process, with the LM calls run on both actors."""
    used: set[str] = set()
    for name, sql in QUERIES.items():
        remote = ray_con.query(sql)
        remote_stats = ray_con.stats
        local = local_con.query(sql)
        assert remote.height > 0, name
        assert remote.equals(local), (name, remote, local)
        assert remote_stats.lm_calls == local_con.stats.lm_calls, name
        assert remote_stats.prompt_tokens == local_con.stats.prompt_tokens, name
        for op in remote_stats.operators:
            used |= set(op.workers)
    assert len(used) == 2  # both actors answered rows
    text = ray_con.explain(QUERIES["bool"], analyze=True)
    assert "LM operators run: Ray cluster" in text and "2 actor(s)" in text
    assert "actors: actor 0" in text and "actor 1" in text


def test_rows_sharing_a_prefix_land_on_one_actor(ray_con):
    """Rows laid out with the same leading field (the movie) go to one actor, in blocks,
    and reuse its KV cache; different movies spread over both actors."""
    rows = ray_con.query(
        "SELECT id, reviewText FROM (SELECT *, row_number() OVER (PARTITION BY id "
        "ORDER BY reviewId) AS k FROM Reviews) WHERE k <= 8 ORDER BY id, reviewId LIMIT 24"
    )
    lm = LMExecutor(ray_con.runtime, ResultCache(None))
    prompts = {
        i: lm.prompts.build("Is the review positive?", BoolType(), ["id", "reviewText"], list(r))
        for i, r in enumerate(rows.iter_rows())
    }
    ahead = BlockPrefetch(ray_con.runtime, prompts, list(prompts), BoolType(), True)
    try:
        results = [ahead.take(i) for i in prompts]
    finally:
        ahead.close()
    movies = rows["id"].to_list()
    where = pl.DataFrame({"movie": movies, "actor": [r.worker for r in results]})
    per_movie = where.group_by("movie").agg(pl.col("actor").n_unique())
    assert per_movie["actor"].max() == 1, where
    assert where["actor"].n_unique() == 2
    later = [r for i, r in enumerate(results) if i and movies[i] == movies[i - 1]]
    assert all(r.cached_tokens > 0 for r in later)  # the same movie: a KV-cache hit


def test_caps_stop_remote_work(ray_con):
    """max_lm_calls holds on the cluster: the actors run exactly the calls allowed."""
    sql = "SELECT {{LLMMap('Is it a rave?', reviewText)}} AS v " + TAKEN_3 + " LIMIT 40"
    before = _prompts_run(ray_con)
    with pytest.raises(semql.LimitExceeded, match="max_lm_calls=7"):
        ray_con.query(sql, max_lm_calls=7)
    time.sleep(0.5)
    assert _prompts_run(ray_con) - before == 7  # the first 7 of the table prior's sample


def test_cancel_stops_remote_work(cluster):
    """A query interrupted (Ctrl-C in the REPL) cancels its blocks on the actors; a
    running block stops after the rows scored together (2 here, so a block of 15 rows
    has places to stop; with the default 8 such a block is two steps)."""
    sql = "SELECT {{LLMMap('Is it a pan?', reviewText)}} AS v " + TAKEN_3  # 120 rows

    def interrupt(stats, done, total):
        raise KeyboardInterrupt

    con = semql.connect(
        cluster="auto", actors=2, cache=False, batch_rows=2, calibration_rows=SAMPLE_ROWS
    )
    try:
        semql.load_sample(con)
        before = _prompts_run(con)
        con.progress = interrupt
        with pytest.raises(KeyboardInterrupt):
            con.query(sql)
        time.sleep(1.0)
        settled = _prompts_run(con)
        time.sleep(1.0)
        assert _prompts_run(con) == settled  # nothing runs on after the cancel
    finally:
        con.close()
        deadline = time.monotonic() + 30  # the next test's actors need these CPUs back
        while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    # the table prior's sampled rows first, then blocks of 15 rows, two in flight per
    # actor: 60 sent, and all would run uncancelled; how many run before the cancel lands
    # depends on the machine's load (35-49 seen)
    assert settled - before < SAMPLE_ROWS + 60


def test_killed_actor_leaves_answers_unchanged(cluster, local_con):
    """An actor killed mid-query: its blocks run again on the other, same answers."""
    sql = QUERIES["bool"].replace("LIMIT 8", "LIMIT 24")
    killed = []

    def kill_one(stats, done, total):
        if done >= 4 and not killed:
            killed.append(ray.kill(con.runtime.actors[1]))

    con = semql.connect(
        cluster="auto", actors=2, cache=False, progress=kill_one, calibration_rows=SAMPLE_ROWS
    )
    try:
        semql.load_sample(con)
        remote = con.query(sql)
        assert killed
        assert remote.equals(local_con.query(sql))
        assert sum(op.retries for op in con.stats.operators) >= 1
        assert len(con.runtime.live) == 1
    finally:
        con.close()


def test_unreachable_or_full_cluster_is_one_clear_error(cluster):
    for address, message in [
        ("ray://127.0.0.1:1", "cannot reach the Ray cluster at ray://127.0.0.1:1"),
        ("auto", "free CPUs; 50 actors of 1 threads need 50"),
    ]:
        con = semql.connect(cluster=address, actors=50, cache=False)
        semql.load_sample(con)
        with pytest.raises(semql.ClusterError, match=message):
            con.query(QUERIES["bool"])
        con.close()
