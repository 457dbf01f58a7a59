"""Stacked ensembles whose cross-fitting runs in parallel on a shardfit backend.

A stack is a sequence of layers of scikit-learn estimators and a final estimator.
Each layer is fitted by K-fold cross-fitting: every estimator is fitted on each
fold's training rows and predicts the held-out rows, and these out-of-fold
predictions (``predict_proba`` of classifiers, ``predict`` of regressors; optionally
followed by the input features, ``passthrough=True``) are the next layer's features.
Each estimator is also refitted on all rows; those fits make the predictions.

Every (estimator, fold) fit of a layer is one job of one engine pass
(:mod:`shardfit.models.ensemble_jobs`), on any backend; the inputs are written once
to a private directory and memory-mapped read-only by the workers, and that
directory is always removed. The folds are drawn once, on the driver, so results do
not depend on the backend or the number of workers.
Prediction from a large ``X`` runs on the same backend, in blocks of rows.

With one layer, the numbers are those of scikit-learn's ``StackingClassifier`` /
``StackingRegressor`` given the same ``cv`` splitter, final estimator and stack
method: the same fits on the same rows.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold, check_cv
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, has_fit_parameter

from shardfit.engine.blas import single_threaded_blas
from shardfit.engine.session import Session, session
from shardfit.models.ensemble_jobs import (
    SharedArrays,
    StackTransform,
    output_columns,
    row_blocks,
    run_layer,
    run_transform,
)

__all__ = ["StackingEnsembleClassifier", "StackingEnsembleRegressor"]

_CLASSIFIER_METHODS = ("predict_proba", "decision_function", "predict")

Layer = list[tuple[str, Any]]


def _check_layers(layers: Any) -> list[Layer]:
    """Validate ``layers``: a list of layers, or one layer given as its pairs."""
    if not isinstance(layers, Sequence) or isinstance(layers, str) or not layers:
        raise ValueError(
            "The 'layers' parameter must be a non-empty list of layers, each a list of "
            f"(name, estimator) pairs. Got {layers!r} instead."
        )
    if isinstance(layers[0], tuple):  # one layer, given as its pairs
        layers = [layers]
    checked: list[Layer] = []
    for number, layer in enumerate(layers):
        if not isinstance(layer, Sequence) or isinstance(layer, str) or not layer:
            raise ValueError(
                f"Layer {number} must be a non-empty list of (name, estimator) pairs. "
                f"Got {layer!r} instead."
            )
        names: set[str] = set()
        for pair in layer:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ValueError(
                    f"Layer {number} must hold (name, estimator) pairs. Got {pair!r} instead."
                )
            name, estimator = pair
            if not hasattr(estimator, "fit"):
                raise ValueError(
                    f"Estimator {name!r} of layer {number} has no 'fit' method: {estimator!r}."
                )
            if name in names:
                raise ValueError(f"Layer {number} has two estimators named {name!r}.")
            names.add(name)
        checked.append(list(layer))
    return checked


def _as_matrix(X: Any) -> np.ndarray:
    """``X`` as a 2-D float64 array. Missing values pass through, for base estimators
    that handle them (scikit-learn's stacking does not check them either)."""
    try:
        matrix = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as error:
        where = _first_non_number(X)
        raise ValueError(f"X must be a 2-D array of numbers{where}: {error}") from error
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-D array. Got shape {matrix.shape}.")
    return matrix


def _first_non_number(X: Any) -> str:
    """Where the first value that is not a number is (``" (column 'b', row 3)"``), for
    the error message; empty when it cannot be told. Only runs on that error."""
    columns = getattr(X, "columns", None)
    if columns is not None and hasattr(X, "iloc"):
        named = [(repr(name), X.iloc[:, j]) for j, name in enumerate(columns)]
    else:
        try:
            array = np.asarray(X, dtype=object)
        except (TypeError, ValueError):
            return ""
        if array.ndim != 2:
            return ""
        named = [(str(j), array[:, j]) for j in range(array.shape[1])]
    for name, column in named:
        for row, value in enumerate(column):
            try:
                float(value)
            except (TypeError, ValueError):
                return f" (column {name}, row {row}: {value!r})"
    return ""


def _sample_weight(
    sample_weight: Any, rows: int, layers: list[Layer], final: Any
) -> np.ndarray | None:
    """The checked weights; every estimator must take them (as scikit-learn checks)."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (rows,):
        raise ValueError(f"sample_weight has shape {weights.shape}; expected ({rows},)")
    if not np.isfinite(weights).all():
        row = int(np.flatnonzero(~np.isfinite(weights))[0])
        raise ValueError(f"sample_weight[{row}] = {weights[row]}: weights must be finite")
    if rows and not weights.any():
        # scikit-learn's message; refused here rather than by every fold's fit, retried.
        raise ValueError("Sample weights must contain at least one non-zero number.")
    named = [pair for layer in layers for pair in layer] + [("final_estimator", final)]
    for name, estimator in named:
        if not has_fit_parameter(estimator, "sample_weight"):
            raise TypeError(
                f"Underlying estimator {name!r} ({type(estimator).__name__}) does not "
                "support sample weights."
            )
    return weights


def _feature_names(X: Any) -> np.ndarray | None:
    """The column names of a frame ``X`` when they are all strings (scikit-learn's
    rule for ``feature_names_in_``), else None."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = np.asarray(list(columns), dtype=object)
    if names.size == 0 or not all(isinstance(name, str) for name in names):
        return None
    return names


class _StackingEnsemble(BaseEstimator):
    """What the classifier and the regressor share: fitting and transforming."""

    _is_classifier = False

    def _default_final(self) -> Any:
        raise NotImplementedError

    def _targets(self, y: Any) -> np.ndarray:
        raise NotImplementedError

    def _methods(self, layer: Layer) -> list[str]:
        return ["predict"] * len(layer)

    def _nclasses(self) -> int:
        return 0

    def _check_params(self) -> None:
        cv = self.cv
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            if cv < 2:
                raise ValueError(f"The 'cv' parameter must be an int >= 2. Got {cv!r} instead.")
        elif isinstance(cv, (str, bytes, bool)) or not (
            hasattr(cv, "split") or isinstance(cv, Iterable)
        ):
            raise ValueError(
                "The 'cv' parameter must be an int >= 2 or a scikit-learn splitter (an object "
                f"with 'split'), or an iterable of (train, test) index arrays. Got {cv!r} instead."
            )
        if self.random_state is not None and not isinstance(cv, numbers.Integral):
            raise ValueError(
                "The 'random_state' parameter applies to an int 'cv'; give the splitter "
                f"its own seed instead ({cv!r})."
            )
        retries = self.retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(
                f"The 'retries' parameter must be an int >= 0. Got {retries!r} instead."
            )
        if not isinstance(self.passthrough, bool):
            raise ValueError(
                f"The 'passthrough' parameter must be a bool. Got {self.passthrough!r} instead."
            )

    def _folds(
        self, X: np.ndarray, y: np.ndarray, sess: Session
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The folds, drawn once, on the root, and given to every process (under MPI
        every rank runs the script: a splitter that shuffles without a seed would
        draw other folds on each rank, and the fold jobs gathered from the ranks
        would not fit together). Every row must be held out exactly once."""
        folds = sess.on_root(lambda: self._draw_folds(X, y))
        # Checked and warned on every rank, each from the same folds.
        self._check_folds(folds, X, y)
        return folds

    def _draw_folds(self, X: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """The folds of ``cv`` (a deep copy of a splitter, as scikit-learn's stacking
        gives each estimator)."""
        if isinstance(self.cv, numbers.Integral) and self.random_state is not None:
            kind = StratifiedKFold if self._is_classifier else KFold
            splitter: Any = kind(int(self.cv), shuffle=True, random_state=self.random_state)
        else:
            # A splitter is copied (its seed state stays the user's); an iterable of
            # (train, test) pairs is used as given, as scikit-learn's check_cv does.
            cv = copy.deepcopy(self.cv) if hasattr(self.cv, "split") else self.cv
            splitter = check_cv(cv, y, classifier=self._is_classifier)
        return [
            (np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64))
            for train, test in splitter.split(X, y)
        ]

    def _check_folds(
        self, folds: list[tuple[np.ndarray, np.ndarray]], X: np.ndarray, y: np.ndarray
    ) -> None:
        """Refuse folds that do not hold out every row exactly once; warn of training
        rows that miss a class."""
        held_out = np.concatenate([test for _, test in folds]) if folds else np.array([])
        iterable = not (hasattr(self.cv, "split") or isinstance(self.cv, numbers.Integral))
        given = "the (train, test) pairs given" if iterable else repr(self.cv)
        if held_out.size != X.shape[0] or not np.array_equal(
            np.sort(held_out), np.arange(X.shape[0])
        ):
            raise ValueError(
                "The 'cv' splitter must hold out every row exactly once (a partition of the "
                f"rows, like KFold); {given} held out {held_out.size} rows "
                f"({np.unique(held_out).size} distinct) of {X.shape[0]}."
            )
        if self._is_classifier:
            nclasses = int(np.max(y)) + 1
            for k, (train, _) in enumerate(folds):
                present = np.unique(y[train]).size
                if present < nclasses:
                    warnings.warn(
                        f"The training rows of fold {k} hold {present} of {nclasses} classes: "
                        "the missing classes get probability 0 in its held-out predictions "
                        "(a stratified cv avoids this).",
                        RuntimeWarning,
                        stacklevel=4,
                    )

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _StackingEnsemble:
        """Fit every layer by cross-fitting, then the final estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The features (converted to float64).
        y : array-like of shape (n_samples,)
            The targets.
        sample_weight : array-like of shape (n_samples,), optional
            Row weights, passed to every fit as scikit-learn's stacking passes them:
            each base estimator's fit on a fold's training rows and on all rows, and
            the final estimator's (every estimator must take ``sample_weight``; the
            folds do not depend on the weights).

        Returns
        -------
        self

        Raises
        ------
        PartitionTaskError
            A base estimator failed; the message names the layer, the estimator and
            the fold (``"all rows"`` for the refit). The shared inputs are removed.
        """
        self._check_params()
        layers = _check_layers(self.layers)
        X_in, X = X, _as_matrix(X)
        y = column_or_1d(y, warn=True)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}.")
        targets = self._targets(y)
        sess = session(self.backend, workers=self.workers)
        # Before the session starts its workers (a bad cv costs no pool): sharing needs
        # no open backend, except MPI's, which opens on its first collective.
        folds = self._folds(X, targets, sess)
        final = clone(self.final_estimator) if self.final_estimator is not None else None
        final = final if final is not None else self._default_final()
        weights = _sample_weight(sample_weight, X.shape[0], layers, final)
        self.n_features_in_ = X.shape[1]
        self._set_feature_names(X_in)
        self.stack_method_ = [self._methods(layer) for layer in layers]
        self.layers_: list[dict[str, Any]] = []
        features = X
        # Leaving the block closes the session first, then removes the shared files,
        # whatever ended the fit.
        with (
            SharedArrays(self.cache_dir) as shared,
            sess,
        ):
            y_path = shared.write("y", targets)
            fold_paths = [
                (shared.write(f"fold{k}_train", train), shared.write(f"fold{k}_test", test))
                for k, (train, test) in enumerate(folds)
            ]
            X_path = shared.write("layer0_X", X)
            w_path = None if weights is None else shared.write("sample_weight", weights)
            for number, (layer, methods) in enumerate(zip(layers, self.stack_method_, strict=True)):
                fitted, predictions = run_layer(
                    layer=number,
                    estimators=layer,
                    methods=methods,
                    X_path=X_path,
                    y_path=y_path,
                    folds=fold_paths,
                    session=sess,
                    retries=self.retries,
                    weights_path=w_path,
                )
                self.layers_.append(
                    {name: estimator for (name, _), estimator in zip(layer, fitted, strict=True)}
                )
                features = self._out_of_fold(predictions, methods, folds, X)
                if number + 1 < len(layers):
                    X_path = shared.write(f"layer{number + 1}_X", features)
        extra = {} if weights is None else {"sample_weight": weights}
        self.final_estimator_ = final.fit(features, targets, **extra)
        return self

    def _out_of_fold(
        self,
        predictions: list[list[np.ndarray]],
        methods: list[str],
        folds: list[tuple[np.ndarray, np.ndarray]],
        X: np.ndarray,
    ) -> np.ndarray:
        """The next layer's features: each estimator's held-out predictions in row
        order (then ``X`` with ``passthrough``)."""
        blocks = []
        for per_fold, method in zip(predictions, methods, strict=True):
            first = output_columns(per_fold[0], method, self._nclasses())
            block = np.empty((X.shape[0], first.shape[1]), dtype=np.float64)
            for (_, test), output in zip(folds, per_fold, strict=True):
                block[test] = output_columns(output, method, self._nclasses())
            blocks.append(block)
        if self.passthrough:
            blocks.append(X)
        return np.hstack(blocks)

    def _set_feature_names(self, X: Any) -> None:
        names = _feature_names(X)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _check_input_names(self, X: Any) -> None:
        """As scikit-learn's estimators: columns of a frame must be those of fit, in
        order (the arrays are used by position, so other names would predict from
        the wrong columns); a frame against an array fit, or the reverse, warns."""
        fitted = getattr(self, "feature_names_in_", None)
        names = _feature_names(X)
        kind = type(self).__name__
        if fitted is not None and names is not None:
            if not np.array_equal(fitted, names):
                unexpected = [n for n in names if n not in set(fitted)]
                missing = [n for n in fitted if n not in set(names)]
                detail = f" Unseen at fit: {unexpected}." if unexpected else ""
                detail += f" Seen at fit, missing now: {missing}." if missing else ""
                raise ValueError(
                    "The feature names should match those that were passed during fit "
                    f"({list(fitted)}), in the same order; got {list(names)}.{detail}"
                )
        elif fitted is not None:
            warnings.warn(
                f"X does not have valid feature names, but {kind} was fitted with feature names",
                UserWarning,
                stacklevel=3,
            )
        elif names is not None:
            warnings.warn(
                f"X has feature names, but {kind} was fitted without feature names",
                UserWarning,
                stacklevel=3,
            )

    def transform(self, X: Any) -> np.ndarray:
        """The features the final estimator sees for ``X``: the last layer's outputs
        (then ``X`` with ``passthrough``), from the all-rows fits.

        An ``X`` of more than 32 MiB (as float64) is split into blocks of rows of at
        most 32 MiB (the split depends on the shape of ``X`` alone) that run on
        ``backend``, ``X`` written once to a shared file that the workers memory-map:
        the results are the same bits on every backend and worker count. A smaller
        ``X`` is computed here, in one block.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_stacked_features)
        """
        check_is_fitted(self, "final_estimator_")
        self._check_input_names(X)
        X = _as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but the ensemble was fitted with "
                f"{self.n_features_in_}."
            )
        task = StackTransform(
            layers=tuple(tuple(fitted.values()) for fitted in self.layers_),
            methods=tuple(tuple(methods) for methods in self.stack_method_),
            nclasses=self._nclasses(),
            passthrough=self.passthrough,
        )
        # The blocks depend on the shape of X alone and each block is computed the
        # same way wherever it runs, so every backend and worker count gives the same
        # bits. One block (small X) runs here: starting workers would cost more.
        blocks = row_blocks(*X.shape)
        sess = session(self.backend, workers=self.workers) if len(blocks) > 1 else None
        if sess is None or sess.name == "serial":  # here, without the shared file
            # One BLAS thread, as every engine task runs (a product over many rows
            # rounds differently with 2 threads): the same bits as on workers.
            with single_threaded_blas():
                return np.vstack([task.rows(X[start:stop]) for start, stop in blocks])
        return run_transform(task, X, session=sess, cache_dir=self.cache_dir, retries=self.retries)


_PARAMETERS_DOC = """
    layers : list of list of (str, estimator)
        The layers, first to last, each a list of named scikit-learn estimators (a
        single list of pairs is one layer). Estimators are cloned, never modified.
    final_estimator : estimator or None
        Fitted on the last layer's out-of-fold predictions. ``None``: {final}.
    cv : int, scikit-learn splitter or iterable of (train, test)
        The folds: an int K gives {kfold} (unshuffled, as scikit-learn's ``check_cv``,
        unless ``random_state`` is set); a splitter (``KFold(5, shuffle=True,
        random_state=0)``) or a list of (train, test) index arrays must hold out every
        row exactly once. The folds are drawn once, on the driver (rank 0 under MPI,
        which gives them to every rank), and shared by all layers.
    random_state : int or None
        With an int ``cv``: shuffle the rows before splitting, with this seed (a
        splitter carries its own seed).{method}
    passthrough : bool
        Whether every layer after the first, and the final estimator, also receive
        the original features (after the predictions, as scikit-learn).
    backend : str, Session, distributed.Client or None
        Where the fits run: ``"serial"``, ``"threads"``, ``"processes"`` (the default;
        scripts need ``if __name__ == "__main__":``), ``"dask"`` or an open
        :func:`shardfit.engine.session`. Workers must share this machine's filesystem.
    workers : int or None
        Workers for a backend this estimator starts (``None``: one per core).
    cache_dir : str, Path or None
        Where to create the private directory of shared inputs (the system's
        temporary directory when ``None``). It is removed when ``fit`` ends, however
        it ends.
    retries : int
        Extra attempts for a fit whose worker process dies or that raises.
"""

_ATTRIBUTES_DOC = """
    layers_ : list of dict
        Per layer, the estimators refitted on all rows, by name.
    stack_method_ : list of list of str
        The method each estimator's features come from.
    final_estimator_ : estimator
        The fitted final estimator.
    n_features_in_ : int
        The number of input features.
    feature_names_in_ : ndarray of str
        The column names of ``X`` at fit, when it was a frame with string names (then
        prediction checks that a frame has the same columns in the same order).
"""

_NOT_SAVED = """
    The fitted ensemble holds scikit-learn objects; shardfit does not save it (it
    saves nothing with pickle by default). Prediction from an ``X`` of more than
    32 MiB runs on ``backend`` in blocks of rows, ``X`` shared as for fitting; a
    smaller ``X`` is predicted here, on the driver.
"""


class StackingEnsembleClassifier(ClassifierMixin, _StackingEnsemble):
    """A stacked ensemble of classifiers, cross-fitted in parallel on shared memory.

    Parameters
    ----------{params}
    Attributes
    ----------
    classes_ : ndarray
        The class labels.{attributes}
    Notes
    -----{not_saved}
    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> model = StackingEnsembleClassifier(
    ...     [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(random_state=0))],
    ...     backend="serial",
    ... ).fit(X, y)
    >>> model.predict_proba(X).shape
    (200, 2)
    """

    _is_classifier = True

    def __init__(
        self,
        layers: Any,
        *,
        final_estimator: Any = None,
        cv: Any = 5,
        random_state: int | None = None,
        stack_method: str = "auto",
        passthrough: bool = False,
        backend: Any = None,
        workers: int | None = None,
        cache_dir: str | Path | None = None,
        retries: int = 1,
    ) -> None:
        self.layers = layers
        self.final_estimator = final_estimator
        self.cv = cv
        self.random_state = random_state
        self.stack_method = stack_method
        self.passthrough = passthrough
        self.backend = backend
        self.workers = workers
        self.cache_dir = cache_dir
        self.retries = retries

    def _default_final(self) -> Any:
        return LogisticRegression()

    def _targets(self, y: Any) -> np.ndarray:
        check_classification_targets(y)
        # Encoded 0..k-1 as scikit-learn's stacking does: base and final estimators
        # learn codes, and predict maps them back.
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y must hold at least 2 classes. Got {self.classes_!r}.")
        return codes.astype(np.int64)

    def _nclasses(self) -> int:
        return len(self.classes_)

    def _methods(self, layer: Layer) -> list[str]:
        allowed = ("auto", *_CLASSIFIER_METHODS)
        if self.stack_method not in allowed:
            raise ValueError(
                f"The 'stack_method' parameter must be one of {allowed}. "
                f"Got {self.stack_method!r} instead."
            )
        methods = []
        for name, estimator in layer:
            wanted = _CLASSIFIER_METHODS if self.stack_method == "auto" else (self.stack_method,)
            found = [method for method in wanted if hasattr(estimator, method)]
            if not found:
                raise ValueError(f"Estimator {name!r} has none of the methods {wanted}.")
            methods.append(found[0])
        return methods

    def predict(self, X: Any) -> np.ndarray:
        """The final estimator's predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        codes = self.final_estimator_.predict(self.transform(X))
        return self.classes_[np.asarray(codes, dtype=np.intp)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """The final estimator's class probabilities, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return self.final_estimator_.predict_proba(self.transform(X))


class StackingEnsembleRegressor(RegressorMixin, _StackingEnsemble):
    """A stacked ensemble of regressors, cross-fitted in parallel on shared memory.

    Parameters
    ----------{params}
    Attributes
    ----------{attributes}
    Notes
    -----{not_saved}
    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.neighbors import KNeighborsRegressor
    >>> X, y = make_regression(n_samples=200, random_state=0)
    >>> model = StackingEnsembleRegressor(
    ...     [("ridge", Ridge()), ("knn", KNeighborsRegressor())], backend="serial"
    ... ).fit(X, y)
    >>> model.predict(X).shape
    (200,)
    """

    def __init__(
        self,
        layers: Any,
        *,
        final_estimator: Any = None,
        cv: Any = 5,
        random_state: int | None = None,
        passthrough: bool = False,
        backend: Any = None,
        workers: int | None = None,
        cache_dir: str | Path | None = None,
        retries: int = 1,
    ) -> None:
        self.layers = layers
        self.final_estimator = final_estimator
        self.cv = cv
        self.random_state = random_state
        self.passthrough = passthrough
        self.backend = backend
        self.workers = workers
        self.cache_dir = cache_dir
        self.retries = retries

    def _default_final(self) -> Any:
        return RidgeCV()

    def _targets(self, y: Any) -> np.ndarray:
        return np.asarray(y, dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The final estimator's predictions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.final_estimator_.predict(self.transform(X))


StackingEnsembleClassifier.__doc__ = (StackingEnsembleClassifier.__doc__ or "").format(
    params=_PARAMETERS_DOC.format(
        final="``LogisticRegression()``",
        kfold="``StratifiedKFold(K)``",
        method=(
            "\n    stack_method : {'auto', 'predict_proba', 'decision_function', 'predict'}"
            "\n        Which output of each estimator becomes features; ``'auto'`` takes the"
            "\n        first of ``predict_proba``, ``decision_function``, ``predict`` it has."
            "\n        A binary classifier's probabilities give one column (the positive class)."
        ),
    ),
    attributes=_ATTRIBUTES_DOC,
    not_saved=_NOT_SAVED,
)
StackingEnsembleRegressor.__doc__ = (StackingEnsembleRegressor.__doc__ or "").format(
    params=_PARAMETERS_DOC.format(final="``RidgeCV()``", kfold="``KFold(K)``", method=""),
    attributes=_ATTRIBUTES_DOC,
    not_saved=_NOT_SAVED,
)
