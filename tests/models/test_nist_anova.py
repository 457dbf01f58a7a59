"""One-way ANOVA as a regression on a factor, against NIST's StRD ANOVA problems:
the observed SiRstv and AtmWtAg, and the constructed SmLs01-09 (nine treatments,
the same decimal steps of 0.1 on a constant of 0, 1e6 or 1e12, with 21, 201 or 2001
rows a treatment). They test whether the sums of squares survive a response whose
leading digits are all the same.

The SmLs data follow NIST's construction: treatment ``k`` has mean ``m_k`` (1.4, then
1.3 and 1.5 alternately), its first row ``m_k`` and the others ``m_k -+ 0.1``
alternately. So the certified values are exact decimals: between-treatment SS
``0.08 r``, within ``0.09 (r - 1)`` for ``r`` rows a treatment, F ``r``, residual
SD 0.1. On the constant 1e12 the decimals are not representable (an ulp is 1.2e-4),
so there the reference is also the exact (rational) answer for the binary64 data,
which a solver can reach to the last digit; the certified values only to ~4 digits
(R's ``lm`` keeps 3-4, statsmodels' pinv 2).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import shardfit
from shardfit.data.memory import from_pandas

MEANS = (1.4, 1.3, 1.5, 1.3, 1.5, 1.3, 1.5, 1.3, 1.5)
PROBLEMS = {  # name: (constant, rows a treatment)
    "SmLs01": (0.0, 21),
    "SmLs02": (0.0, 201),
    "SmLs03": (0.0, 2001),
    "SmLs04": (1e6, 21),
    "SmLs05": (1e6, 201),
    "SmLs06": (1e6, 2001),
    "SmLs07": (1e12, 21),
    "SmLs08": (1e12, 201),
    "SmLs09": (1e12, 2001),
}


def smls(name: str) -> pd.DataFrame:
    constant, rows = PROBLEMS[name]
    groups, values = [], []
    for k, mean in enumerate(MEANS, start=1):
        steps = [0.0] + [-0.1 if i % 2 == 0 else 0.1 for i in range(rows - 1)]
        groups += [k] * rows
        # NIST's values are decimals: round each sum once, as a parser of its file does.
        values += [float(f"{constant + mean + step:.1f}") for step in steps]
    return pd.DataFrame({"treatment": groups, "y": values})


def certified(name: str) -> dict[str, float]:
    rows = PROBLEMS[name][1]
    between, within = 0.08 * rows, 0.09 * (rows - 1)
    return {
        "fvalue": float(rows),
        "rsquared": between / (between + within),
        "resid_sd": 0.1,
        "ssr": within,
    }


def exact(frame: pd.DataFrame) -> dict[str, float | np.ndarray]:
    """The exact least-squares answer for the binary64 data (rational arithmetic):
    treatment coding, so the intercept is treatment 1's mean and each other
    coefficient a difference of means."""
    values: dict[int, list[Fraction]] = {}
    for k, y in zip(frame.treatment, frame.y, strict=True):
        values.setdefault(int(k), []).append(Fraction(y))
    means = {k: sum(v) / len(v) for k, v in values.items()}
    n, groups = len(frame), len(values)
    grand = sum(sum(v) for v in values.values()) / n
    within = sum(sum((y - means[k]) ** 2 for y in v) for k, v in values.items())
    total = sum(sum((y - grand) ** 2 for y in v) for v in values.values())
    between = total - within
    params = [means[1]] + [means[k] - means[1] for k in sorted(values) if k != 1]
    return {
        "params": np.array([float(p) for p in params]),
        "fvalue": float((between / (groups - 1)) / (within / (n - groups))),
        "rsquared": float(between / total),
        "resid_sd": float(within / (n - groups)) ** 0.5,
        "ssr": float(within),
    }


@pytest.fixture(scope="module")
def problems() -> dict[str, tuple[pd.DataFrame, dict]]:
    return {name: (frame := smls(name), exact(frame)) for name in PROBLEMS}


def _measures(result) -> dict[str, float]:
    return {
        "fvalue": result.fvalue,
        "rsquared": result.rsquared,
        "resid_sd": float(np.sqrt(result.scale)),
        "ssr": result.ssr,
    }


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("method", ["auto", "qr"])
@pytest.mark.parametrize("partitions", [1, 3])
def test_ols_on_a_factor_equals_the_certified_anova(problems, name, method, partitions) -> None:
    frame, reference = problems[name]
    result = shardfit.ols("y ~ C(treatment)", from_pandas(frame, partitions)).fit(
        backend="serial", method=method
    )
    measures = _measures(result)
    # The exact answer for these binary64 data, to rounding: every method, any split.
    for key, value in measures.items():
        assert value == pytest.approx(reference[key], rel=2e-13, abs=0), key
    np.testing.assert_allclose(result.params, reference["params"], rtol=1e-12, atol=1e-13)
    # The certified decimals: exact but for the data's own rounding, which on the
    # constant 1e12 moves the sums of squares by ~5e-5.
    constant = PROBLEMS[name][0]
    tolerance = {0.0: 1e-12, 1e6: 1e-9, 1e12: 1e-4}[constant]
    for key, value in certified(name).items():
        assert value == pytest.approx(measures[key], rel=tolerance), key
    assert result.df_model == 8
    assert result.nobs == len(frame)


def test_the_data_follow_nists_construction(problems) -> None:
    """SmLs01's certified values (NIST: between SS 1.68, within 1.8, F 21, R-squared
    0.482758620689655) and SmLs03's R-squared (0.470712773465067), from the data."""
    frame, reference = problems["SmLs01"]
    assert len(frame) == 189
    assert reference["ssr"] == pytest.approx(1.8, rel=1e-14)
    assert reference["fvalue"] == pytest.approx(21.0, rel=1e-13)
    assert reference["rsquared"] == pytest.approx(0.482758620689655, rel=1e-14)
    assert problems["SmLs03"][1]["rsquared"] == pytest.approx(0.470712773465067, rel=1e-14)
    assert len(problems["SmLs09"][0]) == 18009


# NIST's observed-data problems: silicon resistivity by five instruments (SiRstv),
# and the atomic weight of silver by two (AtmWtAg: 7 constant leading digits).
OBSERVED = {
    "SiRstv": (
        [
            [196.3052, 196.1240, 196.1890, 196.2569, 196.3403],
            [196.3042, 196.3825, 196.1669, 196.3257, 196.0422],
            [196.1303, 196.2005, 196.2889, 196.0343, 196.1811],
            [196.2795, 196.1748, 196.1494, 196.1485, 195.9885],
            [196.2119, 196.1051, 196.1850, 196.0052, 196.2090],
        ],
        # F, R-squared, residual SD, and the tolerance the data's decimals allow
        (1.18046237440255e00, 1.90999039051129e-01, 1.04076068334656e-01, 1e-12),
    ),
    "AtmWtAg": (
        [
            [
                107.8681568, 107.8681465, 107.8681572, 107.8681785, 107.8681446,
                107.8681903, 107.8681526, 107.8681494, 107.8681616, 107.8681587,
                107.8681519, 107.8681486, 107.8681419, 107.8681569, 107.8681508,
                107.8681672, 107.8681385, 107.8681518, 107.8681662, 107.8681424,
                107.8681360, 107.8681333, 107.8681610, 107.8681477,
            ],
            [
                107.8681079, 107.8681344, 107.8681513, 107.8681197, 107.8681604,
                107.8681385, 107.8681642, 107.8681365, 107.8681151, 107.8681082,
                107.8681517, 107.8681448, 107.8681198, 107.8681482, 107.8681334,
                107.8681609, 107.8681101, 107.8681512, 107.8681469, 107.8681360,
                107.8681254, 107.8681261, 107.8681450, 107.8681368,
            ],
        ],
        (1.59467335677930e01, 2.57426544538321e-01, 1.51048314446410e-05, 2e-10),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(OBSERVED))
@pytest.mark.parametrize("method", ["auto", "qr"])
@pytest.mark.parametrize("partitions", [1, 3])
def test_observed_data_equal_the_certified_anova(name, method, partitions) -> None:
    groups, (fvalue, rsquared, resid_sd, tolerance) = OBSERVED[name]
    frame = pd.DataFrame(
        {
            "treatment": [k for k, values in enumerate(groups, start=1) for _ in values],
            "y": [y for values in groups for y in values],
        }
    )
    result = shardfit.ols("y ~ C(treatment)", from_pandas(frame, partitions)).fit(
        backend="serial", method=method
    )
    assert result.fvalue == pytest.approx(fvalue, rel=tolerance)
    assert result.rsquared == pytest.approx(rsquared, rel=tolerance)
    assert np.sqrt(result.scale) == pytest.approx(resid_sd, rel=tolerance)
    reference = exact(frame)
    for key, value in _measures(result).items():
        assert value == pytest.approx(reference[key], rel=1e-12, abs=0), key


@pytest.mark.parametrize("name", ["SmLs03", "SmLs06", "SmLs09"])
@pytest.mark.parametrize("method", ["auto", "qr"])
@pytest.mark.parametrize("partitions", [1, 3])
def test_gaussian_glm_on_a_factor_keeps_the_digits(problems, name, method, partitions) -> None:
    """The IRLS working response is centred like OLS's response: uncentred, a
    response of 1e6 + 0.1 steps lost 6 digits of the coefficients (statsmodels'
    GLM: 1.7e-7), and of 1e12 + 0.1 all of them (statsmodels: 0.31)."""
    frame, reference = problems[name]
    result = shardfit.glm("y ~ C(treatment)", from_pandas(frame, partitions)).fit(
        backend="serial", method=method
    )
    np.testing.assert_allclose(result.params, reference["params"], rtol=1e-12, atol=1e-13)
    # The deviance is a sum over rows of (y - mu)**2 with mu from the coefficients:
    # on 1e12 each mu carries an absolute rounding error of up to 6e-5 (as in R and
    # statsmodels), which moves the deviance by ~2e-7.
    tolerance = 5e-7 if PROBLEMS[name][0] == 1e12 else 1e-12
    assert result.deviance == pytest.approx(reference["ssr"], rel=tolerance)
    assert np.sqrt(result.scale) == pytest.approx(reference["resid_sd"], rel=tolerance)
    assert result.converged
