"""Review of the hypothesis tests on results against statsmodels' ``ContrastResults``
(session 15): ``summary()``/``__str__`` of ``t_test`` (missing), ``summary_frame(xname=)``,
``dist``/``dist_args``, the full-precision text of ``f_test``/``wald_test``, the chi2
Wald test's ``tvalue``, the joint tests' ``conf_int``/``summary_frame`` errors, and clear
errors for empty restriction rows, a wrong-length ``q`` and unparsable strings.

OLS, WLS with HC1 and cluster covariances, Poisson and a Gamma with a fixed scale, fitted
over 3 partitions; every number is compared with statsmodels' at rtol 1e-10.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.data.memory import from_pandas

RTOL = 1e-10
FORMULA = "y ~ x1 + x2 + C(g)"
HYPOTHESES = ["x1 = x2", "x1 + x2 = 1", "x1, x2", "C(g)[T.b] = C(g)[T.c], x1 = 0.5"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1515)
    n = 240
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "g": rng.choice(list("abc"), n),
            "cl": rng.integers(0, 12, n),
            "w": rng.uniform(0.5, 2.0, n),
        }
    )
    data["y"] = (
        1 + 0.5 * data.x1 - 0.3 * data.x2 + (data.g == "b") * 0.4 + rng.normal(size=n) / data.w
    )
    data["c"] = rng.poisson(np.exp(0.2 + 0.3 * data.x1 - 0.1 * data.x2))
    data["gm"] = rng.gamma(2.0, np.exp(0.5 + 0.2 * data.x1) / 2.0)
    return data


def _pair(kind: str, frame: pd.DataFrame):
    source = from_pandas(frame, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "ols":
            return shardfit.ols(FORMULA, source).fit(backend="serial"), smf.ols(
                FORMULA, frame
            ).fit()
        if kind == "wls_hc1":
            ours = shardfit.wls(FORMULA, source, weights="w").fit(backend="serial", cov_type="HC1")
            return ours, smf.wls(FORMULA, frame, weights=frame.w).fit(cov_type="HC1")
        if kind == "wls_cluster":
            ours = shardfit.wls(FORMULA, source, weights="w").fit(
                backend="serial", cov_type="cluster", cov_kwds={"groups": "cl"}
            )
            theirs = smf.wls(FORMULA, frame, weights=frame.w).fit(
                cov_type="cluster", cov_kwds={"groups": frame.cl.to_numpy()}
            )
            return ours, theirs
        if kind == "poisson":
            formula = "c ~ x1 + x2 + C(g)"
            ours = shardfit.glm(formula, source, family="poisson").fit(backend="serial")
            return ours, smf.glm(formula, frame, family=sm.families.Poisson()).fit()
        formula = "gm ~ x1 + x2 + C(g)"
        ours = shardfit.glm(formula, source, family="gamma", link="log").fit(
            backend="serial", scale=0.6
        )
        family = sm.families.Gamma(sm.families.links.Log())
        return ours, smf.glm(formula, frame, family=family).fit(scale=0.6)


KINDS = ["ols", "wls_hc1", "wls_cluster", "poisson", "gamma_scale"]


@pytest.fixture(scope="module", params=KINDS)
def pair(request, frame):
    return _pair(request.param, frame)


@pytest.mark.parametrize("hypothesis", HYPOTHESES)
def test_t_test_summary_is_statsmodels_table(pair, hypothesis) -> None:
    """``t_test(...).summary()`` raised AttributeError and ``str()`` printed the
    dataclass; statsmodels prints its "Test for Constraints" table."""
    ours, theirs = pair
    mine, reference = ours.t_test(hypothesis), theirs.t_test(hypothesis)
    summary = mine.summary(alpha=0.1)
    expected = reference.summary_frame(alpha=0.1)
    table = summary.as_frame()
    np.testing.assert_allclose(table.to_numpy(), expected.to_numpy(), rtol=RTOL)
    # The columns of statsmodels' printed table (its header row), the rows c0, c1, ...
    header = reference.summary(alpha=0.1).data[0]  # a SimpleTable
    assert list(table.columns) == [name.strip() for name in header[1:]]
    assert list(table.index) == list(expected.index)
    text = str(mine)
    assert text == str(mine.summary()) and text.splitlines()[0].strip() == "Test for Constraints"
    # Every row's numbers are in the text.
    reference_default = reference.summary_frame()
    for row, line in zip(reference_default.itertuples(), text.splitlines()[4:], strict=False):
        cells = [float(cell) for cell in line.split()[1:]]
        # 4 decimals, the p-value 3 (as statsmodels').
        assert np.all(np.abs(np.subtract(cells, row[1:])) <= [5.1e-5] * 3 + [5.1e-4] + [5.1e-5] * 2)
    titled = mine.summary(xname=["first", "second"][: len(mine.effect)], title="")
    assert not titled.as_text().startswith(" ") and "first" in titled.as_text()


def test_summary_frame_takes_xname_and_alpha(pair) -> None:
    """statsmodels' ``summary_frame(xname=None, alpha=0.05)``: the first positional
    argument is ``xname`` (shardfit's took ``alpha`` first)."""
    ours, theirs = pair
    hypothesis = "C(g)[T.b] = C(g)[T.c], x1 = 0.5"
    mine, reference = ours.t_test(hypothesis), theirs.t_test(hypothesis)
    got = mine.summary_frame(["b_vs_c", "x1"], alpha=0.2)
    expected = reference.summary_frame(["b_vs_c", "x1"], alpha=0.2)
    pd.testing.assert_frame_equal(got, expected, rtol=RTOL, atol=0)
    with pytest.raises(ValueError, match="xname has 1 names; the test has 2 restrictions"):
        mine.summary_frame(["only"])


@pytest.mark.parametrize("use_t", [None, True, False])
def test_t_test_dist_and_dist_args(pair, use_t) -> None:
    """``dist``/``dist_args`` (missing): ``dist.ppf(0.975, *dist_args)`` is the
    critical value statsmodels' intervals use."""
    ours, theirs = pair
    mine, reference = ours.t_test("x1 = x2", use_t=use_t), theirs.t_test("x1 = x2", use_t=use_t)
    assert mine.dist.name == reference.dist.name
    np.testing.assert_allclose(mine.dist_args, reference.dist_args, rtol=RTOL)
    np.testing.assert_allclose(
        mine.dist.ppf(0.975, *mine.dist_args), reference.dist.ppf(0.975, *reference.dist_args)
    )
    assert mine.c_names == reference.c_names == ["c0"]


def _numbers(text: str) -> dict[str, float]:
    return {key: float(value) for key, value in re.findall(r"([\w-]+)=([-+.\deE]+)", text)}


@pytest.mark.parametrize("use_f", [True, False])
def test_joint_test_text_carries_statsmodels_numbers(pair, use_f) -> None:
    """``str(f_test(...))`` rounded to 6 digits (statsmodels prints every digit); the
    ``wald_test`` chi2 result had no ``tvalue`` (statsmodels' alias of the statistic)."""
    ours, theirs = pair
    hypothesis = "x1 = x2, C(g)[T.b] = 0.1"
    mine, reference = ours.f_test(hypothesis), theirs.f_test(hypothesis)
    got, expected = (
        _numbers(str(mine)),
        _numbers(str(reference.summary()).replace("np.float64(", "")),
    )
    assert got.keys() == expected.keys() == {"F", "p", "df_denom", "df_num"}
    np.testing.assert_allclose([got[k] for k in got], [expected[k] for k in got], rtol=RTOL)
    assert str(mine) == mine.summary() == repr(mine)
    assert mine.dist.name == reference.dist.name
    np.testing.assert_allclose(mine.dist_args, reference.dist_args, rtol=RTOL)

    mine = ours.wald_test(hypothesis, use_f=use_f)
    reference = theirs.wald_test(hypothesis, use_f=use_f, scalar=True)
    text = str(reference).replace("np.float64(", "")
    got, expected = _numbers(str(mine)), _numbers(text)
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in got], [expected[k] for k in got], rtol=RTOL)
    assert mine.dist.name == reference.dist.name
    np.testing.assert_allclose(mine.dist_args, reference.dist_args, rtol=RTOL)
    if not use_f:
        np.testing.assert_allclose(mine.tvalue, reference.tvalue, rtol=RTOL)
        np.testing.assert_allclose(mine.statistic, reference.statistic, rtol=RTOL)
    assert mine.effect is None and reference.effect is None


def test_joint_tests_have_no_interval_as_in_statsmodels(frame) -> None:
    """statsmodels' F and chi2 results raise NotImplementedError from ``conf_int`` and
    ``summary_frame``; shardfit's had no such methods (AttributeError)."""
    ours, theirs = _pair("ols", frame)
    for mine, reference in [
        (ours.f_test("x1, x2"), theirs.f_test("x1, x2")),
        (
            ours.wald_test("x1, x2", use_f=False),
            theirs.wald_test("x1, x2", use_f=False, scalar=True),
        ),
    ]:
        for method in ("conf_int", "summary_frame"):
            with pytest.raises(NotImplementedError):
                getattr(reference, method)()
            with pytest.raises(NotImplementedError, match="use t_test"):
                getattr(mine, method)()


def test_bad_restrictions_are_clear_value_errors(frame) -> None:
    """``"x1 = x1"`` (a row with no coefficient) gave a NaN t where statsmodels refuses
    it; a ``q`` of the wrong length gave numpy's broadcast error; an unparsable string
    gave formulaic's FormulaSyntaxError, which is not a ValueError."""
    ours, theirs = _pair("ols", frame)
    with pytest.raises(Exception, match="no variables appear in constraint"):
        theirs.t_test("x1 = x1")
    for method in ("t_test", "f_test", "wald_test"):
        with pytest.raises(ValueError, match=r"'x1 = x1': row\(s\) \[0\] involve no coefficient"):
            getattr(ours, method)("x1 = x1")
        with pytest.raises(ValueError, match=r"row\(s\) \[1\] involve no coefficient"):
            getattr(ours, method)(np.vstack([np.eye(5)[1], np.zeros(5)]))
        with pytest.raises(ValueError, match="q has 3 values; the restriction matrix has 2 rows"):
            getattr(ours, method)((np.eye(5)[1:3], [1.0, 2.0, 3.0]))
        with pytest.raises(ValueError, match="'x1 = ' could not be parsed"):
            getattr(ours, method)("x1 = ")
        with pytest.raises(ValueError, match="names 'x9', which is not a coefficient"):
            getattr(ours, method)(["x1 = 0", "x9 = 1"])
    # statsmodels refuses a scalar q for two rows too.
    with pytest.raises(ValueError, match="q has 1 values"):
        ours.f_test((np.eye(5)[1:3], 0.5))


def test_matrix_tuple_and_dict_restrictions_equal_statsmodels(pair) -> None:
    """Restrictions as ``R``, an ``(R, q)`` pair and a dict give statsmodels' numbers
    (its columns are ordered differently: ``R`` is permuted to match)."""
    ours, theirs = pair
    order = [list(ours.names).index(name) for name in theirs.model.exog_names]
    matrix = np.zeros((2, len(ours.names)))
    matrix[0, list(ours.names).index("x1")] = 1.0
    matrix[1, list(ours.names).index("x2")] = 1.0
    matrix[1, list(ours.names).index("C(g)[T.b]")] = -1.0
    spec = (matrix, [0.2, -0.1])
    for method in ("t_test", "f_test"):
        mine = getattr(ours, method)(spec)
        reference = getattr(theirs, method)((matrix[:, order], [0.2, -0.1]))
        np.testing.assert_allclose(mine.statistic, reference.statistic, rtol=RTOL)
        np.testing.assert_allclose(mine.pvalue, reference.pvalue, rtol=RTOL)
    mine, reference = ours.t_test({"x1": 0.5, "x2": 0.0}), theirs.t_test("x1 = 0.5, x2 = 0")
    np.testing.assert_allclose(mine.tvalue, reference.tvalue, rtol=RTOL)
    np.testing.assert_allclose(mine.conf_int(alpha=0.1), reference.conf_int(alpha=0.1), rtol=RTOL)
