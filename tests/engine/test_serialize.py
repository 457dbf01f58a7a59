"""Safe states: JSON + .npz, nested values, only trusted classes, never pickle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from shardfit.engine._testing import GramStat
from shardfit.engine.serialize import (
    decode_state,
    encode_state,
    load_object,
    load_state,
    read_state,
    register_class,
    save_object,
    save_state,
)


def test_nested_state_round_trips_bit_for_bit(tmp_path, rng):
    state = {
        "coef": rng.standard_normal(5),
        "blocks": [rng.standard_normal((2, 2)), {"r": np.triu(rng.standard_normal((3, 3)))}],
        "levels": {"color": ["red", "blue"]},
        "scale": float(rng.standard_normal()),
        "np_scalar": np.float64(0.1) + np.float64(0.2),
        "big": 2**200 + 1,
        "nan": float("nan"),
        "flag": True,
        "none": None,
        "stat": GramStat.of(rng.standard_normal((4, 2))),
    }
    save_state(tmp_path / "s", state, meta={"partition": "p0"})
    back, meta = read_state(tmp_path / "s")
    assert meta == {"partition": "p0"}
    assert back["coef"].tobytes() == state["coef"].tobytes()
    assert back["blocks"][1]["r"].tobytes() == state["blocks"][1]["r"].tobytes()
    assert back["levels"] == state["levels"]
    assert back["scale"] == state["scale"]
    assert back["np_scalar"] == 0.30000000000000004
    assert back["big"] == 2**200 + 1
    assert np.isnan(back["nan"]) and back["flag"] is True and back["none"] is None
    assert back["stat"].digest() == state["stat"].digest()


def test_files_hold_no_pickle(tmp_path):
    save_object(tmp_path / "g", GramStat.of(np.eye(3)))
    saved = json.loads((tmp_path / "g.json").read_text())
    assert saved["body"]["value"]["__object__"] == "shardfit.engine._testing:GramStat"
    with np.load(tmp_path / "g.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["a0", "a1"]


def test_arrays_of_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"state.x: arrays of Python objects"):
        save_state(tmp_path / "o", {"x": np.array([{}, 1], dtype=object)})


def test_unsupported_values_are_refused():
    with pytest.raises(TypeError, match=r"state.when: cannot save a set"):
        encode_state({"when": {1, 2}})
    with pytest.raises(TypeError, match="state keys must be strings"):
        encode_state({"m": {1: 2}})


@dataclass
class Outsider:
    value: float

    def to_state(self) -> dict[str, Any]:
        return {"value": self.value}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Outsider:
        return cls(state["value"])


@dataclass
class Registered(Outsider):
    pass


def test_only_trusted_classes_are_loaded(tmp_path):
    save_object(tmp_path / "o", Outsider(1.5))
    with pytest.raises(ValueError, match=r"refusing to load class .*Outsider"):
        load_object(tmp_path / "o")
    register_class(Registered)
    save_object(tmp_path / "r", Registered(2.5))
    assert load_object(tmp_path / "r") == Registered(2.5)


def test_forged_class_path_is_refused():
    document = {"__object__": "os:system", "state": {}}
    with pytest.raises(ValueError, match="refusing to load class 'os:system'"):
        decode_state(document, {})


def test_incomplete_save_is_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_state(tmp_path / "missing")
