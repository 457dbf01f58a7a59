"""Review of saving and loading results (session 15).

A results file read in a fresh process predicts bitwise as the fit did (and as
statsmodels does, to rounding). A damaged or hand-edited file is refused at load with
one ReadError naming the file and the field; before, many such files loaded and failed
later, far from the file (``nobs: "abc"`` in ``summary()``), raised bare tracebacks
(OverflowError, RecursionError), or gave wrong numbers silently (names reordered: every
estimate labelled as another column's; ``converged: "false"`` read as True).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import shardfit
from shardfit.errors import ReadError
from shardfit.results.io import load_results
from shardfit.results.sumstats import SumstatsFitResult, SumstatsScanResult

# An aliased column (x12: NaN estimate), stateful transforms, a unicode column name,
# integer and boolean levels.
FORMULA = "y ~ x1 + x2 + x12 + center(x3) + scale(x4) + C(g) + C(k) + C(b) + Q('dé ñ')"


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n) * 1e-150,
            "x3": rng.normal(3.0, 2.0, n),
            "x4": rng.normal(size=n) * 1e150,
            "g": rng.choice(["a", "b'c", "日本"], n),
            "k": rng.choice([10, 20, 30], n),
            "b": rng.choice([True, False], n),
            "dé ñ": rng.normal(size=n),
        }
    )
    data["x12"] = data["x1"] + 2 * data["x3"]
    data["y"] = 1 + data["x1"] + 0.5 * (data["g"] == "a") + data["k"] / 10 + rng.normal(size=n)
    return data


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame(400, 15)


@pytest.fixture(scope="module")
def fitted(frame: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the aliased column
        return shardfit.ols(FORMULA, frame).fit(backend="serial", rank_deficient="drop")


@pytest.fixture(scope="module")
def document(fitted, tmp_path_factory) -> dict:
    path = fitted.save(tmp_path_factory.mktemp("saved") / "ols.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _statsmodels_fitted(frame: pd.DataFrame, new: pd.DataFrame) -> np.ndarray:
    """statsmodels' predictions for ``new`` from a fit of the same column space: x2 and
    x4 rescaled to order 1 (statsmodels' pinv would treat a 1e-150 column as zero next
    to a 1e150 one) and the aliased x12 left out; rescaling and dropping an aliased
    column change no fitted value."""

    def rescaled(data: pd.DataFrame) -> pd.DataFrame:
        return data.assign(x2=data["x2"] * 1e150, x4=data["x4"] * 1e-150)

    formula = "y ~ x1 + x2 + x3 + x4 + C(g) + C(k) + C(b) + Q('dé ñ')"
    return smf.ols(formula, rescaled(frame)).fit().predict(rescaled(new)).to_numpy()


def test_a_fresh_process_predicts_bitwise_and_as_statsmodels(frame, fitted, tmp_path) -> None:
    path = fitted.save(tmp_path / "ols.json")
    new = _frame(60, 16)
    new.to_parquet(tmp_path / "new.parquet")
    script = (
        "import sys, warnings, numpy as np, pandas as pd, shardfit\n"
        "warnings.simplefilter('ignore')\n"
        "r = shardfit.load_results(sys.argv[1])\n"
        "new = pd.read_parquet(sys.argv[2])\n"
        "frame = r.get_prediction(new).summary_frame(alpha=0.1)\n"
        "np.save(sys.argv[3], np.column_stack([np.asarray(r.predict(new)), frame.to_numpy()]))\n"
        "np.save(sys.argv[4], np.column_stack([r.params, r.bse, r.conf_int().to_numpy()]))\n"
        "open(sys.argv[5], 'w', encoding='utf-8').write(str(r.summary()))\n"
    )
    out = [tmp_path / "pred.npy", tmp_path / "est.npy", tmp_path / "summary.txt"]
    subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "new.parquet"), *map(str, out)],
        check=True,
        capture_output=True,
    )
    new = pd.read_parquet(tmp_path / "new.parquet")
    here = fitted.get_prediction(new).summary_frame(alpha=0.1).to_numpy()
    expected = np.column_stack([np.asarray(fitted.predict(new)), here])
    assert np.load(out[0]).tobytes() == expected.tobytes()
    estimates = np.column_stack(
        [fitted.params, fitted.bse, fitted.conf_int().to_numpy()]
    )  # NaN for the aliased x12
    assert np.load(out[1]).tobytes() == estimates.tobytes()
    assert out[2].read_text(encoding="utf-8") == str(fitted.summary())
    # And the predictions are statsmodels' (an independent fit of the same design).
    np.testing.assert_allclose(expected[:, 0], _statsmodels_fitted(frame, new), rtol=1e-9)


def _edited(document: dict, edit) -> str:
    copy = json.loads(json.dumps(document))
    edit(copy)
    return json.dumps(copy)


def _set(field: str, value):
    return lambda d: d["fields"].__setitem__(field, value)


def _set_array(field: str, **changes):
    return lambda d: d["fields"][field]["__ndarray__"].update(changes)


def _reverse_names(d: dict) -> None:
    d["fields"]["names"]["__tuple__"].reverse()


def _spec(field: str, value):
    return lambda d: d["fields"]["spec"]["__design_spec__"].__setitem__(field, value)


EDITS = [
    # Loaded, then summary() raised ValueError "Cannot specify ',' with 's'".
    ("nobs text", _set("nobs", "abc"), r"field 'nobs' is not an integer"),
    # Loaded, then summary() raised OverflowError.
    ("nobs 10**400", _set("nobs", 10**400), r"field 'nobs' is not an integer"),
    # Loaded, then summary() raised TypeError.
    ("ssr text", _set("ssr", "1.0"), r"field 'ssr' is not a number"),
    ("rows_dropped list", _set("rows_dropped", [1, 2]), "'rows_dropped' is not an object"),
    ("use_t text", _set("use_t", "no"), r"field 'use_t' is not true or false"),
    # Loaded: a constant index outside the columns.
    ("const_idx 99", _set("const_idx", 99), r"'const_idx' is 99, not a column of the"),
    # Loaded silently: every estimate labelled as another column's.
    ("names reversed", _reverse_names, r"field 'names' .* is not the design spec's columns"),
    # Loaded as the tuple of the string's characters.
    ("tuple of a string", _set("names", {"__tuple__": "abc"}), "does not hold a list"),
    # Raised a bare OverflowError from load_results.
    (
        "params 10**400",
        lambda d: d["fields"]["params_array"]["__ndarray__"]["data"].__setitem__(0, 10**400),
        "int too large to convert to float",
    ),
    (
        "int64 overflow",
        _set_array("cov_array", dtype="int64", data=[2**70] * 256, shape=[16, 16]),
        "not 64-bit integers",
    ),
    # Loaded: reshape(-1) took any length.
    ("shape -1", _set_array("params_array", shape=[-1]), "is not a list of sizes"),
    # Loaded, then predict raised a DesignError on formula '5' far from the file.
    ("spec formula 5", _spec("formula", 5), "design spec field 'formula' is not text"),
    (
        "spec numeric_fill list",
        _spec("numeric_fill", [1.0]),
        "design spec field 'numeric_fill' is not an object of numbers",
    ),
    # Said "fields unknown to LinearResults: None".
    ("no fields", lambda d: d.pop("fields"), "'fields' of LinearResults is not a JSON object"),
    # Loaded: JSON's true equals 1 in Python.
    ("version true", lambda d: d.__setitem__("version", True), "format version True"),
]


@pytest.mark.parametrize(("label", "edit", "message"), EDITS, ids=[e[0] for e in EDITS])
def test_an_edited_file_is_refused_at_load_naming_file_and_field(
    document, tmp_path, label: str, edit, message: str
) -> None:
    path = tmp_path / "edited.json"
    path.write_text(_edited(document, edit), encoding="utf-8")
    with pytest.raises(ReadError, match=r"edited\.json.*" + message) as raised:
        load_results(path)
    assert "\n" not in str(raised.value)


def test_json_nested_too_deeply_is_a_read_error(tmp_path) -> None:
    # json.load raised a bare RecursionError.
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ReadError, match=r"deep\.json .*nested too deeply"):
        load_results(path)
    with pytest.raises(ReadError, match=r"deep\.json"):
        SumstatsFitResult.load(path)


def test_the_unedited_document_loads_and_predicts_as_statsmodels(
    frame, fitted, document, tmp_path
) -> None:
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    loaded = load_results(path)
    assert loaded.params.to_numpy().tobytes() == fitted.params.to_numpy().tobytes()
    np.testing.assert_allclose(loaded.predict(frame), _statsmodels_fitted(frame, frame), rtol=1e-9)


def test_every_results_kind_loads_after_the_checks(frame, tmp_path) -> None:
    # The load-time checks (names = the spec's columns, shapes, types) accept what every
    # fit writes: the elastic net without its intercept column, SVD components, a
    # plain-columns DistributedModel without a spec.
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(len(frame)), frame["x1"], rng.normal(size=len(frame))])
    y = frame["y"].to_numpy()
    fits = {
        "enet": shardfit.elastic_net("y ~ x1 + C(g)", frame, alpha=0.1, backend="serial"),
        "enet0": shardfit.elastic_net("y ~ 0 + x1 + C(g)", frame, alpha=0.1, backend="serial"),
        "svd": shardfit.svd("x1 + x3 + C(g)", frame, center=True, backend="serial"),
        "dist": shardfit.DistributedModel(partitions=2, alpha=0.01).fit(
            [(y[:200], X[:200]), (y[200:], X[200:])], backend="serial"
        ),
        "glm": shardfit.glm("k ~ x1 + C(g)", frame, family="poisson").fit(backend="serial"),
    }
    for name, results in fits.items():
        loaded = load_results(results.save(tmp_path / f"{name}.json"))
        assert type(loaded) is type(results), name
    svd = fits["svd"]
    loaded = shardfit.SVDResults.load(tmp_path / "svd.json")  # had no load()
    assert loaded.singular_values.tobytes() == svd.singular_values.tobytes()
    design = pd.get_dummies(frame["g"], drop_first=True, dtype=float)
    centred = np.column_stack([frame["x1"], frame["x3"], design]).astype(float)
    centred -= centred.mean(axis=0)
    np.testing.assert_allclose(
        loaded.singular_values[: centred.shape[1]],
        np.linalg.svd(centred, compute_uv=False),
        rtol=1e-10,
    )


# -- summary-statistic fits and scans --------------------------------------------------


@pytest.fixture()
def sumstats_document(tmp_path) -> dict:
    result = SumstatsFitResult(
        params=np.array([0.1 + 0.2, -0.0]),
        param_names=("a", "b"),
        loss=5e-324,
        grad=np.array([1e-300, np.inf]),
        iterations=3,
        npasses=4,
        loss_history=np.array([1.0, 5e-324]),
        converged=False,
        method="adam",
        message="maxiter",
    )
    path = result.save(tmp_path / "fit.json")
    loaded = SumstatsFitResult.load(path)
    for name in ("params", "grad", "loss_history"):
        assert getattr(loaded, name).tobytes() == getattr(result, name).tobytes()
    assert loaded.params[0] == 0.30000000000000004  # repr round trip, 17 digits
    return json.loads(path.read_text())


SUMSTATS_EDITS = [
    # bool("false") is True: a fit that did not converge loaded as converged.
    ("converged text", _set("converged", "false"), "'converged' is not bool"),
    # Loaded; params_dict silently dropped 'b' (zip).
    ("params short", _set("params", [1.0]), "1 params, 2 param_names"),
    # Loaded as the array of the string's digits [1, 2].
    ("params text", _set("params", "12"), "'params' is not a list of numbers"),
    # Raised a bare OverflowError.
    ("params 10**400", _set("params", [10**400, 1.0]), "too large for a float"),
    # Loaded as 2 (int(2.7)).
    ("iterations 2.7", _set("iterations", 2.7), "'iterations' is not int"),
    # Loaded as 1.5: save writes numbers as numbers, text only for nan and inf.
    ("loss word", _set("loss", "1.5"), "is not a number"),
]


@pytest.mark.parametrize(
    ("label", "edit", "message"), SUMSTATS_EDITS, ids=[e[0] for e in SUMSTATS_EDITS]
)
def test_an_edited_sumstats_fit_is_refused(
    sumstats_document, tmp_path, label: str, edit, message: str
) -> None:
    path = tmp_path / "edited.json"
    path.write_text(_edited(sumstats_document, edit))
    with pytest.raises(ReadError, match=r"edited\.json.*" + message):
        SumstatsFitResult.load(path)


def test_a_ragged_sumstats_scan_is_refused_naming_the_field(tmp_path) -> None:
    scan = SumstatsScanResult(
        points=np.array([[1.0, 2.0], [3.0, 4.0]]),
        losses=np.array([1.0, np.nan]),
        param_names=("a", "b"),
    )
    path = scan.save(tmp_path / "scan.json")
    loaded = SumstatsScanResult.load(path)
    assert loaded.points.tobytes() == scan.points.tobytes()
    assert loaded.best_index == 0 and loaded.best_loss == 1.0
    document = json.loads(path.read_text())
    # One row of 4 values: it was reshaped into 2 points of 2 and loaded silently.
    document["fields"]["points"] = [[1.0, 2.0, 3.0, 4.0]]
    path.write_text(json.dumps(document))
    with pytest.raises(ReadError, match=r"scan\.json.*'points' is not a list of 2-number lists"):
        SumstatsScanResult.load(path)
