"""Every public name resolves, and importing the package alone stays light."""

from __future__ import annotations

import subprocess
import sys

import shardfit


def test_every_exported_name_resolves() -> None:
    for name in shardfit.__all__:
        assert getattr(shardfit, name) is not None, name


def test_import_does_not_load_the_heavy_modules() -> None:
    heavy = "('formulaic', 'scipy.stats', 'pandas', 'dask')"
    code = f"import sys, shardfit; print(sorted(m for m in {heavy} if m in sys.modules))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.stdout.strip() == "[]", completed.stdout + completed.stderr
