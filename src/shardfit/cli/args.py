"""Argument types the commands share."""

from __future__ import annotations

import argparse
import os

__all__ = ["out_file_problem", "positive_int"]


def positive_int(text: str) -> int:
    """A whole number >= 1 (``_`` separators allowed: ``2_000_000``), for argparse."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def out_file_problem(out: str | None, what: str = "the results") -> str | None:
    """Why ``what`` cannot be saved to ``out`` (a folder, or a path whose folder does
    not exist), or ``None``: checked before the work, not after it, and naming the
    user's path rather than the temporary file the save writes first."""
    if not out:
        return None
    if os.path.isdir(out):
        return f"cannot save {what} to {out}: it is a directory; give a file name"
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        return f"cannot save {what} to {out}: no such folder {folder}"
    return None
