"""Review of the elastic net, the stacked ensembles and the summary-statistic models
against scikit-learn, glmnet's published rules and JAX in memory (each test failed
before its fix)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import ElasticNet, ElasticNetCV, LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import KFold
from sklearn.naive_bayes import GaussianNB

import shardfit
from shardfit.errors import DesignError

TIGHT = {"tol": 1e-14, "max_iter": 1_000_000}


@pytest.fixture(scope="module")
def logit_frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261201)
    n = 300
    # Columns of very different spreads and means: standardization matters.
    X = rng.standard_normal((n, 3)) * [1.0, 3.0, 0.2] + [0.0, 2.0, 5.0]
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    eta = -0.5 + frame.a + 0.3 * frame.b
    frame["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    return frame


@pytest.fixture
def where(request):
    """The backend named by the test's ``backend`` parameter: "serial", or the
    module's open 2-worker processes session (conftest), started once."""
    name = request.node.callspec.params["backend"]
    return "serial" if name == "serial" else request.getfixturevalue("processes")


def _logit_X(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return frame[["a", "b", "c"]].to_numpy(), frame["y"].to_numpy()


def _ridge_logit(X, y, alpha, fit_intercept=True) -> LogisticRegression:
    """scikit-learn's L2 logistic regression with shardfit's alpha = 1 / (C n)."""
    return LogisticRegression(
        C=1 / (alpha * len(y)), fit_intercept=fit_intercept, tol=1e-12, max_iter=10_000
    ).fit(X, y)


# -- elastic net: GLM standardization (it was ignored) ------------------------------------
def test_glm_standardize_equals_sklearn_on_standardized_columns(logit_frame) -> None:
    X, y = _logit_X(logit_frame)
    alpha = 0.02
    fit = shardfit.elastic_net(
        "y ~ a + b + c",
        shardfit.from_pandas(logit_frame, 2),
        family="binomial",
        alpha=alpha,
        l1_ratio=0.0,
        standardize=True,
        tol=1e-12,
        backend="serial",
    )
    mean, sd = X.mean(0), X.std(0)
    reference = _ridge_logit((X - mean) / sd, y, alpha)
    coef = reference.coef_[0] / sd
    np.testing.assert_allclose(fit.coef_, coef, rtol=1e-6)
    assert fit.intercept_ == pytest.approx(reference.intercept_[0] - coef @ mean, rel=1e-6)


def test_glm_standardized_grid_starts_at_lambda_max(logit_frame) -> None:
    """glmnet's lambda_max = max_j |x_j'(y - ybar)| / (n sd_j l1_ratio): all coefficients
    are zero there and one is not just below it."""
    X, y = _logit_X(logit_frame)
    rho = 0.6
    fit = shardfit.elastic_net(
        "y ~ a + b + c",
        logit_frame,
        family="binomial",
        l1_ratio=rho,
        n_alphas=3,
        standardize=True,
        backend="serial",
    )
    lambda_max = np.max(np.abs(X.T @ (y - y.mean())) / X.std(0)) / (len(y) * rho)
    assert fit.alphas[0] == pytest.approx(lambda_max, rel=1e-12)
    assert np.all(fit.path_array[0] == 0)
    below = shardfit.elastic_net(
        "y ~ a + b + c",
        logit_frame,
        family="binomial",
        l1_ratio=rho,
        alpha=lambda_max * (1 - 1e-3),
        standardize=True,
        backend="serial",
    )
    assert np.count_nonzero(below.coef_) == 1


def test_glm_standardize_without_intercept_uses_root_mean_square(logit_frame) -> None:
    """glmnet (intercept=FALSE) and the Gaussian path scale uncentred columns by their
    root mean square."""
    X, y = _logit_X(logit_frame)
    alpha = 0.02
    fit = shardfit.elastic_net(
        "y ~ 0 + a + b + c",
        logit_frame,
        family="binomial",
        alpha=alpha,
        l1_ratio=0.0,
        standardize=True,
        tol=1e-12,
        backend="serial",
    )
    rms = np.sqrt(np.mean(X**2, axis=0))
    reference = _ridge_logit(X / rms, y, alpha, fit_intercept=False)
    np.testing.assert_allclose(fit.coef_, reference.coef_[0] / rms, rtol=1e-6)


@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_glm_cross_validation_standardizes_each_training_fold(logit_frame, backend, where) -> None:
    """cv.glmnet refits the standardization on each fold's training rows (as the
    Gaussian path and a StandardScaler pipeline do)."""
    X, y = _logit_X(logit_frame)
    source = shardfit.from_pandas(logit_frame, 2)
    fit = shardfit.elastic_net(
        "y ~ a + b + c",
        source,
        family="binomial",
        l1_ratio=0.0,
        alphas=[0.05, 0.01],
        cv=3,
        standardize=True,
        tol=1e-12,
        backend=where,
    )
    folds = np.concatenate(
        [shardfit.cv_folds(p.key, np.arange(p.stop - p.start), 3) for p in source.partitions]
    )
    for f in range(3):
        train, test = folds != f, folds == f
        mean, sd = X[train].mean(0), X[train].std(0)
        for i, alpha in enumerate(fit.alphas):
            model = _ridge_logit((X[train] - mean) / sd, y[train], alpha)
            deviance = 2 * log_loss(y[test], model.predict_proba((X[test] - mean) / sd)[:, 1])
            assert fit.cv_mse[i, f] == pytest.approx(deviance, rel=1e-7), (f, i)


# -- elastic net: cross-validation and the path ---------------------------------------------
@pytest.mark.parametrize(("family", "response"), [("gaussian", "y"), ("binomial", "z")])
def test_empty_cross_validation_fold_is_refused(family, response) -> None:
    """12 rows in 10 hashed folds leave folds empty: their NaN loss made the mean NaN
    and the choice fall silently on the largest penalty (all zeros). scikit-learn
    refuses more folds than rows."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=12), "b": rng.normal(size=12)})
    frame["y"] = 2 * frame.a + 0.1 * rng.normal(size=12)
    frame["z"] = (frame.a + rng.normal(size=12) > 0).astype(float)
    with pytest.raises(ValueError, match="Cannot have number of splits"):
        ElasticNetCV(cv=KFold(20)).fit(frame[["a", "b"]], frame.y)
    with pytest.raises(DesignError, match=r"fold\(s\) \[0, 1, 3\] of 10 hold no rows"):
        shardfit.elastic_net(
            f"{response} ~ a + b", frame, cv=10, n_alphas=5, family=family, backend="serial"
        )


@pytest.mark.parametrize(
    ("alphas", "message"),
    [([-0.1, 0.2], r"alphas\[0\] == -0.1"), ([], "non-empty"), ([np.inf], r"alphas\[0\]")],
)
def test_bad_alphas_are_refused_like_sklearn(logit_frame, alphas, message) -> None:
    X, y = _logit_X(logit_frame)
    if len(alphas) and alphas[0] < 0:
        with pytest.raises(ValueError, match=r"alphas\[0\] == -0.1"):
            ElasticNetCV(alphas=alphas, cv=3).fit(X, y)
    with pytest.raises(ValueError, match=message):
        shardfit.elastic_net("y ~ a + b + c", logit_frame, alphas=alphas, backend="serial")


def test_predict_new_data_without_the_weights_column() -> None:
    rng = np.random.default_rng(1)
    n = 150
    frame = pd.DataFrame(rng.standard_normal((n, 2)), columns=["a", "b"])
    frame["g"] = rng.choice(["u", "v", "w"], n)
    frame["y"] = 1 + frame.a + (frame.g == "v") + rng.standard_normal(n)
    frame["w"] = rng.uniform(0, 2, n)
    fit = shardfit.elastic_net("y ~ a + b + C(g)", frame, alpha=0.05, weights="w", backend="serial")
    design = pd.get_dummies(frame[["a", "b", "g"]], columns=["g"], drop_first=True, dtype=float)
    reference = ElasticNet(alpha=0.05, **TIGHT).fit(design, frame.y, sample_weight=frame.w)
    new = pd.DataFrame({"a": [0.1, -1.0], "b": [1.0, 2.0], "g": ["w", "u"]})
    expected = reference.predict(
        pd.get_dummies(new, columns=["g"], dtype=float).reindex(
            columns=design.columns, fill_value=0
        )
    )
    np.testing.assert_allclose(fit.predict(new), expected, rtol=1e-9)


@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_all_zero_weights_are_refused_like_sklearn(family) -> None:
    """scikit-learn refuses weights that are all 0; the Gaussian fit blamed a
    cross-validation it was not running, the Poisson returned zeros."""
    from sklearn.linear_model import PoissonRegressor

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.standard_normal((60, 2)), columns=["a", "b"])
    frame["y"] = rng.poisson(np.exp(0.3 * frame.a)).astype(float)
    frame["w"] = 0.0
    reference = ElasticNet() if family == "gaussian" else PoissonRegressor()
    with pytest.raises(ValueError, match="at least one non-zero"):
        reference.fit(frame[["a", "b"]], frame.y, sample_weight=frame.w)
    with pytest.raises(DesignError, match=r"weights of the 60 rows fitted sum to 0\.0"):
        shardfit.elastic_net(
            "y ~ a + b", frame, alpha=0.1, weights="w", family=family, backend="serial"
        )


def test_intercept_only_gaussian_is_the_mean() -> None:
    """``y ~ 1`` (nothing to penalize) failed in a NumPy reduction; the binomial gave
    its intercept. The fit is the mean; each fold's loss the held-out MSE about the
    training mean."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"y": 2 + rng.normal(size=40)})
    source = shardfit.from_pandas(frame, 2)
    fit = shardfit.elastic_net("y ~ 1", source, cv=3, n_alphas=2, backend="serial")
    assert fit.intercept_ == pytest.approx(frame.y.mean(), rel=1e-13)
    assert fit.coef_.size == 0
    folds = np.concatenate(
        [shardfit.cv_folds(p.key, np.arange(p.stop - p.start), 3) for p in source.partitions]
    )
    y = frame.y.to_numpy()
    for f in range(3):
        mse = np.mean((y[folds == f] - y[folds != f].mean()) ** 2)
        np.testing.assert_allclose(fit.cv_mse[:, f], mse, rtol=1e-12)


def test_predict_a_list_of_rows_like_an_array() -> None:
    """A list of rows is a design matrix without the intercept, as an array is (it
    was taken for the full design, intercept column included)."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.standard_normal((50, 2)), columns=["a", "b"])
    frame["y"] = 1 + frame.a + rng.normal(size=50)
    fit = shardfit.elastic_net("y ~ a + b", frame, alpha=0.01, backend="serial")
    reference = ElasticNet(alpha=0.01, **TIGHT).fit(frame[["a", "b"]].to_numpy(), frame.y)
    rows = [[0.5, -1.0], [2.0, 0.0]]
    np.testing.assert_allclose(fit.predict(rows), reference.predict(np.array(rows)), rtol=1e-9)


def test_alpha_1se_is_glmnets_rule() -> None:
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(rng.standard_normal((n, 5)), columns=[f"x{j}" for j in range(5)])
    frame["y"] = frame.x0 - 0.5 * frame.x1 + 0.1 * frame.x2 + rng.standard_normal(n)
    formula = "y ~ x0 + x1 + x2 + x3 + x4"
    fit = shardfit.elastic_net(formula, frame, cv=5, n_alphas=30, backend="serial")
    # glmnet's getOptcv.glmnet: cvm, cvsd = sd / sqrt(K) over folds; lambda.1se is
    # the largest lambda with cvm <= cvm[min] + cvsd[min].
    cvm = fit.cv_mse.mean(axis=1)
    cvsd = fit.cv_mse.std(axis=1, ddof=1) / np.sqrt(5)
    best = int(np.argmin(cvm))
    expected = float(np.max(fit.alphas[cvm <= cvm[best] + cvsd[best]]))
    assert fit.alpha_1se == expected and fit.alpha_1se > fit.alpha_
    reference = ElasticNet(alpha=expected, **TIGHT).fit(frame.iloc[:, :5], frame.y)
    np.testing.assert_allclose(
        fit.path.loc[expected].to_numpy()[1:], reference.coef_, rtol=0, atol=1e-9
    )


# -- stacked ensembles ----------------------------------------------------------------------
def test_ensemble_checks_feature_names_like_sklearn() -> None:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=103, n_features=5, n_classes=3, n_informative=3,
                               random_state=0)  # fmt: skip
    labels = np.array(["zeta", "alpha", "mid"])[y]
    frame = pd.DataFrame(X, columns=list("abcde"))
    estimators = [("lr", LogisticRegression(max_iter=1000)), ("nb", GaussianNB())]
    ours = shardfit.StackingEnsembleClassifier(estimators, backend="serial").fit(frame, labels)
    reference = StackingClassifier(estimators).fit(frame, labels)
    assert list(ours.feature_names_in_) == list(reference.feature_names_in_)
    np.testing.assert_allclose(ours.predict_proba(frame), reference.predict_proba(frame))
    shuffled = frame[list("edcba")]
    with pytest.raises(ValueError, match="feature names should match"):
        reference.predict(shuffled)
    with pytest.raises(ValueError, match="feature names should match"):
        ours.predict(shuffled)  # silently predicted from the wrong columns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours.predict(frame)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        ours.predict(X)
    refit = shardfit.StackingEnsembleClassifier(estimators, backend="serial").fit(X, labels)
    assert not hasattr(refit, "feature_names_in_")


@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_ensemble_takes_a_list_of_splits_like_sklearn(backend, where) -> None:
    """scikit-learn's stacking takes cv as an iterable of (train, test) pairs; 53 rows
    in 4 folds (not divisible)."""
    from sklearn.ensemble import StackingRegressor
    from sklearn.linear_model import LinearRegression, Ridge

    rng = np.random.default_rng(0)
    X = rng.normal(size=(53, 4))
    y = X @ [1.0, 2.0, 0.0, -1.0] + rng.normal(size=53)
    splits = list(KFold(4, shuffle=True, random_state=3).split(X))
    estimators = [("ridge", Ridge()), ("ols", LinearRegression())]
    ours = shardfit.StackingEnsembleRegressor(estimators, cv=splits, backend=where).fit(X, y)
    reference = StackingRegressor(estimators, cv=splits).fit(X, y)
    np.testing.assert_allclose(ours.final_estimator_.coef_, reference.final_estimator_.coef_)
    np.testing.assert_allclose(ours.predict(X), reference.predict(X), rtol=1e-12)
    with pytest.raises(ValueError, match="the \\(train, test\\) pairs given held out 40 rows"):
        shardfit.StackingEnsembleRegressor(estimators, cv=splits[:3], backend="serial").fit(X, y)


# -- summary-statistic models ---------------------------------------------------------------
@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_sumstats_equal_bounds_fix_a_parameter(backend, where) -> None:
    """scipy.optimize.minimize takes low == high as a fixed parameter; the MLE of
    log(sigma) given mu = m0 is log(sqrt(sum w (x - m0)^2 / sum w))."""
    pytest.importorskip("jax")
    from shardfit.models._sumstats_testing import GaussianModel

    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"x": rng.normal(2.0, 1.5, 600), "w": rng.uniform(0.5, 2.0, 600)})
    model = GaussianModel(frame, partition_rows=250)
    m0 = 1.5
    fit = model.fit([m0, 0.0], bounds=[(m0, m0), (-3, 3)], tol=1e-10, backend=where)
    x, w = frame.x.to_numpy(), frame.w.to_numpy()
    expected = 0.5 * np.log(np.sum(w * (x - m0) ** 2) / np.sum(w))
    assert fit.params[0] == m0
    assert fit.params[1] == pytest.approx(expected, abs=1e-8)
    scan = model.scan([(m0, m0), (-1, 1)], n=4, seed=0, backend="serial")
    assert np.all(scan.points[:, 0] == m0)


def test_sumstats_lbfgs_on_a_nan_loss_raises() -> None:
    jax = pytest.importorskip("jax")
    from shardfit.models._sumstats_testing import GaussianModel

    class NanLoss(GaussianModel):
        def loss(self, sumstats):
            return jax.numpy.log(-sumstats[0])  # log of a negative number

    frame = pd.DataFrame({"x": [1.0, 2.0, 4.0], "w": [1.0, 1.0, 1.0]})
    model = NanLoss(frame)
    data = {c: jax.numpy.asarray(frame[c].to_numpy()) for c in model.columns}
    value = jax.jit(lambda p: model.loss(model.partial_sumstats(p, data)))(np.zeros(2))
    assert np.isnan(value)  # JAX in memory: NaN
    with pytest.raises(FloatingPointError, match="the loss is nan"):
        model.fit([0.0, 0.0], backend="serial")  # returned "ABNORMAL", converged False
    with pytest.raises(FloatingPointError, match="adam step 0: the loss is nan"):
        model.fit([0.0, 0.0], method="adam", maxiter=3, backend="serial")
