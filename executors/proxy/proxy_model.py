"""Proxy classifiers trained on LM labels (ScaleLLM, seed 000), and the statistics that
decide where they may answer for the LM.

* Candidates: logistic regression (ridge-penalised), linear SVM, RBF SVM, random forest,
  and the majority class — compared by stratified k-fold cross-validation against the LM's
  labels at growing training sizes.
* Learning curve: accuracy(n) = a - b * n^(-c), fitted by maximum likelihood under
  Gaussian noise with each point's fold standard deviation (weighted least squares), to
  project accuracy against the number of LM labels.
* Plan (no guarantee yet): on out-of-fold predictions, the share of rows a candidate is
  expected to answer, and the loosest confidence threshold worth verifying.
* Verification (the guarantee): the chosen model, fitted on the whole training sample,
  scores the other rows; the LM labels a fresh uniform sample of the rows above the
  loosest threshold, and thresholds are tested in a fixed sequence, strictest first,
  stopping at the first that fails: a threshold passes when the one-sided upper
  confidence bound on the disagreements among the rows above it that were not verified
  (hypergeometric: exact for sampling without replacement) stays within (1 - target) of
  all rows. Fixed-sequence testing controls the family-wise
  error at delta without a multiplicity correction (Angelopoulos et al., "Learn then
  Test", 2021), and because the training sample chose the model and the loosest threshold
  before the verification rows were drawn, no correction is owed for the candidates
  looked at either. With probability >= 1 - delta the proxy's answers disagree with the
  LM's on at most (1 - target) of this query's rows: a bound on this run, not an average
  (a simulation in tests/test_proxy.py checks the failure rate). Verifying on fresh
  rows (BARGAIN, Zeighami et al., SIGMOD 2026, samples where the proxy answers in the same
  spirit) replaced a bound on the training sample's out-of-fold predictions, which had to
  split delta over every embedder, classifier and round (measured on 2,000 reviews: the
  LM answered 84% of rows, against 61-77% now).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import curve_fit
from scipy.stats import hypergeom

FOLDS = 5
CURVE_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
THRESHOLDS = np.linspace(0.995, 0.5, 100)  # tested in this fixed order, strictest first
DELTA = 0.05
LOOSEST_FACTOR = 2.0  # verify down to where out-of-fold disagreement is 2x the allowance
VERIFY_SHARE = 0.1  # LM labels drawn from the rows above the loosest threshold ...
VERIFY_MIN = 100  # ... at least this many (all of them if fewer)


def candidates(seed: int) -> dict:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC, LinearSVC

    return {
        "logistic": LogisticRegression(C=4.0, max_iter=2000),
        "linear_svm": CalibratedClassifierCV(LinearSVC(C=0.5), cv=3),
        "rbf_svm": CalibratedClassifierCV(SVC(C=4.0, kernel="rbf"), cv=3, ensemble=False),
        "random_forest": RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
        "majority": DummyClassifier(strategy="prior"),
    }


def power_law(n, a, b, c):
    return a - b * np.power(n, -c)


@dataclass
class Curve:
    """Projected accuracy against LM labels; points are (labels, mean acc, fold std)."""

    points: list[tuple[int, float, float]]
    params: tuple[float, float, float] | None = None

    def project(self, n: float) -> float | None:
        return None if self.params is None else float(power_law(n, *self.params))


def fit_curve(points: list[tuple[int, float, float]]) -> Curve:
    """MLE of the saturation curve (needs 3+ distinct sizes; None params otherwise)."""
    curve = Curve(points)
    if len({p[0] for p in points}) < 3:
        return curve
    n = np.array([p[0] for p in points], dtype=float)
    acc = np.array([p[1] for p in points])
    std = np.maximum(np.array([p[2] for p in points]), 0.01)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(
                power_law,
                n,
                acc,
                p0=(min(acc.max() + 0.02, 1.0), 0.5, 0.5),
                sigma=std,
                bounds=([0.0, 0.0, 0.01], [1.0, 50.0, 3.0]),
                maxfev=20000,
            )
        curve.params = tuple(float(x) for x in params)
    except (RuntimeError, ValueError):
        pass
    return curve


@dataclass
class Plan:
    """Out-of-fold point estimates for one candidate (verification gives the guarantee)."""

    loosest: float  # the loosest threshold verification may accept
    coverage: float  # expected share of the remaining rows the proxy answers
    agreement: float  # expected agreement with the LM, all rows


def plan_threshold(
    confidence: np.ndarray, correct: np.ndarray, target: float, rest_share: float = 1.0
) -> Plan:
    """Expected coverage where out-of-fold disagreement fits the allowance, and the loosest
    threshold worth verifying (LOOSEST_FACTOR times the allowance: the verification, on
    other rows, decides; a plan that is too strict would cap what it can accept).

    ``rest_share``: the share of all rows the proxy may answer at all (the labelled
    sample is the LM's own answers), so the allowance over those rows is scaled by it.
    """
    allowance = (1 - target) / rest_share
    plan = Plan(1.01, 0.0, 1.0)
    for tau in THRESHOLDS:
        answered = confidence >= tau
        wrong = float((answered & ~correct).mean())
        if wrong > LOOSEST_FACTOR * allowance:
            break
        plan.loosest = float(tau)
        if wrong <= allowance:
            plan.coverage, plan.agreement = float(answered.mean()), 1 - rest_share * wrong
    return plan


def verify_size(covered: int) -> int:
    """LM labels to draw from ``covered`` rows above the loosest threshold."""
    return min(covered, max(VERIFY_MIN, int(VERIFY_SHARE * covered)))


@dataclass
class Verification:
    """The threshold that passed (None: none did) and what its bound says."""

    threshold: float | None = None
    proxy_rows: int = 0  # rows above it that were not verified: the proxy answers them
    bound: float = 0.0  # upper bound on the proxy's disagreements, share of all rows
    checked: int = 0  # verification labels above it
    disagreed: int = 0  # of which the proxy disagreed with the LM


def verify_threshold(
    confidence: np.ndarray,
    verified: np.ndarray,
    disagree: np.ndarray,
    loosest: float,
    target: float,
    n_total: int,
    delta: float = DELTA,
) -> Verification:
    """Fixed-sequence test over THRESHOLDS down to ``loosest`` (see the module docstring).

    ``confidence``: the proxy's, for every row it may answer; ``verified``: rows whose LM
    label was drawn for verification (uniformly among those above ``loosest``);
    ``disagree``: where the proxy's answer differs from that label (verified rows only).
    """
    allowed = (1 - target) * n_total
    best = Verification()
    for tau in THRESHOLDS:
        if tau < loosest:
            break
        above = confidence >= tau
        rows = int(above.sum())
        if rows == 0:  # nothing to answer: trivially within the allowance, not a choice
            continue
        n = int((above & verified).sum())
        k = int((above & verified & disagree).sum())
        unverified_errors = errors_upper(rows, n, k, delta) - k
        if unverified_errors > allowed:
            break
        best = Verification(float(tau), rows - n, unverified_errors / n_total, n, k)
    return best


def errors_upper(rows: int, drawn: int, seen: int, delta: float) -> int:
    """Upper confidence bound on the disagreements among ``rows``, having seen ``seen`` in
    a uniform draw of ``drawn`` without replacement: the largest total K for which so few
    is still plausible, P(X <= seen | hypergeometric(rows, K, drawn)) > delta. Exact for a
    finite population (the binomial bound is not, for the rows left unverified)."""
    lo, hi = seen, rows - (drawn - seen)  # K >= seen, and the drawn agreeing rows are not K
    while lo < hi:  # the CDF falls as K grows: the last K above delta
        mid = (lo + hi + 1) // 2
        if hypergeom.cdf(seen, rows, mid, drawn) > delta:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass
class Evaluation:
    """One (embedder, classifier) on the labelled sample."""

    embedder: str
    classifier: str
    accuracy: float  # k-fold, all labels
    curve: Curve
    plan: Plan
    seed: int = 0
    model: object = field(default=None, repr=False)  # fitted on every label by fit()
    constant: object = None  # the label of the majority answer, when no model could fit

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on the whole sample: verification on other rows covers the refit model."""
        if self.constant is None:
            self.model = _fit(candidates(self.seed)[self.classifier], X, y)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(label, confidence) per row."""
        if self.model is None:  # the constant answer
            return np.full(len(X), self.constant, dtype=object), np.ones(len(X))
        proba = self.model.predict_proba(X)
        return self.model.classes_[proba.argmax(axis=1)].astype(object), proba.max(axis=1)


def evaluate(
    X: np.ndarray,
    y: np.ndarray,
    target: float,
    embedder: str,
    seed: int,
    rest_share: float = 1.0,
) -> list:
    """k-fold CV of every candidate on (X, y) with its out-of-fold plan; the learning
    curve of the most accurate one (fitting every candidate at every size cost more than
    the LM calls it could save, measured on 2,000 reviews)."""
    from sklearn.model_selection import StratifiedKFold

    classes, counts = np.unique(y, return_counts=True)
    folds = min(FOLDS, int(counts.min())) if len(classes) > 1 else 0
    if folds < 2:  # one class only (or too few of one): the constant answer
        majority = classes[counts.argmax()]
        plan = plan_threshold(np.ones(len(y)), y == majority, target, rest_share)
        accuracy = float((y == majority).mean())
        return [Evaluation(embedder, "majority", accuracy, Curve([]), plan, seed, None, majority)]
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y))
    out = []
    for name, model in candidates(seed).items():
        conf = np.zeros(len(y))
        correct = np.zeros(len(y), dtype=bool)
        for train_rows, test in splits:
            fitted = _fit(model, X[train_rows], y[train_rows])
            proba = fitted.predict_proba(X[test])
            conf[test] = proba.max(axis=1)
            correct[test] = fitted.classes_[proba.argmax(axis=1)] == y[test]
        plan = plan_threshold(conf, correct, target, rest_share)
        out.append(Evaluation(embedder, name, float(correct.mean()), Curve([]), plan, seed))
    top = max((ev for ev in out if ev.classifier != "majority"), key=lambda ev: ev.accuracy)
    top.curve = learning_curve(candidates(seed)[top.classifier], X, y, splits, seed)
    return out


def learning_curve(model, X: np.ndarray, y: np.ndarray, splits: list, seed: int) -> Curve:
    """Fold accuracy at growing shares of each training fold, and the fitted power law."""
    per_share: dict[float, tuple[list[int], list[float]]] = {}
    for train_rows, test in splits:
        order = np.random.default_rng(seed).permutation(train_rows)
        for share in CURVE_FRACTIONS:
            part = order[: max(int(len(order) * share), 2)]
            if len(np.unique(y[part])) < 2:
                continue
            pred = _fit(model, X[part], y[part]).predict(X[test])
            sizes, accs = per_share.setdefault(share, ([], []))
            sizes.append(len(part))
            accs.append(float((pred == y[test]).mean()))
    points = [
        (int(np.mean(sizes)), float(np.mean(accs)), float(np.std(accs)))
        for _, (sizes, accs) in sorted(per_share.items())
    ]
    return fit_curve(points)


def _fit(model, X: np.ndarray, y: np.ndarray):
    from sklearn.base import clone

    return clone(model).fit(X, y)
