"""Online linear learners for hashed sparse features: FTRL-Proximal and AdaGrad, compiled.

:class:`FTRLClassifier` (logistic or hinge loss) and :class:`FTRLRegressor` (squared
loss) learn from SciPy CSR batches with ``partial_fit``, one pass over the rows in
order, with scikit-learn's per-row elastic-net penalty (``alpha``, ``l1_ratio``). The
loops are numba-compiled (:mod:`shardfit.streaming._kernels`) and touch only the
non-zero entries, so a step costs the row's terms, not ``n_features``. They are
approximate (online) estimators: they do not equal a batch fit, they converge to it.

:meth:`progressive_fit` scores each batch before training on it in one compiled call,
which is what :func:`shardfit.stream_fit` uses for these learners.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from shardfit.streaming import _kernels

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - scikit-learn < 1.6

    def validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


__all__ = ["FTRLClassifier", "FTRLRegressor"]

_LOSSES = {"log_loss": _kernels.LOG, "squared_error": _kernels.SQUARED, "hinge": _kernels.HINGE}
_SOLVERS = {"ftrl": _kernels.FTRL, "adagrad": _kernels.ADAGRAD}


def _check_number(owner: str, name: str, value: Any, low: float, *, closed: bool) -> float:
    ok = isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (value >= low if closed else value > low)
    if not ok:
        bracket = "[" if closed else "("
        raise ValueError(
            f"The {name!r} parameter of {owner} must be a float in {bracket}{low}, inf). "
            f"Got {value!r} instead."
        )
    return float(value)


class _OnlineLinear(BaseEstimator):
    """Shared state and loops of the classifier and the regressor."""

    _allowed_losses: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        loss: str,
        solver: str = "ftrl",
        alpha: float = 0.0,
        l1_ratio: float = 0.15,
        learning_rate: float = 0.1,
        beta: float = 1.0,
        fit_intercept: bool = True,
    ) -> None:
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.learning_rate = learning_rate
        self.beta = beta
        self.fit_intercept = fit_intercept

    # --- validation ------------------------------------------------------------------

    def _settings(self) -> tuple[int, int, float, float, float, float, bool]:
        owner = type(self).__name__
        if self.loss not in self._allowed_losses:
            raise ValueError(
                f"The 'loss' parameter of {owner} must be one of "
                f"{', '.join(map(repr, self._allowed_losses))}. Got {self.loss!r} instead."
            )
        if self.solver not in _SOLVERS:
            raise ValueError(
                f"The 'solver' parameter of {owner} must be 'ftrl' or 'adagrad'. "
                f"Got {self.solver!r} instead."
            )
        alpha = _check_number(owner, "alpha", self.alpha, 0.0, closed=True)
        l1_ratio = _check_number(owner, "l1_ratio", self.l1_ratio, 0.0, closed=True)
        if l1_ratio > 1:
            raise ValueError(
                f"The 'l1_ratio' parameter of {owner} must be a float in [0, 1]. "
                f"Got {self.l1_ratio!r} instead."
            )
        eta = _check_number(owner, "learning_rate", self.learning_rate, 0.0, closed=False)
        beta = _check_number(owner, "beta", self.beta, 0.0, closed=True)
        if not isinstance(self.fit_intercept, bool | np.bool_):
            raise ValueError(
                f"The 'fit_intercept' parameter of {owner} must be a bool. "
                f"Got {self.fit_intercept!r} instead."
            )
        return (
            _SOLVERS[self.solver],
            _LOSSES[self.loss],
            alpha,
            l1_ratio,
            eta,
            beta,
            bool(self.fit_intercept),
        )

    def _validated(
        self, X: Any, y: Any = None, *, reset: bool, with_y: bool = False, y_numeric: bool = False
    ) -> tuple[sp.csr_matrix, Any]:
        """Check ``X`` (and ``y``) as scikit-learn does; ``X`` as CSR with int32 indices.

        A changed width raises (``partial_fit`` learns it on the first call only).
        """
        if not with_y:
            X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=reset)
        else:
            X, y = validate_data(
                self, X, y, accept_sparse="csr", dtype=np.float64, reset=reset, y_numeric=y_numeric
            )
        X = sp.csr_matrix(X) if not sp.issparse(X) else X.tocsr()
        csr = sp.csr_matrix(
            (
                np.ascontiguousarray(X.data, dtype=np.float64),
                np.ascontiguousarray(X.indices, dtype=np.int32),
                np.ascontiguousarray(X.indptr, dtype=np.int64),
            ),
            shape=X.shape,
        )
        # Hashed terms that collide are two entries of one column in a row; the value
        # of the column is their sum (as SciPy's products and scikit-learn's SGD take
        # it), but the per-coordinate updates must see it once: sum them first.
        if _kernels.has_duplicates(csr.indptr, csr.indices, csr.shape[1]):
            csr = csr.copy()
            csr.sum_duplicates()
            csr = sp.csr_matrix(
                (csr.data, csr.indices.astype(np.int32), csr.indptr.astype(np.int64)),
                shape=csr.shape,
            )
        return csr, y

    def _start(self, n_features: int) -> None:
        # The intercept's state is the last slot.
        self.state_a_ = np.zeros(n_features + 1)
        self.state_n_ = np.zeros(n_features + 1)
        # AdaGrad: the row at which each coordinate's penalty was last charged.
        self.state_last_ = np.zeros(n_features + 1)
        self.t_ = 0.0

    def _encoded(self, y: np.ndarray) -> np.ndarray:
        return y.astype(np.float64)

    def _fit_rows(
        self, X: sp.csr_matrix, y: np.ndarray, sw: np.ndarray, *, batch_rows: int | None
    ) -> np.ndarray:
        solver, loss, alpha, l1_ratio, eta, beta, intercept = self._settings()
        target = self._encoded(y)
        last = self._last()
        if batch_rows is None:
            self.t_ = _kernels.train(
                X.indptr, X.indices, X.data, target, sw, 0, X.shape[0], self.state_a_,
                self.state_n_, last, self.t_, solver, loss, alpha, l1_ratio, eta, beta,
                intercept,
            )  # fmt: skip
            return np.empty(0)
        scores, self.t_ = _kernels.progressive(
            X.indptr, X.indices, X.data, target, sw, batch_rows, self.state_a_,
            self.state_n_, last, self.t_, solver, loss, alpha, l1_ratio, eta, beta, intercept,
        )  # fmt: skip
        return scores

    def _decision(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "state_a_")
        solver, _, alpha, l1_ratio, eta, beta, intercept = self._settings()
        X, _ = self._validated(X, reset=False)
        return _kernels.margins(
            X.indptr, X.indices, X.data, self.state_a_, self.state_n_, self._last(), self.t_,
            solver, alpha, l1_ratio, eta, beta, intercept,
        )  # fmt: skip

    def _last(self) -> np.ndarray:
        """AdaGrad's per-coordinate row of the last penalty charge.

        A state without it (saved before it existed) has every penalty charged: ``t_``.
        """
        last = getattr(self, "state_last_", None)
        if last is None or last.shape != self.state_a_.shape:
            self.state_last_ = last = np.full(self.state_a_.shape, float(self.t_))
        return last

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # --- pickling (the engine's transport between rungs of a search) ------------------

    def __getstate__(self) -> dict[str, Any]:
        # Hashed models touch few of their 2**20+ coordinates: send only those.
        state = dict(super().__getstate__())  # a copy: object's is the live __dict__
        for name in ("state_a_", "state_n_", "state_last_"):
            if isinstance(state.get(name), np.ndarray):
                dense = state[name]
                index = np.flatnonzero(dense)
                state[name] = ("sparse", dense.shape[0], index, dense[index])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in ("state_a_", "state_n_", "state_last_"):
            packed = state.get(name)
            if isinstance(packed, tuple) and packed and packed[0] == "sparse":
                dense = np.zeros(packed[1])
                dense[packed[2]] = packed[3]
                state[name] = dense
        super().__setstate__(state)

    # --- learned weights -------------------------------------------------------------

    def _weights(self) -> np.ndarray:
        """Weights of every coordinate (intercept last) from the solver state."""
        a, n = self.state_a_, self.state_n_
        if self.solver == "adagrad":
            return _kernels.adagrad_weights(
                a, n, self._last(), float(self.t_), float(self.alpha), float(self.l1_ratio),
                float(self.learning_rate), float(self.beta),
            )  # fmt: skip
        # Only touched coordinates can be non-zero: compute those (2**22 slots, ~10 used).
        index = np.flatnonzero(a)
        t, alpha, l1_ratio = self.t_, float(self.alpha), float(self.l1_ratio)
        lam1 = np.full(index.shape, t * alpha * l1_ratio)
        lam2 = np.full(index.shape, t * alpha * (1 - l1_ratio))
        bias = index == a.shape[0] - 1
        lam1[bias] = lam2[bias] = 0.0  # the intercept is not penalized
        z = a[index]
        denom = (float(self.beta) + np.sqrt(n[index])) / float(self.learning_rate) + lam2
        values = np.where(np.abs(z) <= lam1, 0.0, -(z - np.sign(z) * lam1) / denom)
        w = np.zeros(a.shape)
        w[index] = values
        return w

    @property
    def _coef(self) -> np.ndarray:
        return self._weights()[:-1]

    @property
    def _intercept(self) -> float:
        if not self.fit_intercept:
            return 0.0
        a, n = self.state_a_[-1], self.state_n_[-1]
        if self.solver == "adagrad":
            return float(a)
        return float(-a / ((float(self.beta) + np.sqrt(n)) / float(self.learning_rate)))

    def _progressive(
        self, X: Any, y: Any, batch_rows: int, classes: Any, sample_weight: Any = None
    ) -> np.ndarray:
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise ValueError(f"The 'batch_rows' parameter must be an int >= 1. Got {batch_rows!r}.")
        X, y = self._prepare(X, y, classes=classes)
        sw = _sample_weight(sample_weight, X.shape[0])
        return self._fit_rows(X, y, sw, batch_rows=batch_rows)

    def _partial(self, X: Any, y: Any, classes: Any, sample_weight: Any = None) -> None:
        X, y = self._prepare(X, y, classes=classes)
        self._fit_rows(X, y, _sample_weight(sample_weight, X.shape[0]), batch_rows=None)

    def _forget(self) -> None:
        for name in ("state_a_", "state_n_", "state_last_", "t_", "n_features_in_", "classes_"):
            self.__dict__.pop(name, None)

    def _prepare(self, X: Any, y: Any, *, classes: Any) -> tuple[sp.csr_matrix, np.ndarray]:
        raise NotImplementedError


_PROGRESSIVE_DOC = """Train on ``X`` batch by batch, scoring each batch before training on it.

        Equivalent to, for each run of ``batch_rows`` rows: ``decision_function`` on
        it, then ``partial_fit`` on it; done in one compiled call.

        Parameters
        ----------
        X : sparse matrix of shape (rows, n_features)
        y : array of shape (rows,)
        batch_rows : int
            Rows per batch.{classes}
        sample_weight : array-like of shape (rows,), optional
            Non-negative row weights (see ``partial_fit``).

        Returns
        -------
        numpy.ndarray
            The decision value of each row, made before its batch was learned.
        """
_CLASSES_DOC = """
        classes : array-like of shape (2,), optional
            The labels, on the first call (default: 0 and 1 when ``y`` holds only those)."""


class FTRLClassifier(ClassifierMixin, _OnlineLinear):
    """Binary linear classifier trained online by FTRL-Proximal or AdaGrad.

    Parameters
    ----------
    loss : {"log_loss", "hinge"}, default "log_loss"
        Logistic regression (with ``predict_proba``) or a linear SVM.
    solver : {"ftrl", "adagrad"}, default "ftrl"
        The per-coordinate adaptive method (see :mod:`shardfit.streaming._kernels`).
    alpha : float, default 0.0
        Per-row elastic-net penalty, as scikit-learn's ``SGDClassifier``.
    l1_ratio : float, default 0.15
        The L1 share of the penalty (0 ridge, 1 lasso).
    learning_rate : float, default 0.1
        The base step η.
    beta : float, default 1.0
        Smoothing of the per-coordinate step ``η / (β + sqrt(Σ g²))``.
    fit_intercept : bool, default True
        Learn an unpenalized intercept.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The labels; the second is the positive class.
    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    t_ : float
        Rows learned.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0]] * 50))
    >>> model = FTRLClassifier(learning_rate=0.5).partial_fit(X, [1, 0] * 50)
    >>> model.predict(X[:2]).tolist()
    [1, 0]
    """

    _allowed_losses = ("log_loss", "hinge")

    def __init__(
        self,
        *,
        loss: str = "log_loss",
        solver: str = "ftrl",
        alpha: float = 0.0,
        l1_ratio: float = 0.15,
        learning_rate: float = 0.1,
        beta: float = 1.0,
        fit_intercept: bool = True,
    ) -> None:
        super().__init__(
            loss=loss,
            solver=solver,
            alpha=alpha,
            l1_ratio=l1_ratio,
            learning_rate=learning_rate,
            beta=beta,
            fit_intercept=fit_intercept,
        )

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> FTRLClassifier:
        """Learn from one batch (one pass over its rows, in order).

        Parameters
        ----------
        X : sparse matrix or array of shape (rows, n_features)
        y : array of shape (rows,)
        classes : array-like of shape (2,), optional
            The labels, on the first call (default: 0 and 1 when ``y`` holds only those).
        sample_weight : array-like of shape (rows,), optional
            Non-negative row weights: each scales its row's loss gradient (not the
            per-row penalty), as in scikit-learn's ``SGDClassifier``.
        """
        self._partial(X, y, classes, sample_weight)
        return self

    def fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> FTRLClassifier:
        """Forget what was learned, then make one pass over ``X`` (classes from ``y``)."""
        self._forget()
        _refuse_all_zero(sample_weight)
        if classes is None and y is not None:
            classes = np.unique(np.asarray(y))
        self._partial(X, y, classes, sample_weight)
        return self

    def progressive_fit(
        self,
        X: Any,
        y: Any,
        *,
        batch_rows: int,
        classes: Any = None,
        sample_weight: Any = None,
    ) -> np.ndarray:
        return self._progressive(X, y, batch_rows, classes, sample_weight)

    progressive_fit.__doc__ = _PROGRESSIVE_DOC.format(classes=_CLASSES_DOC)

    def _prepare(self, X: Any, y: Any, *, classes: Any) -> tuple[sp.csr_matrix, np.ndarray]:
        first = not hasattr(self, "classes_")
        X, y = self._validated(X, y, reset=first, with_y=True)
        check_classification_targets(y)
        if first:
            if classes is None:
                seen = np.unique(y)
                if not set(seen.tolist()) <= {0, 1}:
                    raise ValueError(
                        "classes must be passed on the first call to partial_fit unless the "
                        f"labels are 0 and 1; got labels {seen[:5].tolist()}"
                    )
                classes = np.array([0, 1])
            classes = np.unique(np.asarray(classes))
            if classes.shape[0] != 2:
                raise ValueError(
                    f"Only binary classification is supported by {type(self).__name__}: "
                    f"classes must hold 2 labels, got {classes.shape[0]} class(es): "
                    f"{classes.tolist()}"
                )
            self.classes_ = classes
            self._start(X.shape[1])
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {classes!r} differ from the earlier {self.classes_!r}")
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise ValueError(f"y[{row}] = {y[row]!r} is not one of the classes {self.classes_}")
        return X, y

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _encoded(self, y: np.ndarray) -> np.ndarray:
        positive = (y == self.classes_[1]).astype(np.float64)
        return positive if self.loss == "log_loss" else 2.0 * positive - 1.0

    @property
    def coef_(self) -> np.ndarray:
        """The weights, shape (1, n_features)."""
        return self._coef[np.newaxis, :]

    @property
    def intercept_(self) -> np.ndarray:
        """The intercept, shape (1,)."""
        return np.array([self._intercept])

    def decision_function(self, X: Any) -> np.ndarray:
        """The linear predictor of each row."""
        return self._decision(X)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted label of each row."""
        positive = self._decision(X) > 0
        return self.classes_[positive.astype(np.intp)]

    def _has_proba(self) -> bool:
        return self.loss == "log_loss"

    @available_if(_has_proba)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (logistic loss only), shape (rows, 2)."""
        p = _sigmoid(self._decision(X))
        return np.column_stack([1.0 - p, p])


class FTRLRegressor(RegressorMixin, _OnlineLinear):
    """Linear regression (squared loss) trained online by FTRL-Proximal or AdaGrad.

    Parameters are those of :class:`FTRLClassifier`, with ``loss="squared_error"``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    t_ : float
    n_features_in_ : int
    """

    _allowed_losses = ("squared_error",)

    def __init__(
        self,
        *,
        loss: str = "squared_error",
        solver: str = "ftrl",
        alpha: float = 0.0,
        l1_ratio: float = 0.15,
        learning_rate: float = 0.1,
        beta: float = 1.0,
        fit_intercept: bool = True,
    ) -> None:
        super().__init__(
            loss=loss,
            solver=solver,
            alpha=alpha,
            l1_ratio=l1_ratio,
            learning_rate=learning_rate,
            beta=beta,
            fit_intercept=fit_intercept,
        )

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> FTRLRegressor:
        """Learn from one batch (one pass over its rows, in order); ``sample_weight``
        as :meth:`FTRLClassifier.partial_fit`."""
        self._partial(X, y, None, sample_weight)
        return self

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FTRLRegressor:
        """Forget what was learned, then make one pass over ``X``."""
        self._forget()
        _refuse_all_zero(sample_weight)
        self._partial(X, y, None, sample_weight)
        return self

    def progressive_fit(
        self, X: Any, y: Any, *, batch_rows: int, sample_weight: Any = None
    ) -> np.ndarray:
        return self._progressive(X, y, batch_rows, None, sample_weight)

    progressive_fit.__doc__ = _PROGRESSIVE_DOC.format(classes="")

    def _prepare(self, X: Any, y: Any, *, classes: Any) -> tuple[sp.csr_matrix, np.ndarray]:
        first = not hasattr(self, "state_a_")
        X, y = self._validated(X, y, reset=first, with_y=True, y_numeric=True)
        if first:
            self._start(X.shape[1])
        return X, np.asarray(y, dtype=np.float64)

    @property
    def coef_(self) -> np.ndarray:
        """The weights, shape (n_features,)."""
        return self._coef

    @property
    def intercept_(self) -> float:
        """The intercept."""
        return self._intercept

    def predict(self, X: Any) -> np.ndarray:
        """The prediction of each row."""
        return self._decision(X)


def _sample_weight(sample_weight: Any, rows: int) -> np.ndarray:
    """Row weights as the kernels take them: empty for none."""
    if sample_weight is None:
        return np.empty(0)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (rows,):
        raise ValueError(f"sample_weight must have shape ({rows},); got {w.shape}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"sample_weight[{row}] = {w[row]!r}: weights must be finite and >= 0")
    return np.ascontiguousarray(w)


def _refuse_all_zero(sample_weight: Any) -> None:
    """``fit`` with every weight zero would learn nothing (a batch of ``partial_fit``
    may: the stream goes on)."""
    if sample_weight is not None and not np.any(np.asarray(sample_weight, dtype=float)):
        raise ValueError("Sample weights must contain at least one non-zero number.")


def _sigmoid(m: np.ndarray) -> np.ndarray:
    out = np.empty_like(m)
    pos = m >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-m[pos]))
    e = np.exp(m[~pos])
    out[~pos] = e / (1.0 + e)
    return out
