"""The out-of-core Gaussian elastic net equals scikit-learn's ElasticNet and ElasticNetCV
in memory (same objective, standardization and folds; issue 7)."""

from __future__ import annotations

import formulaic
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import ElasticNet, ElasticNetCV
from sklearn.model_selection import PredefinedSplit

import shardfit
from shardfit.errors import UnseenLevelError

RTOL = 1e-6
FORMULA = "y ~ x0 + x1 + x2 + x3 + x4 + x5 + C(g)"
TIGHT = {"tol": 1e-14, "max_iter": 1_000_000}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261130)
    n = 700
    X = rng.standard_normal((n, 6)) * [1, 2, 0.5, 3, 1, 1] + [0, 5, 0, -2, 0, 1]
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(6)])
    frame["x5"] += 0.7 * frame["x0"]  # correlated columns
    frame["g"] = rng.choice(list("abcd"), n)
    frame["w"] = rng.uniform(0.2, 3.0, n)
    frame["y"] = (
        1 + frame.x0 - 0.5 * frame.x1 + 0.3 * frame.x3 + 0.8 * (frame.g == "b")
    ) + rng.standard_normal(n)
    return frame


@pytest.fixture(scope="module")
def design(frame) -> tuple[np.ndarray, np.ndarray]:
    matrices = formulaic.model_matrix(FORMULA, frame)
    return matrices.rhs.drop(columns="Intercept").to_numpy(), frame["y"].to_numpy()


def _close(actual, expected, rtol=RTOL) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    np.testing.assert_allclose(
        actual, expected, rtol=0, atol=rtol * max(np.max(np.abs(expected)), 1e-300)
    )


@pytest.mark.parametrize(("alpha", "l1_ratio"), [(0.1, 0.5), (0.02, 1.0), (0.3, 0.1)])
def test_fixed_alpha_equals_sklearn(frame, design, alpha, l1_ratio) -> None:
    X, y = design
    result = shardfit.elastic_net(
        FORMULA, shardfit.from_pandas(frame, 3), alpha=alpha, l1_ratio=l1_ratio, backend="serial"
    )
    reference = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, **TIGHT).fit(X, y)
    _close(result.coef_, reference.coef_)
    assert result.intercept_ == pytest.approx(reference.intercept_, rel=RTOL)
    assert np.array_equal(result.coef_ == 0, reference.coef_ == 0)  # the same zeros
    assert result.params.index[0] == "Intercept" and len(result.params) == X.shape[1] + 1
    _close(result.predict(frame.head(20)), reference.predict(X[:20]))


def test_partitioning_does_not_change_the_answer(frame) -> None:
    one = shardfit.elastic_net(FORMULA, frame, alpha=0.05, backend="serial")
    many = shardfit.elastic_net(
        FORMULA, shardfit.from_pandas(frame, 17), alpha=0.05, backend="serial"
    )
    _close(many.params, one.params, rtol=1e-10)


def test_weights_equal_sample_weight(frame, design) -> None:
    X, y = design
    result = shardfit.elastic_net(
        FORMULA, shardfit.from_pandas(frame, 3), alpha=0.05, weights="w", backend="serial"
    )
    reference = ElasticNet(alpha=0.05, **TIGHT).fit(X, y, sample_weight=frame["w"].to_numpy())
    _close(result.coef_, reference.coef_)
    assert result.intercept_ == pytest.approx(reference.intercept_, rel=RTOL)


def test_standardize_equals_sklearn_on_standardized_columns(frame, design) -> None:
    X, y = design
    sd = X.std(axis=0)
    result = shardfit.elastic_net(FORMULA, frame, alpha=0.05, standardize=True, backend="serial")
    reference = ElasticNet(alpha=0.05, **TIGHT).fit(X / sd, y)
    _close(result.coef_, reference.coef_ / sd)
    assert result.intercept_ == pytest.approx(reference.intercept_, rel=RTOL)


def test_no_intercept_formula(frame) -> None:
    formula = "y ~ 0 + x0 + x1 + x2 + x3 + x4 + x5 + C(g)"
    result = shardfit.elastic_net(formula, frame, alpha=0.05, backend="serial")
    full = formulaic.model_matrix(formula, frame).rhs
    reference = ElasticNet(alpha=0.05, fit_intercept=False, **TIGHT).fit(
        full.to_numpy(), frame["y"].to_numpy()
    )
    assert result.intercept_ == 0.0 and result.intercept_name is None
    assert list(result.params.index) == list(full.columns)
    _close(result.coef_, reference.coef_)


def _sklearn_folds(source, k: int) -> np.ndarray:
    return np.concatenate(
        [
            shardfit.cv_folds(part.key, np.arange(part.stop - part.start), k)
            for part in source.partitions
        ]
    )


def test_cross_validation_equals_elasticnetcv(frame, design) -> None:
    X, y = design
    source = shardfit.from_pandas(frame, 3)
    result = shardfit.elastic_net(FORMULA, source, l1_ratio=0.7, cv=5, backend="serial")
    reference = ElasticNetCV(
        l1_ratio=0.7, cv=PredefinedSplit(_sklearn_folds(source, 5)), **TIGHT
    ).fit(X, y)
    # the same point of the same grid
    assert list(result.alphas).index(result.alpha_) == list(reference.alphas_).index(
        reference.alpha_
    )
    assert result.alpha_ == pytest.approx(reference.alpha_, rel=1e-12)
    _close(result.alphas, reference.alphas_, rtol=1e-12)
    _close(result.cv_mse, reference.mse_path_)
    _close(result.coef_, reference.coef_)
    assert result.intercept_ == pytest.approx(reference.intercept_, rel=RTOL)
    curve = result.cv_curve
    assert curve["mean"].idxmin() == result.alpha_
    assert result.path.shape == (100, X.shape[1] + 1)
    assert result.passes == 2  # the schema pass and one pass for the whole path with CV
    text = str(result.summary())
    assert "l1_ratio" in text and "CV folds" in text


def test_folds_are_stable_and_balanced() -> None:
    folds = shardfit.cv_folds("part-0", np.arange(100_000), 10)
    again = shardfit.cv_folds("part-0", np.arange(100_000), 10)
    assert np.array_equal(folds, again)
    counts = np.bincount(folds, minlength=10)
    assert counts.min() > 9_500 and counts.max() < 10_500
    assert not np.array_equal(folds, shardfit.cv_folds("part-1", np.arange(100_000), 10))
    # a fixed function: these values never change between runs or versions
    assert shardfit.cv_folds("DataFrame[0:3]", [0, 1, 2], 5).tolist() == [
        int(v) for v in shardfit.cv_folds("DataFrame[0:3]", np.array([0, 1, 2]), 5)
    ]


def test_processes_backend_equals_serial(frame) -> None:
    source = shardfit.from_pandas(frame, 4)
    serial = shardfit.elastic_net(FORMULA, source, cv=3, n_alphas=20, backend="serial")
    parallel = shardfit.elastic_net(
        FORMULA, source, cv=3, n_alphas=20, backend="processes", workers=2
    )
    assert np.array_equal(serial.path_array, parallel.path_array)
    assert np.array_equal(serial.cv_mse, parallel.cv_mse)


def test_bad_parameters(frame) -> None:
    with pytest.raises(ValueError, match="'l1_ratio' parameter must be in"):
        shardfit.elastic_net(FORMULA, frame, l1_ratio=2.0, backend="serial")
    with pytest.raises(ValueError, match="'cv' parameter must be an int >= 2"):
        shardfit.elastic_net(FORMULA, frame, cv=1, backend="serial")
    with pytest.raises(ValueError, match="needs l1_ratio > 0"):
        shardfit.elastic_net(FORMULA, frame, l1_ratio=0.0, backend="serial")
    with pytest.raises(ValueError, match=r"either 'alpha' .* or 'alphas'"):
        shardfit.elastic_net(FORMULA, frame, alpha=0.1, alphas=[0.1, 0.2], backend="serial")
    with pytest.raises(TypeError, match="'estimation_method' parameter must be a callable"):
        shardfit.DistributedModel(4, estimation_method="average")


def test_predict_encodes_unseen_levels_as_zeros_on_request() -> None:
    rng = np.random.default_rng(4)
    train = pd.DataFrame({"x": rng.normal(size=300), "g": rng.choice(["a", "b"], 300)})
    train["y"] = train["x"] + (train["g"] == "b") + rng.normal(size=300)
    fit = shardfit.elastic_net("y ~ x + C(g)", train, alpha=0.01, backend="serial")
    new = pd.DataFrame({"x": [0.5, 1.0], "g": ["a", "z"]})
    with pytest.raises(UnseenLevelError, match="pass unseen='zero'"):
        fit.predict(new)
    # "z" gets the reference level's (all-zero) columns: the prediction at g == "a".
    zero = fit.predict(new, unseen="zero")
    np.testing.assert_allclose(zero, fit.predict(new.assign(g="a")), rtol=1e-15)


def test_standardized_cross_validation_refits_the_scaler_per_fold(frame, design) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = design
    source = shardfit.from_pandas(frame, 3)
    result = shardfit.elastic_net(
        FORMULA, source, cv=4, n_alphas=6, standardize=True, backend="serial"
    )
    folds = _sklearn_folds(source, 4)
    for f in range(4):
        train, test = folds != f, folds == f
        for i, alpha in enumerate(result.alphas):
            pipe = make_pipeline(StandardScaler(), ElasticNet(alpha=alpha, **TIGHT))
            pipe.fit(X[train], y[train])
            mse = np.mean((pipe.predict(X[test]) - y[test]) ** 2)
            assert result.cv_mse[i, f] == pytest.approx(mse, rel=1e-8), (f, i)
