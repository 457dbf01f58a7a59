"""GLM failures, clearly (issue 6): separation names the terms, non-convergence warns
with the deviance trace, out-of-support responses and non-positive weights raise
naming partition, row and value."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from glm_cases import FORMULA, glm_frame

import shardfit
from shardfit.data.memory import from_pandas
from shardfit.errors import ConvergenceError, DesignError
from shardfit.models.families import ResponseError
from shardfit.models.glm import (
    ConvergenceWarning,
    PerfectSeparationError,
    PerfectSeparationWarning,
)


@pytest.fixture(scope="module")
def quasi_separated() -> pd.DataFrame:
    """Every row with ``x3 == 1`` has ``y == 1``: x3's coefficient diverges."""
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    frame["x3"] = (rng.uniform(size=n) < 0.1).astype(float)
    p = 1 / (1 + np.exp(-0.3 * frame["x1"]))
    frame["y"] = (rng.uniform(size=n) < p).astype(float)
    frame.loc[frame["x3"] == 1, "y"] = 1.0
    return frame


def test_quasi_complete_separation_names_the_term(quasi_separated) -> None:
    model = shardfit.logit("y ~ x1 + x2 + x3", from_pandas(quasi_separated, 3))
    with pytest.warns(PerfectSeparationWarning, match=r"quasi-complete separation: 4\d of 400"):
        result = model.fit(backend="serial")
    assert result.separated_terms == ("x3",)
    assert result.boundary_rows == int((quasi_separated["x3"] == 1).sum())
    assert "Separation:" in str(result.summary())
    # statsmodels runs into the same wall: the same iterations, x3 far out.
    reference = smf.glm("y ~ x1 + x2 + x3", quasi_separated, family=sm.families.Binomial()).fit()
    assert result.iterations == reference.fit_history["iteration"]
    assert result.params["x3"] > 15
    with pytest.raises(PerfectSeparationError, match=r"\['x3'\] diverge"):
        model.fit(backend="serial", separation="raise")


def test_complete_separation(quasi_separated) -> None:
    frame = quasi_separated.assign(y=(quasi_separated["x1"] > 0).astype(float))
    with pytest.warns(PerfectSeparationWarning, match=r"400 of 400 fitted probabilities"):
        result = shardfit.logit("y ~ x1 + x2", from_pandas(frame, 2)).fit(backend="serial")
    assert "x1" in result.separated_terms and "x2" not in result.separated_terms


def test_no_separation_no_warning() -> None:
    frame = glm_frame("binomial", seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = shardfit.logit(FORMULA, from_pandas(frame, 3)).fit(backend="serial")
    assert result.separated_terms == () and result.boundary_rows == 0


def test_non_convergence_warns_with_the_deviance_trace() -> None:
    frame = glm_frame("gamma", "log", seed=1)
    model = shardfit.glm(FORMULA, from_pandas(frame, 3), family="gamma", link="log")
    with pytest.warns(ConvergenceWarning, match=r"did not converge in 2 iterations.*trace: \["):
        result = model.fit(backend="serial", maxiter=2)
    assert not result.converged and result.iterations == 2
    reference = smf.glm(FORMULA, frame, family=sm.families.Gamma(sm.families.links.Log()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = reference.fit(maxiter=2)
    np.testing.assert_allclose(result.params.loc[theirs.params.index], theirs.params, rtol=1e-9)
    assert "did NOT converge" in str(result.summary())


@pytest.mark.parametrize(
    ("family", "bad", "message"),
    [
        ("binomial", 2.0, r"binomial family \(0 <= y <= 1\)"),
        ("poisson", -1.0, r"poisson family \(y >= 0\)"),
        ("gamma", 0.0, r"gamma family \(y > 0\)"),
    ],
)
def test_response_outside_support_names_partition_row_value(family, bad, message) -> None:
    frame = glm_frame("gamma", "log", seed=1)
    if family == "binomial":
        frame["y"] = (frame["y"] > frame["y"].median()).astype(float)
    frame.loc[1234, "y"] = bad  # partition 2 of 3 (rows 1000-1499), its row 234
    source = from_pandas(frame, 3)
    key = source.partitions[2].key
    pattern = rf"{message} in partition {re.escape(key)} \(row 1234 of .*\): {bad!r}"
    with pytest.raises(ResponseError, match=pattern):
        shardfit.glm(FORMULA, source, family=family).fit(backend="serial")


def test_non_positive_weights_raise() -> None:
    frame = glm_frame("poisson", seed=1)
    frame.loc[10, "w"] = 0.0
    with pytest.raises(DesignError, match=r"non-positive weight in partition .*: 0.0"):
        shardfit.poisson(FORMULA, from_pandas(frame, 2), weights="w").fit(backend="serial")
    frame.loc[10, "w"] = 1.0
    frame.loc[11, "expo"] = 0.0
    with pytest.raises(DesignError, match=r"non-finite offset \(or non-positive exposure\)"):
        shardfit.poisson(FORMULA, from_pandas(frame, 2), exposure="expo").fit(backend="serial")


def test_rank_deficient_raises_or_drops() -> None:
    frame = glm_frame("poisson", seed=1).assign(x3=lambda f: 2 * f["x1"])
    model = shardfit.poisson("y ~ x1 + x2 + x3", from_pandas(frame, 2))
    with pytest.raises(DesignError, match=r"rank deficient: \['x3'\]"):
        model.fit(backend="serial")
    with pytest.warns(UserWarning, match="dropped"):
        result = model.fit(backend="serial", rank_deficient="drop")
    assert np.isnan(result.params["x3"]) and result.rank == 3
    reference = smf.glm("y ~ x1 + x2", frame, family=sm.families.Poisson()).fit()
    np.testing.assert_allclose(result.params.loc[reference.params.index], reference.params)


def test_bad_options() -> None:
    model = shardfit.logit(FORMULA, from_pandas(glm_frame("binomial"), 1))
    with pytest.raises(ValueError, match="'cov_type' parameter must be one of"):
        model.fit(cov_type="HC4")
    with pytest.raises(ValueError, match="'maxiter' parameter must be an int >= 1"):
        model.fit(maxiter=0)
    with pytest.raises(ValueError, match="needs cov_kwds=\\{'groups': column_name\\}"):
        model.fit(cov_type="cluster")
    with pytest.raises(ValueError, match="start_params needs 6 finite values"):
        model.fit(backend="serial", start_params=[0.0])


def test_perfect_prediction_warns() -> None:
    x = np.linspace(0.0, 1.0, 60)
    frame = pd.DataFrame({"x": x, "y": 1.0 + 2.0 * x})  # statsmodels warns here too
    model = shardfit.glm("y ~ x", from_pandas(frame, 2), family="gaussian")
    with pytest.warns(PerfectSeparationWarning, match="perfect prediction"):
        result = model.fit(backend="serial")
    # The first step fits exactly: the deviance there is rounding (0, or 7e-29 with
    # other BLAS and NumPy builds), and an exact fit stops (statsmodels' is 4.5e-28 from
    # its pseudo-inverse, and it goes on until the noise over a scale of ~1e-29
    # settles: 3 iterations).
    assert result.converged and result.iterations == 1
    assert result.deviance <= 1e-26
    np.testing.assert_allclose(result.params, [1.0, 2.0], rtol=1e-14)
    np.testing.assert_allclose(result.params.to_numpy(), [1.0, 2.0], rtol=1e-12)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_diverging_irls_raises_convergence_error() -> None:
    """The inverse Gaussian's 1/mu**2 link on means growing like exp(0.4 x): the step
    leaves the link's range and the working weights turn NaN. statsmodels stops with
    "NaN, inf or invalid value detected in weights"; shardfit names the divergence and
    the deviance history (it raised numpy's "SVD did not converge")."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 10, 400)
    frame = pd.DataFrame({"x": x, "y": np.exp(0.4 * x) * rng.gamma(5, 1 / 5, 400)})
    with pytest.raises(ValueError, match="NaN, inf or invalid value detected in weights"):
        smf.glm("y ~ x", frame, family=sm.families.InverseGaussian()).fit()
    model = shardfit.glm("y ~ x", from_pandas(frame, 3), family="inverse_gaussian")
    with pytest.raises(ConvergenceError, match=r"IRLS diverged after \d+ iterations?: .*history"):
        model.fit(backend="serial")


def test_all_zero_counts_name_the_start_not_a_divergence() -> None:
    """Every count 0: statsmodels' start means (y + mean(y)) / 2 are 0, whose log is
    -inf. statsmodels fails too (its weights turn NaN); shardfit said IRLS had left the
    family's range, where the start itself was outside the link's."""
    frame = pd.DataFrame({"x": np.arange(20.0), "y": np.zeros(20)})
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError):
            smf.glm("y ~ x", frame, family=sm.families.Poisson()).fit()
        model = shardfit.poisson("y ~ x", from_pandas(frame, 2))
        with pytest.raises(ConvergenceError, match=r"start values .*'log' link .*every response 0"):
            model.fit(backend="serial")


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("rank_deficient", ["raise", "drop"])
def test_binomial_log_link_leaving_the_range_is_a_divergence_not_collinearity(
    rank_deficient,
) -> None:
    """A weighted log-link binomial whose steps put fitted means above 1: the deviance
    turns NaN and the clipped variances weight those rows ~1e15, so the Gram looks rank
    deficient. statsmodels refuses the weights; shardfit said the design was collinear
    (``g[T.c]``), and with ``rank_deficient="drop"`` ran its remaining 50 passes on a NaN
    deviance. It is a divergence, named as one, whichever the policy."""
    rng = np.random.default_rng(51)
    n = 400
    x, g, w = rng.normal(size=n), rng.choice(["a", "b", "c"], size=n), rng.uniform(0.5, 2, n)
    p = np.clip(np.exp(-0.4 + 0.5 * x + 0.2 * (g == "b")), 0, 0.95)
    frame = pd.DataFrame({"x": x, "g": g, "w": w, "y": (rng.uniform(size=n) < p).astype(float)})
    log_binomial = sm.families.Binomial(sm.families.links.Log())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="NaN, inf or invalid value detected in weights"):
            smf.glm("y ~ x + g", frame, family=log_binomial, var_weights=w).fit()
    model = shardfit.glm(
        "y ~ x + g", from_pandas(frame, 2), family="binomial", link="log", weights="w"
    )
    expected = (
        r"IRLS diverged after \d+ iterations: the binomial family's deviance is NaN "
        r"\(fitted means outside its range, which the 'log' link does not keep them in\), "
        r"and the working weights of those rows make \['g\[T.c\]'\] look collinear; "
        r"deviance history: [\d.]+, nan"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "dropped" warning either
        with pytest.raises(ConvergenceError, match=expected):
            model.fit(backend="serial", rank_deficient=rank_deficient)
