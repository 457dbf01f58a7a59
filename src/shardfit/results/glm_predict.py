"""Predictions of a fitted GLM: the mean or the linear predictor, in memory or Parquet.

The linear part ``x'b`` is the linear models' (same encoding, same row-by-row sums, so
bitwise the same on every backend); the fit's offset and exposure columns are read
from the new data and added (``log(exposure)``), and ``which="mean"`` applies the
inverse link. Out of core (``out=``) each worker writes its partition's part file, as
:mod:`shardfit.results.prediction_output` describes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shardfit.engine import map_partitions
from shardfit.models.links import Link
from shardfit.results.predict import _gather, _in_memory_backend, _source
from shardfit.results.prediction_output import PredictionOutput, write_predictions
from shardfit.results.prediction_tasks import (
    Outputs,
    PredictionModel,
    PredictTask,
    prediction_model,
    warn_dropped,
)

__all__ = ["GLMPredictionModel", "predict_glm"]

Which = Literal["mean", "linear"]


@dataclass(frozen=True, eq=False)
class GLMPredictionModel(PredictionModel):
    """A prediction model that maps the linear predictor through the inverse link."""

    link: Link | None = None
    which: Which = "mean"

    def columns(
        self, X: np.ndarray, outputs: Outputs, offset: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        linear = super().columns(X, "mean", offset)["predicted"]
        if self.which == "linear" or self.link is None:
            return {"predicted": linear}
        return {"predicted": np.asarray(self.link.inverse(linear), dtype=np.float64)}


def predict_glm(
    results: Any,
    data: Any,
    *,
    which: Which = "mean",
    out: str | os.PathLike[str] | None = None,
    unseen: Literal["raise", "zero"] = "raise",
    backend: Any = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> np.ndarray | PredictionOutput:
    """Predict from a fitted GLM on new data of any size.

    Parameters
    ----------
    results : GLMResults
    data : DataFrame, pyarrow.Table, Source, path, glob or ndarray
        Rows with the predictors, and the offset/exposure columns if the fit had them.
    which : {"mean", "linear"}
        The mean ``g^{-1}(x'b + offset)`` or the linear predictor ``x'b + offset``.
    out, unseen, backend, workers, overwrite, progress
        As for :func:`shardfit.results.predict.predict`.

    Returns
    -------
    numpy.ndarray or PredictionOutput
        The predictions of the kept rows in source order, or what was written.
    """
    if which not in ("mean", "linear"):
        raise ValueError(
            f"The 'which' parameter of predict must be 'mean' or 'linear'. Got {which!r} instead."
        )
    if unseen not in ("raise", "zero"):
        raise ValueError(
            f"The 'unseen' parameter of predict must be 'raise' or 'zero'. Got {unseen!r} instead."
        )
    source, _ = _source(results, data)
    base = prediction_model(results, 0.05)
    model = GLMPredictionModel(
        spec=base.spec,
        kept=base.kept,
        params=base.params,
        cov=base.cov,
        scale=base.scale,
        crit=base.crit,
        link=results.family.link,
        which=which,
    )
    if out is not None:
        return write_predictions(
            model,
            source,
            Path(out),
            outputs="mean",
            unseen=unseen,
            overwrite=overwrite,
            backend=backend,
            workers=workers,
            progress=progress,
        )
    parts = map_partitions(
        PredictTask(model, "mean", unseen),
        source,
        backend=_in_memory_backend(backend, data),
        workers=workers,
        progress=progress,
        pass_name="predict",
    )
    values, _, counts = _gather(parts or [], ("predicted",))
    warn_dropped(counts, source.name)
    return values["predicted"]
