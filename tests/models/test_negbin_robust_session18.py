"""Robust covariances and prediction intervals of the NB2 fit with alpha estimated
(``shardfit.negativebinomial(...).fit(cov_type=...)``, ``results.get_prediction``)
against statsmodels' ``NegativeBinomial(loglike_method="nb2").fit(cov_type=...)``
and ``NegativeBinomialResults.get_prediction``.

statsmodels' sandwich for discrete models (``base/covtype.get_robustcov_results``):
``H^-1 (sum_i s_i s_i') H^-1`` with ``s_i = score_obs`` in ``(beta, alpha)`` (alpha, not
log alpha, last) and ``H`` the analytic Hessian; HC1-HC3 fall back to the same
``cov_white_simple(use_correction=False)`` (no small-sample factor); ``cluster`` sums
the scores by cluster with ``G / (G - 1) (n - 1) / (n - k)``, ``k`` counting alpha.
The fits are compared at 1e-6 (both optimizers converge to about 1e-10), and the
sandwich also at shardfit's own estimates to 1e-9.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

import shardfit
from shardfit.data.memory import from_pandas
from shardfit.errors import DesignError

FORMULA = "y ~ x1 + x2 + C(g)"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261202)
    n = 600
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(size=n),
            "g": rng.choice(["a", "b", "c"], n),
            "t": rng.uniform(0.5, 2.0, n),
            "off": rng.normal(scale=0.3, size=n),
            # Text cluster ids in random order: clusters span every partition.
            "cl": np.array([f"c{k:02d}" for k in rng.integers(0, 23, n)], dtype=object),
        }
    )
    # A cluster effect, so the cluster sandwich differs from HC0.
    effect = rng.normal(scale=0.4, size=23)[df.cl.str[1:].astype(int)]
    mu = np.exp(0.3 + 0.5 * df.x1 - 0.8 * df.x2 + effect + np.log(df.t) + df.off)
    alpha = 0.6
    df["y"] = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu)).astype(float)
    return df


def _design(df: pd.DataFrame) -> pd.DataFrame:
    X = pd.get_dummies(df[["x1", "x2", "g"]], drop_first=True, dtype=float)
    return sm.add_constant(X)


def _sm_model(df: pd.DataFrame, kind: str) -> sm.NegativeBinomial:
    extra = {"offset": df.off.to_numpy()} if kind == "offset" else {"exposure": df.t.to_numpy()}
    return sm.NegativeBinomial(df.y, _design(df), loglike_method="nb2", **extra)


def _sm_fit(model: sm.NegativeBinomial, **kwargs):
    """statsmodels NB2 to its tightest (BFGS, then Newton) with the covariance asked."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = model.fit(disp=0, maxiter=500)
        res = model.fit(start_params=first.params, method="newton", disp=0, maxiter=100, **kwargs)
    assert res.mle_retvals["converged"]
    return res


def _fit(df: pd.DataFrame, kind: str, nparts: int, backend="serial", **kwargs):
    extra = {"offset": "off"} if kind == "offset" else {"exposure": "t"}
    model = shardfit.negativebinomial(FORMULA, from_pandas(df, npartitions=nparts), **extra)
    return model.fit(backend=backend, **kwargs)


def _assert_matches(res, ref) -> None:
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        res.cov_params().to_numpy(), ref.cov_params().to_numpy(), rtol=1e-6, atol=1e-12
    )
    np.testing.assert_allclose(res.pvalues.to_numpy(), ref.pvalues.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(res.conf_int().to_numpy(), ref.conf_int().to_numpy(), rtol=1e-6)
    # normalized_cov_params stays the nonrobust inverse Hessian, as statsmodels'.
    np.testing.assert_allclose(
        res.normalized_cov_params.to_numpy(), ref.normalized_cov_params, rtol=1e-6, atol=1e-12
    )
    assert res.cov_type == ref.cov_type


def _sandwich_at(model, params, groups=None) -> np.ndarray:
    """statsmodels' pieces at ``params``: its ``score_obs`` (complex-step in (beta,
    alpha)) and analytic ``hessian``, put together as ``cov_white_simple`` and
    ``cov_cluster`` do."""
    model._transparams = False  # params' last entry is alpha (as after fit)
    scores = model.score_obs(params)
    bread = np.linalg.inv(model.hessian(params))
    if groups is None:
        return bread @ (scores.T @ scores) @ bread
    _, codes = np.unique(groups, return_inverse=True)
    sums = np.zeros((codes.max() + 1, scores.shape[1]))
    np.add.at(sums, codes, scores)
    n, k = scores.shape
    G = sums.shape[0]
    return bread @ (sums.T @ sums) @ bread * G / (G - 1) * (n - 1) / (n - k)


@pytest.mark.parametrize("nparts", [1, 3, 5])
@pytest.mark.parametrize("kind", ["offset", "exposure"])
def test_hc0_matches_statsmodels(frame, kind, nparts) -> None:
    model = _sm_model(frame, kind)
    ref = _sm_fit(model, cov_type="HC0")
    res = _fit(frame, kind, nparts, cov_type="HC0")
    _assert_matches(res, ref)
    # The robust bse differ from the nonrobust ones (the test would not pass on them).
    nonrobust = _sm_fit(model)
    assert np.max(np.abs(ref.bse / nonrobust.bse - 1)) > 0.01
    # At shardfit's own estimates: to rounding.
    np.testing.assert_allclose(
        res.cov_params().to_numpy(), _sandwich_at(model, res.params.to_numpy()), rtol=1e-9
    )


def test_hc1_to_hc3_equal_hc0_as_statsmodels(frame) -> None:
    """statsmodels' discrete models have no cov_HC1..HC3: all fall back to HC0."""
    model = _sm_model(frame, "exposure")
    hc0 = _fit(frame, "exposure", 3, cov_type="HC0")
    for cov_type in ("HC1", "HC3"):
        ref = _sm_fit(model, cov_type=cov_type)
        res = _fit(frame, "exposure", 3, cov_type=cov_type)
        _assert_matches(res, ref)
        np.testing.assert_array_equal(res.cov_params().to_numpy(), hc0.cov_params().to_numpy())


@pytest.mark.parametrize("nparts", [1, 3, 5])
@pytest.mark.parametrize("kind", ["offset", "exposure"])
def test_cluster_matches_statsmodels(frame, kind, nparts) -> None:
    model = _sm_model(frame, kind)
    groups = frame.cl.to_numpy()
    ref = _sm_fit(model, cov_type="cluster", cov_kwds={"groups": groups})
    res = _fit(frame, kind, nparts, cov_type="cluster", cov_kwds={"groups": "cl"})
    _assert_matches(res, ref)
    assert res.n_groups == 23 and res.df_resid_inference == 22
    np.testing.assert_allclose(
        res.cov_params().to_numpy(),
        _sandwich_at(model, res.params.to_numpy(), groups),
        rtol=1e-9,
    )
    hc0 = _sm_fit(model, cov_type="HC0")
    assert np.max(np.abs(ref.bse / hc0.bse - 1)) > 0.05


def test_cluster_use_t_matches_statsmodels(frame) -> None:
    """With use_t, inference on G - 1 = 22 degrees of freedom (statsmodels'
    df_correction default)."""
    groups = frame.cl.to_numpy()
    ref = _sm_fit(
        _sm_model(frame, "exposure"), cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
    )
    res = _fit(frame, "exposure", 3, cov_type="cluster", cov_kwds={"groups": "cl"}, use_t=True)
    assert ref.use_t and res.use_t
    _assert_matches(res, ref)
    z = res.params / res.bse
    np.testing.assert_allclose(res.pvalues, 2 * stats.t.sf(np.abs(z), 22), rtol=1e-12)


def test_cluster_drops_rows_missing_their_id(frame) -> None:
    df = frame.copy()
    df.loc[[3, 50, 51, 400], "cl"] = None
    kept = df[df.cl.notna()].reset_index(drop=True)
    ref = _sm_fit(
        _sm_model(kept, "exposure"), cov_type="cluster", cov_kwds={"groups": kept.cl.to_numpy()}
    )
    res = _fit(df, "exposure", 3, cov_type="cluster", cov_kwds={"groups": "cl"})
    assert res.nobs == len(df) - 4 and sum(res.rows_dropped.values()) == 4
    _assert_matches(res, ref)


def test_processes_backend_equals_serial(frame, processes) -> None:
    options = {"cov_type": "cluster", "cov_kwds": {"groups": "cl"}}
    parallel = _fit(frame, "offset", 5, backend=processes, **options)
    serial = _fit(frame, "offset", 5, **options)
    np.testing.assert_allclose(
        parallel.cov_params().to_numpy(), serial.cov_params().to_numpy(), rtol=1e-12
    )
    ref = _sm_fit(
        _sm_model(frame, "offset"), cov_type="cluster", cov_kwds={"groups": frame.cl.to_numpy()}
    )
    _assert_matches(parallel, ref)
    hc0 = _fit(frame, "offset", 5, backend=processes, cov_type="HC0")
    _assert_matches(hc0, _sm_fit(_sm_model(frame, "offset"), cov_type="HC0"))


def test_summary_and_results_file_keep_the_cov_type(frame, tmp_path) -> None:
    res = _fit(frame, "exposure", 3, cov_type="cluster", cov_kwds={"groups": "cl"})
    text = str(res.summary())
    assert "Covariance Type:              cluster" in text
    assert "No. Clusters:" in text and "23" in text
    assert "robust to correlation within 23 clusters" in " ".join(text.split())
    loaded = shardfit.load_results(res.save(tmp_path / "nb.json"))
    assert isinstance(loaded, shardfit.NegativeBinomialResults)
    assert (loaded.cov_type, loaded.n_groups, loaded.df_resid_inference) == ("cluster", 23, 22.0)
    assert loaded.extra["cov_kwds"] == {"groups": ["cl"]}
    np.testing.assert_array_equal(loaded.bse, res.bse)
    np.testing.assert_array_equal(loaded.normalized_cov_params, res.normalized_cov_params)
    assert str(loaded.summary()) == text
    hc0 = _fit(frame, "exposure", 1, cov_type="HC0")
    assert "heteroscedasticity-robust (HC0)" in " ".join(str(hc0.summary()).split())
    assert shardfit.load_results(hc0.save(tmp_path / "hc0.json")).cov_type == "HC0"


def test_refuses_what_it_does_not_compute(frame) -> None:
    model = shardfit.negativebinomial(FORMULA, from_pandas(frame, 2), exposure="t")
    with pytest.raises(ValueError, match=r"cov_type='HAC' is not supported.*'HC0'.*'cluster'"):
        model.fit(cov_type="HAC", cov_kwds={"maxlags": 2}, backend="serial")
    with pytest.raises(ValueError, match="two-way clustering is not supported"):
        model.fit(cov_type="cluster", cov_kwds={"groups": ["cl", "g"]}, backend="serial")
    with pytest.raises(ValueError, match=r"needs cov_kwds=\{'groups'"):
        model.fit(cov_type="cluster", backend="serial")
    with pytest.raises(ValueError, match=r"unknown cov_kwds.*\['use_correction'\]"):
        model.fit(
            cov_type="cluster",
            cov_kwds={"groups": "cl", "use_correction": False},
            backend="serial",
        )
    with pytest.raises(ValueError, match=r"unknown cov_kwds for cov_type='HC0'"):
        model.fit(cov_type="HC0", cov_kwds={"groups": "cl"}, backend="serial")
    with pytest.raises(ValueError, match="use_t"):
        model.fit(cov_type="HC0", use_t="yes", backend="serial")
    with pytest.raises(DesignError, match=r"columns \['nope'\] are not in"):
        model.fit(cov_type="cluster", cov_kwds={"groups": "nope"}, backend="serial")
    one = frame.assign(cl="same")
    with pytest.raises(DesignError, match="at least 2 clusters; found 1"):
        shardfit.negativebinomial(FORMULA, from_pandas(one, 2), exposure="t").fit(
            cov_type="cluster", cov_kwds={"groups": "cl"}, backend="serial"
        )


@pytest.mark.parametrize("cov_type", ["nonrobust", "cluster"])
@pytest.mark.parametrize("which", ["mean", "linear"])
def test_get_prediction_matches_statsmodels(frame, cov_type, which) -> None:
    groups = {"groups": frame.cl.to_numpy()} if cov_type == "cluster" else None
    ref = _sm_fit(_sm_model(frame, "exposure"), cov_type=cov_type, cov_kwds=groups)
    res = _fit(
        frame,
        "exposure",
        3,
        cov_type=cov_type,
        cov_kwds={"groups": "cl"} if cov_type == "cluster" else None,
    )
    new = frame.iloc[[0, 7, 99, 598]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "using default log-link in get_prediction"
        expected = ref.get_prediction(
            _design(frame).iloc[[0, 7, 99, 598]], exposure=new.t.to_numpy(), which=which
        ).summary_frame(alpha=0.1)
    got = res.get_prediction(new, which=which).summary_frame(alpha=0.1)
    names = ["predicted", "se", "ci_lower", "ci_upper"]
    assert list(got.columns) == list(expected.columns) == names
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-6)
    # statsmodels' default is which="mean".
    default = res.get_prediction(new).summary_frame(alpha=0.1)
    if which == "mean":
        np.testing.assert_array_equal(default.to_numpy(), got.to_numpy())


@pytest.mark.parametrize("cov_type", ["HC0", "cluster"])
def test_sparse_columns_sandwich_equals_statsmodels_pieces(cov_type) -> None:
    """A many-level categorical is kept sparse (its score sums go through the sparse
    products): the sandwich equals statsmodels' pieces at the same estimates."""
    rng = np.random.default_rng(7)
    n = 1500
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "h": rng.integers(0, 60, n).astype(str),
            "cl": rng.integers(0, 31, n),
        }
    )
    mu = np.exp(0.2 + 0.3 * df.x)
    df["y"] = rng.negative_binomial(2, 1 / (1 + 0.5 * mu)).astype(float)
    kwds = {"groups": "cl"} if cov_type == "cluster" else None
    res = shardfit.negativebinomial("y ~ x + C(h)", from_pandas(df, npartitions=3)).fit(
        backend="serial", cov_type=cov_type, cov_kwds=kwds
    )
    assert sum(not dense for dense in res.spec.dense_columns()) == 59
    X = sm.add_constant(pd.get_dummies(df[["x", "h"]], columns=["h"], drop_first=True, dtype=float))
    model = sm.NegativeBinomial(df.y, X, loglike_method="nb2")
    groups = df.cl.to_numpy() if cov_type == "cluster" else None
    np.testing.assert_allclose(
        res.cov_params().to_numpy(),
        _sandwich_at(model, res.params.to_numpy(), groups),
        rtol=1e-9,
    )
