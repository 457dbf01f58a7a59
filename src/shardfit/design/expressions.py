"""Arithmetic factor expressions (``I(x ** 2)``, ``np.log(x)``) evaluated by NumPy.

formulaic evaluates a factor such as ``I(x1 ** 2)`` by building a pandas frame of the
partition and running its materializer: about 11 ms for three squares on 250k rows,
a fifth of reading, encoding and taking IRLS's first step on a partition, and it is
what keeps pandas and formulaic imported in the workers. The factors most formulas
use are plain arithmetic on numeric columns, so :class:`NativeExpression` takes the
parsed expression, accepts only a small safe subset of Python (column names, number
literals, ``+ - * / **``, unary minus, ``I(...)``, one-argument NumPy ufuncs such as
``np.log``, and ``center``/``scale``/``standardize`` with the state the design learned
for them) and evaluates it on the columns' NumPy arrays. Those are the same
operations pandas and shardfit's transforms apply to a Series' values, so the results
are the same bits (:class:`~shardfit.design.fast_encoder.FastEncoder` checks that
against formulaic before it uses a plan). Anything else (comparisons, other
functions, a transform without learned state) returns ``None`` from
:meth:`NativeExpression.parse` and stays with formulaic.

Nothing is passed to :func:`eval`: the expression is walked as a syntax tree, and
only the nodes listed above are accepted.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["NativeExpression"]

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
#: NumPy functions of one array accepted as ``np.<name>(...)`` (the name formulaic gives NumPy).
_UFUNCS: dict[str, np.ufunc] = {
    name: getattr(np, name)
    for name in (
        "abs",
        "absolute",
        "cbrt",
        "cos",
        "exp",
        "exp2",
        "expm1",
        "log",
        "log10",
        "log1p",
        "log2",
        "sin",
        "sqrt",
        "square",
        "tan",
        "tanh",
    )
}


#: shardfit's stateful transforms (:mod:`~shardfit.design.transforms`): applied as
#: ``(x - center) / scale`` with the learned state, either part absent when ``None``.
_TRANSFORMS = frozenset({"center", "scale", "standardize"})

#: A transform call's learned ``(center, scale)``, by the call's text.
_States = dict[str, tuple[float | None, float | None]]


class _NotNative(Exception):
    pass


@dataclass(frozen=True)
class NativeExpression:
    """A factor expression in the arithmetic subset, ready to evaluate on arrays.

    Attributes
    ----------
    text : str
        The expression as formulaic names the factor.
    columns : tuple of str
        The column names it reads.
    """

    text: str
    columns: tuple[str, ...]
    _tree: ast.expr = field(compare=False, repr=False)
    _states: _States = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(
        cls,
        text: str,
        column_names: set[str] | frozenset[str],
        transform_state: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> NativeExpression | None:
        """The expression, or ``None`` when it is outside the subset NumPy evaluates
        here (it then stays with formulaic).

        Parameters
        ----------
        text : str
            A factor expression, as formulaic writes it (``"I(x1 ** 2)"``).
        column_names : set of str
            The numeric columns a name may refer to.
        transform_state : mapping, optional
            The learned state of the design's ``center``/``scale``/``standardize``
            calls, by the call's text (``DesignSpec.transform_state``); a call without
            one is not evaluated here.
        """
        try:
            tree = ast.parse(text, mode="eval").body
            used: list[str] = []
            states: _States = {}
            _check(tree, column_names, used, transform_state or {}, states)
        except (SyntaxError, ValueError, TypeError, KeyError, _NotNative, RecursionError):
            return None
        return cls(text, tuple(dict.fromkeys(used)), tree, states)

    def evaluate(self, arrays: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """The expression's float64 values on ``n`` rows of ``arrays`` (float64
        columns by name). NaN and inf propagate as in NumPy, silently: the caller
        counts non-finite rows."""
        with np.errstate(all="ignore"):
            value = _evaluate(self._tree, arrays, self._states)
        out = np.asarray(value, dtype=np.float64)
        if out.shape != (n,):
            out = np.array(np.broadcast_to(out, (n,)), dtype=np.float64)
        return out


def _check(
    node: ast.expr,
    columns: set[str] | frozenset[str],
    used: list[str],
    transform_state: Mapping[str, Mapping[str, Any]],
    states: _States,
) -> None:
    if isinstance(node, ast.Name):
        if node.id not in columns:
            raise _NotNative
        used.append(node.id)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _NotNative
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise _NotNative
        _check(node.left, columns, used, transform_state, states)
        _check(node.right, columns, used, transform_state, states)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise _NotNative
        _check(node.operand, columns, used, transform_state, states)
    elif isinstance(node, ast.Call) and _is_transform(node):
        # The keywords (center=, scale=, ddof=) shaped what was learned; applying
        # needs only the learned state.
        if len(node.args) != 1 or not all(
            isinstance(k.value, ast.Constant) and k.arg is not None for k in node.keywords
        ):
            raise _NotNative
        call = ast.unparse(node)
        state = transform_state.get(call)
        if state is None or "ddof" not in state:
            raise _NotNative
        center, scale = state["center"], state["scale"]
        states[call] = (
            None if center is None else float(center),
            None if scale is None else float(scale),
        )
        _check(node.args[0], columns, used, transform_state, states)
    elif isinstance(node, ast.Call):
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise _NotNative
        _function(node.func)
        _check(node.args[0], columns, used, transform_state, states)
    else:
        raise _NotNative


def _is_transform(node: ast.Call) -> bool:
    return isinstance(node.func, ast.Name) and node.func.id in _TRANSFORMS


def _function(func: ast.expr) -> Callable[[Any], Any]:
    """``I`` (identity) or a NumPy ufunc named as ``np.<name>``."""
    if isinstance(func, ast.Name) and func.id == "I":
        return _identity
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "np"
        and func.attr in _UFUNCS
    ):
        return _UFUNCS[func.attr]
    raise _NotNative


def _identity(value: Any) -> Any:
    return value


def _evaluate(node: ast.expr, arrays: Mapping[str, np.ndarray], states: _States) -> Any:
    if isinstance(node, ast.Name):
        return arrays[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](
            _evaluate(node.left, arrays, states), _evaluate(node.right, arrays, states)
        )
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, arrays, states))
    assert isinstance(node, ast.Call)
    inner = _evaluate(node.args[0], arrays, states)
    if _is_transform(node):
        # As shardfit.design.transforms applies it: subtract, then divide.
        center, scale = states[ast.unparse(node)]
        values = np.asarray(inner, dtype=np.float64)
        if center is not None:
            values = values - center
            if scale is not None and isinstance(values, np.ndarray) and values.ndim:
                np.divide(values, scale, out=values)  # into the new array: one allocation
            elif scale is not None:
                values = values / scale
        elif scale is not None:
            values = values / scale
        return values
    return _function(node.func)(inner)
