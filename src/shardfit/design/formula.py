"""What a formula needs from the data, found by reading it (no data evaluated).

Formula strings are code: formulaic evaluates every term as a Python expression.
Never pass a formula from an untrusted source to shardfit.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from formulaic import Formula

from shardfit.design.transforms import MERGEABLE_TRANSFORMS, SPLINE_TRANSFORMS
from shardfit.errors import DesignError

__all__ = ["FormulaInfo", "analyze_formula", "patsy_column_order"]

# Calls refused before reading: te() is no formulaic transform (formulaic has no
# tensor-product smooths; R's mgcv and patsy do).
_UNMERGEABLE = frozenset({"te"})
# Transforms learned from all rows in the schema pass (and further passes: for
# bs(x, df=...)'s quantile knots, poly()'s recurrence, a spline's centering).
_LEARNED = frozenset(MERGEABLE_TRANSFORMS) | frozenset(SPLINE_TRANSFORMS) | {"poly"}
# Transforms that look across rows, so a partition cannot evaluate them alone.
_ROW_DEPENDENT = frozenset({"lag", "diff", "shift", "pct_change", "rolling", "expanding", "ewm"})
# Functions and methods that reduce or order a whole column (np.mean(x), x.max(),
# x.rank()): each partition, and each block of its rows, would get its own value.
_WHOLE_COLUMN = frozenset(
    {
        "mean", "nanmean", "average", "median", "nanmedian", "std", "nanstd", "var",
        "nanvar", "sum", "nansum", "prod", "min", "max", "nanmin", "nanmax", "amin",
        "amax", "ptp", "quantile", "nanquantile", "percentile", "nanpercentile", "rank",
        "cumsum", "cumprod", "cummax", "cummin", "sort", "sort_values", "argsort",
        "unique", "nunique", "count", "mode", "zscore", "len", "value_counts", "corr",
        "cov", "idxmax", "idxmin", "argmax", "argmin",
    }
)  # fmt: skip
_CATEGORICAL_CALLS = frozenset({"C"})


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


@dataclass(frozen=True)
class FormulaInfo:
    """A parsed formula and the facts the schema pass needs.

    Attributes
    ----------
    formula : str
        The formula as given.
    variables : frozenset of str
        Every name the formula reads (data columns or context names).
    categorical_calls : frozenset of str
        Variables used as the first argument of ``C(...)``: categorical whatever
        their storage type.
    stateful_factors : tuple of str
        Factor expressions containing ``center``/``scale``/``standardize``, ``poly``
        (not ``raw=True``) or spline (``bs``, ``cr``, ``cs``, ``cc``) calls.
    has_response : bool
        Whether the formula has a left-hand side.
    functions : frozenset of str
        Names the formula calls as functions (``foo`` in ``foo(x)``).
    numeric_uses : frozenset of str
        Variables read other than as the first argument of ``C(...)`` (``k`` in
        ``C(k):x + k``): a numeric column among them is a number there, whatever
        ``C()`` makes of it elsewhere.
    """

    formula: str
    variables: frozenset[str]
    categorical_calls: frozenset[str]
    stateful_factors: tuple[str, ...]
    has_response: bool
    functions: frozenset[str] = frozenset()
    numeric_uses: frozenset[str] = frozenset()

    @cached_property
    def parsed(self) -> Formula:
        return Formula(self.formula)


def analyze_formula(formula: str) -> FormulaInfo:
    """Parse ``formula`` and check it can be evaluated partition by partition.

    Raises
    ------
    DesignError
        If the formula does not parse, uses a transform that looks across rows
        (``lag``), ``te()`` (not a formulaic transform),
        or nests stateful transforms (``scale(center(x))``).
    """
    try:
        parsed = Formula(formula)
    except Exception as error:  # formulaic raises several parser error types
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
        raise DesignError(f"cannot parse formula {formula!r}: {message}") from error
    has_response = hasattr(parsed, "lhs") and hasattr(parsed, "rhs")
    sides = [parsed.lhs, parsed.rhs] if has_response else [parsed]
    factors: dict[str, bool] = {}  # expression -> a plain column lookup
    for side in sides:
        for term in side:
            for factor in term.factors:
                lookup = str(getattr(factor, "eval_method", "")).endswith("LOOKUP")
                factors[str(factor)] = factors.get(str(factor), False) or lookup
    categorical: set[str] = set()
    stateful: list[str] = []
    names: set[str] = set()
    functions: set[str] = set()
    numeric_uses: set[str] = set()
    for expression, lookup in factors.items():
        if expression == "1":
            continue
        if lookup:  # a column, whatever its name (`grp-1` arrives as grp-1)
            names.add(expression.strip("`"))
            numeric_uses.add(expression.strip("`"))
            continue
        # Backtick-quoted names inside an expression (C(`grp-1`)) become identifiers
        # for Python's parser, and their names again after.
        python, quoted = _unquote(expression)
        try:
            tree = ast.parse(python, mode="eval")
        except SyntaxError:
            names.add(expression.strip("`"))
            continue
        read = {quoted.get(name, name) for name in _names(tree)} | _quoted_by_q(tree)
        names.update(read)
        functions.update(_called_names(tree))
        stateful_here = _check_calls(tree, formula)
        if stateful_here:
            stateful.append(expression)
        as_levels = {quoted.get(name, name) for name in _categorical_arguments(tree)}
        categorical.update(as_levels)
        if not (as_levels and _is_only_categorical_call(tree)):
            numeric_uses.update(read)
    # formulaic's required_variables leaves out names inside stateful transforms
    # (scale(x) gives nothing), so read the names from the factors as well. It also
    # cuts a dotted column name at the dot (`z.val` and Q("z.val") give "z"): such a
    # root is not a variable unless the formula reads it on its own too.
    dotted_roots = {name.split(".")[0] for name in names if "." in name}
    required = {
        str(variable)
        for variable in parsed.required_variables
        if str(variable) in names or str(variable) not in dotted_roots
    }
    context = _context_names()
    variables = frozenset(required | (names - context))
    return FormulaInfo(
        formula=formula,
        variables=variables,
        categorical_calls=frozenset(categorical),
        stateful_factors=tuple(stateful),
        has_response=has_response,
        functions=frozenset(functions - context),
        numeric_uses=frozenset(numeric_uses & variables),
    )


def _quoted_by_q(tree: ast.AST) -> set[str]:
    """Column names quoted as ``Q("name")`` (formulaic's and patsy's quoting)."""
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and _call_name(node) == "Q"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


def _called_names(tree: ast.AST) -> set[str]:
    """Names called as functions (``foo`` in ``foo(x)``, not ``np.log``)."""
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def _column_argument(node: ast.expr) -> str | None:
    """The column a ``C(...)`` argument names: ``g``, or ``Q("g h")``."""
    if isinstance(node, ast.Name):
        return node.id
    names = _quoted_by_q(node) if isinstance(node, ast.Call) and _call_name(node) == "Q" else ()
    return next(iter(names), None)


def _categorical_arguments(tree: ast.AST) -> set[str]:
    """Columns given as the first argument of a ``C(...)`` call."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in _CATEGORICAL_CALLS and node.args:
            name = _column_argument(node.args[0])
            if name is not None:
                found.add(name)
    return found


def _is_only_categorical_call(tree: ast.Expression) -> bool:
    """Whether the factor is one ``C(column, ...)`` call whose other arguments read no
    column: the column then enters only as levels."""
    body = tree.body
    if not (isinstance(body, ast.Call) and _call_name(body) in _CATEGORICAL_CALLS and body.args):
        return False
    others = [*body.args[1:], *(keyword.value for keyword in body.keywords)]
    return _column_argument(body.args[0]) is not None and not any(
        isinstance(n, ast.Name) and n.id not in _context_names()
        for other in others
        for n in ast.walk(other)
    )


def _unquote(expression: str) -> tuple[str, dict[str, str]]:
    """``expression`` with each backtick-quoted name replaced by an identifier, and
    the names by identifier."""
    quoted: dict[str, str] = {}

    def identifier(match: re.Match[str]) -> str:
        for key, value in quoted.items():
            if value == match.group(1):
                return key
        key = f"__shardfit_quoted_{len(quoted)}__"
        quoted[key] = match.group(1)
        return key

    return re.sub(r"`([^`]*)`", identifier, expression), quoted


def _names(tree: ast.AST) -> set[str]:
    """Names a factor reads as data: every loaded name that is not called."""
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return {
        node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in called
    }


def _context_names() -> set[str]:
    import builtins

    from formulaic.transforms import TRANSFORMS

    return set(TRANSFORMS) | set(dir(builtins))


def _is_raw_poly(node: ast.Call) -> bool:
    """Whether the call is ``poly(..., raw=True)`` (``raw`` by keyword or as the third
    positional argument, any true constant): powers of its argument, no state."""
    if _call_name(node) != "poly":
        return False
    raw = [keyword.value for keyword in node.keywords if keyword.arg == "raw"]
    raw += node.args[2:3]  # formulaic's poly(x, degree=1, raw=False)
    return any(isinstance(value, ast.Constant) and bool(value.value) for value in raw)


def _check_calls(tree: ast.AST, formula: str) -> bool:
    """Raise on unsupported calls; return whether a mergeable stateful call is present."""
    found = False
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        if name in _ROW_DEPENDENT:
            raise DesignError(
                f"{name}() in formula {formula!r} reads neighbouring rows, which may lie in "
                "another partition; compute the lagged column before fitting"
            )
        if name in _WHOLE_COLUMN:
            raise DesignError(
                f"{ast.unparse(node)} in formula {formula!r} reads a whole column, but each "
                "partition (and each block of its rows) evaluates the formula on its own "
                "rows; use center(), scale() or standardize(), which learn from all rows, "
                "or compute the column before fitting"
            )
        if name in _UNMERGEABLE:
            # formulaic (which evaluates every formula, in memory too) has no te():
            # it would fail in every partition with "name 'te' is not defined".
            raise DesignError(
                f"{name}() in formula {formula!r}: formulaic, which evaluates shardfit's "
                "formulas, has no tensor-product smooth te(); write the interaction of "
                "the marginal bases instead (cr(x, df=4):cr(z, df=4) is their row-wise "
                "tensor product, without te()'s constraints). Supported stateful "
                f"transforms: {', '.join(MERGEABLE_TRANSFORMS)}, poly(), bs(), "
                "cr()/cs()/cc()"
            )
        if name in _LEARNED and not _is_raw_poly(node):
            found = True
            arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
            inner_calls = (n for a in arguments for n in ast.walk(a) if isinstance(n, ast.Call))
            for inner in inner_calls:
                if _call_name(inner) in _LEARNED and not _is_raw_poly(inner):
                    raise DesignError(
                        f"nested stateful transforms ({ast.unparse(node)}) in formula "
                        f"{formula!r} would need one pass per level of nesting; "
                        "use a single center()/scale()/bs() per term"
                    )
    return found


def patsy_column_order(model_spec: Any, formula: str) -> tuple[int, ...] | None:
    """Positions of formulaic's columns in the order patsy (statsmodels' formulas)
    gives the same design's columns, or ``None`` where they cannot be matched.

    formulaic sorts the terms by degree; patsy groups them by the set of numeric
    factors they contain (the group of terms with none first, the others in order of
    first appearance), then sorts each group by degree. Within a term both give the
    columns in the same order. The terms' order as written comes from patsy's own
    parser when patsy is installed (``(a + b)**2`` expands there as ``a, b, a:b``) and
    otherwise from formulaic's unsorted parse, which agrees for formulas of ``+``,
    ``:`` and ``*``.

    Parameters
    ----------
    model_spec : formulaic.ModelSpec
        The right-hand side's spec (its terms, their columns, each factor's kind).
    formula : str
        The formula it was built from.
    """
    terms = list(model_spec.terms)
    columns = model_spec.term_indices
    kinds = {str(name): str(getattr(kind, "value", kind)) for name, kind in _kinds(model_spec)}

    def factors(term: Any) -> frozenset[str]:
        names = (_squash(str(factor)) for factor in term.factors)
        return frozenset(name for name in names if name != "1")

    by_factors = {factors(term): term for term in terms}
    if len(by_factors) != len(terms):
        return None
    written = _patsy_terms(formula)
    if written is None or set(written) != set(by_factors):
        written = [factors(term) for term in Formula(formula, _ordering="none").rhs]
        if set(written) != set(by_factors):
            return None
    numeric = {_squash(name) for name, kind in kinds.items() if kind == "numerical"}
    buckets: dict[frozenset[str], list[frozenset[str]]] = {}
    for term in dict.fromkeys(written):  # a repeated term counts where it first is
        buckets.setdefault(term & numeric, []).append(term)
    groups = ([buckets.pop(frozenset())] if frozenset() in buckets else []) + list(buckets.values())
    order: list[int] = []
    for group in groups:
        for term in sorted(group, key=len):  # stable, as patsy's sort by degree
            order.extend(int(i) for i in columns[by_factors[term]])
    return tuple(order)


def _kinds(model_spec: Any) -> list[tuple[str, Any]]:
    # formulaic's encoder state: factor name -> (kind, state).
    return [(name, state[0]) for name, state in dict(model_spec.encoder_state).items()]


def _squash(code: str) -> str:
    """A factor's code without spaces (patsy and formulaic space code differently)."""
    return re.sub(r"\s+", "", code)


def _patsy_terms(formula: str) -> list[frozenset[str]] | None:
    """The right-hand side's terms in patsy's written order, or ``None`` without
    patsy (or where it cannot parse the formula)."""
    try:
        from patsy import ModelDesc
    except ImportError:
        return None
    try:
        desc = ModelDesc.from_formula(formula)
    except Exception:  # a formula patsy cannot read: formulaic's order
        return None
    return [frozenset(_squash(f.name()) for f in term.factors) for term in desc.rhs_termlist]
