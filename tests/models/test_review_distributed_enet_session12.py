"""Review of DistributedModel and elastic_net as statsmodels / glmnet users use them
(session 12).

- Results of fits that statsmodels ran (``solver="statsmodels"``, a GLM or ``Logit``)
  predict the mean, as statsmodels' ``DistributedResults.predict`` does, not ``X b``.
- Per-partition fits that did not converge, or whose design cannot identify them (fewer
  rows than columns, perfect separation), warn as statsmodels does, naming the partition.
- The GLM elastic-net grid starts at glmnet's ``lambda_max`` (the gradient at the
  intercept-only fit) when the model has an offset or exposure.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.base import distributed_estimation as smd
from statsmodels.tools.sm_exceptions import (
    ConvergenceWarning,
    PerfectSeparationWarning,
    SingularMatrixWarning,
)

import shardfit
from shardfit.models.distributed import DistributedModel
from shardfit.results.regularized import DistributedResults

AVERAGE = {"estimation_method": smd._est_unregularized_naive, "join_method": smd._join_naive}
REGULARIZED = {"estimation_method": smd._est_regularized_naive, "join_method": smd._join_naive}


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261212)
    n = 450
    X = rng.standard_normal((n, 5))
    X[:, 0] = 1.0
    eta = X @ np.array([0.4, 0.6, -0.5, 0.3, 0.0])
    return {
        "X": X,
        "yb": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float),
        "yp": rng.poisson(np.exp(0.5 * eta)).astype(float),
    }


def _pairs(X, y, sizes):
    bounds = np.cumsum([0, *sizes])
    return [(y[a:b], X[a:b]) for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize(
    ("model", "response"),
    [
        ({"model_class": sm.GLM, "init_kwds": {"family": sm.families.Poisson()}}, "yp"),
        (
            {
                "model_class": sm.GLM,
                "init_kwds": {"family": sm.families.Binomial(sm.families.links.Probit())},
            },
            "yb",
        ),
        ({"model_class": sm.Logit}, "yb"),
    ],
)
def test_statsmodels_solver_predicts_the_mean(data, model, response, tmp_path) -> None:
    # Was: X b (e.g. 0.599 where statsmodels predicts the Poisson mean 1.820).
    pairs = _pairs(data["X"], data[response], [150, 150, 150])
    fit_kwds = {"alpha": 0.01}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # statsmodels' l1 solver (Logit)
        expected = smd.DistributedModel(3, **model, **REGULARIZED).fit(
            iter(pairs), fit_kwds=fit_kwds
        )
        result = DistributedModel(3, **model, **REGULARIZED, solver="statsmodels").fit(
            iter(pairs), fit_kwds=fit_kwds, backend="serial"
        )
    new = data["X"][:7]
    np.testing.assert_allclose(result.params, expected.params, rtol=1e-12)
    np.testing.assert_allclose(result.predict(new), expected.predict(new), rtol=1e-12)
    np.testing.assert_allclose(result.predict(new, linear=True), new @ expected.params, rtol=1e-12)
    loaded = DistributedResults.load(result.save(tmp_path / "fit.json"))
    np.testing.assert_allclose(loaded.predict(new), expected.predict(new), rtol=1e-12)


def test_a_model_whose_mean_is_unknown_predicts_only_the_linear_predictor(data) -> None:
    pairs = _pairs(data["X"], data["yp"], [150, 150, 150])
    model = {"model_class": sm.NegativeBinomial, "init_kwds": {"exposure": None}}
    # statsmodels' NegativeBinomial has one more parameter (alpha); its mean is not X b.
    result = DistributedModel(3, **model, **AVERAGE).fit(
        iter(pairs), fit_kwds={"disp": 0}, backend="serial"
    )
    expected = smd.DistributedModel(3, **model, **AVERAGE).fit(iter(pairs), fit_kwds={"disp": 0})
    np.testing.assert_allclose(result.params, expected.params, rtol=1e-10)
    with pytest.raises(ValueError, match="mean function of a NegativeBinomial fit"):
        result.predict(data["X"][:3, :4])


def test_regularized_fits_that_did_not_converge_warn_like_statsmodels(data) -> None:
    pairs = _pairs(data["X"], data["yb"], [150, 150, 150])
    model = {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Binomial()}}
    fit_kwds = {"alpha": 0.01, "maxiter": 2}
    with pytest.warns(ConvergenceWarning, match="did not converge") as theirs:
        expected = smd.DistributedModel(3, **model).fit(iter(pairs), fit_kwds=fit_kwds)
    assert sum("did not converge" in str(w.message) for w in theirs) == 3
    with pytest.warns(UserWarning, match="did not converge in maxiter=2") as ours:
        result = DistributedModel(3, **model).fit(iter(pairs), fit_kwds=fit_kwds, backend="serial")
    text = str(ours[0].message)
    assert all(f"arrays#{k}" in text for k in range(3))
    np.testing.assert_allclose(result.params, expected.params, rtol=1e-10)
    # With statsmodels' default maxiter every partition converges: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DistributedModel(3, **model).fit(iter(pairs), fit_kwds={"alpha": 0.01}, backend="serial")


def test_a_partition_with_fewer_rows_than_columns_warns(data) -> None:
    X, y = data["X"], data["yb"]
    pairs = _pairs(X, y, [4, 221, 225])
    assert np.linalg.matrix_rank(X[:4]) == 4 < X.shape[1]
    model = {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Binomial()}}
    with warnings.catch_warnings(), pytest.warns(PerfectSeparationWarning):
        warnings.simplefilter("ignore", SingularMatrixWarning)  # and rank deficiency
        smd.DistributedModel(3, **model, **AVERAGE).fit(iter(pairs))  # statsmodels' warning
    with pytest.warns(UserWarning, match=r"arrays#0: its design of 4 rows has rank 4 < 5") as w:
        DistributedModel(3, **model, **AVERAGE).fit(iter(pairs), backend="serial")
    assert "perfect separation" in str(w[0].message) and "arrays#1" not in str(w[0].message)
    # least squares: the minimum-norm fit statsmodels averages too, now with a warning
    ols_pairs = _pairs(X, X @ [1.0, 2.0, 0.0, -1.0, 0.5], [4, 221, 225])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularMatrixWarning)
        expected = smd.DistributedModel(3, **AVERAGE).fit(iter(ols_pairs)).params
    with pytest.warns(UserWarning, match=r"arrays#0: its design of 4 rows has rank 4 < 5"):
        result = DistributedModel(3, **AVERAGE).fit(iter(ols_pairs), backend="serial")
    np.testing.assert_allclose(result.params, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("family", "column", "sm_family"),
    [
        ("poisson", "exposure", sm.families.Poisson()),
        ("binomial", "offset", sm.families.Binomial()),
    ],
)
def test_glm_grid_with_an_offset_starts_at_glmnets_lambda_max(family, column, sm_family) -> None:
    # Was: the gradient at link(mean y), ignoring the offset (Poisson with exposure:
    # 1.78 where glmnet's lambda_max is 0.78).
    rng = np.random.default_rng(5)
    n = 400
    frame = pd.DataFrame(rng.standard_normal((n, 3)), columns=["a", "b", "c"])
    frame["exposure"] = rng.uniform(0.5, 5.0, n)
    frame["offset"] = rng.uniform(-1.5, 1.5, n)
    if family == "poisson":
        frame["y"] = rng.poisson(frame.exposure * np.exp(0.3 * frame.a)).astype(float)
        offset = np.log(frame["exposure"].to_numpy())
    else:
        eta = frame.offset + 0.5 * frame.a - 0.3
        frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
        offset = frame["offset"].to_numpy()
    result = shardfit.elastic_net(
        "y ~ a + b + c",
        shardfit.from_pandas(frame, 3),
        family=family,
        l1_ratio=0.5,
        n_alphas=4,
        backend="serial",
        **{column: column},
    )
    null = sm.GLM(frame["y"], np.ones((n, 1)), family=sm_family, offset=offset).fit(tol=1e-14)
    X = frame[["a", "b", "c"]].to_numpy()
    lambda_max = np.max(np.abs(X.T @ (frame["y"] - null.fittedvalues))) / n / 0.5
    assert result.alphas[0] == pytest.approx(lambda_max, rel=1e-10)
    top = result.path.iloc[0]
    assert np.all(top[["a", "b", "c"]] == 0)
    assert top["Intercept"] == pytest.approx(null.params.iloc[0], rel=1e-8)
    np.testing.assert_allclose(result.alphas, lambda_max * np.geomspace(1, 1e-3, 4), rtol=1e-10)


def test_predict_with_exposure_and_offset_like_statsmodels(data) -> None:
    # Was: TypeError (predict took no offset or exposure), where statsmodels'
    # DistributedResults.predict passes them on to GLM.predict.
    rng = np.random.default_rng(11)
    exposure = rng.uniform(0.5, 3.0, data["X"].shape[0])
    pairs = _pairs(data["X"], data["yp"], [150, 150, 150])
    bounds = [slice(0, 150), slice(150, 300), slice(300, 450)]
    model = {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Poisson()}}
    expected = smd.DistributedModel(3, **model).fit(
        iter(pairs),
        fit_kwds={"alpha": 0.01},
        init_kwds_generator=({"exposure": exposure[rows]} for rows in bounds),
    )
    result = DistributedModel(3, **model).fit(
        iter(pairs),
        fit_kwds={"alpha": 0.01},
        init_kwds_generator=({"exposure": exposure[rows]} for rows in bounds),
        backend="serial",
    )
    new, e, o = data["X"][:6], exposure[:6], np.linspace(-0.2, 0.3, 6)
    np.testing.assert_allclose(result.params, expected.params, rtol=1e-10)
    np.testing.assert_allclose(
        result.predict(new, exposure=e, offset=o),
        expected.predict(new, exposure=e, offset=o),
        rtol=1e-10,
    )
    with pytest.raises(ValueError, match=r"exposure has shape \(3,\); exog has 6 rows"):
        result.predict(new, exposure=e[:3])


def test_missing_values_in_array_partitions_are_refused_like_statsmodels(data) -> None:
    # Was: NaN coefficients without a word (debiased) or "SVD did not converge" after
    # three attempts (average), where statsmodels raises MissingDataError.
    from statsmodels.tools.sm_exceptions import MissingDataError as SmMissingDataError

    from shardfit.errors import MissingDataError

    X = data["X"].copy()
    X[170, 2] = np.nan
    pairs = _pairs(X, data["yp"], [150, 150, 150])
    with pytest.raises(SmMissingDataError):
        smd.DistributedModel(3, **AVERAGE).fit(iter(pairs))
    for method in ({}, AVERAGE):
        with pytest.raises(MissingDataError, match=r"partition 1 .*exog row 20, column 2: nan"):
            DistributedModel(3, alpha=0.01, **method).fit(iter(pairs), backend="serial")
    # statsmodels' missing="drop" drops the row; so does the model it runs for us
    model = {"init_kwds": {"missing": "drop"}, **AVERAGE}
    expected = smd.DistributedModel(3, **model).fit(iter(pairs)).params
    result = DistributedModel(3, **model).fit(iter(pairs), backend="serial")
    assert result.solver == "statsmodels"
    np.testing.assert_allclose(result.params, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="partition 0 of the data generator: endog has 3 rows"):
        DistributedModel(1, alpha=0.01).fit([(np.ones(3), X[:4])], backend="serial")
