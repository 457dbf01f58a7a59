"""What a benchmark case is: a problem on simulated data and the tools that solve it.

A :class:`Case` names a simulated data set, a formula and the sizes it runs at; each
:class:`Tool` builds, in a child process, an estimator for one :class:`Problem`
(``make_estimator``, shaped like scikit-learn's asv benchmarks) whose ``fit`` is timed.
Tools play one of four roles:

``limit``
    The physical limit: what the hardware does with pyarrow and BLAS alone.
``reference``
    An exact fit whose parameters the others are compared with.
``shardfit``
    The figures this suite exists for.
``peer``
    Another library doing the same job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

Role = Literal["limit", "reference", "shardfit", "peer"]
Mode = Literal["quick", "full"]
Format = Literal["parquet", "csv"]


class Skip(Exception):
    """Raised (or returned as a reason) when a tool cannot run here; the reason is printed."""


@dataclass(frozen=True)
class DataSpec:
    """A simulated data set: what ``shardfit simulate`` writes (see ``make_data``)."""

    kind: str
    rows: int
    seed: int = 0


@dataclass(frozen=True)
class Problem:
    """One case at one size, as a child process sees it."""

    case: str
    kind: str
    formula: str
    weights: str | None
    rows: int
    files: dict[str, Path]  # format -> simulated file
    scratch: Path  # a private folder for the tool's own temporary files

    @property
    def parquet(self) -> Path:
        return self.files["parquet"]

    @property
    def csv(self) -> Path:
        return self.files["csv"]


class Estimator(Protocol):
    """What ``Tool.make_estimator`` returns; building it is not timed, ``fit`` is."""

    def fit(self) -> dict[str, float] | None:
        """Do the work once; return the parameters by design-column name (limits: None)."""

    def close(self) -> None:
        """Release what the constructor started (a cluster, a JVM)."""


@dataclass
class Outcome:
    """Extra figures an estimator may report besides its timing."""

    startup_seconds: float | None = None  # JVM or cluster start, reported apart
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tool:
    """One way of doing a case's job.

    Parameters
    ----------
    name
        Shown in the table; unique within a case (``--tools`` selects by it).
    role
        ``limit``, ``reference``, ``shardfit`` or ``peer`` (see the module docstring).
    make_estimator
        Builds the estimator in the child: ``make_estimator(problem, outcome)``.
    needs
        Data formats the tool reads.
    requires
        Importable modules; a missing one skips the tool with the reason.
    exact
        Whether its parameters must equal the reference's (checked to ``rtol``);
        approximate tools (coefficient averaging) are reported, not checked.
    rtol
        Tolerance of the accuracy check (max relative difference of parameters).
    plan
        ``plan(rows, mode, repeats)`` returns ``(repeats, note)`` or raises
        :class:`Skip`: where a tool is too slow or too big for a size.
    """

    name: str
    role: Role
    make_estimator: Callable[[Problem, Outcome], Estimator]
    needs: tuple[Format, ...] = ("parquet",)
    requires: tuple[str, ...] = ()
    exact: bool = True
    rtol: float = 1e-9
    plan: Callable[[int, Mode, int], tuple[int, str]] | None = None


@dataclass(frozen=True)
class Case:
    """A benchmark case: a simulated data set, a model and the tools that fit it."""

    name: str
    description: str
    #: ``make_data(rows)``: the simulated data set the case reads at ``rows``.
    make_data: Callable[[int], DataSpec] | None = None
    formula: str = ""
    #: The formula of ``--quick`` runs where it differs from ``formula``: fewer design
    #: columns, so that a smoke run's references take a fraction of a second (the
    #: accuracy check is the same); ``--full`` always fits ``formula``.
    quick_formula: str = ""
    weights: str | None = None
    sizes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    tools: tuple[Tool, ...] = ()
    #: Tools whose parameters are the reference, in order of preference.
    references: tuple[str, ...] = ()
    #: Set on placeholders: why the case does not run yet.
    pending: str | None = None
    #: The goals the issue sets for shardfit on this case, quoted in the report.
    goals: str = ""
    #: shardfit tool -> the peers it is compared with (default: every exact peer or
    #: reference that matched), for cases whose tools do different jobs.
    compare: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def tool(self, name: str) -> Tool:
        for tool in self.tools:
            if tool.name == name:
                return tool
        known = ", ".join(t.name for t in self.tools)
        raise KeyError(f"case {self.name!r} has no tool {name!r}; it has: {known}")


def problem_for(
    case: Case, rows: int, files: dict[str, Path], scratch: Path, mode: Mode = "full"
) -> Problem:
    """The problem a child solves for ``case`` at ``rows`` in ``mode``."""
    assert case.make_data is not None
    return Problem(
        case=case.name,
        kind=case.make_data(rows).kind,
        formula=(case.quick_formula if mode == "quick" else "") or case.formula,
        weights=case.weights,
        rows=rows,
        files=files,
        scratch=scratch,
    )
