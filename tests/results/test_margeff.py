"""Marginal effects (``GLMResults.get_margeff``) against statsmodels' ``get_margeff``.

One Parquet file with several row groups, read partition by partition on the serial
backend; every number is compared with statsmodels' discrete models fitted on the
same rows in memory (columns matched by name: the two order a formula's terms
differently). A probit GLM's covariance is the expected information's, as
statsmodels' ``GLM``, where ``smf.probit`` uses the observed information: its
reference is ``smf.probit``'s margins with statsmodels' GLM covariance in place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.errors import DesignError

FORMULA = "y ~ x1 * x2 + C(g) + k"
COUNT_FORMULA = "n ~ x1 * x2 + C(g) + k"
METHODS = ("dydx", "eyex", "dyex", "eydx")
RTOL = 1e-7


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20240611)
    n = 600
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(0.5, 3.0, size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
            "k": rng.poisson(2.0, size=n).astype(float),
            "t": rng.uniform(0.5, 2.0, size=n),
        }
    )
    eta = -0.3 + 0.8 * df.x1 - 0.5 * df.x2 + 0.6 * (df.g == "b") + 0.1 * df.k + 0.3 * df.x1 * df.x2
    df["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    rate = np.exp(0.2 + 0.3 * df.x1 - 0.2 * df.x2 + 0.4 * (df.g == "c") + 0.05 * df.k)
    df["n"] = rng.poisson(df.t * rate).astype(float)
    return df


@pytest.fixture(scope="module")
def path(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("margeff") / "data.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out, row_group_size=150)
    return out


@pytest.fixture(scope="module")
def fits(frame: pd.DataFrame, path: Path) -> dict[str, tuple[object, object]]:
    """model -> (statsmodels results, shardfit results), fitted to convergence."""
    options = {"backend": "serial", "tol": 1e-14, "maxiter": 100}
    probit = smf.probit(FORMULA, frame).fit(disp=0)
    glm_probit = smf.glm(FORMULA, frame, family=sm.families.Binomial(sm.families.links.Probit()))
    # smf.probit's margins with the expected-information covariance of the GLM fit.
    probit._results.normalized_cov_params = glm_probit.fit(tol=1e-14).cov_params().to_numpy()
    return {
        "logit": (
            smf.logit(FORMULA, frame).fit(disp=0),
            shardfit.logit(FORMULA, path).fit(**options),
        ),
        "probit": (
            probit,
            shardfit.glm(FORMULA, path, family="binomial", link="probit").fit(**options),
        ),
        "poisson": (
            smf.poisson(COUNT_FORMULA, frame, exposure=frame["t"].to_numpy()).fit(disp=0),
            shardfit.poisson(COUNT_FORMULA, path, exposure="t").fit(**options),
        ),
    }


def _reference(margins: object, names: tuple[str, ...]) -> pd.DataFrame:
    """statsmodels' summary frame in shardfit's column order."""
    frame = margins.summary_frame()  # type: ignore[attr-defined]
    assert sorted(frame.index) == sorted(names)
    return frame.reindex(list(names))


def _assert_same(ours: shardfit.MarginalEffects, theirs: object) -> None:
    reference = _reference(theirs, ours.names)
    np.testing.assert_allclose(ours.margeff, reference.iloc[:, 0], rtol=RTOL)
    np.testing.assert_allclose(ours.margeff_se, reference["Std. Err."], rtol=RTOL)


@pytest.mark.parametrize("model", ["logit", "probit", "poisson"])
@pytest.mark.parametrize("at", ["overall", "mean", "zero"])
def test_effects_and_standard_errors_match_statsmodels(model, at, fits, path):
    theirs, ours = fits[model]
    methods = METHODS if at != "zero" else ("dydx", "eydx")  # zero: x = 0, ex effects are 0
    for method in methods:
        margins = ours.get_margeff(at=at, method=method, data=path, backend="serial")
        assert margins.margeff_options == {"method": method, "at": at}
        assert "Intercept" not in margins.names and len(margins.names) == 6
        _assert_same(margins, theirs.get_margeff(at=at, method=method))


@pytest.mark.parametrize("model", ["logit", "probit", "poisson"])
@pytest.mark.parametrize("at", ["overall", "mean"])
def test_dummy_and_count_changes_match_statsmodels(model, at, fits, path):
    theirs, ours = fits[model]
    for method in ("dydx", "eydx"):
        margins = ours.get_margeff(
            at=at, method=method, dummy=True, count=True, data=path, backend="serial"
        )
        assert [ours.names[j] for j in margins.dummy_idx] == ["C(g)[T.b]", "C(g)[T.c]"]
        assert [ours.names[j] for j in margins.count_idx] == ["k"]
        _assert_same(margins, theirs.get_margeff(at=at, method=method, dummy=True, count=True))


def test_atexog_by_name_matches_statsmodels_position(fits, path):
    theirs, ours = fits["logit"]
    position = theirs.model.exog_names.index("x2")
    for at in ("overall", "mean"):
        margins = ours.get_margeff(at=at, atexog={"x2": 1.5}, data=path, backend="serial")
        _assert_same(margins, theirs.get_margeff(at=at, atexog={position: 1.5}))


def test_table_names_intervals_and_summary_match_statsmodels(fits, path):
    theirs, ours = fits["logit"]
    margins = ours.get_margeff(method="eyex", data=path, backend="serial")
    reference = _reference(theirs.get_margeff(method="eyex"), margins.names)
    frame = margins.summary_frame(alpha=0.1)
    expected = theirs.get_margeff(method="eyex").summary_frame(alpha=0.1).reindex(frame.index)
    assert list(frame.columns) == list(expected.columns)
    assert list(frame.columns) == [
        "d(lny)/d(lnx)", "Std. Err.", "z", "Pr(>|z|)", "Conf. Int. Low", "Cont. Int. Hi.",
    ]  # fmt: skip
    np.testing.assert_allclose(frame.to_numpy(), expected.to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(margins.tvalues, reference["z"], rtol=RTOL)
    np.testing.assert_allclose(margins.pvalues, reference["Pr(>|z|)"], rtol=1e-6)
    np.testing.assert_allclose(
        margins.conf_int(), reference[["Conf. Int. Low", "Cont. Int. Hi."]], rtol=RTOL
    )
    text = str(margins.summary())
    assert "Logit Marginal Effects" in text and "d(lny)/d(lnx)" in text
    assert "x1:x2" in text and "Intercept" not in text


def test_with_offset_averages_each_rows_exposure(frame, fits, path):
    """NumPy closed form with statsmodels' estimates: dy/dx_j = mean(mu) b_j with
    mu = t exp(x'b), and J = b mean(mu x)' + mean(mu) I."""
    theirs, ours = fits["poisson"]
    names = list(ours.names)
    X = pd.DataFrame(theirs.model.exog, columns=theirs.model.exog_names)[names].to_numpy()
    b = theirs.params[names].to_numpy()
    mu = frame["t"].to_numpy() * np.exp(X @ b)
    effects = mu.mean() * b
    jacobian = np.outer(b, mu @ X / len(mu)) + mu.mean() * np.eye(len(b))
    cov = jacobian @ theirs.cov_params().loc[names, names].to_numpy() @ jacobian.T
    margins = ours.get_margeff(with_offset=True, data=path, backend="serial")
    np.testing.assert_allclose(margins.margeff, effects[1:], rtol=RTOL)
    np.testing.assert_allclose(margins.margeff_se, np.sqrt(np.diag(cov))[1:], rtol=RTOL)
    # statsmodels' default leaves the exposure out: effects on the rate.
    default = ours.get_margeff(data=path, backend="serial")
    assert not np.allclose(default.margeff, margins.margeff, rtol=1e-3)


def test_refusals_are_clear(frame, fits, path):
    _, logit = fits["logit"]
    with pytest.raises(ValueError, match="needs data="):
        logit.get_margeff()
    with pytest.raises(ValueError, match="must be one of"):
        logit.get_margeff(at="medians", data=path)
    with pytest.raises(ValueError, match="not allowed with dummy"):
        logit.get_margeff(method="dyex", dummy=True, data=path)
    with pytest.raises(DesignError, match="'x2'"):
        logit.get_margeff(data=frame.drop(columns=["x2"]), backend="serial")
    small = frame.iloc[:200]
    cloglog = shardfit.glm(FORMULA, small, family="binomial", link="cloglog").fit(backend="serial")
    with pytest.raises(NotImplementedError, match="cloglog"):
        cloglog.get_margeff(data=small)
    weighted = shardfit.logit(FORMULA, small, weights="t").fit(backend="serial")
    with pytest.raises(NotImplementedError, match="weights"):
        weighted.get_margeff(data=small)
