"""The partition cache: reused across passes, bounded, spilled to disk, always cleaned."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

from shardfit.engine import PartitionCache, map_partitions, run_pass, session
from shardfit.engine._testing import CachedGramTask, CacheInfoTask, count_markers
from shardfit.engine.cache import CacheRef, cache_info, drop_cache, get_or_compute


def test_memory_then_spill_to_memory_mapped_files(isolated_tmp):
    ref = CacheRef("unit", max_bytes=96, spill_root=str(isolated_tmp))
    calls = []

    def compute(n: int):
        def make():
            calls.append(n)
            return {"X": np.arange(n, dtype=np.float64), "y": np.ones(2)}

        return make

    small = get_or_compute(ref, "a", compute(10))  # 80 + 16 bytes: fits exactly
    first = get_or_compute(ref, "b", compute(50))  # over the bound: spilled
    assert _mapped_from(small["X"]) is None and _mapped_from(first["X"]) is None
    with pytest.raises(ValueError, match="read-only"):
        first["X"][0] = 1.0
    assert get_or_compute(ref, "a", compute(10)) is small
    big = get_or_compute(ref, "b", compute(50))  # mapped from the spill file, anew
    assert isinstance(_mapped_from(big["X"]), mmap.mmap)
    assert _mapped_from(big["X"]) is _mapped_from(big["y"])  # one mapping per entry
    assert [p.suffix for p in ref.spill_dir.iterdir()] == [".entry"]
    np.testing.assert_array_equal(big["X"], np.arange(50.0))
    np.testing.assert_array_equal(big["y"], np.ones(2))
    with pytest.raises(ValueError, match="read-only"):
        big["X"][0] = 1.0
    assert get_or_compute(ref, "b", compute(50)) is not big  # a new mapping per get
    assert calls == [10, 50]
    with pytest.raises(ValueError, match="read-only"):
        small["X"][0] = 1.0
    assert cache_info("unit") == {
        "memory": 1,
        "spilled": 1,
        "nbytes": 96,
        "hits": 3,
        "misses": 2,
        "unspilled": 0,
    }
    drop_cache("unit", str(isolated_tmp))
    assert not ref.spill_dir.exists()
    assert cache_info("unit")["memory"] == cache_info("unit")["spilled"] == 0
    # A task still running after the drop computes and keeps nothing.
    get_or_compute(ref, "b", compute(50))
    assert calls == [10, 50, 50] and not ref.spill_dir.exists()


def _mapped_from(array: np.ndarray) -> mmap.mmap | None:
    """The memory mapping an array's data lies in, if any."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base


@pytest.mark.parametrize("order", ["C", "F"])
def test_spilled_entries_keep_dtypes_shapes_and_layout(isolated_tmp, order):
    ref = CacheRef(f"layout-{order}", max_bytes=0, spill_root=str(isolated_tmp))
    rng = np.random.default_rng(1)
    value = {
        "dense": np.asarray(rng.normal(size=(37, 5)), order=order),
        "codes": rng.integers(0, 9, 37).astype(np.int32),
        "flags": np.array([True, False, True]),
        "names": np.array(["missing", "nonfinite"], dtype=np.str_),
        "empty": np.empty((0, 3)),
        "scalar": np.array(2.5),
        "strided": np.arange(20.0)[::3],  # neither C nor F contiguous as given
    }
    get_or_compute(ref, "p", lambda: value)
    back = get_or_compute(ref, "p", lambda: {})  # mapped from its file
    assert set(back) == set(value)
    for name, array in value.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape, name
        np.testing.assert_array_equal(back[name], array)
        assert not back[name].flags.writeable, name
    assert back["dense"].flags.f_contiguous == (order == "F")
    drop_cache(f"layout-{order}", str(isolated_tmp))


def test_an_entry_that_cannot_be_written_is_computed_again(tmp_path):
    """A spill that fails (here the spill root is a file, as good as a full disk for
    mkdir) costs a recomputation, never an error or a wrong value."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    ref = CacheRef("nowhere", max_bytes=0, spill_root=str(blocker))
    calls = []

    def make():
        calls.append(1)
        return {"X": np.arange(5.0)}

    for _ in range(3):
        np.testing.assert_array_equal(get_or_compute(ref, "p", make)["X"], np.arange(5.0))
    assert len(calls) == 3
    info = cache_info("nowhere")
    assert info["unspilled"] == 3 and info["spilled"] == 0 and info["misses"] == 3
    drop_cache("nowhere", str(blocker))


def test_objects_are_never_spilled(isolated_tmp):
    ref = CacheRef("objects", max_bytes=0, spill_root=str(isolated_tmp))
    with pytest.raises(TypeError, match="no Python objects"):
        get_or_compute(ref, "p", lambda: {"o": np.array([{"a": 1}], dtype=object)})
    drop_cache("objects", str(isolated_tmp))


def test_values_must_be_dicts_of_arrays():
    ref = CacheRef("bad", max_bytes=100)
    with pytest.raises(TypeError, match="dicts of NumPy arrays"):
        get_or_compute(ref, "a", lambda: [np.ones(2)])  # type: ignore[arg-type, return-value]


@pytest.mark.parametrize(
    ("backend", "workers", "max_bytes"),
    [("processes", 2, None), ("processes", 1, None), ("processes", 2, 0), ("threads", 2, None)],
)
def test_later_passes_reuse_the_encoded_partitions(
    source, reference, tmp_path, backend, workers, max_bytes, isolated_tmp
):
    with (
        session(backend, workers=workers) as sess,
        PartitionCache(sess, max_bytes=max_bytes) as cache,
    ):
        task = CachedGramTask(cache.ref, marker_dir=str(tmp_path), delay=0.01)
        encoded = []
        for _ in range(4):
            assert run_pass(task, source, backend=sess).digest() == reference
            encoded.append(count_markers(tmp_path, "encoded-"))
        spilled = list(cache.ref.spill_dir.glob("*.entry"))
    assert encoded[0] == source.npartitions
    if backend == "threads" or max_bytes == 0 or workers == 1:
        # One shared memory, spill files every local worker maps, or one worker.
        assert encoded[-1] == source.npartitions
    else:
        # Affinity sends partitions back to the worker that cached them; a pass may
        # move a few to even out the load (timing-dependent), so only most must hit.
        assert encoded[-1] - encoded[0] < source.npartitions
    assert len(spilled) == (source.npartitions if max_bytes == 0 else 0)
    assert not list(isolated_tmp.iterdir())  # spill files deleted


def test_cache_is_dropped_on_error_and_interrupt(source, tmp_path, isolated_tmp):
    with session("processes", workers=2) as sess:
        for error in (RuntimeError("estimator failed"), KeyboardInterrupt()):
            with pytest.raises(type(error)):
                with PartitionCache(sess, max_bytes=200) as cache:
                    task = CachedGramTask(cache.ref, marker_dir=str(tmp_path))
                    run_pass(task, source, backend=sess)
                    cache_id = cache.ref.cache_id
                    assert list(isolated_tmp.iterdir())  # some entries spilled
                    raise error
            assert not list(isolated_tmp.iterdir())
            infos = map_partitions(CacheInfoTask(cache_id), source, backend=sess)
            assert len({info["pid"] for info in infos}) == 2  # both workers asked
            assert all(info["memory"] == info["spilled"] == 0 for info in infos)


def test_dask_workers_drop_the_cache(source, reference, tmp_path, isolated_tmp):
    with session("dask", workers=2) as sess:
        # Every entry is over 300 bytes, so all spill to files both workers can map:
        # wherever Dask runs a partition, it is encoded once.
        with PartitionCache(sess, max_bytes=300) as cache:
            task = CachedGramTask(cache.ref, marker_dir=str(tmp_path))
            for _ in range(2):
                assert run_pass(task, source, backend=sess).digest() == reference
            assert count_markers(tmp_path, "encoded-") == source.npartitions
            cache_id = cache.ref.cache_id
        infos = map_partitions(CacheInfoTask(cache_id), source, backend=sess)
        assert all(info["memory"] == info["spilled"] == 0 for info in infos)


def test_cache_needs_a_session_and_a_with_block():
    with pytest.raises(TypeError, match="needs a shardfit session"):
        PartitionCache("processes")
    with session("serial") as sess:
        cache = PartitionCache(sess)
        with pytest.raises(RuntimeError, match="in a `with` block"):
            _ = cache.ref


def test_caches_pin_partitions_only_while_open(source, reference, tmp_path, isolated_tmp):
    """Passes send partitions back to the workers that cached them only while a cache
    is open, and a new cache starts from a free placement: an earlier fit's uneven
    placement (3 partitions to 1 after one slow first task) is not kept."""
    with session("processes", workers=2) as sess:
        backend = sess.backend
        assert not backend.pinned
        with PartitionCache(sess) as cache:
            task = CachedGramTask(cache.ref, marker_dir=str(tmp_path))
            assert run_pass(task, source, backend=sess).digest() == reference
            placed = dict(backend._affinity)
            assert backend.pinned and len(placed) == source.npartitions
            with PartitionCache(sess):  # nested: the outer cache's placement stays
                assert backend.pinned and backend._affinity == placed
            assert backend.pinned
        assert not backend.pinned and not backend._affinity
        run_pass(task, source, backend=sess)  # unpinned passes place freely...
        with PartitionCache(sess):  # ...and a new cache forgets where they ran
            assert backend.pinned and not backend._affinity
