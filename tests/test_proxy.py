"""Proxy models (#7): embedding views, the learning-curve fit, the calibrated threshold,
and the planner's and executor's decisions (FakeLM: planner/rewrite logic only)."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest

import semql
from semql.errors import BindError
from semql.executors.proxy.embedding_views import EmbeddingStore
from semql.executors.proxy.embeddings import LexicalEmbedder
from semql.executors.proxy.proxy_model import (
    fit_curve,
    plan_threshold,
    power_law,
    verify_size,
    verify_threshold,
)


class CountingEmbedder(LexicalEmbedder):
    """The lexical embedder, remembering which texts it was asked to embed."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen += list(texts)
        return super().embed(texts)


def test_embedding_view_embeds_only_new_and_changed_rows(tmp_path):
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    store, emb = EmbeddingStore(con), CountingEmbedder()
    view = store.view("SELECT txt FROM t", ["txt"], emb)
    rows = {f"h{i}": f"review number {i}" for i in range(100)}
    _, fresh, _ = store.embed(view, rows, emb)
    assert fresh == 100 and store.count(view) == 100
    emb.seen.clear()
    rows["h3"] = "changed text"  # a changed row has a new hash
    rows["hnew3"] = rows.pop("h3")
    rows["h100"] = "a new review"
    got, fresh, _ = store.embed(view, rows, emb)
    assert fresh == 2 and sorted(emb.seen) == ["a new review", "changed text"]
    assert len(got) == 101
    assert store.refresh(view, set(rows)) == 1  # the old h3 is gone from the source
    assert store.count(view) == 101
    # reopened: the vectors are still there, nothing is embedded again
    con.close()
    store = EmbeddingStore(duckdb.connect(str(tmp_path / "db.duckdb")))
    emb.seen.clear()
    _, fresh, _ = store.embed(store.view("SELECT txt FROM t", ["txt"], emb), rows, emb)
    assert fresh == 0 and emb.seen == []


def test_read_only_database_views_are_read_and_never_written(tmp_path):
    """A read-only connection uses the vectors stored in the file and embeds only what is
    missing, into memory: the file is unchanged and the work is not lost for the query."""
    path = str(tmp_path / "db.duckdb")
    emb = CountingEmbedder()
    with duckdb.connect(path) as con:
        store = EmbeddingStore(con)
        view = store.view("SELECT txt FROM t", ["txt"], emb)
        store.embed(view, {f"h{i}": f"review number {i}" for i in range(10)}, emb)
    emb.seen.clear()
    with semql.connect(path, read_only=True, embedder="lexical") as con:
        store = con._proxy_parts()[0]
        view = store.view("SELECT txt FROM t", ["txt"], emb)
        rows = {f"h{i}": f"review number {i}" for i in range(12)}
        got, fresh, _ = store.embed(view, rows, emb)
        assert fresh == 2 and sorted(emb.seen) == ["review number 10", "review number 11"]
        assert len(got) == 12 and store.count_stored(view, list(rows)) == 12
        assert store.count(view) == 12
    with duckdb.connect(path, read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {view}").fetchall()[0][0] == 10


def test_curve_fit_recovers_known_parameters():
    rng = np.random.default_rng(0)
    sizes = [20, 40, 80, 160, 320, 640]
    a, b, c = 0.9, 0.8, 0.6
    points = [(n, float(power_law(n, a, b, c) + rng.normal(0, 0.002)), 0.005) for n in sizes]
    fitted = fit_curve(points).params
    assert fitted is not None
    assert abs(fitted[0] - a) < 0.02 and abs(fitted[2] - c) < 0.15
    assert abs(fit_curve(points).project(5000) - power_law(5000, a, b, c)) < 0.02


def test_plan_expects_coverage_only_where_agreement_is_possible():
    rng = np.random.default_rng(1)
    n = 400
    confidence = rng.uniform(0.5, 1.0, n)
    correct = rng.uniform(0, 1, n) < confidence  # calibrated: right with prob = confidence
    plan = plan_threshold(confidence, correct, 0.95)
    assert 0 < plan.coverage < 1 and plan.agreement >= 0.95
    assert plan.loosest <= np.quantile(confidence, 1 - plan.coverage) + 1e-9
    coin = plan_threshold(np.full(n, 0.9), rng.uniform(0, 1, n) < 0.5, 0.95)
    assert coin.coverage == 0  # a coin flip can never keep 95% agreement


def verify_once(rng, n_rows, target, loosest=0.6):
    """One run on a synthetic population: returns (verification, true disagreement share)."""
    confidence = rng.uniform(0.5, 1.0, n_rows)
    disagree_all = rng.uniform(0, 1, n_rows) >= confidence  # calibrated proxy
    covered = np.flatnonzero(confidence >= loosest)
    drawn = rng.choice(covered, verify_size(len(covered)), replace=False)
    verified = np.zeros(n_rows, dtype=bool)
    verified[drawn] = True
    result = verify_threshold(
        confidence, verified, disagree_all & verified, loosest, target, n_rows
    )
    if result.threshold is None:
        return result, 0.0
    answered = (confidence >= result.threshold) & ~verified
    return result, float((answered & disagree_all).sum()) / n_rows


def test_verified_threshold_keeps_the_target_with_the_stated_probability():
    rng = np.random.default_rng(7)
    runs = [verify_once(rng, 2000, 0.95) for _ in range(300)]
    failures = sum(share > 0.05 for _, share in runs)
    assert failures <= 0.05 * len(runs)  # delta = 0.05
    used = [r for r, _ in runs if r.threshold is not None]
    assert len(used) > 250 and np.mean([r.proxy_rows for r in used]) > 300


def test_verification_refuses_a_coin_flip():
    rng = np.random.default_rng(3)
    n = 2000
    confidence = np.full(n, 0.9)
    verified = np.zeros(n, dtype=bool)
    verified[rng.choice(n, 200, replace=False)] = True
    disagree = (rng.uniform(0, 1, n) < 0.5) & verified
    result = verify_threshold(confidence, verified, disagree, 0.5, 0.95, n)
    assert result.threshold is None and result.proxy_rows == 0


# -- planner and executor decisions (FakeLM) --------------------------------------------


def report_of(con):
    return con.proxy_reports()[0]


BIG = 600  # rows of table ``reviews``: above the proxy's minimum


@pytest.fixture()
def proxy_con(make_con):
    from fake_lm import WORDS

    con, lm = make_con(embedder="lexical")
    # the LM must cost something for a proxy to pay off, with room for a busy machine
    # (embedding time is measured, and slows under load; the LM's sleep does not)
    lm.seconds_per_call = 0.02
    con.register(
        "reviews",
        pl.DataFrame(
            {
                "id": list(range(BIG)),
                "txt": [
                    f"review {i}: a {WORDS[i % 8]} movie, take {i * 7 % 13}" for i in range(BIG)
                ],
            }
        ),
    )
    return con, lm


GOOD = (
    "SELECT id, {{LLMMap('Is it good?', txt, return_type='bool', accuracy=0.95)}} AS ok "
    "FROM reviews ORDER BY id"
)


def test_proxy_answers_most_rows_and_agrees_with_the_lm(proxy_con, make_con):
    con, lm = proxy_con
    got = con.query(GOOD)
    report = report_of(con)
    assert not report.reason, report.reason
    assert report.proxy_rows > 0 and report.lm_rows + report.proxy_rows == BIG
    assert con.stats.lm_calls == report.lm_rows < BIG
    lm.seconds_per_call = 0  # no proxy to pay off: the LM's cost no longer matters
    naive = con.query(GOOD, proxy=False)
    agree = np.mean([a == b for a, b in zip(got["ok"], naive["ok"], strict=True)])
    assert agree >= 0.95
    assert "proxy" in con.explain(GOOD, analyze=True)


def test_repl_saves_the_learning_curve(proxy_con, tmp_path):
    import io

    from semql.shell import Shell

    con, _ = proxy_con
    out, err = io.StringIO(), io.StringIO()
    shell = Shell(con, out=out, err=err)
    png = tmp_path / "curve.png"
    assert shell.run_text(f"{GOOD};\n.stats\n.curve {png}\n", stop_on_error=True), err.getvalue()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "proxy:" in out.getvalue() and "learning curve written" in err.getvalue()
    assert con.proxy_reports()[0].curve


def test_too_few_rows_fall_back_to_the_lm_with_a_reason(make_con):
    con, _ = make_con(embedder="lexical")
    sql = "SELECT id, {{LLMMap('Is it good?', txt, return_type='bool', accuracy=0.9)}} AS ok FROM r"
    con.query(sql)
    report = report_of(con)
    assert "rows to answer" in report.reason
    assert con.stats.lm_calls == 8  # every distinct row asked
    assert "proxy not used" in con.explain(sql, analyze=True)


def test_unreachable_target_falls_back_with_a_reason(proxy_con):
    con, lm = proxy_con
    # every FakeLM answer here is 'x' (the field name txt holds one): the sample's plan
    # expects the constant answer to do, but 100 verification labels cannot prove fewer
    # than 6 disagreements (1% of 600 rows) among the 400 rows it would answer
    sql = (
        "SELECT id, {{LLMMap('Which?', txt, options=('x', 'y', 'z'), accuracy=0.99)}} AS o "
        "FROM reviews"
    )
    got = con.query(sql)
    report = report_of(con)
    assert report.reason.startswith("verification failed") and "within 1% of rows" in report.reason
    assert report.proxy_rows == 0 and con.stats.lm_calls == report.lm_rows == BIG
    assert "proxy not used: verification failed" in con.explain(sql, analyze=True)
    lm.seconds_per_call = 0  # no proxy to pay off: the LM's cost no longer matters
    assert got["o"].to_list() == con.query(sql, proxy=False)["o"].to_list()


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (
            "SELECT {{LLMMap('How many?', txt, accuracy=0.9)}}::INT AS n FROM r",
            "not a classification",
        ),
        ("SELECT id FROM r WHERE {{LLMMap('Good?', txt, accuracy=0.9)}} LIMIT 2", "early exit"),
        ("SELECT avg({{LLMMap('Is it good?', txt, accuracy=0.9)}}) FROM r", "not a label"),
        ("SELECT avg({{LLMMap('Stars?', txt, options=(1, 2), accuracy=0.9)}}) FROM r", "number"),
    ],
)
def test_planner_refuses_the_proxy_and_says_why(make_con, sql, reason):
    con, _ = make_con()
    text = con.explain(sql)
    assert "proxy: not used" in text and reason in text


def test_naive_plans_never_use_a_proxy(make_con):
    con, _ = make_con(accuracy_target=0.9)
    text = con.explain("SELECT {{LLMMap('Good?', txt)}} AS g FROM r", optimize=False)
    assert "proxy switch is off" in text


def test_bad_accuracy_values_are_clear_errors(make_con):
    con, _ = make_con()
    with pytest.raises(BindError, match="accuracy= must be a number"):
        con.query("SELECT {{LLMMap('Good?', txt, accuracy=2)}} FROM r")
    with pytest.raises(BindError, match="accuracy_target must be a number"):
        con.query("SELECT {{LLMMap('Good?', txt)}} FROM r", accuracy_target=0.2)


def test_minilm_embeddings_place_similar_texts_closer():
    from semql.executors.proxy.embeddings import MiniLMEmbedder, minilm_available

    if not minilm_available():
        pytest.skip("the minilm extra is not installed")
    emb = MiniLMEmbedder()
    v = emb.embed(["a wonderful, moving film", "a beautiful and touching movie", "tax forms"])
    assert v.shape == (3, emb.dim) and v.dtype == np.float32
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])


def test_minilm_loads_without_a_library_progress_bar():
    """semql demo printed transformers' "Loading weights" bar amid its results."""
    import subprocess
    import sys

    code = (
        "from semql.executors.proxy.embeddings import MiniLMEmbedder as M; "
        "import transformers.utils.logging as l; M(); assert l.is_progress_bar_enabled()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Loading weights" not in done.stderr + done.stdout
