"""What a formula needs from the data, found by reading it (no data evaluated).

Formula strings are code: formulaic evaluates every term as a Python expression.
Never pass a formula from an untrusted source to shardfit.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cached_property

from formulaic import Formula

from shardfit.design.transforms import MERGEABLE_TRANSFORMS
from shardfit.errors import DesignError

__all__ = ["FormulaInfo", "analyze_formula"]

# formulaic transforms whose state comes from all the rows and cannot be merged yet.
_UNMERGEABLE = frozenset({"poly", "bs", "cc", "cr", "cs", "te"})
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
        Factor expressions containing ``center``/``scale``/``standardize`` calls.
    has_response : bool
        Whether the formula has a left-hand side.
    """

    formula: str
    variables: frozenset[str]
    categorical_calls: frozenset[str]
    stateful_factors: tuple[str, ...]
    has_response: bool

    @cached_property
    def parsed(self) -> Formula:
        return Formula(self.formula)


def analyze_formula(formula: str) -> FormulaInfo:
    """Parse ``formula`` and check it can be evaluated partition by partition.

    Raises
    ------
    DesignError
        If the formula does not parse, uses a transform that looks across rows
        (``lag``), a transform whose state cannot be merged (``poly``, ``bs``, ...),
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
    for expression, lookup in factors.items():
        if expression == "1":
            continue
        if lookup:  # a column, whatever its name (`grp-1` arrives as grp-1)
            names.add(expression.strip("`"))
            continue
        # Backtick-quoted names inside an expression (C(`grp-1`)) become identifiers
        # for Python's parser, and their names again after.
        python, quoted = _unquote(expression)
        try:
            tree = ast.parse(python, mode="eval")
        except SyntaxError:
            names.add(expression.strip("`"))
            continue
        names.update(quoted.get(name, name) for name in _names(tree))
        stateful_here = _check_calls(tree, formula)
        if stateful_here:
            stateful.append(expression)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and _call_name(node) in _CATEGORICAL_CALLS
                and node.args
                and isinstance(node.args[0], ast.Name)
            ):
                categorical.add(quoted.get(node.args[0].id, node.args[0].id))
    # formulaic's required_variables leaves out names inside stateful transforms
    # (scale(x) gives nothing), so read the names from the factors as well.
    variables = frozenset(
        {str(variable) for variable in parsed.required_variables} | (names - _context_names())
    )
    return FormulaInfo(
        formula=formula,
        variables=variables,
        categorical_calls=frozenset(categorical),
        stateful_factors=tuple(stateful),
        has_response=has_response,
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
            raise DesignError(
                f"{name}() in formula {formula!r} learns its state (knots, orthogonal basis) "
                "from all rows at once, which shardfit cannot yet do out of core; supported "
                f"stateful transforms: {', '.join(MERGEABLE_TRANSFORMS)}"
            )
        if name in MERGEABLE_TRANSFORMS:
            found = True
            arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
            inner_calls = (n for a in arguments for n in ast.walk(a) if isinstance(n, ast.Call))
            for inner in inner_calls:
                if _call_name(inner) in MERGEABLE_TRANSFORMS:
                    raise DesignError(
                        f"nested stateful transforms ({ast.unparse(node)}) in formula "
                        f"{formula!r} would need one pass per level of nesting; "
                        "use a single center()/scale() per term"
                    )
    return found
