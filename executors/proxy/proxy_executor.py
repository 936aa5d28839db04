"""Run an LM classification with a proxy model where the statistics allow it (ScaleLLM).

The LM labels a uniform random sample of the operator's rows; every available embedder
embeds the sample (into its embedding view, reused later) and every candidate classifier
is cross-validated on it (executors/proxy/proxy_model.py). The cheapest (embedder, classifier)
by its out-of-fold plan is used if the whole plan — embedding the rows not yet stored,
the labels, the verification labels, the LM on rows the proxy leaves — costs less than
the LM on the remaining rows; otherwise, if the learning curve says more labels would
help, the sample doubles (up to MAX_SAMPLE_SHARE of the rows); otherwise the LM answers
every row and the report says why. The chosen model is then fitted on the sample,
scores every other row, and a fresh LM-labelled sample of the rows it would answer
verifies the threshold (the guarantee; proxy_model.verify_threshold). Labels already
paid for are never asked again (the executor remembers them, and the result cache keeps
them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from semql.planner.physical import LMStage
from semql.planner.physical.prompt_format import field_block

from ..lm.stats import OperatorStats
from .embedding_views import EmbeddingStore, text_hash
from .embeddings import Embedder

MIN_ROWS = 300  # below this the LM on every row is cheap enough and the sample too small
FIRST_SAMPLE = 100  # LM labels of the first round, at least; 10% of the rows if more
MAX_SAMPLE_SHARE = 0.3  # the sample doubles while it pays, up to this share of the rows
PROBE_ROWS = 16  # rows embedded to time an embedder whose sample was already stored
COST_MARGIN = 0.9  # the proxy plan must cost at most this share of the LM's


@dataclass
class ProxyReport:
    """What EXPLAIN ANALYZE shows for one operator."""

    target: float
    rows: int = 0
    sample: int = 0
    embedder: str = ""
    classifier: str = ""
    cv_accuracy: float = 0.0
    threshold: float = 0.0
    projected_agreement: float = 0.0  # out-of-fold estimate, all rows
    error_bound: float = 0.0  # verified bound on the proxy's disagreements, share of rows
    verified: int = 0  # LM labels drawn to verify the threshold
    verified_disagreed: int = 0  # of which the proxy disagreed with (above the threshold)
    proxy_rows: int = 0
    lm_rows: int = 0
    embedded_now: int = 0
    embed_seconds: float = 0.0
    reason: str = ""
    curve: list = field(default_factory=list)  # (labels, mean acc, std) of the chosen one
    curve_params: tuple | None = None
    candidates: list = field(default_factory=list)  # (embedder, classifier, acc, coverage)

    def summary(self) -> str:
        if self.reason:
            return f"proxy not used: {self.reason}"
        return (
            f"proxy: {self.embedder} + {self.classifier}, {self.sample} LM labels "
            f"(cv acc {self.cv_accuracy:.3f}), threshold {self.threshold:.2f}: "
            f"proxy answered {self.proxy_rows} rows, LM {self.lm_rows}; projected agreement "
            f"{self.projected_agreement:.3f}; verified on {self.verified} LM labels "
            f"({self.verified_disagreed} disagreed above the threshold): agreement >= "
            f"{1 - self.error_bound:.3f} >= {self.target:g} with prob. 0.95; embedded "
            f"{self.embedded_now} new rows in {self.embed_seconds:.1f}s"
        )


@dataclass
class _Rows:
    """The operator's distinct argument tuples, their embedded texts and row hashes."""

    values: list[tuple]
    texts: list[str]
    hashes: list[str]


def render(names: list[str], values: tuple) -> str:
    """The text embedded for a row: its fields as a prompt shows them."""
    return field_block(names, values)


class ProxyRunner:
    def __init__(
        self,
        answer: Callable[..., list],
        check: Callable[[], None] | None,
        store: EmbeddingStore,
        embedders: list[Embedder],
        source_texts,
        seed: int = 0,
    ):
        self.answer = answer  # (stage, values, stats, **options) -> the LM's answers
        self.store = store
        self.embedders = embedders
        self.source_texts = source_texts  # (stage, names) -> row hashes now in the source
        self.seed = seed
        self.report: ProxyReport | None = None  # the last run's decision and figures
        self._check = check  # the query's caps, before each batch of embeddings (budget.py)

    def _labels(self, stage, values, op: OperatorStats) -> list:
        return self.answer(stage, values, op, remember=True)

    def run(self, stage: LMStage, names: list[str], values: list[tuple], op: OperatorStats):
        """Answers for every row (proxy or LM), or None when the LM should answer all."""
        from .proxy_model import evaluate, verify_size  # scikit-learn, scipy: when used

        report = ProxyReport(stage.proxy.target, rows=len(values))
        self.report = report
        n_rows = len(values)
        if n_rows < MIN_ROWS:
            report.reason = f"{n_rows} rows to answer (< {MIN_ROWS})"
            return None
        texts = [render(names, v) for v in values]
        hashes = [text_hash(t) for t in texts]
        order = np.random.default_rng(self.seed).permutation(n_rows)
        size, labelled = max(FIRST_SAMPLE, n_rows // 10), 0
        previous: float | None = None  # coverage of the previous round
        labels: list = []
        lm_seconds = 0.0
        views = {e.id: self.store.view(stage.proxy.source_sql, names, e) for e in self.embedders}
        rates: dict[str, float] = {}  # seconds per embedded row, measured
        while True:
            new = order[labelled:size]
            started = time.perf_counter()
            labels += self._labels(stage, [values[i] for i in new], op)
            lm_seconds += time.perf_counter() - started
            labelled = size
            sample = order[:size]
            y = np.array([str(v) for v in labels])
            per_call = lm_seconds / max(size, 1)
            rest = n_rows - size
            best, best_cost, evaluations = None, None, []
            for embedder in self.embedders:
                got, fresh, secs = self.store.embed(
                    views[embedder.id],
                    {hashes[i]: texts[i] for i in sample},
                    embedder,
                    check=self._check,
                )
                if fresh:
                    rates[embedder.id] = secs / fresh
                elif embedder.id not in rates:  # the sample was stored: time a few rows
                    probe = [texts[i] for i in order[:PROBE_ROWS]]
                    started = time.perf_counter()
                    embedder.embed(probe)
                    rates[embedder.id] = (time.perf_counter() - started) / len(probe)
                X = np.stack([got[hashes[i]] for i in sample])
                stored = self.store.count_stored(views[embedder.id], hashes)
                rate = rates.get(embedder.id, 0.0)
                share = rest / n_rows
                evs = evaluate(X, y, stage.proxy.target, embedder.id, self.seed, share)
                for ev in evs:
                    covered = ev.plan.coverage * rest
                    asked = verify_size(int(covered)) + rest - covered
                    cost = (n_rows - stored) * rate + asked * per_call
                    evaluations.append((ev, cost))
                    if ev.plan.coverage > 0 and (best_cost is None or cost < best_cost):
                        best, best_cost = ev, cost
            report.candidates = [
                (ev.embedder, ev.classifier, round(ev.accuracy, 3), round(ev.plan.coverage, 3))
                for ev, _ in evaluations
            ]
            report.sample = size
            lm_rest = rest * per_call
            accepted = best is not None and best_cost <= COST_MARGIN * lm_rest
            top = max((ev for ev, _ in evaluations), key=lambda ev: ev.accuracy)
            coverage = best.plan.coverage if best is not None else 0.0
            can_grow = 2 * size <= MAX_SAMPLE_SHARE * n_rows
            projected = top.curve.project(2 * size)
            rising = projected is not None and projected > top.accuracy + 0.005
            if accepted:
                # more labels only while they pay: after the first round, while the last
                # doubling's new proxy answers outnumber the labels the next one costs
                if previous is None:
                    paid = rising
                else:
                    paid = (coverage - previous) * (n_rows - 2 * size) > size
                if not (can_grow and paid):
                    break
            elif not (can_grow and (rising or coverage > (previous or 0.0))):
                break
            previous = coverage
            size *= 2
        if not accepted:
            if best is None:
                report.reason = (
                    f"after {size} LM labels the best proxy ({top.embedder} + "
                    f"{top.classifier}, cv accuracy {top.accuracy:.3f}) cannot keep "
                    f"{stage.proxy.target:g} agreement with the LM on any rows"
                )
            else:
                report.reason = (
                    f"after {size} LM labels the best proxy ({best.embedder} + "
                    f"{best.classifier}, answering {best.plan.coverage:.0%} of rows) "
                    f"would cost ~{best_cost:.1f}s against ~{lm_rest:.1f}s for the LM"
                )
            return None
        embedder = next(e for e in self.embedders if e.id == best.embedder)
        view = views[embedder.id]
        self.store.refresh(view, self.source_texts(stage, names))
        rows = _Rows(values, texts, hashes)
        return self._apply(stage, rows, op, best, embedder, view, order[:size], labels, report)

    def _apply(self, stage, rows: _Rows, op, best, embedder, view, sample, labels, report):
        """Embed every row, fit the chosen model on the sample, verify its threshold on a
        fresh LM sample of the rows it would answer, answer above the threshold that
        passed, ask the LM for the rest."""
        from .proxy_model import verify_size, verify_threshold

        values, texts, hashes = rows.values, rows.texts, rows.hashes
        vectors, report.embedded_now, report.embed_seconds = self.store.embed(
            view, dict(zip(hashes, texts, strict=True)), embedder, check=self._check
        )
        X = np.stack([vectors[h] for h in hashes])
        y = np.array([str(v) for v in labels])
        best.fit(X[sample], y)
        answers: list = [None] * len(values)
        for i, v in zip(sample, labels, strict=True):
            answers[i] = v
        rest = np.setdiff1d(np.arange(len(values)), sample)  # the rows the proxy may answer
        predicted, confidence = best.predict(X[rest])
        # the verification sample: uniform over the rows above the loosest threshold
        covered = np.flatnonzero(confidence >= best.plan.loosest)
        rng = np.random.default_rng(self.seed + 1)
        drawn = rng.choice(covered, verify_size(len(covered)), replace=False)
        checked = self._labels(stage, [values[rest[j]] for j in drawn], op)
        verified = np.zeros(len(rest), dtype=bool)
        disagree = np.zeros(len(rest), dtype=bool)
        for j, v in zip(drawn, checked, strict=True):
            answers[rest[j]] = v
            verified[j] = True
            disagree[j] = predicted[j] != str(v)
        result = verify_threshold(
            confidence, verified, disagree, best.plan.loosest, stage.proxy.target, len(values)
        )
        by_text = {str(v): v for v in list(labels) + list(checked)}
        ask = []
        for j, i in enumerate(rest):
            if verified[j]:
                continue
            if result.threshold is not None and confidence[j] >= result.threshold:
                answers[i] = by_text.get(predicted[j], _parse_label(predicted[j], stage))
            else:
                ask.append(i)
        if ask:
            got = self._labels(stage, [values[i] for i in ask], op)
            for i, v in zip(ask, got, strict=True):
                answers[i] = v
        report.embedder, report.classifier = best.embedder, best.classifier
        report.cv_accuracy = best.accuracy
        report.projected_agreement = best.plan.agreement
        report.verified, report.verified_disagreed = len(drawn), result.disagreed
        report.lm_rows = len(sample) + len(drawn) + len(ask)
        report.proxy_rows = len(values) - report.lm_rows
        report.curve = best.curve.points
        report.curve_params = best.curve.params
        if result.threshold is None:
            report.reason = (
                f"verification failed: {len(drawn)} fresh LM labels of the rows "
                f"{best.embedder} + {best.classifier} would answer could not bound its "
                f"disagreement within {1 - stage.proxy.target:.0%} of rows; the LM answered them"
            )
        else:
            report.threshold = result.threshold
            report.error_bound = result.bound
        return answers


def _parse_label(text: str, stage):
    return stage.task.output.parse(" " + text)
