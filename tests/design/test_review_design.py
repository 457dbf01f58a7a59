"""Review of formula parsing and encoding: the design built partition by partition equals
formulaic's ``model_matrix`` (and statsmodels' formula fit) on the whole frame in memory."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from formulaic import model_matrix

import shardfit
from shardfit.data.memory import from_pandas
from shardfit.design.dmatrices import dmatrices, dmatrix
from shardfit.design.schema import learn_design
from shardfit.errors import DesignError, UnseenLevelError

learn = partial(learn_design, backend="serial")


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 85
    frame = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.uniform(0.5, 3.0, n),
            "z": rng.normal(2.0, 1.5, n),
            "w": rng.normal(size=n),
            "k": rng.integers(0, 4, n),
            "g": rng.choice(["a", "b", "c"], n).astype(object),
        }
    )
    frame.loc[: n // 3, "k"] = frame.loc[: n // 3, "k"].clip(0, 2)  # 3 not in the first rows
    frame.loc[n - 1, "g"] = "d"  # a level only in the last partition
    return frame


def _assert_design_equal(formula: str, data: object, reference: pd.DataFrame) -> None:
    _y, X = dmatrices(formula, data)
    assert list(X.columns) == list(reference.columns)
    np.testing.assert_allclose(
        X.to_numpy(), reference.to_numpy(dtype=float), rtol=1e-13, atol=1e-13
    )


def _assert_params_equal(result: object, reference: object) -> None:
    assert sorted(result.params.index) == sorted(reference.params.index)
    expected = reference.params.reindex(result.params.index)
    np.testing.assert_allclose(result.params.to_numpy(), expected.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(
        result.bse.to_numpy(), reference.bse.reindex(result.params.index).to_numpy(), rtol=1e-9
    )


@pytest.mark.parametrize("npartitions", [1, 3, 17])
def test_standardize_is_formulaics_population_standardization(frame, npartitions) -> None:
    # formulaic's (and patsy's) standardize() divides by the population SD (ddof=0) and
    # takes rescale=, where scale() divides by the sample SD; shardfit used scale()'s.
    formula = "y ~ standardize(x) + standardize(z, rescale=False) + scale(w):g"
    reference = model_matrix(formula, frame).rhs
    _assert_design_equal(formula, from_pandas(frame, npartitions), reference)


def test_standardize_fit_equals_statsmodels(frame) -> None:
    formula = "y ~ standardize(x) + g"
    result = shardfit.ols(formula, from_pandas(frame, 3)).fit(backend="serial")
    _assert_params_equal(result, smf.ols(formula, frame).fit())


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ z.val + Q('a b')",
        "y ~ Q('z.val') + C(Q('k val'))",
        "y ~ np.log(`a b`) + `z.val`:C(`k val`)",
        "y ~ Q('a b'):C(Q('k val'), Treatment(2))",
    ],
)
def test_dotted_and_quoted_column_names(frame, tmp_path, formula) -> None:
    # formulaic's required_variables cuts `z.val` at the dot ("z"), and C(Q("k val"))
    # was not seen as a categorical call: unknown column "z", then a failed encoding.
    data = frame.rename(columns={"z": "z.val", "x": "a b", "k": "k val"})
    reference = model_matrix(formula, data).rhs
    for npartitions in (1, 3, 17):
        _assert_design_equal(formula, from_pandas(data, npartitions), reference)
    data.to_parquet(tmp_path / "d.parquet", row_group_size=20)
    _assert_design_equal(formula, str(tmp_path / "d.parquet"), reference)


@pytest.mark.parametrize(
    "formula",
    ["y ~ C(k):x + k", "y ~ x:k + C(k)", "y ~ I(k ** 2) + C(k, Sum)", "y ~ C(k):g + k + g"],
)
def test_a_number_column_both_in_c_and_as_a_number(frame, tmp_path, formula) -> None:
    # k in C(k) made every use of k categorical: "k" became 3 dummy columns, "x:k" one
    # slope per level, and I(k ** 2) failed. formulaic reads the bare k as a number.
    reference = model_matrix(formula, frame).rhs
    for npartitions in (1, 3, 17):
        _assert_design_equal(formula, from_pandas(frame, npartitions), reference)
    frame.to_parquet(tmp_path / "d.parquet", row_group_size=10)
    _assert_design_equal(formula, str(tmp_path / "d.parquet"), reference)


def test_a_number_column_both_in_c_and_as_a_number_fits_like_statsmodels(frame) -> None:
    formula = "y ~ C(k):x + k"
    result = shardfit.ols(formula, from_pandas(frame, 17)).fit(backend="serial")
    _assert_params_equal(result, smf.ols(formula, frame).fit())
    # An unseen level cannot be zeroed when the same column is also a number.
    spec = learn(formula, frame).spec
    new = frame.head(4).assign(k=[0, 1, 9, 2])
    with pytest.raises(UnseenLevelError, match=r"column 'k'.*also reads 'k' as a number"):
        dmatrix(formula, new, spec=spec, unseen="zero")
    reference = model_matrix(formula, frame).model_spec.rhs.get_model_matrix(new.drop(index=2))
    np.testing.assert_array_equal(
        dmatrix(formula, new.drop(index=2), spec=spec).to_numpy(), reference.to_numpy()
    )


@pytest.mark.parametrize("npartitions", [1, 3, 17])
def test_transform_state_uses_every_row_its_input_has(frame, npartitions) -> None:
    # formulaic and statsmodels learn center()/scale() before dropping the rows that
    # miss another column; shardfit learned it from the complete rows only.
    frame.loc[[3, 60], "z"] = np.nan
    frame.loc[30:57, "z"] = np.nan  # a whole partition of 3 (and many of 17) drops
    frame.loc[[5], "g"] = None
    formula = "y ~ scale(x) + center(w) + z + g"
    reference = model_matrix(formula, frame).rhs
    assert len(reference) == len(frame) - 31
    _assert_design_equal(formula, from_pandas(frame, npartitions), reference)


def test_transform_state_fit_equals_statsmodels_with_missing_values(frame) -> None:
    frame.loc[[3, 40, 41, 60], "w"] = np.nan
    formula = "y ~ center(x) + w + g"
    result = shardfit.ols(formula, from_pandas(frame, 3)).fit(backend="serial")
    _assert_params_equal(result, smf.ols(formula, frame).fit())


@pytest.mark.parametrize("npartitions", [1, 3])
def test_a_comparison_of_a_label_column_in_an_expression(frame, npartitions) -> None:
    # The structured encoder took I(g == "b") for a numeric expression and evaluated it
    # without the label column g: NameError from formulaic instead of a design.
    formula = "y ~ x + I(g == 'b') + I(x * (g == 'a'))"
    reference = model_matrix(formula, frame).rhs
    _assert_design_equal(formula, from_pandas(frame, npartitions), reference)


def test_an_unknown_function_is_named_as_a_function(frame) -> None:
    with pytest.raises(DesignError, match=r"calls \['foo'\], which are neither functions"):
        learn("y ~ foo(x) + g", frame)
    with pytest.raises(DesignError, match=r"uses \['nosuch'\], which are not columns"):
        learn("y ~ nosuch + g", frame)


def test_values_outside_the_levels_a_formula_names_raise_clearly(frame) -> None:
    # patsy refuses such values too; the message was formulaic's warning ("being cast
    # to nan, which will likely skew the results") although nothing was encoded.
    formula = "y ~ C(g, levels=['a', 'b'])"
    with pytest.raises(Exception, match="does not match any of the expected levels"):
        smf.ols(formula, frame)
    with pytest.raises(DesignError, match=r"values \{.*'c'.*\} of the data are not among"):
        dmatrices(formula, from_pandas(frame, 3))


@pytest.mark.parametrize("npartitions", [1, 3, 17])
def test_raw_polynomials_need_no_state(frame, npartitions) -> None:
    # poly(x, d, raw=True) is x, x**2, ... (formulaic keeps no state for it), but every
    # poly() was once refused as a transform whose state shardfit cannot learn.
    frame.loc[[4, 33], "x"] = np.nan
    formula = "y ~ poly(x, 2, raw=True) + poly(z, degree=3, raw=True):g"
    reference = model_matrix(formula, frame).rhs
    _assert_design_equal(formula, from_pandas(frame, npartitions), reference)
    result = shardfit.ols("y ~ poly(x, 2, raw=True)", from_pandas(frame, npartitions))
    expected = smf.ols("y ~ x + I(x ** 2)", frame).fit()
    np.testing.assert_allclose(
        result.fit(backend="serial").params.to_numpy(), expected.params.to_numpy(), rtol=1e-9
    )
