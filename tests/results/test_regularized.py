"""Results of regularized fits: JSON round trips, predictions, summaries and plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shardfit

FORMULA = "y ~ x0 + x1 + x2 + C(g)"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261130)
    n = 300
    frame = pd.DataFrame(rng.standard_normal((n, 3)), columns=["x0", "x1", "x2"])
    frame["g"] = rng.choice(["u", "v", "w"], n)
    frame["y"] = 2 + frame.x0 - frame.x1 + 0.5 * (frame.g == "v") + rng.standard_normal(n)
    frame["yb"] = (frame.y > 2).astype(float)
    return frame


@pytest.fixture(scope="module")
def enet(frame):
    return shardfit.elastic_net(FORMULA, frame, cv=3, n_alphas=15, backend="serial")


def test_elastic_net_round_trip(enet, frame, tmp_path) -> None:
    path = enet.save(tmp_path / "enet.json")
    loaded = shardfit.ElasticNetResults.load(path)
    assert "pickle" not in path.read_text()
    for name in ("coef_array", "alphas", "path_array", "path_intercepts", "cv_mse"):
        assert np.array_equal(getattr(loaded, name), getattr(enet, name)), name
    assert loaded.alpha == enet.alpha and loaded.intercept == enet.intercept
    assert np.array_equal(loaded.predict(frame), enet.predict(frame))


def test_elastic_net_predict_matches_design(enet, frame) -> None:
    import formulaic

    X = formulaic.model_matrix(FORMULA, frame).rhs.to_numpy()
    expected = X @ enet.params.to_numpy()
    np.testing.assert_allclose(enet.predict(frame), expected, rtol=1e-12)
    # a design matrix without the intercept column, as scikit-learn's predict takes
    np.testing.assert_allclose(enet.predict(X[:, 1:]), expected, rtol=1e-12)


def test_elastic_net_summary_and_tables(enet) -> None:
    text = str(enet.summary())
    assert "Elastic-net results" in text and "C(g)[T.v]" in text
    assert enet.path.index.name == "alpha" and enet.path.shape == (15, 6)
    curve = enet.cv_curve
    assert list(curve.columns) == ["mean", "std_error"] and curve["std_error"].gt(0).all()
    assert enet.summary().as_frame().shape == (6, 1)


def test_distributed_round_trip(frame, tmp_path) -> None:
    result = shardfit.DistributedModel(
        formula="yb ~ x0 + x1 + x2", model="glm", family="binomial", alpha=0.01
    ).fit(shardfit.from_pandas(frame, 3), backend="serial")
    loaded = shardfit.DistributedResults.load(result.save(tmp_path / "d.json"))
    assert np.array_equal(loaded.params_array, result.params_array)
    assert loaded.family == "binomial" and loaded.method == "debiased"
    assert np.array_equal(loaded.predict(frame), result.predict(frame))
    assert np.all((result.predict(frame) > 0) & (result.predict(frame) < 1))


def test_plots(enet) -> None:
    matplotlib = pytest.importorskip("matplotlib", reason="the 'plot' extra is not installed")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = enet.plot_path()
    assert len(ax.get_lines()) == len(enet.names) + 1  # one per term and the chosen alpha
    ax = enet.plot_cv()
    assert ax.get_ylabel() == "held-out MSE"
    plt.close("all")


def test_plot_without_cv_raises(frame) -> None:
    single = shardfit.elastic_net(FORMULA, frame, alpha=0.1, backend="serial")
    with pytest.raises(ValueError, match="no cross-validation curve"):
        single.plot_cv()


def test_predict_counts_rows_without_a_prediction(enet, frame) -> None:
    gappy = frame.head(10).copy()
    gappy.loc[3, "x1"] = np.nan
    with pytest.warns(UserWarning, match="1 of 10 rows have no prediction.*NaN, in place"):
        predicted = enet.predict(gappy)
    assert predicted.shape == (10,) and np.flatnonzero(np.isnan(predicted)).tolist() == [3]
    whole = enet.predict(gappy.drop(index=3))
    np.testing.assert_array_equal(np.delete(predicted, 3), whole)
