"""Progressive validation: score each batch with the model as it was before that batch.

A :class:`Tracker` drives one estimator through the batches of a stream and keeps,
per batch, the sums that make its scores (log-loss, squared error, accuracy, AUC), and
the same scores for the null benchmark: the running mean of the target over the
batches before (for a classifier, the share of the positive class). The first batch is
learned but not scored, as neither the model nor the benchmark has seen anything yet.

The metrics of a classifier use the probability of the positive class where the
estimator has ``predict_proba`` (the squared error is then the Brier score), and the
decision function otherwise (accuracy and AUC only). A regressor is scored by squared
error. Everything is computed per chunk of many batches with NumPy, so the cost per
batch is a few array operations whatever the estimator.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import is_classifier

from shardfit.streaming import _kernels

__all__ = ["METRICS", "StreamResult", "Tracker", "applicable_scorings", "summarize"]

#: Metric name -> whether larger is better.
METRICS: dict[str, bool] = {
    "log_loss": False,
    "squared_error": False,
    "accuracy": True,
    "auc": True,
}
# Probabilities are clipped to [eps, 1 - eps] before the log-loss, with scikit-learn's
# eps (``log_loss`` clips at the float64 machine epsilon), so a saturated prediction
# costs what scikit-learn charges for it.
_EPS = float(np.finfo(np.float64).eps)
# A probability this close to 0.5 does not tell the label: a decision value of 1e-30
# is the positive class for ``predict`` but its logistic (or modified-Huber)
# probability rounds to exactly 0.5, and a naive Bayes near-tie can round either way.
# Such rows ask the estimator's own ``predict``.
_TIE = 4 * _EPS


def _fast_path(estimator: Any) -> bool:
    """Whether the estimator scores and learns a chunk of batches in one call.

    The protocol: ``progressive_fit(X, y, batch_rows=..., classes=...)`` returns each
    row's decision value made before its batch was learned; for a classifier with
    ``predict_proba`` the probability is the logistic function of it.
    """
    return callable(getattr(estimator, "progressive_fit", None))


def _sigmoid(m: np.ndarray) -> np.ndarray:
    """The logistic function as ``predict_proba`` computes it (exp of -|m|).

    ``0.5 * (1 + tanh(m / 2))`` loses the small probabilities to cancellation (at
    ``m = -30`` it is 0.017% off, at ``-35`` 3%), so the log-loss of a confident
    wrong row differed from ``log_loss(y, predict_proba(X))`` by up to 0.03.
    """
    e = np.exp(-np.abs(m))
    return np.where(m >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass
class _Sums:
    """Per-batch sums of one predictor (the model or the benchmark)."""

    log_loss: list[np.ndarray] = field(default_factory=list)
    squared_error: list[np.ndarray] = field(default_factory=list)
    accuracy: list[np.ndarray] = field(default_factory=list)
    auc: list[np.ndarray] = field(default_factory=list)

    def add(self, name: str, values: np.ndarray) -> None:
        getattr(self, name).append(values)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            name: np.concatenate(getattr(self, name)) if getattr(self, name) else np.empty(0)
            for name in METRICS
        }


class Tracker:
    """Feed one estimator batch by batch, scoring each batch before learning it.

    Parameters
    ----------
    estimator : object with ``partial_fit``
        Trained in place.
    batch_rows : int
        Rows per batch.
    classes : array-like, optional
        The two labels of a classifier (default ``[0, 1]``), passed to the first
        ``partial_fit``.
    """

    def __init__(self, estimator: Any, *, batch_rows: int, classes: Any = None) -> None:
        self.estimator = estimator
        self.batch_rows = batch_rows
        self.classifier = bool(is_classifier(estimator))
        self.classes = np.array([0, 1] if classes is None else classes)
        if self.classifier and np.unique(self.classes).shape[0] != 2:
            raise ValueError(
                f"stream_fit scores binary classifiers; classes must hold 2 labels, "
                f"got {self.classes.tolist()}"
            )
        self.batches = 0  # batches learned
        self.rows = 0
        self.batch_sizes: list[np.ndarray] = []
        # Per batch, the sum of its rows' weights (its size when unweighted): what its
        # metrics are averaged by. ``weighted`` once any chunk came with weights.
        self.batch_weights: list[np.ndarray] = []
        self.weighted = False
        self.model = _Sums()
        self.bench = _Sums()
        self._sum_y = 0.0
        self._count = 0
        self._learned = False  # whether a batch was passed to partial_fit (slow path)

    def _positive(self, y: np.ndarray) -> np.ndarray:
        return (y == np.max(self.classes)).astype(np.float64)

    def _predict(
        self, X: sp.csr_matrix, y: np.ndarray, w: np.ndarray | None
    ) -> tuple[np.ndarray, bool, np.ndarray | None]:
        """Learn every batch of the chunk; return each row's prediction before its batch.

        Returns the predictions, whether they are probabilities (else decision values
        or, for a regressor, predicted values), and for a classifier whether each row
        is predicted positive, as its ``predict`` says: a decision value above 0 (a tie
        is the negative class, as scikit-learn predicts), or a probability above 0.5,
        with ``predict`` itself asked where the probability is within rounding of 0.5.
        """
        est, rows = self.estimator, X.shape[0]
        extra: dict[str, Any] = {"classes": self.classes} if self.classifier else {}
        if _fast_path(est):
            weighted = {} if w is None else {"sample_weight": w}
            m = est.progressive_fit(X, y, batch_rows=self.batch_rows, **extra, **weighted)
            said = m > 0 if self.classifier else None
            if self.classifier and hasattr(est, "predict_proba"):
                return _sigmoid(m), True, said
            return m, False, said
        out = np.full(rows, np.nan)  # NaN: before anything was learned (not scored)
        said = np.zeros(rows, dtype=bool)
        proba = self.classifier and hasattr(est, "predict_proba")
        positive = np.max(self.classes)
        for start in range(0, rows, self.batch_rows):
            stop = min(start + self.batch_rows, rows)
            Xb, yb = X[start:stop], y[start:stop]
            if self._learned:
                if not self.classifier:
                    out[start:stop] = est.predict(Xb)
                elif proba:
                    p = est.predict_proba(Xb)[:, 1]
                    out[start:stop] = p
                    # The probability of the positive class exceeds 0.5 where the
                    # decision value exceeds 0, except within rounding of 0.5.
                    label = p > 0.5
                    near = np.flatnonzero(np.abs(p - 0.5) <= _TIE)
                    if near.size:
                        label[near] = est.predict(Xb[near]) == positive
                    said[start:stop] = label
                else:
                    d = est.decision_function(Xb)
                    out[start:stop] = d
                    said[start:stop] = d > 0  # a tie is the first class, as in predict
            if w is None:
                est.partial_fit(Xb, yb, **extra)
            elif w[start:stop].any():
                est.partial_fit(Xb, yb, **extra, sample_weight=w[start:stop])
            else:
                # A batch without weight teaches nothing, and scikit-learn's
                # partial_fit refuses one ("at least one non-zero number").
                continue
            self._learned = True
        if not self.classifier:
            return out, proba, None
        return out, proba, said

    def feed(self, X: sp.csr_matrix, y: np.ndarray, w: np.ndarray | None = None) -> None:
        """Learn the batches of a chunk (whole batches, except at the end of the stream).

        ``w``: the rows' sample weights, passed to ``partial_fit`` and weighting every
        metric and the benchmark's running mean (``None``: all 1).
        """
        rows = X.shape[0]
        if rows == 0:
            return
        prediction, proba, said = self._predict(X, y, w)
        ids = np.arange(rows) // self.batch_rows
        nb = int(ids[-1]) + 1
        sizes = np.bincount(ids, minlength=nb).astype(np.float64)
        totals = sizes if w is None else np.bincount(ids, weights=w, minlength=nb)
        target = self._positive(y) if self.classifier else y.astype(np.float64)
        # The benchmark predicts each batch with the (weighted) mean of the target before it.
        sums = np.bincount(ids, weights=target if w is None else target * w, minlength=nb)
        before = self._sum_y + np.concatenate([[0.0], np.cumsum(sums)[:-1]])
        counts = self._count + np.concatenate([[0.0], np.cumsum(totals)[:-1]])
        with np.errstate(invalid="ignore", divide="ignore"):
            bench = np.repeat(before / counts, sizes.astype(np.int64))
        self._sum_y += float(sums.sum())
        self._count += float(totals.sum())
        self._score(self.model, prediction, target, ids, nb, w, proba=proba, said=said)
        # The benchmark predicts the positive class from a share of 0.5 up (the seed's
        # null model).
        self._score(
            self.bench, bench, target, ids, nb, w, proba=self.classifier,
            said=bench >= 0.5, constant=True,
        )  # fmt: skip
        self.batch_sizes.append(sizes)
        self.batch_weights.append(totals)
        self.weighted = self.weighted or w is not None
        self.batches += nb
        self.rows += rows

    def _score(
        self,
        sums: _Sums,
        pred: np.ndarray,
        target: np.ndarray,
        ids: np.ndarray,
        nb: int,
        w: np.ndarray | None,
        *,
        proba: bool,
        said: np.ndarray | None = None,
        constant: bool = False,
    ) -> None:
        """Add each batch's sums of the row metrics (times the row weights ``w``).

        ``said``: whether each row is predicted positive (a classifier's label).
        """
        nan = np.full(nb, np.nan)

        def batch_sums(values: np.ndarray) -> np.ndarray:
            return np.bincount(ids, values if w is None else values * w, nb)

        if not self.classifier:
            sums.add("squared_error", batch_sums((pred - target) ** 2))
            for name in ("log_loss", "accuracy", "auc"):
                sums.add(name, nan)
            return
        if proba:
            p = np.clip(pred, _EPS, 1 - _EPS)
            loss = -(target * np.log(p) + (1 - target) * np.log1p(-p))
            sums.add("log_loss", batch_sums(loss))
            sums.add("squared_error", batch_sums((pred - target) ** 2))
        else:
            sums.add("log_loss", nan)
            sums.add("squared_error", nan)
        assert said is not None
        hit = said == (target == 1)
        sums.add("accuracy", batch_sums(hit.astype(np.float64)))
        bounds = np.searchsorted(ids, np.arange(nb + 1))
        positive = target == 1
        if constant:  # every ranking ties: 0.5 (NaN where a batch has one class)
            # With weights a class of zero weight is absent, as for the model's AUC
            # (and roc_auc_score's): the two are averaged over the same batches.
            weight = np.ones(target.shape[0]) if w is None else w
            ones = np.add.reduceat(positive * weight, bounds[:-1]) if nb else np.empty(0)
            zeros = np.add.reduceat(~positive * weight, bounds[:-1]) if nb else np.empty(0)
            auc = np.where((ones == 0) | (zeros == 0), np.nan, 0.5)
        elif w is None:
            auc = _kernels.batch_auc(np.ascontiguousarray(pred), positive, bounds)
        else:
            auc = _kernels.weighted_batch_auc(np.ascontiguousarray(pred), positive, w, bounds)
        sums.add("auc", auc)  # a per-batch value, not a sum (weighted by rows later)


@dataclass(frozen=True)
class StreamResult:
    """The progressive scores of a streaming fit.

    Attributes
    ----------
    estimator : object
        The trained estimator.
    curve : pandas.DataFrame
        One row per scored batch: ``batch``, ``rows`` (rows learned before it),
        ``n`` (its rows), the model's metrics and the benchmark's (``benchmark_...``).
    scoring : str
        The metric of :attr:`score`.
    score, benchmark_score : float
        Mean of ``scoring`` over the batches after the leading ``drop`` fraction,
        weighted by rows, for the model and the running-mean benchmark.
    improvement : float
        ``(benchmark - score) / benchmark`` for losses, ``(score - benchmark) /
        benchmark`` for accuracy and AUC: the relative gain over the benchmark.
    scores, benchmark_scores : dict of str to float
        Every metric, averaged the same way (NaN where it does not apply).
    rows : int
        Rows learned.
    drop : float
        The leading fraction of scored batches left out of the means.
    rows_skipped : int
        Malformed rows the reader skipped (``on_bad_lines="skip"``), not learned.
    """

    estimator: Any
    curve: pd.DataFrame
    scoring: str
    score: float
    benchmark_score: float
    improvement: float
    scores: dict[str, float]
    benchmark_scores: dict[str, float]
    rows: int
    drop: float
    rows_skipped: int = 0

    def __repr__(self) -> str:
        skipped = f", rows_skipped={self.rows_skipped}" if self.rows_skipped else ""
        return (
            f"StreamResult({self.scoring}={self.score:.6g}, benchmark={self.benchmark_score:.6g}, "
            f"improvement={self.improvement:.4g}, rows={self.rows}{skipped})"
        )


def default_scoring(estimator: Any) -> str:
    """``log_loss`` for probabilistic classifiers, ``accuracy`` for others, else squared error."""
    if not is_classifier(estimator):
        return "squared_error"
    return "log_loss" if hasattr(estimator, "predict_proba") else "accuracy"


def check_scoring(scoring: str) -> str:
    """Validate a metric name."""
    if scoring not in METRICS:
        raise ValueError(
            f"The 'scoring' parameter must be one of {', '.join(map(repr, METRICS))}. "
            f"Got {scoring!r} instead."
        )
    return scoring


def applicable_scorings(estimator: Any) -> tuple[str, ...]:
    """The metrics progressive validation computes for ``estimator`` (others are NaN).

    A regressor is scored by squared error; a classifier with ``predict_proba`` by
    every metric (the squared error is the Brier score); another classifier by its
    decision function: accuracy and AUC.
    """
    if not is_classifier(estimator):
        return ("squared_error",)
    if hasattr(estimator, "predict_proba"):
        return tuple(METRICS)
    return ("accuracy", "auc")


def _first_scored(totals: np.ndarray) -> int:
    """The first batch scored: the one after the first of non-zero weight (1 unweighted)."""
    weighted = np.flatnonzero(totals > 0)
    return int(weighted[0]) + 1 if weighted.size else totals.shape[0]


def _means(sums: _Sums, sizes: np.ndarray, keep: slice) -> dict[str, float]:
    arrays = sums.arrays()
    out = {}
    n = sizes[keep]
    for name, values in arrays.items():
        v = values[keep]
        if name == "auc":
            ok = np.isfinite(v)
            out[name] = float(np.average(v[ok], weights=n[ok])) if ok.any() else float("nan")
        elif n.sum() > 0 and np.isfinite(v).all():
            out[name] = float(v.sum() / n.sum())
        else:
            out[name] = float("nan")
    return out


def improvement(score: float, bench: float, scoring: str) -> float:
    """The relative gain of ``score`` over ``bench`` (positive when better)."""
    if not np.isfinite(bench) or bench == 0:
        return float("nan")
    gain = (score - bench) if METRICS[scoring] else (bench - score)
    return float(gain / abs(bench))


def summarize(tracker: Tracker, *, scoring: str, drop: float) -> StreamResult:
    """Turn a tracker's sums into a :class:`StreamResult`."""
    sizes = np.concatenate(tracker.batch_sizes) if tracker.batch_sizes else np.empty(0)
    totals = np.concatenate(tracker.batch_weights) if tracker.batch_weights else np.empty(0)
    model, bench = tracker.model.arrays(), tracker.bench.arrays()
    # Batch 0 is learned, not scored; with weights, neither is any batch before the
    # first of non-zero weight (the model has learned nothing, and the benchmark's
    # mean of no weight is undefined).
    first = _first_scored(totals)
    scored = slice(1, None)
    n = sizes[scored]
    weight = totals[scored]
    start = int(drop * max(sizes.shape[0] - first, 0))
    keep = slice(first + start, None)
    unscored = slice(0, max(first - 1, 0))  # rows of the curve before ``first``
    curve = pd.DataFrame(
        {
            "batch": np.arange(1, sizes.shape[0]),
            "rows": np.cumsum(sizes)[:-1].astype(np.int64) if sizes.size else np.empty(0),
            "n": n.astype(np.int64),
        }
    )
    if tracker.weighted:
        curve["weight"] = weight
    with np.errstate(invalid="ignore", divide="ignore"):  # a batch of zero weight: NaN
        for prefix, sums in (("", model), ("benchmark_", bench)):
            for name in METRICS:
                per = sums[name][scored] if name == "auc" else sums[name][scored] / weight
                per[unscored] = np.nan
                curve[f"{prefix}{name}"] = per
    scores = _means(tracker.model, totals, keep)
    bench_scores = _means(tracker.bench, totals, keep)
    if not sizes[keep].sum():
        # Batch 0 only trains, and `drop` leaves out the first scored batches: with
        # too few batches nothing is scored, and every score is NaN.
        warnings.warn(
            f"progressive validation scored no rows: {sizes.shape[0]} batch(es) of "
            f"{tracker.rows:,} rows, the first only trained on (with weights: up to the "
            f"first batch of non-zero weight) and the first {drop:.0%} of the rest "
            "dropped; lower batch_rows (or drop) to get scores",
            UserWarning,
            stacklevel=3,
        )
    return StreamResult(
        estimator=tracker.estimator,
        curve=curve,
        scoring=scoring,
        score=scores[scoring],
        benchmark_score=bench_scores[scoring],
        improvement=improvement(scores[scoring], bench_scores[scoring], scoring),
        scores=scores,
        benchmark_scores=bench_scores,
        rows=tracker.rows,
        drop=drop,
    )
