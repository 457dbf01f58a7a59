"""Argument types the commands share."""

from __future__ import annotations

import argparse
import os
import re
import sys

__all__ = ["cli_message", "out_file_problem", "positive_int", "report_error"]


def positive_int(text: str) -> int:
    """A whole number >= 1 (``_`` separators allowed: ``2_000_000``), for argparse."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def out_file_problem(
    out: str | None, what: str = "the results", *, overwrite: bool = False
) -> str | None:
    """Why ``what`` cannot be saved to ``out`` (a folder, a path whose folder does not
    exist, or, without ``overwrite``, a file that exists), or ``None``: checked before
    the work, not after it, and naming the user's path rather than the temporary file
    the save writes first.

    Parameters
    ----------
    out : str or None
        The path given on the command line (``None`` or empty: nothing to save).
    what : str
        What is saved, for the message (``"the results"``, ``"the design spec"``).
    overwrite : bool
        The command's ``--overwrite``: an existing file may be replaced.
    """
    if not out:
        return None
    if os.path.isdir(out):
        return f"cannot save {what} to {out}: it is a directory; give a file name"
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        return f"cannot save {what} to {out}: no such folder {folder}"
    if not overwrite and os.path.lexists(out):
        # As `shardfit predict`: an earlier result is never replaced silently.
        return f"cannot save {what} to {out}: the file exists; add --overwrite to replace it"
    return None


# The library's hints name Python keyword arguments (``rank_deficient='drop'``); on the
# command line the same choice is a flag. Each entry: the argparse destinations the
# command must have (the flag exists there), the library's words, and the flag's.
# The library's messages stay as they are for Python users.
_NAME = r"'(?P<name>[^']*)'"
_HINTS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = tuple(
    (dests, re.compile(pattern), replacement)
    for dests, pattern, replacement in (
        (("missing",), r"pass missing='drop'", "pass --missing drop"),
        (("rank_deficient",), r"pass rank_deficient='drop'", "pass --rank-deficient drop"),
        (("unseen",), r"pass unseen='zero'", "pass --unseen zero"),
        (("overwrite",), r"pass overwrite=True \(CLI: --overwrite\)", "pass --overwrite"),
        (("max_levels",), r"Raise max_levels= ", "Raise --max-levels "),
        (
            ("exposure", "link", "offset"),
            r"exposure=" + _NAME + r" needs the log link",
            r"--exposure \g<name> needs the log link",
        ),
        (
            ("exposure", "link", "offset"),
            r"Use the log link, or pass the column you mean to add to the linear "
            r"predictor as offset=",
            "Use --link log, or give the column you mean to add to the linear predictor "
            "as --offset",
        ),
        (
            ("cov",),
            r"cov_kwds=\{'groups': " + _NAME + r"\}: the design store",
            r"--cov cluster:\g<name>: the design store",
        ),
        (
            ("cov",),
            r"cov_kwds=\{'(?:groups|time)': " + _NAME + r"\} of cov_type='(?P<cov>hac-\w+)'",
            r"--cov \g<cov>:\g<name>",
        ),
        (
            ("cov",),
            r"\(shardfit\.ols\(formula, data\)\.fit\(cov_type='cluster', \.\.\.\)\)",
            "(`shardfit fit DATA FORMULA --cov cluster:COLUMN`)",
        ),
        # CSV reading: the messages give both spellings; the command line needs one.
        (
            ("column_type",),
            r"pass column_types=\{" + _NAME + r": '(?P<type>\w+)'\} to read it as floats "
            r"\(command line: --column-type [^)]*\)",
            r"pass --column-type \g<name>=\g<type> to read it as floats",
        ),
        (
            ("column_type", "skip_bad_lines"),
            r"pass column_types=\{" + _NAME + r": '(?P<type>\w+)'\} to read the column as "
            r"text, or on_bad_lines='skip' to drop such lines \(command line: [^)]*\)",
            r"pass --column-type \g<name>=\g<type> to read the column as text, or "
            r"--skip-bad-lines to drop such lines",
        ),
        (
            ("column_type",),
            r"pass column_types=\{" + _NAME + r": '(?P<type>\w+)'\} \(command line: [^)]*\)",
            r"pass --column-type \g<name>=\g<type>",
        ),
        (
            ("column_type",),
            r"\(column_types=\{" + _NAME + r": '(?P<type>\w+)'\} when reading a CSV, "
            r"--column-type [^ ]+ on the command line:",
            r"(--column-type \g<name>=\g<type>:",
        ),
        (
            ("column_type",),
            r"\(column_types=\{" + _NAME + r": '(?P<type>\w+)'\}\)",
            r"(--column-type \g<name>=\g<type>)",
        ),
        (("null_values",), r"\(null_values=\[\.\.\.\], --null-values\)", "(--null-values)"),
        (
            ("null_values",),
            r"\(null_values=\[\.\.\.\] when reading a CSV, --null-values on the command "
            r"line\)",
            "(--null-values)",
        ),
    )
)


def cli_message(args: argparse.Namespace, text: str) -> str:
    """``text`` (a library error or warning) with its Python hints spelt as the flags of
    the command ``args`` was parsed for: ``pass rank_deficient='drop'`` becomes ``pass
    --rank-deficient drop``. A hint whose flag the command lacks is left as it is."""
    for dests, pattern, replacement in _HINTS:
        if all(hasattr(args, dest) for dest in dests):
            text = pattern.sub(replacement, text)
    return text


def report_error(args: argparse.Namespace, error: BaseException | str) -> int:
    """Print ``shardfit COMMAND: error: MESSAGE`` on standard error, the library's hints
    spelt as the command's flags (:func:`cli_message`); returns the exit status, 2."""
    print(f"shardfit {args.command}: error: {cli_message(args, str(error))}", file=sys.stderr)
    return 2
