"""Review of the results layer (session 12): damaged results files are refused naming
the file, and prediction results answer to statsmodels' names."""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.errors import ReadError
from shardfit.results.io import load_results

FORMULA = "y ~ x1 + x2 + C(g)"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(12)
    n = 300
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "g": rng.choice(list("abc"), n),
            "e": rng.uniform(0.5, 3.0, n),
            "cl": rng.integers(0, 15, n),
        }
    )
    eta = 0.3 + 0.5 * data["x1"] - 0.2 * data["x2"] + 0.4 * (data["g"] == "b")
    data["y"] = eta + rng.normal(size=n)
    data["count"] = rng.poisson(np.exp(eta) * data["e"])
    return data


@pytest.fixture(scope="module")
def saved(frame: pd.DataFrame, tmp_path_factory) -> tuple[object, dict]:
    """An OLS fit, and its saved document."""
    results = shardfit.ols(FORMULA, frame).fit(backend="serial")
    path = results.save(tmp_path_factory.mktemp("saved") / "ols.json")
    return results, json.loads(path.read_text())


def test_a_binary_file_is_refused_naming_it(tmp_path) -> None:
    # A pickle (or any binary file) given to load_results: it raised a bare
    # UnicodeDecodeError ("'utf-8' codec can't decode byte 0x80 in position 0")
    # that named no file; it is never unpickled.
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"params": [1.0, 2.0]}))
    with pytest.raises(ReadError, match=r"model\.pkl is not a shardfit results file"):
        load_results(path)


def test_a_damaged_design_spec_is_refused_naming_the_file(saved, tmp_path) -> None:
    # It raised DesignError("unsupported design spec version None"), naming no file.
    _, document = saved
    document = json.loads(json.dumps(document))
    document["fields"]["spec"]["__design_spec__"] = {"formula": FORMULA}
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ReadError, match=r"damaged\.json: cannot rebuild LinearResults"):
        load_results(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        # A list where an array belongs loaded, and params came back as int64 [1, 2, ...].
        ("params_array", [1, 2, 3, 4, 5], "'params_array' is not an array"),
        # A covariance of the wrong size loaded, and bse failed later, far from the file.
        (
            "cov_array",
            {"__ndarray__": {"dtype": "float64", "shape": [2, 2], "data": [1.0, 0, 0, 1.0]}},
            r"'cov_array' has shape \(2, 2\); 5 column names need \(5, 5\)",
        ),
        ("spec", {"formula": FORMULA}, "'spec' is not a design spec"),
    ],
)
def test_fields_of_the_wrong_kind_or_shape_are_refused(
    saved, tmp_path, field: str, value: object, message: str
) -> None:
    _, document = saved
    document = json.loads(json.dumps(document))
    document["fields"][field] = value
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    expected = rf"edited\.json: cannot rebuild LinearResults: .*{message}"
    with pytest.raises(ReadError, match=expected):
        load_results(path)


def test_the_unedited_document_still_loads_bitwise(saved, tmp_path) -> None:
    results, document = saved
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(document))
    loaded = load_results(path)
    for item in fields(results):
        ours, theirs = getattr(results, item.name), getattr(loaded, item.name)
        if isinstance(ours, np.ndarray):
            assert ours.tobytes() == theirs.tobytes(), item.name
        elif not (isinstance(ours, float) and np.isnan(ours)):
            assert ours == theirs, item.name


def test_linear_prediction_results_have_statsmodels_names(frame: pd.DataFrame) -> None:
    # statsmodels' PredictionResults has predicted, se, var_pred and var_pred_mean, and takes
    # conf_int(obs, alpha) positionally; shardfit's raised AttributeError / TypeError.
    ours = shardfit.ols(FORMULA, frame).fit(backend="serial").get_prediction(frame.iloc[:20])
    theirs = smf.ols(FORMULA, frame).fit().get_prediction(frame.iloc[:20])
    names = ("predicted", "predicted_mean", "se", "se_mean", "var_pred", "var_pred_mean", "se_obs")
    for name in names:
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-10)
    np.testing.assert_allclose(ours.conf_int(True, 0.1), theirs.conf_int(True, 0.1), rtol=1e-10)
    np.testing.assert_allclose(ours.conf_int(False, 0.1), theirs.conf_int(False, 0.1), rtol=1e-10)


def test_glm_prediction_results_have_var_pred(frame: pd.DataFrame, tmp_path) -> None:
    # var_pred (statsmodels' name on both scales; var_pred_mean on the mean's) was
    # missing; checked after a save and load of a
    # cluster-robust Poisson fit with exposure, new exposures given in the data.
    formula = "count ~ x1 + x2 + C(g)"
    fit = shardfit.glm(formula, frame, family="poisson", exposure="e").fit(
        backend="serial", cov_type="cluster", cov_kwds={"groups": "cl"}
    )
    loaded = load_results(fit.save(tmp_path / "poisson.json"))
    reference = smf.glm(formula, frame, family=sm.families.Poisson(), exposure=frame["e"]).fit(
        cov_type="cluster", cov_kwds={"groups": frame["cl"].to_numpy()}
    )
    new = frame.iloc[:25].assign(e=np.linspace(0.5, 2.0, 25))
    for which in ("mean", "linear"):
        ours = loaded.get_prediction(new, which=which)
        theirs = reference.get_prediction(new, exposure=new["e"], which=which)
        np.testing.assert_allclose(ours.var_pred, theirs.var_pred, rtol=1e-10)
        np.testing.assert_allclose(ours.var_pred_mean, theirs.se**2, rtol=1e-10)
        np.testing.assert_allclose(
            ours.summary_frame(alpha=0.1).to_numpy(),
            theirs.summary_frame(alpha=0.1).to_numpy(),
            rtol=1e-10,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no row is dropped
        np.testing.assert_array_equal(loaded.predict(new), fit.predict(new))
