"""Arithmetic factor expressions evaluated by NumPy, against formulaic's values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from formulaic import Formula

from shardfit.data.memory import from_pandas
from shardfit.design.expressions import NativeExpression
from shardfit.design.fast_encoder import FastEncoder
from shardfit.design.schema import learn_design

COLUMNS = frozenset({"x1", "x2", "z"})

NATIVE = [
    "I(x1 ** 2)",
    "I(x1 ** 3)",
    "I(x1 * x2 + 3)",
    "I(-x1 / (x2 - 0.5))",
    "np.log(x2)",
    "np.exp(I(x1 / 4))",
    "np.sqrt(np.abs(x1))",
    "I(2 ** x1)",
    "I(x1 ** -1)",
    "I(+z)",
    "np.log1p(z ** 2)",
]

OTHERS = [
    "scale(x1)",  # stateful
    "center(x1)",
    "I(x1 > 0)",  # comparison
    "np.log(x1, out=None)",  # keywords
    "np.power(x1, 2)",  # two arguments
    "np.random.normal(x1)",  # not a ufunc of ours
    "numpy.exp(x1)",  # formulaic knows NumPy as np only
    "I(x1 // 2)",  # floor division: pandas fills zeros its own way
    "I(x1 % 2)",
    "I(unknown ** 2)",  # not a column
    "__import__('os')",
    "I(x1.sum())",  # attribute access on a column
    "I(True + x1)",
    "I('a')",
    "I(x1 if x2 else x1)",
]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 2_000
    x1 = rng.normal(0.0, 3.0, n)
    x2 = rng.uniform(-1.0, 2.0, n)
    x1[:5] = [0.0, -0.0, np.nan, np.inf, -np.inf]
    x2[5:9] = [0.0, 0.5, np.nan, -1.0]  # log of 0 and of a negative, division by 0
    z = rng.integers(-5, 5, n).astype(float)
    return pd.DataFrame({"x1": x1, "x2": x2, "z": z})


@pytest.mark.parametrize("text", NATIVE)
def test_native_values_are_formulaics_bit_for_bit(frame, text) -> None:
    expression = NativeExpression.parse(text, COLUMNS)
    assert expression is not None
    assert set(expression.columns) <= COLUMNS
    with np.errstate(all="ignore"):
        expected = np.asarray(
            Formula("0 + " + text).get_model_matrix(frame, na_action="ignore"), dtype=float
        )[:, 0]
    arrays = {name: frame[name].to_numpy() for name in COLUMNS}
    got = expression.evaluate(arrays, len(frame))
    assert got.dtype == np.float64 and got.shape == (len(frame),)
    # Same bits, NaN and infinities where they fall included.
    np.testing.assert_array_equal(
        got.view(np.int64)[np.isfinite(got)], expected.view(np.int64)[np.isfinite(got)]
    )
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("text", OTHERS)
def test_other_expressions_stay_with_formulaic(text) -> None:
    assert NativeExpression.parse(text, COLUMNS) is None


def test_a_constant_expression_is_broadcast() -> None:
    expression = NativeExpression.parse("I(2 ** 3 - 1)", COLUMNS)
    assert expression is not None and expression.columns == ()
    np.testing.assert_array_equal(expression.evaluate({}, 4), np.full(4, 7.0))


def test_the_plan_evaluates_arithmetic_natively_and_the_rest_through_formulaic(frame) -> None:
    data = frame.iloc[10:].reset_index(drop=True).assign(y=1.0)
    formula = "y ~ x1 + I(x1 ** 2) + scale(x2) + I((x1 > 0) * 1.0) + np.log1p(z ** 2):x1"
    spec = learn_design(formula, from_pandas(data, npartitions=2), backend="serial").spec
    encoder = FastEncoder.build(spec)
    assert encoder is not None
    assert [e.text for e in encoder.native] == ["I(x1 ** 2)", "scale(x2)", "np.log1p(z ** 2)"]
    assert "I((x1 > 0) * 1.0)" in encoder.expressions  # a comparison: formulaic's
    # Equal plans compare equal (the parsed tree is not part of the comparison).
    assert encoder == FastEncoder.build(spec)


TRANSFORMS = [
    "scale(x1)",
    "center(x2)",
    "standardize(z)",
    "scale(x2, scale=2.0)",
    "scale(x1, center=False)",
    "scale(x1, ddof=0)",
    "I(scale(x1) ** 2)",
    "np.exp(center(x1) / 4)",
]


@pytest.mark.parametrize("text", TRANSFORMS)
def test_stateful_transforms_apply_their_learned_state_bit_for_bit(frame, text) -> None:
    """``center``/``scale``/``standardize`` with the state the design learned out of
    core, against formulaic applying the same state through shardfit's transforms."""
    from shardfit.design.transforms import apply_context

    data = frame.iloc[10:].reset_index(drop=True).assign(y=1.0)
    spec = learn_design(f"y ~ {text}", from_pandas(data, npartitions=3), backend="serial").spec
    expression = NativeExpression.parse(text, COLUMNS, spec.transform_state)
    assert expression is not None
    with np.errstate(all="ignore"):
        expected = np.asarray(
            Formula("0 + " + text).get_model_matrix(
                frame,
                context=apply_context(),
                na_action="ignore",
                transform_state=spec.formulaic_state(),
            ),
            dtype=float,
        )[:, 0]
    got = expression.evaluate({name: frame[name].to_numpy() for name in COLUMNS}, len(frame))
    np.testing.assert_array_equal(got, expected)
    finite = np.isfinite(got)
    np.testing.assert_array_equal(got[finite].view(np.int64), expected[finite].view(np.int64))


def test_a_transform_without_learned_state_stays_with_formulaic() -> None:
    assert NativeExpression.parse("scale(x1)", COLUMNS) is None
    assert NativeExpression.parse("scale(x1)", COLUMNS, {"scale(x2)": {"ddof": 1.0}}) is None
    state = {"scale(x1)": {"ddof": 1.0, "center": 1.0, "scale": 2.0}}
    assert NativeExpression.parse("scale(x1)", COLUMNS, state) is not None
    assert NativeExpression.parse("scale(x1, ddof=k)", COLUMNS, state) is None  # not a literal
