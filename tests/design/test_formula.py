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
        ("y ~ poly(x, 2)", r"poly\(\) .* learns its state"),
        ("y ~ bs(x, df=4)", r"bs\(\) .* learns its state"),
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
