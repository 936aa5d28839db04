"""Proxy classifiers trained on LM labels (ScaleLLM, seed 000), and the statistics that
decide where they may answer for the LM.

* Candidates: logistic regression (ridge-penalised), linear SVM, RBF SVM, random forest,
  and the majority class — compared by stratified k-fold cross-validation against the LM's
  labels at growing training sizes.
* Learning curve: accuracy(n) = a - b * n^(-c), fitted by maximum likelihood under
  Gaussian noise with each point's fold standard deviation (weighted least squares), to
  project accuracy against the number of LM labels.
* Threshold: the proxy answers a row only when its confidence clears a threshold chosen
  on out-of-fold predictions so that, with probability >= 1 - delta over the random
  sample, the share of all rows where the proxy answers *and* disagrees with the LM is at
  most 1 - target: one-sided Clopper-Pearson bounds tested in a fixed sequence, strictest
  threshold first, stopping at the first that fails (fixed-sequence testing controls the
  family-wise error at delta without a multiplicity correction; Angelopoulos et al.,
  "Learn then Test", 2021).
  Rows below it go to the LM, which agrees with itself: overall agreement >= target.
  Assumes the labelled sample is a uniform random sample of the rows (it is).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import curve_fit
from scipy.stats import beta

FOLDS = 5
CURVE_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
THRESHOLDS = np.linspace(0.995, 0.5, 100)  # tested in this fixed order, strictest first
DELTA = 0.05


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
class Threshold:
    value: float  # the proxy answers rows with confidence >= value
    coverage: float  # share of rows the proxy answers (out-of-fold estimate)
    error_bound: float  # upper bound on the share of rows answered wrongly by the proxy
    agreement: float  # out-of-fold agreement with the LM, all rows (LM below threshold)


def choose_threshold(
    confidence: np.ndarray,
    correct: np.ndarray,
    target: float,
    rest_share: float = 1.0,
    delta: float = DELTA,
) -> Threshold:
    """Largest coverage whose error bound keeps overall agreement >= target (or none).

    ``rest_share``: the share of all rows the proxy may answer at all (the labelled
    sample is the LM's own answers); the bound on the proxy's wrong answers among those
    rows is scaled by it.
    """
    n = len(confidence)
    best = Threshold(1.01, 0.0, 0.0, 1.0)
    for tau in THRESHOLDS:
        answered = confidence >= tau
        errors = int((answered & ~correct).sum())
        bound = float(beta.ppf(1 - delta, errors + 1, n - errors)) if errors < n else 1.0
        if bound * rest_share > 1 - target:
            break
        agreement = 1 - rest_share * errors / n
        best = Threshold(float(tau), float(answered.mean()), bound * rest_share, agreement)
    return best


@dataclass
class Evaluation:
    """One (embedder, classifier) on the labelled sample."""

    embedder: str
    classifier: str
    accuracy: float  # k-fold, all labels
    curve: Curve
    threshold: Threshold
    confidence: np.ndarray = field(repr=False)
    models: list = field(default_factory=list, repr=False)  # one fitted model per fold
    constant: object = None  # the label of the majority answer, when no model could fit

    def predict(self, X: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(label, confidence) per row, each row by one fold model drawn at random.

        The threshold was chosen on out-of-fold predictions of these same models, so a
        new row, scored by one of them, has the confidence and error distribution the
        guarantee was computed for; a model refitted on every label would be more
        confident than its calibration (measured: 26% of rows above the threshold where
        the folds said 15%, and 6.5% disagreement where the bound said 4.1%).
        """
        if not self.models:  # the constant answer
            return np.full(len(X), self.constant, dtype=object), np.ones(len(X))
        pick = np.random.default_rng(seed).integers(0, len(self.models), len(X))
        labels = np.empty(len(X), dtype=object)
        conf = np.zeros(len(X))
        for k, model in enumerate(self.models):
            rows = np.flatnonzero(pick == k)
            if len(rows):
                proba = model.predict_proba(X[rows])
                conf[rows] = proba.max(axis=1)
                labels[rows] = model.classes_[proba.argmax(axis=1)]
        return labels, conf


def evaluate(
    X: np.ndarray,
    y: np.ndarray,
    target: float,
    embedder: str,
    seed: int,
    rest_share: float = 1.0,
    delta: float = DELTA,
) -> list:
    """k-fold CV of every candidate on (X, y) with its out-of-fold threshold; the learning
    curve of the most accurate one (fitting every candidate at every size cost more than
    the LM calls it could save, measured on 2,000 reviews)."""
    from sklearn.model_selection import StratifiedKFold

    classes, counts = np.unique(y, return_counts=True)
    folds = min(FOLDS, int(counts.min())) if len(classes) > 1 else 0
    if folds < 2:  # one class only (or too few of one): the constant answer
        conf = np.ones(len(y))
        correct = y == classes[counts.argmax()]
        threshold = choose_threshold(conf, correct, target, rest_share, delta)
        return [
            Evaluation(
                embedder,
                "majority",
                float(correct.mean()),
                Curve([]),
                threshold,
                conf,
                constant=classes[counts.argmax()],
            )
        ]
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y))
    out = []
    for name, model in candidates(seed).items():
        conf = np.zeros(len(y))
        correct = np.zeros(len(y), dtype=bool)
        models = []
        for train_rows, test in splits:
            fitted = _fit(model, X[train_rows], y[train_rows])
            proba = fitted.predict_proba(X[test])
            conf[test] = proba.max(axis=1)
            correct[test] = fitted.classes_[proba.argmax(axis=1)] == y[test]
            models.append(fitted)
        threshold = choose_threshold(conf, correct, target, rest_share, delta)
        ev = Evaluation(embedder, name, float(correct.mean()), Curve([]), threshold, conf, models)
        out.append(ev)
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
