"""Learning a design in a schema pass and encoding partitions with it."""

from __future__ import annotations

import pickle
from fractions import Fraction
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from design_cases import FORMULA, make_frame
from formulaic import model_matrix

from shardfit.data.memory import from_arrow, from_pandas
from shardfit.design.dmatrices import dmatrices, dmatrix
from shardfit.design.materialize import encode_partition
from shardfit.design.schema import learn_design, schema_pass
from shardfit.design.spec import DesignSpec
from shardfit.errors import DesignError, MissingDataError, ReadError, SchemaError, UnseenLevelError

# Small in-memory data: the serial backend keeps these tests fast; the backends
# themselves are tested in tests/engine and tests/models.
learn = partial(learn_design, backend="serial")


@pytest.fixture
def frame(rng: np.random.Generator) -> pd.DataFrame:
    return make_frame(rng)


@pytest.mark.parametrize("npartitions", [1, 3, 17])
def test_dmatrices_equals_formulaic_in_memory(frame: pd.DataFrame, npartitions: int) -> None:
    reference = model_matrix(FORMULA, frame)
    y, X = dmatrices(FORMULA, from_pandas(frame, npartitions))
    assert list(X.columns) == list(reference.rhs.columns)
    # Our transform means/scales are exactly rounded; formulaic's come from numpy sums,
    # whose rounding scale(x4) (mean 100, sd 0.01) amplifies to ~1e-12.
    np.testing.assert_allclose(X.to_numpy(), reference.rhs.to_numpy(), rtol=1e-12, atol=1e-10)
    np.testing.assert_array_equal(y.to_numpy(), reference.lhs.to_numpy()[:, 0])


def test_design_is_bitwise_identical_for_any_partitioning(frame: pd.DataFrame) -> None:
    designs = [dmatrices(FORMULA, from_pandas(frame, k))[1].to_numpy() for k in (1, 2, 3, 17)]
    for other in designs[1:]:
        assert np.array_equal(designs[0], other)


def test_partition_lacking_a_level_keeps_its_columns(frame: pd.DataFrame) -> None:
    learned = learn(FORMULA, from_pandas(frame, 3))
    first = from_pandas(frame, 3).partitions[0]  # rows 0-199: no level 'e'
    chunk = encode_partition(learned.spec, first)
    assert "C(g)[T.e]" in learned.spec.column_names
    column = learned.spec.column_names.index("C(g)[T.e]")
    assert chunk.X.shape[1] == len(learned.spec.column_names)
    assert not chunk.X[:, column].any()


def test_transform_state_is_the_whole_data_state(frame: pd.DataFrame) -> None:
    state = learn(FORMULA, from_pandas(frame, 17)).spec.transform_state
    assert state["center(x1)"]["center"] == pytest.approx(frame.x1.mean(), rel=1e-15)
    assert state["scale(x4)"]["center"] == pytest.approx(frame.x4.mean(), rel=1e-15)
    assert state["scale(x4)"]["scale"] == pytest.approx(frame.x4.std(ddof=1), rel=1e-12)


def test_transform_state_is_exactly_rounded(frame: pd.DataFrame) -> None:
    state = learn(FORMULA, from_pandas(frame, 3)).spec.transform_state["scale(x4)"]
    values = [Fraction(float(v)) for v in frame.x4]
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    assert state["center"] == float(mean)
    assert state["scale"] == float(np.sqrt(float(variance)))


def test_missing_drop_counts_exactly(frame: pd.DataFrame) -> None:
    frame = frame.copy()
    frame.loc[[5, 250, 590], "x1"] = np.nan
    frame.loc[[7], "x2"] = np.inf
    frame.loc[[8, 250], "g"] = None
    source = from_pandas(frame, 3)
    learned = learn(FORMULA, source)
    assert learned.rows == 600
    assert learned.rows_complete == 600 - 5  # rows 5, 7, 8, 250, 590
    assert learned.summary.columns["x1"].missing == 3
    chunks = [encode_partition(learned.spec, p) for p in source.partitions]
    assert [c.dropped["missing"] for c in chunks] == [3, 1, 1]
    _y, X = dmatrices(FORMULA, source)
    assert len(X) == 595
    assert not set(X.index) & {5, 7, 8, 250, 590}
    # center() and scale() learn from every row their own input has (as formulaic, R
    # and statsmodels do), not only from the rows complete in every column.
    reference = model_matrix(FORMULA, frame.drop(index=[5, 7, 8, 250, 590])).rhs
    reference["center(x1)"] = reference["x1"] - frame["x1"].mean()
    reference["scale(x4)"] = (frame["x4"] - frame["x4"].mean()).loc[reference.index] / frame[
        "x4"
    ].std()
    np.testing.assert_allclose(X.to_numpy(), reference.to_numpy(), rtol=1e-12, atol=1e-10)


def test_missing_raise_names_partition_row_and_column(frame: pd.DataFrame) -> None:
    frame = frame.copy()
    frame.loc[421, "x3"] = np.nan
    with pytest.raises(MissingDataError, match=r"partition .*\(row 421 .*column 'x3': null "):
        learn(FORMULA, from_pandas(frame, 3), missing="raise")


@pytest.mark.parametrize(("value", "shown"), [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_missing_raise_shows_the_value_as_written(value: float, shown: str) -> None:
    """A NaN (not a null) in an Arrow float column, or an infinity, is named as such:
    the message used to print Python's repr of the value (None for a null)."""
    x = np.arange(20.0)
    x[7] = value
    table = pa.table({"x": pa.array(x, from_pandas=False), "y": np.arange(20.0)})
    with pytest.raises(MissingDataError, match=rf"row 7 .*column 'x': {shown} \(pass"):
        encode_partition(
            learn("y ~ x", from_arrow(table)).spec, from_arrow(table).partitions[0], missing="raise"
        )


def test_unseen_level_raises_then_zero(frame: pd.DataFrame) -> None:
    spec = learn(FORMULA, from_pandas(frame, 3)).spec
    new = frame.iloc[:4].copy()
    new["g"] = pd.array(["a", "zz", "b", "e"], dtype="str")
    with pytest.raises(UnseenLevelError, match=r"row 1 .*column 'g': 'zz'"):
        dmatrices(FORMULA, from_pandas(new, 1), spec=spec)
    _, X = dmatrices(FORMULA, from_pandas(new, 1), spec=spec, unseen="zero")
    g_columns = [c for c in X.columns if c.startswith("C(g)")]
    assert not X.loc[1, g_columns].any()
    assert X.loc[3, "C(g)[T.e]"] == 1.0
    np.testing.assert_array_equal(X.loc[1, "x1"], new.x1.iloc[1])


def test_spec_json_round_trip_predicts_identically(frame: pd.DataFrame) -> None:
    spec = learn(FORMULA, from_pandas(frame, 3)).spec
    restored = DesignSpec.from_json(spec.to_json())
    assert restored.to_json() == spec.to_json()
    assert restored.column_names == spec.column_names
    new = frame.iloc[100:140]
    a = dmatrix(FORMULA, from_pandas(new, 2), spec=spec)
    b = dmatrix(FORMULA, from_pandas(new, 2), spec=restored)
    assert np.array_equal(a.to_numpy(), b.to_numpy())
    assert pickle.loads(pickle.dumps(spec)).to_json() == spec.to_json()


def test_predict_design_does_not_need_the_response(frame: pd.DataFrame) -> None:
    spec = learn(FORMULA, from_pandas(frame, 2)).spec
    X = dmatrix(FORMULA, from_pandas(frame.drop(columns=["y"]).iloc[:50], 2), spec=spec)
    assert X.shape == (50, len(spec.column_names))


def test_transform_producing_nan_is_dropped_and_counted(frame: pd.DataFrame) -> None:
    frame = frame.copy()
    frame.loc[[10, 20], "x2"] = -1.0  # np.log(-1) is NaN
    source = from_pandas(frame, 2)
    learned = learn(FORMULA, source)
    chunk = encode_partition(learned.spec, source.partitions[0])
    assert chunk.dropped == {"missing": 0, "nonfinite": 2}
    with pytest.raises(MissingDataError, match=r"row 10 .*column 'np.log\(x2\)'"):
        encode_partition(learned.spec, source.partitions[0], missing="raise")


def test_weights_offset_exposure(frame: pd.DataFrame) -> None:
    frame = frame.copy()
    frame["off"] = np.linspace(0, 1, len(frame))
    frame["expo"] = np.linspace(1, 2, len(frame))
    source = from_pandas(frame, 3)
    spec = learn("y ~ x1", source, weights="w", offset="off", exposure="expo").spec
    chunks = [encode_partition(spec, p) for p in source.partitions]
    np.testing.assert_array_equal(np.concatenate([c.weights for c in chunks]), frame.w)
    np.testing.assert_allclose(
        np.concatenate([c.offset for c in chunks]), frame.off + np.log(frame.expo), rtol=1e-15
    )
    frame.loc[3, "w"] = -0.5
    bad = from_pandas(frame, 3)
    spec = learn("y ~ x1", bad, weights="w").spec
    with pytest.raises(DesignError, match=r"negative weight .*row 3 .*column 'w'"):
        encode_partition(spec, bad.partitions[0])


def test_plain_columns_design(rng: np.random.Generator) -> None:
    X = rng.normal(size=(50, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(target=rng.normal(size=50))
    source = from_pandas(frame, 3)
    spec = learn(None, source, x_columns=("a", "b", "c"), response="target").spec
    chunks = [encode_partition(spec, p) for p in source.partitions]
    assert np.array_equal(np.concatenate([c.X for c in chunks]), X)
    assert np.array_equal(np.concatenate([c.y for c in chunks]), frame.target.to_numpy())


def test_empty_partitions_and_all_rows_dropped(frame: pd.DataFrame) -> None:
    small = frame.iloc[:5]
    _y, X = dmatrices("y ~ x1 + C(g)", from_pandas(small, 9))  # four empty partitions
    assert X.shape == (5, len(X.columns))
    dropped = frame.iloc[:20].copy()
    dropped["x1"] = np.nan
    learned = learn("y ~ x2 + x1", from_pandas(dropped, 3))
    assert learned.rows_complete == 0
    _y, X = dmatrices("y ~ x2 + x1", from_pandas(dropped, 3))
    assert X.shape == (0, 3) and list(X.columns) == ["Intercept", "x2", "x1"]


def test_unknown_column_and_cap(frame: pd.DataFrame) -> None:
    with pytest.raises(DesignError, match=r"uses \['nope'\], which are not columns"):
        learn("y ~ nope", from_pandas(frame, 2))
    with pytest.raises(Exception, match="more than 3 distinct levels"):
        learn("y ~ C(g)", from_pandas(frame, 2), max_levels=3)


def test_schema_pass_of_all_columns(frame: pd.DataFrame) -> None:
    statistic = schema_pass(from_pandas(frame, 4), backend="serial")
    assert statistic.summary.rows == 600
    assert list(statistic.summary.columns) == list(frame.columns)
    assert statistic.summary.columns["g"].sorted_levels() == list("abcde")
    assert [p.rows for p in statistic.partitions] == [150, 150, 150, 150]


def test_block_encoding_keeps_partition_row_positions_and_locations() -> None:
    from shardfit.design.materialize import encode_blocks, encode_partition
    from shardfit.design.schema import learn_design

    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"x": rng.normal(size=1000), "g": rng.choice(["a", "b"], 1000)})
    frame["y"] = frame.x + rng.normal(size=1000)
    frame.loc[[5, 700], "x"] = np.nan
    source = from_pandas(frame, 1)
    spec = learn_design("y ~ x + C(g)", source, backend="serial").spec
    whole = encode_partition(spec, source.partitions[0], structured=False)
    blocks = list(encode_blocks(spec, source.partitions[0], block_rows=300))
    assert len(blocks) == 4
    np.testing.assert_array_equal(np.concatenate([b.row_index for b in blocks]), whole.row_index)
    np.testing.assert_array_equal(np.vstack([b.X for b in blocks]), whole.X)
    assert sum(b.dropped["missing"] for b in blocks) == 2
    frame.loc[5, "x"] = 0.0
    late = from_pandas(frame, 1).partitions[0]
    with pytest.raises(MissingDataError, match=r"\(row 700 of DataFrame\), column 'x'"):
        list(encode_blocks(spec, late, missing="raise", block_rows=600))


def test_dictionary_read_labels_code_like_plain_strings(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shardfit.data.parquet import read_parquet

    rng = np.random.default_rng(12)
    n = 3000
    g = rng.choice(["b", "a", "c", "d"], n).astype(object)
    g[[5, 700, 2999]] = None  # missing labels in several row groups
    g[:1000][g[:1000] == "d"] = "c"  # "d" first appears after the first row group
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": g})
    frame["y"] = frame.x + rng.normal(size=n)
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=1000)
    parquet = read_parquet(str(path))
    assert parquet.npartitions == 3
    read = parquet.partitions[0].read(["g", "x"], dictionary=["g", "x"]).table
    assert pa.types.is_dictionary(read.column("g").type)  # only strings are encoded
    assert pa.types.is_floating(read.column("x").type)
    from_parquet = learn("y ~ x + C(g)", parquet)
    from_frame = learn("y ~ x + C(g)", from_pandas(frame, 3))
    assert from_parquet.spec.levels == from_frame.spec.levels == {"g": ["a", "b", "c", "d"]}
    summary = from_parquet.summary.columns["g"]
    assert summary.missing == 3 and summary.count == n - 3
    assert summary.levels == from_frame.summary.columns["g"].levels
    for index in range(3):
        a = encode_partition(from_parquet.spec, parquet.partitions[index])
        b = encode_partition(from_frame.spec, from_pandas(frame, 3).partitions[index])
        np.testing.assert_array_equal(a.X, b.X)
        assert a.dropped == b.dropped


def test_a_response_of_labels_raises_once_naming_it() -> None:
    """A text response fails in the driver, before any partition is read (it used to
    fail in every partition, three times, as formulaic's "`y` is not present")."""
    frame = pd.DataFrame({"x": np.arange(20.0), "y": ["yes", "no"] * 10})
    for formula in ("y ~ x", "y ~ 0 + x"):
        with pytest.raises(DesignError, match=r"response column 'y' holds labels \(string\)"):
            learn_design(formula, from_pandas(frame, 3), backend="serial")
    with pytest.raises(DesignError, match="response column 'y' holds labels"):
        learn_design(None, from_pandas(frame, 3), x_columns=["x"], response="y")
    # Labels on the right-hand side are categorical, as always.
    learn_design("x ~ y", from_pandas(frame, 3), backend="serial")


def test_numbers_read_as_text_because_of_a_stray_token_warn(tmp_path) -> None:
    """A CSV column of numbers with one stray token ('n/a?') is typed as text by the
    reader, and the formula would then give it a dummy column per number: warn, name
    the token, and say how to read it as numbers (which then equals statsmodels on the
    numeric rows)."""
    import warnings

    import statsmodels.formula.api as smf

    from shardfit import ols, read_csv

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=300).round(3), "y": rng.normal(size=300)})
    text = frame.astype({"x": object})
    text.loc[5, "x"] = "n/a?"
    path = tmp_path / "stray.csv"
    text.to_csv(path, index=False)
    with pytest.warns(UserWarning, match=r"column 'x' was read as text.*'n/a\?' \(1 row\)"):
        learn("y ~ x", read_csv(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learn("y ~ C(x)", read_csv(path))  # categorical by intent: no warning
        fit = ols("y ~ x", read_csv(path, null_values=["n/a?"])).fit(backend="serial")
        codes = pd.DataFrame({"g": [f"{i % 40:05d}" for i in range(300)], "y": frame.y})
        learn("y ~ g", from_pandas(codes, 2))  # all numbers (codes): no warning
    ref = smf.ols("y ~ x", frame.drop(index=5)).fit()
    np.testing.assert_allclose(fit.params, ref.params, rtol=1e-12)
    assert fit.nobs == 299


def test_a_date_in_a_formula_is_refused_before_any_pass(tmp_path) -> None:
    """A timestamp column passed the schema pass as a number (microseconds since 1970)
    and failed in every encoding task; it is refused at once, in the driver, with the
    fix; ``C(t)`` keeps its values as levels."""
    frame = pd.DataFrame(
        {"t": pd.date_range("2024-01-01", periods=30, freq="D"), "y": np.arange(30.0)}
    )
    frame["day"] = frame["t"].dt.date  # an Arrow date32 column
    path = tmp_path / "dates.parquet"
    frame.to_parquet(path)
    for formula, kind in [("y ~ t", r"timestamp\[.s\]"), ("y ~ np.log(day)", "date32")]:
        with pytest.raises(DesignError, match=rf"column '\w+' of 'dates.parquet' is a {kind}"):
            learn(formula, str(path))
    learned = learn("y ~ C(t)", str(path))
    assert len(learned.spec.levels["t"]) == 30


def test_numbers_read_as_text_past_the_level_cap_are_named_not_called_an_identifier(
    tmp_path,
) -> None:
    """A numeric CSV column with one bad token ('12..5') is read as text; its thousands
    of distinct numbers then hit the level cap, whose error called it "probably an
    identifier". It now says the values are numbers, names the token (or says it lies
    in rows not yet summarized) and how to read it as numbers, after which the reader
    names the token's line."""
    from shardfit import read_csv

    rng = np.random.default_rng(8)
    lines = ["x,y"] + [f"{rng.normal():.6f},{rng.normal():.6f}" for _ in range(2_000)]
    lines[1_501] = "12..5,0.5"  # data row 1,501: line 1,502 of the file
    path = tmp_path / "typo.csv"
    path.write_text("\n".join(lines) + "\n")
    one = read_csv(path)
    with pytest.raises(SchemaError, match=r"column 'x' was read as text.*all numbers but for "
                       r"'12\.\.5' \(1 row\).*column_types=\{'x': 'float64'\}"):  # fmt: skip
        learn_design("y ~ x", one, max_levels=500, backend="serial")
    several = read_csv(path, partition_rows=400)  # the token's partition is not the first
    assert several.npartitions > 2
    with pytest.raises(SchemaError, match=r"column 'x' was read as text.*all of them numbers"):
        learn_design("y ~ x", several, max_levels=300, backend="serial")
    # Identifiers are still called identifiers.
    ids = pd.DataFrame({"id": [f"user-{i}" for i in range(400)], "y": rng.normal(size=400)})
    with pytest.raises(SchemaError, match="probably an identifier"):
        learn_design("y ~ id", from_pandas(ids, 2), max_levels=300, backend="serial")
    # The advice works: typed as numbers, the reader names the line of the token.
    typed = read_csv(path, partition_rows=400, column_types={"x": "float64"})
    with pytest.raises(ReadError, match=r"line 1502\b.*column 'x'.*'12\.\.5'"):
        learn_design("y ~ x", typed, backend="serial")


@pytest.mark.parametrize("formula", ["~ x", "x", ""])
def test_a_model_formula_without_a_response_is_refused_before_any_pass(formula) -> None:
    """``ols("x", data)`` failed in every partition's task with a bare AssertionError
    (three attempts each), ``"~ x"`` with an AttributeError: refused up front now. And
    ``dmatrix("~ x")``, a right-hand side alone, crashed; it equals ``dmatrix("x")``."""
    import shardfit

    frame = pd.DataFrame({"x": np.arange(20.0), "y": np.arange(20.0) % 3})
    fits = [
        lambda: shardfit.ols(formula, frame).fit(backend="serial"),
        lambda: shardfit.logit(formula, frame).fit(backend="serial"),
        lambda: shardfit.elastic_net(formula, frame, alpha=0.1, backend="serial"),
        lambda: shardfit.DistributedModel(2, formula=formula).fit(frame, backend="serial"),
    ]
    for fit in fits:
        with pytest.raises(DesignError, match="has no response: a model needs one"):
            fit()
    pd.testing.assert_frame_equal(dmatrix("~ x", frame), dmatrix("x", frame))
