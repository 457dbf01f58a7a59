from __future__ import annotations

import pytest

from shardfit.design.formula import analyze_formula
from shardfit.errors import DesignError


def test_analysis_finds_variables_categoricals_and_stateful_terms() -> None:
    info = analyze_formula("y ~ x1 + np.log(x2) + C(g) + C(h, Treatment(2)):x3 + scale(x4)")
    assert info.variables == {"y", "x1", "x2", "g", "h", "x3", "x4"}
    assert info.categorical_calls == {"g", "h"}
    assert info.stateful_factors == ("scale(x4)",)
    assert info.has_response


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~ lag(x)", r"lag\(\) .* reads neighbouring rows"),
        ("y ~ I(x - x.shift(1))", r"shift\(\) .* reads neighbouring rows"),
        # Whole-column reductions would be taken per partition and per block of rows.
        ("y ~ I(x - x.mean())", r"x\.mean\(\) in formula .* reads a whole column"),
        ("y ~ I((x - np.mean(x)) / np.std(x))", r"np\.(mean|std)\(x\) .* whole column"),
        ("y ~ I(x / x.max()) + z", r"x\.max\(\) .* use center\(\), scale\(\)"),
        ("y ~ I(x.rank())", "reads a whole column"),
        ("y ~ np.cumsum(x)", "reads a whole column"),
        ("y ~ scale(center(x))", "nested stateful transforms"),
        ("y ~ scale(x, center=center(z))", "nested stateful transforms"),
        ("y ~ (", "cannot parse formula"),
    ],
)
def test_unsupported_formulas_raise_clearly(formula: str, message: str) -> None:
    with pytest.raises(DesignError, match=message):
        analyze_formula(formula)


def test_backtick_quoted_names_are_columns() -> None:
    """formulaic's quoting: `grp-1` is one column, also inside a call."""
    info = analyze_formula("y ~ x1 + `grp-1` + C(`my g`) + np.log(`a b` + 1)")
    assert info.variables == {"y", "x1", "grp-1", "my g", "a b"}
    assert info.categorical_calls == {"my g"}


def test_fits_with_quoted_names_equal_plain_names() -> None:
    import numpy as np
    import pandas as pd

    import shardfit

    rng = np.random.default_rng(8)
    plain = pd.DataFrame({"x": rng.normal(size=300), "g": rng.choice(list("abc"), 300)})
    plain["y"] = plain["x"] + (plain["g"] == "b") + rng.normal(size=300)
    quoted = plain.rename(columns={"x": "x 1", "g": "grp-1"})
    for ours, theirs in [("y ~ `x 1` + `grp-1`", "y ~ x + g"), ("y ~ C(`grp-1`)", "y ~ C(g)")]:
        got = shardfit.ols(ours, shardfit.from_pandas(quoted, 3)).fit(backend="serial")
        want = shardfit.ols(theirs, shardfit.from_pandas(plain, 3)).fit(backend="serial")
        np.testing.assert_array_equal(got.params.to_numpy(), want.params.to_numpy())
