"""Session 18 sweep: out-of-core SVD/PCA, summary-statistic models and stacked
ensembles against independent references (NumPy, scikit-learn, statsmodels, SciPy).

Two fixes are pinned here:

- L-BFGS-B's "ABNORMAL" stop at the float64 optimum (its line search finds only
  losses equal to the current one up to an ulp) counts as converged, as the ``tol``
  docs say: before, a weighted least-squares fit at 1e-10 of the statsmodels optimum
  reported ``converged=False``.
- A NaN stored as a value (Parquet; not a null) in a column a summary-statistic model
  reads is named by column and row; before, the error named the partition only, and
  a scan returned NaN at every point without a word.

The rest are the combinations the sweep found in agreement and no other test covers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.decomposition import PCA
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, KFold, cross_val_predict
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import SVR, LinearSVC
from sklearn.tree import DecisionTreeRegressor

import shardfit
from shardfit.errors import DesignError

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
sm = pytest.importorskip("statsmodels.api")
minimize = pytest.importorskip("scipy.optimize").minimize

# --- summary-statistic models --------------------------------------------------------


class _WeightedSquares(shardfit.SumstatsModel):
    """Half the weighted residual sum of squares: the optimum is weighted least squares."""

    param_names = ("b0", "b1", "b2")

    def partial_sumstats(self, params, data):
        r = data["y"] - params[0] - params[1] * data["x1"] - params[2] * data["x2"]
        return jnp.sum(data["w"] * r**2)

    def loss(self, sumstats):
        return 0.5 * sumstats


class _Poisson(shardfit.SumstatsModel):
    """The Poisson negative log-likelihood (up to a constant) of ``c`` on x1, x2."""

    param_names = ("b0", "b1", "b2")

    def partial_sumstats(self, params, data):
        eta = params[0] + params[1] * data["x1"] + params[2] * data["x2"]
        return jnp.sum(jnp.exp(eta) - data["c"] * eta)

    def loss(self, sumstats):
        return sumstats


class _Logistic(shardfit.SumstatsModel):
    """The logistic negative log-likelihood of ``z`` on x1, x2."""

    param_names = ("b0", "b1", "b2")

    def partial_sumstats(self, params, data):
        eta = params[0] + params[1] * data["x1"] + params[2] * data["x2"]
        return jnp.sum(jnp.logaddexp(0.0, eta) - data["z"] * eta)

    def loss(self, sumstats):
        return sumstats


class _LogMeanSquare(shardfit.SumstatsModel):
    """``log(mean squared residual)``: a nonlinear loss of two sums, optimum OLS."""

    param_names = ("b0", "b1", "b2")

    def partial_sumstats(self, params, data):
        r = data["y"] - params[0] - params[1] * data["x1"] - params[2] * data["x2"]
        return jnp.stack([jnp.sum(jnp.ones_like(r)), jnp.sum(r**2)])

    def loss(self, sumstats):
        return jnp.log(sumstats[1] / sumstats[0])


class _MeanAndCount(shardfit.SumstatsModel):
    """``(mean of y - a)^2`` with rows whose ``y`` is NaN masked out (deliberately)."""

    param_names = ("a",)

    def partial_sumstats(self, params, data):
        ok = ~jnp.isnan(data["y"])
        y = jnp.where(ok, data["y"], 0.0)
        return jnp.stack([jnp.sum(ok * 1.0), jnp.sum(y) - params[0] * jnp.sum(ok * 1.0)])

    def loss(self, sumstats):
        return (sumstats[1] / sumstats[0]) ** 2


class _Squares(shardfit.SumstatsModel):
    param_names = ("a", "b")

    def partial_sumstats(self, params, data):
        r = data["y"] - params[0] - params[1] * data["x"]
        return jnp.stack([jnp.sum(r**2), jnp.sum(jnp.ones_like(r))])

    def loss(self, sumstats):
        return sumstats[0] / sumstats[1]


class _NegatedGradient(shardfit.SumstatsModel):
    """The value of a least-squares loss with the gradient of its negative: a wrong
    gradient, on which L-BFGS-B's line search fails far from any optimum."""

    param_names = ("a", "b")

    def partial_sumstats(self, params, data):
        return jnp.sum((data["y"] - params[0] - params[1] * data["x"]) ** 2)

    def loss(self, sumstats):
        return -sumstats + 2.0 * jax.lax.stop_gradient(sumstats)


ROWS = 900
START = np.array([0.1, -0.2, 0.05])


@pytest.fixture(scope="module")
def regression_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x1 = rng.standard_normal(ROWS)
    x2 = rng.standard_normal(ROWS) * 2 + 1
    eta_c = 0.2 + 0.3 * x1 - 0.1 * x2
    eta_z = 0.3 - 0.8 * x1 + 0.2 * x2
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "y": 1 + 0.5 * x1 - 0.3 * x2 + rng.standard_normal(ROWS),
            "w": rng.uniform(0.5, 2.0, ROWS),
            "c": rng.poisson(np.exp(eta_c)).astype(float),
            "z": (rng.uniform(size=ROWS) < 1 / (1 + np.exp(-eta_z))).astype(float),
        }
    )


def _design(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack([np.ones(len(frame)), frame["x1"], frame["x2"]])


def _in_memory(model: shardfit.SumstatsModel, frame: pd.DataFrame):
    """The model's loss and gradient on all rows at once (JAX, no partitions)."""
    data = {c: jnp.asarray(frame[c].to_numpy()) for c in model.columns}
    value_and_grad = jax.jit(
        jax.value_and_grad(lambda p: model.loss(model.partial_sumstats(p, data)))
    )

    def evaluate(params: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_grad(jnp.asarray(params))
        return float(value), np.asarray(grad)

    return evaluate


def _finite_differences(evaluate, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = (evaluate(x + step)[0] - evaluate(x - step)[0]) / (2 * h)
    return grad


def test_lbfgs_stop_on_a_flat_line_search_at_the_optimum_is_converged(regression_frame) -> None:
    """One partition of weighted least squares from ``START``: L-BFGS-B reaches the WLS
    optimum (1e-10) and its last line search sees only losses within 2 ulps of 576.19,
    so it stops "ABNORMAL"; SciPy on the same loss in memory does the same (and
    reports failure). The old code said ``converged=False``. (Measured here; on a
    platform whose sums round otherwise the stop may be a normal one.)"""
    model = _WeightedSquares(regression_frame, ["y", "x1", "x2", "w"])
    exact = sm.WLS(regression_frame["y"], _design(regression_frame), regression_frame["w"])
    exact = exact.fit().params.to_numpy()
    result = model.fit(START, backend="serial", tol=1e-8)
    reference = minimize(
        _in_memory(model, regression_frame),
        START,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 200, "gtol": 1e-8, "ftol": 0.0},
    )
    # The case pinned: on this machine's rounding both stop "ABNORMAL" (where another
    # platform's sums end the search normally, the fit must still report convergence).
    if "ABNORMAL" in result.message:
        assert not reference.success
    # Same optimizer on the same numbers: the same steps.
    np.testing.assert_array_equal(result.params, reference.x)
    assert result.iterations == reference.nit and result.npasses == reference.nfev
    np.testing.assert_allclose(result.params, exact, rtol=0, atol=1e-9)
    residual = regression_frame["y"].to_numpy() - _design(regression_frame) @ exact
    optimum = 0.5 * float(np.sum(regression_frame["w"].to_numpy() * residual**2))
    np.testing.assert_allclose(result.loss, optimum, rtol=1e-13)
    assert result.converged


def test_lbfgs_failing_on_a_wrong_gradient_is_not_converged() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.standard_normal(100), "y": rng.standard_normal(100)})
    result = _NegatedGradient(frame, ["x", "y"]).fit([0.3, 0.2], backend="serial")
    assert "ABNORMAL" in result.message
    assert not result.converged


@pytest.mark.parametrize(
    ("cls", "columns", "nparts"),
    [
        (_Poisson, ["c", "x1", "x2"], 5),
        (_Logistic, ["z", "x1", "x2"], 7),
        (_LogMeanSquare, ["y", "x1", "x2"], 2),
    ],
)
def test_likelihood_sumstats_equal_statsmodels_and_scipy(
    regression_frame, cls, columns, nparts
) -> None:
    """Loss and gradient equal the in-memory JAX loss (and finite differences), the
    L-BFGS optimum equals statsmodels' MLE / OLS and SciPy's L-BFGS-B in memory."""
    model = cls(regression_frame, columns, partition_rows=-(-ROWS // nparts))
    assert model.source.npartitions == nparts
    evaluate = _in_memory(model, regression_frame)
    loss, grad = model.loss_and_grad(START, backend="serial")
    expected_loss, expected_grad = evaluate(START)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-14)
    np.testing.assert_allclose(
        grad, expected_grad, rtol=0, atol=1e-13 * np.abs(expected_grad).max()
    )
    np.testing.assert_allclose(
        grad, _finite_differences(evaluate, START), rtol=0, atol=1e-8 * np.abs(expected_grad).max()
    )
    X = _design(regression_frame)
    if cls is _Poisson:
        exact = sm.GLM(regression_frame["c"], X, family=sm.families.Poisson()).fit(tol=1e-14)
    elif cls is _Logistic:
        exact = sm.Logit(regression_frame["z"], X).fit(disp=0, tol=1e-14, method="newton")
    else:
        exact = sm.OLS(regression_frame["y"], X).fit()
    result = model.fit(START, backend="serial", tol=1e-8)
    reference = minimize(
        evaluate, START, jac=True, method="L-BFGS-B",
        options={"maxiter": 200, "gtol": 1e-8, "ftol": 0.0},
    )  # fmt: skip
    assert result.converged, result.message
    np.testing.assert_allclose(result.params, np.asarray(exact.params), rtol=0, atol=1e-7)
    np.testing.assert_allclose(result.params, reference.x, rtol=0, atol=1e-7)
    np.testing.assert_allclose(result.loss, reference.fun, rtol=1e-12)


def _parquet_with_nan(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.standard_normal(30), "y": rng.standard_normal(30)})
    y = frame["y"].to_numpy().copy()
    y[17] = np.nan
    # from_pandas=False: a NaN value, not a null (which is refused by name already).
    table = pa.table({"x": frame["x"].to_numpy(), "y": pa.array(y, from_pandas=False)})
    assert table.column("y").null_count == 0
    pq.write_table(table.slice(0, 15), tmp_path / "a.parquet")
    pq.write_table(table.slice(15), tmp_path / "b.parquet")
    frame["y"] = y
    return tmp_path, frame


def test_a_nan_value_in_parquet_is_named_by_column_and_row(tmp_path) -> None:
    where, _ = _parquet_with_nan(tmp_path)
    model = _Squares(where, ["x", "y"])
    named = r"b\.parquet.*column 'y' holds nan at file b\.parquet, row 2"
    with pytest.raises(DesignError, match=named):
        model.loss_and_grad([0.0, 0.0], backend="serial")
    with pytest.raises(DesignError, match=named):
        model.loss_at([0.0, 0.0], backend="serial")
    with pytest.raises(DesignError, match=named):
        model.fit([0.0, 0.0], backend="serial")
    with pytest.raises(DesignError, match="every point of the scan.*" + named[12:]):
        model.scan([(0.0, 1.0), (0.0, 1.0)], 4, seed=0, backend="serial")


def test_a_model_that_masks_nan_still_runs_and_equals_in_memory(tmp_path) -> None:
    where, frame = _parquet_with_nan(tmp_path)
    model = _MeanAndCount(where, ["y"])
    kept = frame["y"].dropna().to_numpy()
    a = 0.3
    loss, grad = model.loss_and_grad([a], backend="serial")
    np.testing.assert_allclose(loss, (kept.mean() - a) ** 2, rtol=1e-13)
    np.testing.assert_allclose(grad, [-2.0 * (kept.mean() - a)], rtol=1e-13)
    scanned = model.scan([(-1.0, 1.0)], 5, seed=1, backend="serial")
    np.testing.assert_allclose(
        scanned.losses, (kept.mean() - scanned.points[:, 0]) ** 2, rtol=1e-12
    )


def test_an_empty_parquet_partition_changes_nothing(tmp_path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.standard_normal(30), "y": rng.standard_normal(30)})
    for name, rows in (("a", slice(0, 15)), ("b", slice(0, 0)), ("c", slice(15, 30))):
        frame.iloc[rows].to_parquet(tmp_path / f"{name}.parquet", index=False)
    split = _Squares(tmp_path, ["x", "y"])
    assert split.source.npartitions == 3
    loss, grad = split.loss_and_grad([0.1, 0.2], backend="serial")
    r = frame["y"].to_numpy() - 0.1 - 0.2 * frame["x"].to_numpy()
    np.testing.assert_allclose(loss, np.mean(r**2), rtol=1e-14)
    np.testing.assert_allclose(
        grad, [-2 * np.mean(r), -2 * np.mean(r * frame["x"].to_numpy())], rtol=1e-13
    )


# --- SVD / PCA ---------------------------------------------------------------------------


def _flip(vt: np.ndarray) -> np.ndarray:
    vt = vt.copy()
    for row in vt:
        if row[int(np.argmax(np.abs(row)))] < 0:
            row *= -1
    return vt


def _svd_frame(kind: str, rng: np.random.Generator) -> pd.DataFrame:
    n = 600
    a = rng.standard_normal((n, 2)) * [2.0, 1.0]
    if kind == "offset":  # 1e8 + noise: the centred SVD loses log10(1e8 / 0.5) digits
        third = 1e8 + 0.5 * rng.standard_normal(n)
    elif kind == "constant":
        third = np.full(n, 3.0)
    else:  # nearly a combination of the first two
        third = a[:, 0] + a[:, 1] + 1e-7 * rng.standard_normal(n)
    return pd.DataFrame({"x0": a[:, 0], "x1": a[:, 1], "x2": third, "w": rng.uniform(0.5, 2.0, n)})


@pytest.mark.parametrize(
    ("kind", "fmt", "nparts", "center", "weighted"),
    [
        ("offset", "csv", 7, True, False),
        ("offset", "parquet", 4, True, True),
        ("constant", "parquet", 7, True, True),
        ("constant", "csv", 4, False, True),
        ("nearrank", "csv", 4, True, False),
        ("nearrank", "parquet", 7, False, False),
    ],
)
def test_svd_of_files_equals_numpy_and_pca(tmp_path, kind, fmt, nparts, center, weighted) -> None:
    frame = _svd_frame(kind, np.random.default_rng(len(kind) + nparts))
    n = len(frame)
    if fmt == "csv":
        frame.to_csv(tmp_path / "data.csv", index=False)
        source = shardfit.read_csv(tmp_path / "data.csv", partition_rows=-(-n // nparts))
    else:
        for i, rows in enumerate(np.array_split(np.arange(n), nparts)):
            frame.iloc[rows].to_parquet(tmp_path / f"p{i}.parquet", index=False)
        source = shardfit.read_parquet(tmp_path)
    # CSV partition_rows is approximate (bytes from the mean line length).
    assert source.npartitions == nparts if fmt == "parquet" else source.npartitions > 1
    result = shardfit.svd(
        "0 + x0 + x1 + x2", source, center=center, weights="w" if weighted else None,
        backend="serial",
    )  # fmt: skip
    X = frame[["x0", "x1", "x2"]].to_numpy()
    w = frame["w"].to_numpy() if weighted else np.ones(n)
    Z = X - (w @ X) / w.sum() if center else X
    _, s, vt = np.linalg.svd(np.sqrt(w)[:, None] * Z, full_matrices=False)
    # Backward stable on the raw values: eps times the largest raw column norm, which
    # for the offset column is 1e8 * sqrt(n); measured 1.4e-9 of s_max at most.
    raw = np.linalg.norm(np.sqrt(w)[:, None] * X, axis=0).max() if center else s[0]
    atol = 100 * np.finfo(float).eps * raw
    np.testing.assert_allclose(result.singular_values, s, rtol=0, atol=atol)
    assert result.rank == np.linalg.matrix_rank(np.sqrt(w)[:, None] * Z)
    leading = 2 if kind != "offset" else 3  # the near-null component is ill-determined
    np.testing.assert_allclose(
        result.components_array[:leading],
        _flip(vt)[:leading],
        rtol=0,
        atol=max(1e-12, atol / s[leading - 1]),
    )
    divisor = (w.sum() if weighted else n) - 1
    np.testing.assert_allclose(
        result.explained_variance, s**2 / divisor, rtol=0, atol=2 * s[0] * atol / divisor
    )
    np.testing.assert_allclose(
        result.explained_variance_ratio, s**2 / np.sum(s**2), rtol=0, atol=2 * atol / s[0]
    )
    if center and not weighted:
        pca = PCA(svd_solver="full").fit(X)
        np.testing.assert_allclose(
            result.explained_variance,
            pca.explained_variance_,
            rtol=0,
            atol=2 * s[0] * atol / divisor,
        )
        scores = result.transform(source, n_components=leading, backend="serial").to_numpy()
        np.testing.assert_allclose(scores, pca.transform(X)[:, :leading], rtol=0, atol=atol * 10)


# --- ensembles ----------------------------------------------------------------------------


def test_classifier_on_group_folds_with_weights_equals_sklearn() -> None:
    """Group folds given as a list, decision_function, sample weights, passthrough,
    three string classes: the same numbers as StackingClassifier."""
    rng = np.random.default_rng(0)
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=150, n_features=5, n_informative=3, n_classes=3, random_state=3
    )
    labels = np.array(["b", "a", "c"])[y]
    weights = rng.uniform(0.5, 2.0, 150)
    folds = list(GroupKFold(4).split(X, y, rng.integers(0, 10, 150)))
    layer = [("lr", LogisticRegression(max_iter=500)), ("svc", LinearSVC(random_state=0))]
    final = LogisticRegression(max_iter=1000)
    options = {"cv": folds, "stack_method": "decision_function", "passthrough": True}
    ours = shardfit.StackingEnsembleClassifier(
        layer, final_estimator=final, backend="serial", **options
    )
    ours.fit(X, labels, sample_weight=weights)
    theirs = StackingClassifier(layer, final_estimator=final, **options).fit(
        X, labels, sample_weight=weights
    )
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    # GaussianNB's probabilities with the same folds, binary: one column each.
    binary = labels != "c"
    folds = list(KFold(3, shuffle=True, random_state=4).split(X[binary]))
    layer = [("nb", GaussianNB()), ("lr", LogisticRegression(max_iter=500))]
    ours = shardfit.StackingEnsembleClassifier(layer, cv=folds, backend="serial").fit(
        X[binary], labels[binary]
    )
    theirs = StackingClassifier(layer, cv=folds).fit(X[binary], labels[binary])
    assert ours.transform(X).shape == (150, 2)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=1e-12)


def test_regressor_with_weights_equals_sklearn_and_cross_val_predict() -> None:
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=150, n_features=4, noise=5.0, random_state=1)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, 150)
    cv = KFold(4, shuffle=True, random_state=1)
    layer = [
        ("ridge", Ridge(1.0)),
        ("tree", DecisionTreeRegressor(max_depth=3, random_state=0)),
        ("svr", SVR()),
    ]
    ours = shardfit.StackingEnsembleRegressor(layer, cv=cv, passthrough=True, backend="serial")
    ours.fit(X, y, sample_weight=weights)
    theirs = StackingRegressor(layer, cv=cv, passthrough=True).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        ours.final_estimator_.coef_, theirs.final_estimator_.coef_, rtol=0, atol=1e-12
    )
    # The final estimator is fitted on cross_val_predict's out-of-fold predictions.
    plain = shardfit.StackingEnsembleRegressor(
        layer, final_estimator=LinearRegression(), cv=cv, backend="serial"
    )
    plain.fit(X, y)
    features = np.column_stack([cross_val_predict(e, X, y, cv=cv) for _, e in layer])
    np.testing.assert_allclose(
        plain.final_estimator_.coef_, LinearRegression().fit(features, y).coef_, rtol=0, atol=1e-10
    )
