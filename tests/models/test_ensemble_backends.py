"""Stacked ensembles on real backends: the same numbers on serial, threads, processes
and a Dask LocalCluster; inputs memory-mapped by the workers; the shared-input
directory removed after success, a failing estimator, a killed worker and an
interrupt (from inside a fit and, with a real SIGINT, from outside)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from shardfit.errors import PartitionTaskError
from shardfit.models._ensemble_testing import (
    FailingRegressor,
    InterruptingRegressor,
    KillingRegressor,
    ProbeRegressor,
)
from shardfit.models.ensemble import StackingEnsembleClassifier, StackingEnsembleRegressor
from shardfit.models.ensemble_jobs import CACHE_PREFIX

NROWS = 203  # KFold(4): test folds of 51, 51, 51, 50 rows -> training rows 152 or 153
CV = KFold(4, shuffle=True, random_state=4)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_regression(n_samples=NROWS, n_features=4, noise=3.0, random_state=17)
    return X, y


def first() -> list[tuple[str, object]]:
    return [
        ("ridge", Ridge(alpha=1.0)),
        ("tree", DecisionTreeRegressor(max_depth=3, random_state=0)),
        ("knn", KNeighborsRegressor(n_neighbors=4)),
    ]


def second() -> list[tuple[str, object]]:
    return [("ridge2", Ridge(alpha=0.3)), ("probe", ProbeRegressor())]


def _fit(X, y, backend, cache_dir: Path, **kwargs) -> StackingEnsembleRegressor:
    model = StackingEnsembleRegressor(
        [[*first(), ("probe", ProbeRegressor())], second()],
        final_estimator=Ridge(alpha=0.5),
        cv=CV,
        passthrough=True,
        backend=backend,
        cache_dir=cache_dir,
        **kwargs,
    )
    return model.fit(X, y)


def _leftovers(cache_dir: Path) -> list[str]:
    return sorted(path.name for path in cache_dir.iterdir())


@pytest.fixture(scope="module")
def serial(data, tmp_path_factory) -> StackingEnsembleRegressor:
    return _fit(*data, "serial", tmp_path_factory.mktemp("serial"))


def test_processes_one_layer_equals_sklearn(data, tmp_path) -> None:
    X, y = data
    reference = StackingRegressor(first(), final_estimator=Ridge(alpha=0.5), cv=CV).fit(X, y)
    model = StackingEnsembleRegressor(
        first(),
        final_estimator=Ridge(alpha=0.5),
        cv=CV,
        backend="processes",
        workers=2,
        cache_dir=tmp_path,
    ).fit(X, y)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=1e-12, atol=1e-9)
    assert _leftovers(tmp_path) == []


def _same(model, serial, X, cache_dir: Path) -> None:
    np.testing.assert_array_equal(model.predict(X), serial.predict(X))
    np.testing.assert_array_equal(model.transform(X), serial.transform(X))
    np.testing.assert_array_equal(model.final_estimator_.coef_, serial.final_estimator_.coef_)
    assert _leftovers(cache_dir) == []


def _mapped(model, cache_dir: Path, *, remote: bool) -> None:
    """The all-rows fits read the shared files as read-only memory maps."""
    for layer, name in ((0, "layer0_X.npy"), (1, "layer1_X.npy")):
        probe = model.layers_[layer]["probe"]
        assert probe.input_type_ == "memmap"
        assert probe.input_writeable_ is False
        path = Path(probe.input_file_)
        assert path.name == name
        assert path.parent.parent == cache_dir and path.parent.name.startswith(CACHE_PREFIX)
        assert (probe.fit_pid_ != os.getpid()) is remote
    # Both layers' fits used the same private directory, now gone.
    dirs = {Path(model.layers_[k]["probe"].input_file_).parent for k in (0, 1)}
    assert len(dirs) == 1 and not dirs.pop().exists()


def test_serial_maps_inputs_and_cleans_up(serial, data) -> None:
    X, _ = data
    cache_dir = Path(serial.cache_dir)
    _mapped(serial, cache_dir, remote=False)
    assert _leftovers(cache_dir) == []
    assert serial.transform(X).shape == (NROWS, 2 + 4)  # two estimators, passthrough


def test_threads_same_as_serial(data, serial, tmp_path) -> None:
    _same(_fit(*data, "threads", tmp_path, workers=2), serial, data[0], tmp_path)


def test_processes_same_as_serial_and_mapped(data, serial, tmp_path) -> None:
    model = _fit(*data, "processes", tmp_path, workers=2)
    _same(model, serial, data[0], tmp_path)
    _mapped(model, tmp_path, remote=True)


def test_dask_local_cluster_same_as_serial_and_mapped(data, serial, tmp_path, dask_client) -> None:
    model = _fit(*data, dask_client, tmp_path)
    _same(model, serial, data[0], tmp_path)
    _mapped(model, tmp_path, remote=True)


@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_failing_estimator_names_layer_estimator_fold(data, tmp_path, backend) -> None:
    X, y = data
    # Only the fold whose training rows number 153 (fold 3) fails.
    layers = [first(), [("ridge2", Ridge()), ("bad", FailingRegressor(fail_rows=153))]]
    model = StackingEnsembleRegressor(
        layers,
        cv=CV,
        backend=backend,
        cache_dir=tmp_path,
        retries=0,
        workers=2 if backend == "processes" else None,
    )
    with pytest.raises(PartitionTaskError, match="layer 1, estimator 'bad', fold 3") as info:
        model.fit(X, y)
    assert "refusing to fit 153 rows" in str(info.value)
    assert _leftovers(tmp_path) == []


def test_failing_refit_on_all_rows_is_named(data, tmp_path) -> None:
    X, y = data
    model = StackingEnsembleRegressor(
        [("bad", FailingRegressor(fail_rows=NROWS))], cv=CV, backend="serial", cache_dir=tmp_path
    )
    with pytest.raises(PartitionTaskError, match="layer 0, estimator 'bad', all rows"):
        model.fit(X, y)
    assert _leftovers(tmp_path) == []


def test_killed_worker_is_reported_and_cleaned_up(data, tmp_path) -> None:
    X, y = data
    model = StackingEnsembleRegressor(
        [("ridge", Ridge()), ("killer", KillingRegressor())],
        cv=CV,
        backend="processes",
        workers=2,
        cache_dir=tmp_path,
        retries=0,
    )
    with pytest.raises(PartitionTaskError, match=r"estimator 'killer'.*worker process died"):
        model.fit(X, y)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_keyboard_interrupt_in_a_fit_cleans_up(data, tmp_path, backend) -> None:
    X, y = data
    model = StackingEnsembleRegressor(
        [("ridge", Ridge()), ("stop", InterruptingRegressor())],
        cv=CV,
        backend=backend,
        cache_dir=tmp_path,
        workers=2 if backend == "processes" else None,
    )
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert _leftovers(tmp_path) == []


SIGINT_SCRIPT = """
import faulthandler
import signal
import sys
import numpy as np
from shardfit.models._ensemble_testing import SleepingRegressor
from shardfit.models.ensemble import StackingEnsembleClassifier, StackingEnsembleRegressor

if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1)  # the test asks where it hangs, if it does
    # Ctrl-C as at a terminal: a shell starts background jobs with SIGINT ignored, and
    # this process would inherit that from a test run launched with `&`.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.normal(size=60)
    StackingEnsembleRegressor(
        [("slow", SleepingRegressor(seconds=60.0))],
        cv=3, backend="processes", workers=2, cache_dir=sys.argv[1],
    ).fit(X, y)
"""


def test_sigint_to_the_driver_removes_the_shared_inputs(tmp_path) -> None:
    script = tmp_path / "fit.py"
    script.write_text(textwrap.dedent(SIGINT_SCRIPT))
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(cache_dir)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        # Wait until the fit is under way: the directory holds the fold files.
        while time.monotonic() < deadline and not any(cache_dir.glob("*/fold2_test.npy")):
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        assert any(cache_dir.glob("*/layer0_X.npy"))
        time.sleep(1.0)  # the workers are in their 60 s fits
        proc.send_signal(signal.SIGINT)
        try:
            # Seconds (1.7-3 s at a load of 5); a swallowed interrupt would let the 60 s
            # fits finish and exit 0, which the asserts below refuse.
            _, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # faulthandler: every thread's stack
            time.sleep(1.0)
            proc.kill()
            _, stderr = proc.communicate()
            pytest.fail(f"the driver did not stop after SIGINT:\n{stderr.decode()[-4000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert b"KeyboardInterrupt" in stderr
    assert _leftovers(cache_dir) == []


def test_classifier_on_dask_equals_sklearn(dask_client, tmp_path) -> None:
    X, codes = make_classification(
        n_samples=180, n_features=5, n_informative=3, n_classes=3, random_state=8
    )
    y = np.array(["x", "y", "z"])[codes]
    estimators = [
        ("lr", LogisticRegression(max_iter=1000)),
        ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
    ]
    cv = StratifiedKFold(3, shuffle=True, random_state=1)
    reference = StackingClassifier(estimators, cv=cv).fit(X, y)
    model = StackingEnsembleClassifier(
        estimators, cv=cv, backend=dask_client, cache_dir=tmp_path
    ).fit(X, y)
    np.testing.assert_allclose(
        model.predict_proba(X), reference.predict_proba(X), rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))
    assert _leftovers(tmp_path) == []
