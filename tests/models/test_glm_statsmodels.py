"""GLM by distributed IRLS equals statsmodels' GLM in memory (issue 6).

params, bse, deviance, Pearson chi2, scale, llf, aic and bic to relative 1e-7 (in
practice ~1e-14), iteration counts within one, for every family with its canonical
link plus probit, cloglog and log-Gamma, with weights (var_weights) and offsets, on 1,
3 and 17 partitions (serial backend; tests/models/test_glm_backends.py covers the rest).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from glm_cases import (
    FORMULA,
    assert_matches,
    glm_frame,
    sm_family,
    sm_fit,
    two_column_binomial,
)

import shardfit
from shardfit.data.memory import from_pandas

CASES = [
    ("gaussian", None, {}),
    ("binomial", None, {}),
    ("binomial", "probit", {}),
    ("binomial", "cloglog", {}),
    ("poisson", None, {}),
    ("gamma", None, {}),
    ("gamma", "log", {}),
    ("inverse_gaussian", None, {}),
    ("negative_binomial", None, {"alpha": 0.5}),
    ("tweedie", None, {"var_power": 1.5}),
]


def _ours(frame, family, link=None, *, npartitions=3, weights=False, offset=False, **kw):
    names = ("cov_type", "cov_kwds", "start_params", "method")
    fit_options = {k: kw.pop(k) for k in names if k in kw}
    model = shardfit.glm(
        FORMULA,
        from_pandas(frame, npartitions),
        family=family,
        link=link,
        weights="w" if weights else None,
        offset="off" if offset else None,
        **kw,
    )
    return model.fit(backend="serial", **fit_options)


def _reference(frame, family, link=None, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DomainWarning (inverse links), var_weights notes
        return sm_fit(frame, family, link, **options)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weights+offset"])
@pytest.mark.parametrize(("family", "link", "params"), CASES)
def test_family_matrix(family, link, params, weighted) -> None:
    frame = glm_frame(family, link, seed=len(family))
    options = {"weights": weighted, "offset": weighted}
    reference = _reference(frame, family, link, **options, **params)
    result = _ours(frame, family, link, **options, **params)
    assert_matches(result, reference)
    assert result.converged and result.iterations == reference.fit_history["iteration"]
    np.testing.assert_allclose(result.null_deviance, reference.null_deviance, rtol=1e-7)
    np.testing.assert_allclose(
        result.fit_history["deviance"][1:], reference.fit_history["deviance"][1:], rtol=1e-9
    )
    ours_p = result.pvalues.loc[reference.pvalues.index]
    np.testing.assert_allclose(ours_p, reference.pvalues, rtol=1e-6, atol=1e-300)


@pytest.mark.parametrize("npartitions", [1, 3, 17])
def test_partitions(npartitions) -> None:
    frame = glm_frame("binomial", seed=11)
    reference = _reference(frame, "binomial", weights=True, offset=True)
    result = _ours(frame, "binomial", npartitions=npartitions, weights=True, offset=True)
    assert_matches(result, reference)


def test_poisson_exposure_17_partitions() -> None:
    frame = glm_frame("poisson", seed=5)
    reference = _reference(frame, "poisson", exposure=True)
    result = shardfit.poisson(FORMULA, from_pandas(frame, 17), exposure="expo").fit(
        backend="serial"
    )
    assert_matches(result, reference)
    np.testing.assert_allclose(result.null_deviance, reference.null_deviance, rtol=1e-7)


def test_binomial_proportions_with_trials_as_weights(rng) -> None:
    frame = glm_frame("binomial", seed=3)
    trials = rng.integers(1, 30, len(frame))
    p = 1 / (1 + np.exp(-(0.2 + 0.4 * frame["x1"] - 0.3 * frame["x2"])))
    frame["y"] = rng.binomial(trials, p) / trials
    frame["w"] = trials.astype(float)
    reference = _reference(frame, "binomial", weights=True)
    result = _ours(frame, "binomial", npartitions=17, weights=True)
    # The same model as the two-column (successes, failures) binomial of statsmodels,
    # whose log-likelihood is that of the counts (var_weights' is not).
    two_column = two_column_binomial(reference, frame["w"].to_numpy())
    assert_matches(result, reference, likelihood=two_column)
    ours = result.params.loc[reference.params.index].to_numpy()
    np.testing.assert_allclose(ours, two_column.params, rtol=1e-9)
    assert abs(reference.llf - two_column.llf) > 100  # the two forms really differ


def test_star98_binomial_counts_equal_rs_published_values() -> None:
    """statsmodels' Star98 data (303 schools, successes out of trials), fitted as
    proportions with the trial counts as weights: R's glm values (statsmodels' test
    suite records them), independent of statsmodels' own fit."""
    data = sm.datasets.star98.load_pandas()
    frame = data.exog.copy()
    trials = data.endog.sum(axis=1)
    frame["p"] = data.endog.iloc[:, 0] / trials
    frame["n"] = trials
    formula = "p ~ " + " + ".join(data.exog.columns)
    result = shardfit.glm(formula, from_pandas(frame, 3), family="binomial", weights="n").fit(
        backend="serial"
    )
    np.testing.assert_allclose(result.llf, -2998.61255899391, rtol=1e-12)
    np.testing.assert_allclose(result.aic, 6039.22511799, rtol=1e-11)
    np.testing.assert_allclose(result.deviance, 4078.76541772, rtol=1e-11)
    np.testing.assert_allclose(result.null_deviance, 34345.3688931, rtol=1e-11)
    np.testing.assert_allclose(result.params["Intercept"], 2.95887, rtol=1e-5)


@pytest.mark.parametrize(
    ("family", "link", "cov_type"),
    [
        ("binomial", None, "HC0"),
        ("binomial", "probit", "HC0"),  # observed information differs from expected
        ("poisson", None, "cluster"),
        ("gamma", "log", "HC0"),
        ("gamma", None, "cluster"),
    ],
)
def test_robust_covariances(family, link, cov_type, rng) -> None:
    frame = glm_frame(family, link, seed=7)
    frame["cl"] = rng.integers(0, 40, len(frame))
    groups = "cl" if cov_type == "cluster" else None
    reference = _reference(frame, family, link, weights=True, cov_type=cov_type, groups=groups)
    for method in ("auto", "qr"):
        result = _ours(
            frame,
            family,
            link,
            weights=True,
            cov_type=cov_type,
            cov_kwds={"groups": "cl"} if groups else None,
            method=method,
        )
        assert_matches(result, reference)
    index = reference.params.index
    np.testing.assert_allclose(
        result.cov_params().loc[index, index].to_numpy(),
        reference.cov_params().to_numpy(),
        rtol=0,
        atol=1e-9 * np.abs(reference.cov_params().to_numpy()).max(),
    )
    if cov_type == "cluster":
        assert result.n_groups == 40


def test_glm_on_arrays_like_statsmodels(rng) -> None:
    frame = glm_frame("poisson", seed=9)
    X = sm.add_constant(frame[["x1", "x2"]].to_numpy())
    y = frame["y"].to_numpy()
    kwargs = {"var_weights": frame["w"].to_numpy(), "offset": frame["off"].to_numpy()}
    reference = sm.GLM(y, X, family=sm.families.Poisson(), exposure=frame["expo"], **kwargs).fit()
    result = shardfit.GLM(
        y,
        X,
        "poisson",
        weights=frame["w"],
        offset=frame["off"],
        exposure=frame["expo"],
        npartitions=4,
    ).fit(backend="serial")
    assert list(result.names) == ["const", "x1", "x2"]
    np.testing.assert_allclose(result.params_array, reference.params, rtol=1e-9)
    np.testing.assert_allclose(result.bse.to_numpy(), reference.bse, rtol=1e-9)
    np.testing.assert_allclose(result.llf, reference.llf, rtol=1e-12)
    # A DataFrame's column names label the results; no intercept means none is added.
    frame_x = pd.DataFrame({"a": frame["x1"], "b": frame["x2"]})
    plain = shardfit.GLM(y, frame_x, "poisson").fit(backend="serial")
    no_const = sm.GLM(y, frame_x, family=sm.families.Poisson()).fit()
    np.testing.assert_allclose(plain.params.loc[["a", "b"]], no_const.params, rtol=1e-9)


def test_glm_on_arrays_predicts_with_offset_and_exposure_arrays(rng) -> None:
    """As statsmodels: predict(X, offset=, exposure=) on a fit on arrays, an offset of
    0 and an exposure of 1 where left out; a formula fit reads them from the data."""
    X = sm.add_constant(rng.normal(size=(2000, 2)))
    exposure, offset = rng.uniform(0.5, 3, 2000), rng.uniform(-0.2, 0.2, 2000)
    y = rng.poisson(np.exp(X @ [0.2, 0.3, -0.2] + offset) * exposure)
    ours = shardfit.GLM(y, X, "poisson", exposure=exposure, offset=offset, npartitions=3)
    theirs = sm.GLM(y, X, family=sm.families.Poisson(), exposure=exposure, offset=offset)
    ours, theirs = ours.fit(backend="serial"), theirs.fit()
    new, e, o = X[:50], exposure[:50], offset[:50]
    np.testing.assert_allclose(
        ours.predict(new, exposure=e, offset=o),
        theirs.predict(new, exposure=e, offset=o),
        rtol=1e-9,
    )
    np.testing.assert_allclose(ours.predict(new), theirs.predict(new), rtol=1e-9)
    frame = ours.get_prediction(new, exposure=e, offset=o).summary_frame()
    expected = theirs.get_prediction(new, exposure=e, offset=o).summary_frame()
    np.testing.assert_allclose(frame.to_numpy(), expected.to_numpy(), rtol=1e-9)
    with pytest.raises(ValueError, match=r"exposure= needs one value per row \(50\)"):
        ours.predict(new, exposure=e[:10])
    plain = shardfit.GLM(y, X, "poisson").fit(backend="serial")
    with pytest.raises(ValueError, match="this fit has no exposure"):
        plain.predict(new, exposure=e)


def test_start_params_and_a_family_object() -> None:
    frame = glm_frame("gamma", "log", seed=2)
    reference = _reference(frame, "gamma", "log")
    start = reference.params * 0.9
    theirs = sm.GLM.from_formula(FORMULA, frame, family=sm_family("gamma", "log")).fit(
        start_params=start.to_numpy()
    )
    family = shardfit.get_family("gamma", "log")
    ours = _ours(frame, family, start_params=start)
    assert_matches(ours, theirs)
    assert ours.family == family and ours.family_name == "gamma" and ours.link_name == "log"


def test_logit_and_poisson_shortcuts() -> None:
    frame = glm_frame("binomial", seed=4)
    reference = _reference(frame, "binomial")
    result = shardfit.logit(FORMULA, from_pandas(frame, 2)).fit(backend="serial")
    assert_matches(result, reference)
    assert result.bic == pytest.approx(reference.bic_llf, rel=1e-12)
    assert result.bic_deviance == pytest.approx(reference.bic_deviance, rel=1e-12)


def test_partitions_larger_than_a_row_block() -> None:
    from shardfit.models.glm_tasks import ROW_BLOCK

    frame = glm_frame("poisson", rows=2 * ROW_BLOCK + 1000, seed=12)
    dense = "y ~ x1 + x2 + I(x1 * x2)"  # no sparse columns: the blocked dsyrk path
    reference = _reference(frame, "poisson", formula=dense, weights=True, offset=True)
    model = shardfit.poisson(dense, from_pandas(frame, 1), weights="w", offset="off")
    assert_matches(model.fit(backend="serial"), reference)
    with_levels = _ours(frame, "poisson", npartitions=1, weights=True, offset=True)
    assert_matches(with_levels, _reference(frame, "poisson", weights=True, offset=True))


def test_ill_conditioned_design_switches_to_tsqr(rng) -> None:
    x = rng.uniform(0, 1, 3000)
    frame = pd.DataFrame({"x": x, "y": rng.poisson(np.exp(0.2 + 0.5 * x - 0.3 * x**2))})
    formula = "y ~ x + I(x**2) + I(x**3) + I(x**4) + I(x**5)"  # condition number ~1e5
    reference = smf.glm(formula, frame, family=sm.families.Poisson()).fit()
    source = from_pandas(frame, 3)
    auto = shardfit.poisson(formula, source).fit(backend="serial")
    assert auto.method_used == "qr"
    assert_matches(auto, reference, rtol=1e-10)
    gram = shardfit.poisson(formula, source).fit(backend="serial", method="gram")
    assert gram.method_used == "gram"
    assert_matches(gram, reference, rtol=1e-7)
    worst = np.max(np.abs(gram.params.loc[reference.params.index] / reference.params - 1))
    assert worst > 1e-12  # the Gram really is less accurate here


@pytest.mark.parametrize(
    ("family", "link", "response"),
    [
        ("binomial", None, "binary"),  # the compiled logistic row kernel
        ("binomial", None, "proportion"),  # the same link on proportions: NumPy rows
        ("binomial", "probit", "binary"),  # a non-canonical link
        ("gamma", "log", "counts"),
    ],
)
def test_dense_designs_by_row_blocks(family, link, response) -> None:
    """Dense designs go through the row-block kernels (partitions of more than one
    block, a short last block); each family's rows equal statsmodels with weights and
    an offset."""
    from shardfit.models.glm_tasks import ROW_BLOCK

    frame = glm_frame(family, link, rows=2 * (ROW_BLOCK + 700), seed=21)
    weights = frame["w"].to_numpy()
    if response == "proportion":
        # y successes out of n trials as a proportion, with n among the weights.
        trials = np.random.default_rng(21).integers(1, 6, len(frame))
        frame["y"] = np.random.default_rng(22).binomial(trials, 0.4) / trials
        weights = weights * trials
        frame["w"] = weights
    dense = "y ~ x1 + x2 + I(x1 * x2) + I(x2 ** 2)"
    reference = _reference(frame, family, link, formula=dense, weights=True, offset=True)
    model = shardfit.glm(
        dense, from_pandas(frame, 2), family=family, link=link, weights="w", offset="off"
    )
    result = model.fit(backend="serial")
    likelihood = None
    if response == "proportion":
        likelihood = two_column_binomial(reference, weights)
    assert_matches(result, reference, rtol=1e-9, likelihood=likelihood)
    assert result.iterations == reference.fit_history["iteration"]
