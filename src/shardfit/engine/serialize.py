"""Saving statistics without pickle: JSON for structure, ``.npz`` for arrays.

The protocol is two methods on a statistic class::

    def to_state(self) -> dict: ...          # JSON scalars, lists, dicts, numpy arrays
    @classmethod
    def from_state(cls, state: dict) -> Self: ...

States may nest: dicts (string keys) and lists of arrays, scalars, and other
objects with ``to_state`` (stored with their class). :func:`encode_state` splits a
state into a JSON document and a flat dict of arrays; :func:`decode_state` puts
them back. :func:`save_state`/:func:`load_state` write and read the pair of files
atomically, and :func:`save_object`/:func:`load_object` add the class.

Loading never unpickles (``allow_pickle=False``) and imports only classes from
``shardfit.*`` modules or registered with :func:`register_class`, so a checkpoint
directory from someone else cannot run code. Tuples come back as lists, NumPy
scalars as Python scalars (floats survive JSON bit for bit: Python writes the
shortest repr that round-trips).
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

__all__ = [
    "CorruptStateError",
    "Stateful",
    "class_path",
    "decode_state",
    "encode_state",
    "import_class",
    "load_object",
    "load_state",
    "read_state",
    "register_class",
    "save_object",
    "save_state",
]

FORMAT = "shardfit-state/1"
_ARRAY = "__array__"
_OBJECT = "__object__"
_TRUSTED_PREFIXES = ("shardfit.",)
_registered: set[str] = set()


class CorruptStateError(ValueError):
    """A saved state that cannot be read back: damaged files, or an untrusted class."""


@runtime_checkable
class Stateful(Protocol):
    """A value that converts to and from a state of JSON values and arrays."""

    def to_state(self) -> dict[str, Any]:  # pragma: no cover - protocol
        """The value as a dict of JSON scalars, lists, dicts and NumPy arrays."""
        ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:  # pragma: no cover - protocol
        """Rebuild the value from :meth:`to_state`'s output."""
        ...


def class_path(cls: type) -> str:
    """``"module:QualName"``, the form stored next to a state."""
    return f"{cls.__module__}:{cls.__qualname__}"


def register_class(cls: type) -> type:
    """Allow loading ``cls`` from saved states although it is outside ``shardfit``.

    Usable as a class decorator.
    """
    _registered.add(class_path(cls))
    return cls


def import_class(path: str) -> type:
    """Import the class named by :func:`class_path`, if it is trusted.

    Raises
    ------
    ValueError
        If the class is neither in a ``shardfit.*`` module nor registered.
    """
    module_name, _, qualname = path.partition(":")
    if not (module_name.startswith(_TRUSTED_PREFIXES) or path in _registered):
        raise ValueError(
            f"refusing to load class {path!r}: only shardfit classes and classes "
            "registered with shardfit.engine.serialize.register_class are loaded"
        )
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, type) or not hasattr(target, "from_state"):
        raise ValueError(f"{path!r} is not a class with from_state()")
    return target


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"{where}: arrays of Python objects cannot be saved safely")
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {_ARRAY: name}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or key in (_ARRAY, _OBJECT):
                raise TypeError(
                    f"{where}: state keys must be strings (not {_ARRAY!r}); got {key!r}"
                )
            out[key] = _encode(item, arrays, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]
    if callable(getattr(value, "to_state", None)):
        state = _encode(value.to_state(), arrays, where)
        return {_OBJECT: class_path(type(value)), "state": state}
    raise TypeError(f"{where}: cannot save a {type(value).__name__} in a state")


def encode_state(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Split a nested state into a JSON-ready document and its arrays.

    Parameters
    ----------
    state : dict
        Strings to JSON scalars, NumPy arrays, lists, dicts or ``Stateful`` objects.

    Returns
    -------
    document : dict
        ``state`` with each array replaced by ``{"__array__": name}`` and each
        object by ``{"__object__": "module:Class", "state": ...}``.
    arrays : dict of str to numpy.ndarray
    """
    arrays: dict[str, np.ndarray] = {}
    return _encode(state, arrays, "state"), arrays


def decode_state(document: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`encode_state` (classes pass through :func:`import_class`)."""
    if isinstance(document, dict):
        if _ARRAY in document:
            return arrays[document[_ARRAY]]
        if _OBJECT in document:
            cls = import_class(document[_OBJECT])
            return cls.from_state(decode_state(document["state"], arrays))  # type: ignore[attr-defined]
        return {key: decode_state(item, arrays) for key, item in document.items()}
    if isinstance(document, list):
        return [decode_state(item, arrays) for item in document]
    return document


def _atomic_write(path: Path, write: Any) -> None:
    # Write beside the target and rename: a reader sees the old file or the whole
    # new one, never half of it, even if this process is killed mid-write.
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_state(
    stem: str | Path, document: dict[str, Any], *, meta: dict[str, Any] | None = None
) -> None:
    """Write ``stem.json`` (and ``stem.npz`` when there are arrays), atomically.

    The JSON is written last, so its presence marks a complete save. ``meta`` (JSON
    values) is stored beside the state and read back by :func:`read_state`.
    """
    stem = Path(stem)
    body, arrays = encode_state(document)
    if arrays:
        npz = stem.with_suffix(".npz")
        _atomic_write(npz, lambda stream: np.savez(stream, allow_pickle=False, **arrays))
    envelope = {"format": FORMAT, "arrays": bool(arrays), "meta": meta or {}, "body": body}
    text = json.dumps(envelope)
    _atomic_write(stem.with_suffix(".json"), lambda stream: stream.write(text.encode()))


def read_state(stem: str | Path) -> tuple[Any, dict[str, Any]]:
    """Read what :func:`save_state` wrote: the state and its ``meta``.

    Raises
    ------
    FileNotFoundError
        If the save is incomplete (no ``stem.json``).
    CorruptStateError
        If the files are damaged (truncated, edited, or the ``.npz`` lost) or name a
        class that is not trusted; the message names the file and what is wrong.
    """
    stem = Path(stem)
    document = stem.with_suffix(".json")
    try:
        saved = json.loads(document.read_bytes())
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise CorruptStateError(f"{document} is damaged (not JSON: {error})") from error
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        found = saved.get("format") if isinstance(saved, dict) else type(saved).__name__
        raise CorruptStateError(f"{document} is not a shardfit state ({found!r})")
    meta = saved.get("meta")
    if not isinstance(meta, dict) or "body" not in saved:
        raise CorruptStateError(f"{document} is damaged (no 'meta' or 'body')")
    arrays: dict[str, np.ndarray] = {}
    if saved.get("arrays"):
        arrays = _read_arrays(stem.with_suffix(".npz"))
    try:
        return decode_state(saved["body"], arrays), meta
    except Exception as error:
        # A state that does not match its arrays or its class (edited, or files of
        # two different saves side by side), or a class refused as untrusted.
        raise CorruptStateError(f"{document} cannot be loaded: {error!r}") from error


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file (never unpickling), or :class:`CorruptStateError`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError as error:
        raise CorruptStateError(f"{path} is missing (its .json names arrays)") from error
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        # Truncated or edited files; ValueError also for object arrays refused
        # because they would need unpickling.
        raise CorruptStateError(f"{path} is damaged ({error})") from error


def load_state(stem: str | Path) -> Any:
    """Read the state :func:`save_state` wrote."""
    return read_state(stem)[0]


def save_object(stem: str | Path, value: Any, *, meta: dict[str, Any] | None = None) -> None:
    """Save a ``Stateful`` object (its class and its state) under ``stem``.

    Raises
    ------
    TypeError
        If ``value`` has no ``to_state`` method.
    """
    if not callable(getattr(value, "to_state", None)):
        raise TypeError(
            f"{class_path(type(value))} has no to_state(): statistics saved by shardfit "
            "(checkpoints) must implement to_state() and from_state(); see "
            "shardfit.engine.serialize"
        )
    save_state(stem, {"value": value}, meta=meta)


def load_object(stem: str | Path) -> Any:
    """Load what :func:`save_object` saved (trusted classes only)."""
    return load_state(stem)["value"]
