"""A covariate far from zero relative to its spread (a Unix timestamp, a year, a
grid coordinate) against the exact least-squares answer in rational arithmetic.

TSQR of uncentred columns loses ``cond * eps`` of the slope, and ``cond`` of
``[1, x]`` grows with ``|mean(x)| / sd(x)``: with x = 1e9 + U(0, 1) that was 2e-8
of the slope and 9e-7 of the residual sum of squares. Centred (the intercept
absorbs the shift), every method keeps the last digits.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import shardfit
from shardfit.data.memory import from_pandas


def _frame(offset: float) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x = offset + rng.random(600)
    y = 1.0 + 2.0 * (x - offset) + 0.1 * rng.standard_normal(600)
    return pd.DataFrame({"x": x, "y": y})


def _exact(frame: pd.DataFrame) -> tuple[float, float, float]:
    """Intercept, slope and residual sum of squares of the binary64 data, exactly."""
    x = [Fraction(v) for v in frame.x]
    y = [Fraction(v) for v in frame.y]
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sum(
        (a - mx) ** 2 for a in x
    )
    intercept = my - slope * mx
    ssr = sum((b - intercept - slope * a) ** 2 for a, b in zip(x, y, strict=True))
    return float(intercept), float(slope), float(ssr)


@pytest.fixture(scope="module", params=[1e6, 1e9])
def problem(request) -> tuple[pd.DataFrame, tuple[float, float, float]]:
    frame = _frame(request.param)
    return frame, _exact(frame)


@pytest.mark.parametrize("method", ["auto", "gram", "qr"])
@pytest.mark.parametrize("partitions", [1, 3])
def test_ols_keeps_the_digits(problem, method, partitions) -> None:
    frame, (intercept, slope, ssr) = problem
    result = shardfit.ols("y ~ x", from_pandas(frame, partitions)).fit(
        backend="serial", method=method
    )
    assert result.params["x"] == pytest.approx(slope, rel=1e-13)
    assert result.params["Intercept"] == pytest.approx(intercept, rel=1e-13)
    assert result.ssr == pytest.approx(ssr, rel=1e-12)


@pytest.mark.parametrize("method", ["auto", "qr"])
def test_gaussian_glm_keeps_the_digits(problem, method) -> None:
    frame, (intercept, slope, ssr) = problem
    result = shardfit.glm("y ~ x", from_pandas(frame, 3)).fit(backend="serial", method=method)
    assert result.params["x"] == pytest.approx(slope, rel=1e-13)
    assert result.params["Intercept"] == pytest.approx(intercept, rel=1e-13)
    # mu is formed about the design's centre: b0 + b1 x would cancel ~2e9 a row (R and
    # statsmodels do; that cost 1.5e-7 of the deviance here).
    assert result.deviance == pytest.approx(ssr, rel=1e-12)
    assert abs(result.iterations - 3) <= 1


def test_gamma_glm_converges_as_on_centred_data() -> None:
    """A Gamma GLM (log link) with a covariate at 1e6 + U(0, 10): formed as b0 + b1 x,
    the linear predictor's rounding (terms of 1e5 for an eta of ~1) made the deviance
    over the estimated scale jitter at 1e-10 relative, above the 1e-8 absolute
    tolerance on a ratio of ~5000: 46 iterations (statsmodels: 15). Formed about the
    design's centre, the fit follows the one on the centred covariate, pass for pass."""
    rng = np.random.default_rng(5)
    n = 5000
    x = 1e6 + rng.random(n) * 10
    z = rng.standard_normal(n)
    mean = np.exp(0.5 + 0.1 * (x - 1e6) + 0.3 * z)
    frame = pd.DataFrame({"x": x, "z": z, "y": rng.gamma(2.0, mean / 2.0)})
    fits = {}
    for name, data in (("raw", frame), ("centred", frame.assign(x=frame.x - 1e6))):
        for method in ("auto", "qr"):
            fits[name, method] = shardfit.glm(
                "y ~ x + z", from_pandas(data, 3), family="gamma", link="log"
            ).fit(backend="serial", method=method)
    centred = fits["centred", "auto"]
    for (name, _), result in fits.items():
        assert result.converged
        assert result.iterations == centred.iterations
        np.testing.assert_allclose(
            result.fit_history["deviance"][1:], centred.fit_history["deviance"][1:], rtol=1e-11
        )
        np.testing.assert_allclose(result.params["z"], centred.params["z"], rtol=1e-10)
        if name == "raw":
            shift = result.params["x"] * 1e6
            assert result.params["Intercept"] + shift == pytest.approx(
                centred.params["Intercept"], abs=1e-9 * shift
            )


def test_aliasing_is_still_decided_on_the_uncentred_columns() -> None:
    """R's ``lm`` tolerance (1e-7) is relative to a column's norm: x = 1e9 + U(0, 1)
    has a relative residual of ~3e-10 on the intercept, so R drops it, and so does
    ``rank_tol=1e-7`` on the centred TSQR factor; the default 1e-10 keeps it."""
    frame = _frame(1e9)
    with pytest.warns(UserWarning, match="collinear"):
        dropped = shardfit.ols("y ~ x", frame).fit(
            backend="serial", method="qr", rank_tol=1e-7, rank_deficient="drop"
        )
    assert np.isnan(dropped.params["x"])
    kept = shardfit.ols("y ~ x", frame).fit(backend="serial", method="qr")
    assert np.isfinite(kept.params["x"])
