"""statsmodels' results API on shardfit's results (session 12): ``conf_int(cols=)``,
``cov_params(r_matrix=, column=, scale=, cov_p=, other=)``, ``normalized_cov_params``,
GLM predict on data without the fit's exposure or offset column, the elastic net's
predict with ``offset=``/``exposure=``, and "Rows skipped" in the GLM summary's header.

Every number is compared with statsmodels' (fitted on the same rows) at rtol 1e-10.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.errors import DesignError

FORMULA = "y ~ x1 + x2"
RTOL = 1e-10


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1212)
    n = 200
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "e": rng.uniform(0.5, 3.0, n),
            "o": rng.normal(scale=0.3, size=n),
            "w": rng.uniform(0.5, 2.0, n),
        }
    )
    data["y"] = 0.3 + 0.5 * data["x1"] - 0.2 * data["x2"] + rng.normal(size=n)
    data["c"] = rng.poisson(np.exp(0.2 + 0.3 * data["x1"] - 0.1 * data["x2"]) * data["e"])
    return data


def _design(frame: pd.DataFrame) -> np.ndarray:
    # statsmodels on arrays: its cov_params(column=, r_matrix=) only work there (on a
    # formula fit its pandas wrapper forces a (k, k) frame and raises or broadcasts).
    return sm.add_constant(frame[["x1", "x2"]].to_numpy())


@pytest.fixture(scope="module")
def ols_pair(frame: pd.DataFrame):
    ours = shardfit.ols(FORMULA, frame).fit(backend="serial")
    theirs = sm.OLS(frame["y"].to_numpy(), _design(frame)).fit()
    return ours, theirs


@pytest.fixture(scope="module")
def poisson_pair(frame: pd.DataFrame):
    ours = shardfit.glm("c ~ x1 + x2", frame, family="poisson", exposure="e").fit(backend="serial")
    theirs = sm.GLM(
        frame["c"].to_numpy(),
        _design(frame),
        family=sm.families.Poisson(),
        exposure=frame["e"].to_numpy(),
    ).fit()
    return ours, theirs


# -- 1. conf_int(alpha, cols) ---------------------------------------------------------------
@pytest.mark.parametrize("pair", ["ols_pair", "poisson_pair"])
def test_conf_int_cols_are_statsmodels_rows(pair, request) -> None:
    # conf_int took no 'cols' (TypeError); statsmodels 0.14's conf_int(alpha, cols)
    # returns the rows of those columns (0.15 dropped the argument: its rows by slicing).
    ours, theirs = request.getfixturevalue(pair)
    expected = theirs.conf_int(alpha=0.1)[[2, 0]]
    got = ours.conf_int(0.1, cols=[2, 0])
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=RTOL)
    assert list(got.index) == ["x2", "Intercept"] and list(got.columns) == [0, 1]
    by_name = ours.conf_int(alpha=0.1, cols=["x2", "Intercept"])
    np.testing.assert_allclose(by_name.to_numpy(), expected, rtol=RTOL)
    np.testing.assert_allclose(ours.conf_int(cols=1).to_numpy(), theirs.conf_int()[[1]], rtol=RTOL)
    with pytest.raises(ValueError, match=r"cols: 'x9' is not a coefficient"):
        ours.conf_int(cols=["x9"])
    with pytest.raises(ValueError, match=r"cols: position 3 is out of range for 3"):
        ours.conf_int(cols=[3])


# -- 2. cov_params(r_matrix, column, scale, cov_p, other) -----------------------------------
@pytest.mark.parametrize("pair", ["ols_pair", "poisson_pair"])
def test_cov_params_arguments_equal_statsmodels(pair, request) -> None:
    # cov_params took no arguments (TypeError); statsmodels gives R C R', R C other',
    # a sub-block or one variance, and C from a given scale or matrix.
    ours, theirs = request.getfixturevalue(pair)
    R = np.array([[0.0, 1.0, -1.0], [1.0, 0.5, 0.0]])
    other = np.array([[0.0, 0.0, 1.0], [2.0, 0.0, 1.0]])
    block = ours.cov_params(column=[0, 2])
    np.testing.assert_allclose(block.to_numpy(), theirs.cov_params(column=[0, 2]), rtol=RTOL)
    assert list(block.index) == ["Intercept", "x2"] == list(block.columns)
    np.testing.assert_allclose(
        ours.cov_params(column=["Intercept", "x2"]).to_numpy(), block.to_numpy(), rtol=0
    )
    one = ours.cov_params(column=1)
    assert isinstance(one, float)
    np.testing.assert_allclose(one, theirs.cov_params(column=1), rtol=RTOL)
    np.testing.assert_allclose(
        ours.cov_params(r_matrix=R), theirs.cov_params(r_matrix=R), rtol=RTOL
    )
    single = ours.cov_params(r_matrix=R[0])
    assert isinstance(single, float)
    np.testing.assert_allclose(single, theirs.cov_params(r_matrix=R[0]), rtol=RTOL)
    np.testing.assert_allclose(
        ours.cov_params(r_matrix=R, other=other),
        theirs.cov_params(r_matrix=R, other=other),
        rtol=RTOL,
    )
    # A restriction string, as t_test takes: x1 - x2.
    np.testing.assert_allclose(
        ours.cov_params(r_matrix="x1 = x2"), theirs.cov_params(r_matrix=R[:1]), rtol=RTOL
    )
    np.testing.assert_allclose(
        ours.cov_params(scale=2.5).to_numpy(), theirs.cov_params(scale=2.5), rtol=RTOL
    )
    given = np.diag([1.0, 2.0, 3.0])
    np.testing.assert_allclose(
        ours.cov_params(r_matrix=R, cov_p=given),
        theirs.cov_params(r_matrix=R, cov_p=given),
        rtol=RTOL,
    )
    np.testing.assert_allclose(ours.cov_params().to_numpy(), theirs.cov_params(), rtol=RTOL)
    with pytest.raises(ValueError, match="give 'column' alone"):
        ours.cov_params(r_matrix=R, column=1)
    with pytest.raises(ValueError, match="'other' goes with 'r_matrix'"):
        ours.cov_params(other=other)
    with pytest.raises(ValueError, match=r"'r_matrix' has shape \(2,\)"):
        ours.cov_params(r_matrix=[1.0, 2.0])


def test_robust_cov_params_r_matrix_equals_statsmodels_and_scale_is_refused(frame) -> None:
    ours = shardfit.ols(FORMULA, frame).fit(backend="serial", cov_type="HC1")
    theirs = sm.OLS(frame["y"].to_numpy(), _design(frame)).fit(cov_type="HC1")
    R = np.array([[0.0, 1.0, -1.0], [0.0, 1.0, 1.0]])
    np.testing.assert_allclose(
        ours.cov_params(r_matrix=R), theirs.cov_params(r_matrix=R), rtol=RTOL
    )
    np.testing.assert_allclose(
        ours.cov_params(column=[1, 2]), theirs.cov_params(column=[1, 2]), rtol=RTOL
    )
    # statsmodels ignores scale for a robust covariance; shardfit says so.
    with pytest.raises(ValueError, match=r"cov_type='HC1', which has no scale to replace"):
        ours.cov_params(scale=2.0)


# -- 3. normalized_cov_params -----------------------------------------------------------------
def test_normalized_cov_params_equal_statsmodels(frame) -> None:
    # The attribute was missing (AttributeError); statsmodels' (X'WX)^-1, unscaled, is
    # the same whatever the cov_type.
    cases = [
        (
            shardfit.ols(FORMULA, frame).fit(backend="serial", cov_type="HC0"),
            smf.ols(FORMULA, frame).fit(cov_type="HC0"),
        ),
        (
            shardfit.wls(FORMULA, frame, weights="w").fit(backend="serial"),
            smf.wls(FORMULA, frame, weights=frame["w"]).fit(),
        ),
        (
            shardfit.glm("c ~ x1 + x2", frame, family="poisson", exposure="e").fit(
                backend="serial", cov_type="HC0"
            ),
            smf.glm("c ~ x1 + x2", frame, family=sm.families.Poisson(), exposure=frame["e"]).fit(
                cov_type="HC0"
            ),
        ),
        (
            shardfit.glm(FORMULA, frame, weights="w").fit(backend="serial"),
            smf.glm(FORMULA, frame, var_weights=frame["w"]).fit(),
        ),
    ]
    for ours, theirs in cases:
        got = ours.normalized_cov_params
        expected = theirs.normalized_cov_params
        pd.testing.assert_index_equal(got.index, expected.index)
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=RTOL)
        if ours.cov_type == "nonrobust":
            np.testing.assert_allclose(
                got.to_numpy() * ours.scale, theirs.cov_params().to_numpy(), rtol=RTOL
            )


# -- 4. GLM predict on data without the fit's exposure or offset column -------------------------
@pytest.mark.parametrize("kind", ["exposure", "offset"])
def test_glm_predict_names_a_missing_exposure_or_offset_column(frame, kind) -> None:
    # New data without the column said only "unknown column 'e' in partition ...", and
    # exposure=/offset= were refused for a formula fit. statsmodels' predict(new_frame)
    # silently uses exposure 1 / offset 0, but its exposure is an array outside the
    # data; shardfit's is a column of it, so its absence is an error naming the column,
    # and statsmodels' predict(new, exposure=...) call gives statsmodels' numbers.
    column = "e" if kind == "exposure" else "o"
    ours = shardfit.glm("c ~ x1 + x2", frame, family="poisson", **{kind: column}).fit(
        backend="serial"
    )
    theirs = smf.glm(
        "c ~ x1 + x2", frame, family=sm.families.Poisson(), **{kind: frame[column]}
    ).fit()
    new = frame[["x1", "x2"]].iloc[:25].copy()
    values = frame[column].iloc[:25].to_numpy() * 0.5 + 0.25
    with pytest.raises(
        DesignError, match=rf"with the {kind} column '{column}'.*pass predict's {kind}="
    ):
        ours.predict(new)
    with pytest.raises(DesignError, match=rf"the {kind} column '{column}'"):
        ours.get_prediction(new)
    expected = theirs.predict(new, **{kind: values})
    np.testing.assert_allclose(ours.predict(new, **{kind: values}), expected, rtol=RTOL)
    np.testing.assert_allclose(
        ours.predict(new, which="linear", **{kind: values}),
        theirs.predict(new, which="linear", **{kind: values}),
        rtol=RTOL,
    )
    frame_ours = ours.get_prediction(new, **{kind: values}).summary_frame()
    frame_theirs = theirs.get_prediction(new, **{kind: values}).summary_frame()
    np.testing.assert_allclose(frame_ours.to_numpy(), frame_theirs.to_numpy(), rtol=RTOL)
    # The column in the data gives the same numbers; both at once is ambiguous.
    with_column = new.assign(**{column: values})
    np.testing.assert_allclose(ours.predict(with_column), expected, rtol=RTOL)
    with pytest.raises(ValueError, match=rf"has this fit's {kind} column '{column}' as well"):
        ours.predict(with_column, **{kind: values})
    with pytest.raises(ValueError, match=rf"{kind}= needs one value per row \(25\)"):
        ours.predict(new, **{kind: values[:3]})
    other = "offset" if kind == "exposure" else "exposure"
    with pytest.raises(ValueError, match=rf"{other}= is given, but this fit has no {other}"):
        ours.predict(with_column, **{other: values})


# -- 5. ElasticNetResults.predict(offset=, exposure=) -------------------------------------------
def test_elastic_net_predicts_a_design_matrix_with_exposure_and_offset(frame) -> None:
    # predict(X, exposure=...) was a TypeError: a Poisson elastic net fitted with an
    # exposure could not predict a design matrix at another exposure.
    fit = shardfit.elastic_net(
        "c ~ x1 + x2", frame, family="poisson", exposure="e", alpha=0.01, l1_ratio=0.5
    )
    X = frame[["x1", "x2"]].to_numpy()[:30]
    exposure = frame["e"].to_numpy()[:30]
    offset = np.linspace(-0.2, 0.2, 30)
    params = np.r_[fit.intercept, fit.coef_array]
    reference = sm.GLM(np.zeros(30), sm.add_constant(X), family=sm.families.Poisson())
    for kwargs in (
        {"exposure": exposure},
        {"offset": offset},
        {"exposure": exposure, "offset": offset},
    ):
        expected = reference.predict(params, sm.add_constant(X), **kwargs)
        np.testing.assert_allclose(fit.predict(X, **kwargs), expected, rtol=RTOL)
        np.testing.assert_allclose(
            fit.predict(X, linear=True, **kwargs), np.log(expected), rtol=RTOL
        )
    # The formula path reads the exposure column: the same numbers.
    np.testing.assert_allclose(
        fit.predict(frame.iloc[:30]), fit.predict(X, exposure=exposure), rtol=RTOL
    )
    with pytest.raises(ValueError, match="a formula fit reads them from the new data"):
        fit.predict(frame.iloc[:30], exposure=exposure)


# -- 6. "Rows skipped" in the GLM summary's header ---------------------------------------------
def test_glm_summary_header_shows_rows_skipped_as_the_linear_one(frame, tmp_path) -> None:
    # The GLM header had no "Rows skipped:" (only a note); the linear one has it.
    lines = frame[["x1", "x2", "y", "c", "e"]].iloc[:120].to_csv(index=False).splitlines()
    lines.insert(30, "1.0,2.0,3.0,4,1.5,an extra field")
    lines.insert(70, "1.0,2.0,3.0,4,1.5,another,one")
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    source = shardfit.read_csv(path, on_bad_lines="skip")
    glm = shardfit.glm("c ~ x1 + x2", source, family="poisson").fit(backend="serial")
    linear = shardfit.ols(FORMULA, source).fit(backend="serial")
    theirs = smf.glm("c ~ x1 + x2", frame.iloc[:120], family=sm.families.Poisson()).fit()
    np.testing.assert_allclose(glm.params.to_numpy(), theirs.params.to_numpy(), rtol=RTOL)
    assert glm.rows_skipped == 2 and glm.nobs == 120
    glm_header = dict(glm.summary().left)
    assert glm_header["Rows skipped:"] == dict(linear.summary().left)["Rows skipped:"] == "2"
    assert glm_header["Rows read:"] == "120" and glm_header["Rows dropped:"] == "0"
