"""Scheduling a stacking layer: shared inputs on disk, one engine job per fit.

A layer of a :mod:`shardfit.models.ensemble` stack is ``len(estimators) * (nfolds + 1)``
independent fits: each estimator on each fold's training rows (its predictions on the
held-out rows become the next layer's features) and once on all rows (the estimator
kept for prediction). They run as one :func:`~shardfit.engine.map_partitions` pass
whose "partitions" are :class:`FoldJob` descriptions, so every shardfit backend runs
them, a failure names the job (layer, estimator, fold), and a worker killed mid-fit
is handled as for any pass.

The inputs are shared, not shipped: :class:`SharedArrays` writes the layer's input
matrix, the targets and each fold's row indices once, as ``.npy`` files in a private
directory, and every job opens them with ``np.load(mmap_mode="r")``: worker processes
on this machine read the same pages of the OS page cache, and a job's message holds
only file names. The directory is removed whatever happens (normal end, an exception
in a job, ``KeyboardInterrupt``): the driver owns it and deletes it on leaving the
``with`` block, which also covers a worker killed while it held the files open (on
Linux a mapped file can be deleted; its pages go when the last mapping does).

Prediction from a large ``X`` (over :data:`PREDICT_BLOCK_BYTES`) is one pass too:
``X`` is shared the same way, each :class:`RowBlock` of rows is a job, and the
fitted estimators travel in the task (:class:`StackTransform`), which the processes
backend sends once per worker. The blocks depend on the shape of ``X`` alone and run
with one BLAS thread, so every backend gives the same bits.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import pyarrow as pa
from sklearn.base import clone

from shardfit.data.partition import Partition, ReadResult, Source
from shardfit.engine.run import map_partitions

__all__ = [
    "FoldJob",
    "JobResult",
    "RowBlock",
    "SharedArrays",
    "StackTransform",
    "fit_job",
    "output_columns",
    "row_blocks",
    "run_layer",
    "run_transform",
    "stack_features",
]

#: Prefix of the shared-input directories (tests and users can find leftovers by it).
CACHE_PREFIX = "shardfit-ensemble-"

#: Bytes of ``X`` per block (at most) when prediction is split over workers. Smaller
#: inputs are predicted in one block on the driver: starting worker processes takes
#: a second or two, more than predicting that many rows with most estimators.
PREDICT_BLOCK_BYTES = 32 * 2**20


class SharedArrays:
    """A private directory of read-only ``.npy`` inputs, removed on exit (always).

    Parameters
    ----------
    root : str, Path or None
        Where to create the directory (the system's temporary directory when
        ``None``). Workers must see it: any local backend does; a Dask cluster on
        other machines needs a shared filesystem here.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = root
        self.path: Path | None = None

    def __enter__(self) -> Self:
        root = None if self.root is None else str(self.root)
        self.path = Path(tempfile.mkdtemp(prefix=CACHE_PREFIX, dir=root))
        return self

    def write(self, name: str, array: np.ndarray) -> str:
        """Save ``array`` as ``<name>.npy`` (no pickle) and return its path."""
        if self.path is None:
            raise RuntimeError("SharedArrays.write needs an open directory (use 'with')")
        path = self.path / f"{name}.npy"
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        return str(path)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        path, self.path = self.path, None
        if path is None:
            return
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():  # pragma: no cover - a file held open on a platform that locks it
            warnings.warn(f"could not remove the ensemble cache {path}", stacklevel=2)


@dataclass(frozen=True)
class FoldJob(Partition):
    """One fit of a layer: an estimator on one fold's training rows, or on all rows.

    Attributes
    ----------
    layer : int
        The layer's position (0 is the first).
    name : str
        The estimator's name in its layer.
    estimator : object
        The unfitted scikit-learn estimator (cloned before fitting).
    fold : int or None
        The fold whose training rows to fit (``None``: all rows, no predictions).
    method : str
        The method whose output on the held-out rows is returned.
    X_path, y_path : str
        The shared ``.npy`` files of the layer's input and the targets.
    train_path, test_path : str or None
        The shared ``.npy`` files of the fold's row indices (``None`` for all rows).
    weights_path : str or None
        The shared ``.npy`` file of the sample weights, if any.
    """

    layer: int
    name: str
    estimator: Any
    fold: int | None
    method: str
    X_path: str
    y_path: str
    train_path: str | None = None
    test_path: str | None = None
    weights_path: str | None = None

    @property
    def key(self) -> str:
        """Names the job in progress events and errors."""
        where = "all rows" if self.fold is None else f"fold {self.fold}"
        return f"layer {self.layer}, estimator {self.name!r}, {where}"

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """The rows the job trains on, as one column ``row`` of indices."""
        if self.train_path is None:
            rows = np.arange(_open(self.y_path).shape[0])
        else:
            rows = np.asarray(_open(self.train_path))
        table = pa.table({"row": rows})
        return ReadResult(table.select(list(columns)) if columns is not None else table)


@dataclass
class JobResult:
    """What a job sends back: the fitted estimator (all-rows jobs) or the predictions
    on the held-out rows (fold jobs)."""

    estimator: Any = None
    predictions: np.ndarray | None = None


def _open(path: str) -> np.ndarray:
    """Map a shared input read-only; a worker that cannot see it says why."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"the ensemble's shared input {path} is not visible to this worker: workers "
            "must share the driver's filesystem (pass cache_dir= on a shared disk)"
        ) from error


def fit_job(job: FoldJob) -> JobResult:
    """Fit ``job.estimator`` on its rows (runs on a worker).

    The inputs are memory-mapped read-only; selecting a fold's training rows copies
    them, as scikit-learn's ``cross_val_predict`` does, while the all-rows fit reads
    the mapping itself.
    """
    X, y = _open(job.X_path), _open(job.y_path)
    w = None if job.weights_path is None else _open(job.weights_path)
    estimator = clone(job.estimator)
    if job.fold is None:
        estimator.fit(X, y, **({} if w is None else {"sample_weight": w}))
        return JobResult(estimator=estimator)
    assert job.train_path is not None and job.test_path is not None
    train, test = _open(job.train_path), _open(job.test_path)
    estimator.fit(X[train], y[train], **({} if w is None else {"sample_weight": w[train]}))
    predictions = getattr(estimator, job.method)(X[test])
    return JobResult(predictions=_align(estimator, predictions, job, y))


def _align(estimator: Any, predictions: Any, job: FoldJob, y: np.ndarray) -> np.ndarray:
    """Give a fold's class scores a column for every class (a training fold can miss
    one), with scikit-learn's filler: probability 0."""
    predictions = np.asarray(predictions)
    classes = getattr(estimator, "classes_", None)
    if job.method not in ("predict_proba", "decision_function") or classes is None:
        return predictions
    nclasses = int(np.max(y)) + 1  # the targets are encoded 0..k-1
    if len(classes) == nclasses:
        return predictions
    if job.method == "decision_function":
        raise ValueError(
            f"{job.key}: the training rows hold {len(classes)} of {nclasses} classes; "
            "decision_function scores cannot be completed (use more rows per fold, a "
            "stratified cv, or stack_method='predict_proba')"
        )
    full = np.zeros((predictions.shape[0], nclasses), dtype=predictions.dtype)
    full[:, np.asarray(classes, dtype=np.intp)] = predictions
    return full


def run_layer(
    *,
    layer: int,
    estimators: Sequence[tuple[str, Any]],
    methods: Sequence[str],
    X_path: str,
    y_path: str,
    folds: Sequence[tuple[str, str]],
    session: Any,
    retries: int,
    weights_path: str | None = None,
) -> tuple[list[Any], list[list[np.ndarray]]]:
    """Run every (estimator, fold) fit of a layer, and each all-rows fit, in one pass.

    Parameters
    ----------
    layer : int
        The layer's position, for names.
    estimators : sequence of (str, estimator)
        The layer's named, unfitted estimators.
    methods : sequence of str
        The method each estimator predicts with on held-out rows.
    X_path, y_path : str
        The shared input and target files.
    folds : sequence of (str, str)
        The shared train and test index files of each fold.
    session : Session
        An open engine session.
    retries : int
        Extra attempts for a job whose worker dies or whose fit raises.
    weights_path : str, optional
        The shared sample-weight file.

    Returns
    -------
    fitted : list
        Each estimator fitted on all rows.
    predictions : list of list of ndarray
        ``predictions[e][k]``: estimator ``e``'s output on fold ``k``'s held-out rows.

    Raises
    ------
    PartitionTaskError
        A fit failed; the message names the layer, the estimator and the fold.
    """
    jobs: list[FoldJob] = []
    for (name, estimator), method in zip(estimators, methods, strict=True):
        for fold, (train_path, test_path) in enumerate(folds):
            jobs.append(
                FoldJob(
                    layer,
                    name,
                    estimator,
                    fold,
                    method,
                    X_path,
                    y_path,
                    train_path,
                    test_path,
                    weights_path,
                )
            )
        jobs.append(
            FoldJob(layer, name, estimator, None, method, X_path, y_path, None, None, weights_path)
        )
    source = Source(f"layer {layer}", tuple(jobs), pa.schema([("row", pa.int64())]))
    # A failure raises PartitionTaskError whose message names the job's key. Under MPI
    # every rank runs the caller's script and goes on to the next layer and the final
    # estimator, so every rank needs the fitted estimators (allgather).
    results = map_partitions(
        fit_job,
        source,
        backend=session,
        retries=retries,
        pass_name=f"stack-layer-{layer}",
        allgather=True,
    )
    assert results is not None
    per = len(folds) + 1
    fitted = [results[e * per + len(folds)].estimator for e in range(len(estimators))]
    predictions = [
        [results[e * per + k].predictions for k in range(len(folds))]
        for e in range(len(estimators))
    ]
    return fitted, predictions


def output_columns(output: Any, method: str, nclasses: int) -> np.ndarray:
    """One estimator's output as feature columns; a binary classifier's probabilities
    keep the positive class only (the other column is one minus it), as scikit-learn."""
    output = np.asarray(output, dtype=np.float64)
    if output.ndim == 1:
        return output.reshape(-1, 1)
    if method == "predict_proba" and nclasses == 2:
        return output[:, 1:]
    return output


def stack_features(
    layers: Sequence[Sequence[Any]],
    methods: Sequence[Sequence[str]],
    nclasses: int,
    passthrough: bool,
    X: np.ndarray,
) -> np.ndarray:
    """The features the final estimator sees for the rows ``X``: each layer's
    outputs from the all-rows fits, layer after layer (then ``X`` with
    ``passthrough``). Row ``i`` of the result depends only on row ``i`` of ``X``."""
    features = X
    for fitted, layer_methods in zip(layers, methods, strict=True):
        blocks = [
            output_columns(getattr(estimator, method)(features), method, nclasses)
            for estimator, method in zip(fitted, layer_methods, strict=True)
        ]
        if passthrough:
            blocks.append(X)
        features = np.hstack(blocks)
    return features


def row_blocks(nrows: int, ncols: int) -> list[tuple[int, int]]:
    """Split the rows of an ``nrows`` x ``ncols`` float64 matrix into consecutive
    blocks of about equal size, each at most :data:`PREDICT_BLOCK_BYTES` (and at least
    one row). The split depends on the shape alone, so every backend and worker count
    computes the same blocks, and so the same numbers."""
    block_rows = max(1, PREDICT_BLOCK_BYTES // (8 * max(1, ncols)))
    count = max(1, -(-nrows // block_rows))
    bounds = [nrows * k // count for k in range(count + 1)]
    return list(itertools.pairwise(bounds))


@dataclass(frozen=True)
class RowBlock(Partition):
    """Rows ``start:stop`` of the shared matrix to predict from.

    Attributes
    ----------
    X_path : str
        The shared ``.npy`` file of the rows to predict.
    start, stop : int
        The block's rows.
    """

    X_path: str
    start: int
    stop: int

    @property
    def key(self) -> str:
        """Names the block in progress events and errors."""
        return f"prediction rows {self.start}:{self.stop}"

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """The block's row numbers, as one column ``row``."""
        table = pa.table({"row": np.arange(self.start, self.stop, dtype=np.int64)})
        return ReadResult(table.select(list(columns)) if columns is not None else table)


@dataclass(frozen=True)
class StackTransform:
    """The task of a prediction pass: :func:`stack_features` on one block of rows.

    The fitted estimators live in the task, which a backend ships once per worker
    and pass (not once per block); the rows are memory-mapped from the shared file.
    """

    layers: tuple[tuple[Any, ...], ...]
    methods: tuple[tuple[str, ...], ...]
    nclasses: int
    passthrough: bool

    def rows(self, X: np.ndarray) -> np.ndarray:
        """:func:`stack_features` of the rows ``X``."""
        # A C-ordered in-memory copy: estimators see the same kind of array wherever
        # a block runs (driver or worker), so the numbers cannot depend on where.
        X = np.array(X, dtype=np.float64, order="C")
        return stack_features(self.layers, self.methods, self.nclasses, self.passthrough, X)

    def __call__(self, block: RowBlock) -> np.ndarray:
        return self.rows(_open(block.X_path)[block.start : block.stop])


def run_transform(
    task: StackTransform, X: np.ndarray, *, session: Any, cache_dir: Any, retries: int
) -> np.ndarray:
    """:func:`stack_features` of ``X`` as one pass over its row blocks on ``session``
    (an unopened or open session), ``X`` written once to a private shared file."""
    with SharedArrays(cache_dir) as shared, session as sess:
        X_path = shared.write("predict_X", X)
        blocks = tuple(RowBlock(X_path, start, stop) for start, stop in row_blocks(*X.shape))
        source = Source("prediction rows", blocks, pa.schema([("row", pa.int64())]))
        # Every MPI rank returns the predictions (allgather), as every rank's script uses them.
        results = map_partitions(
            task, source, backend=sess, retries=retries, pass_name="stack-predict", allgather=True
        )
    assert results is not None
    return np.vstack(results)
