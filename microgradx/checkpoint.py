"""Checkpoints: a model's weights with everything needed to resume training, in one ``.npz`` file.

The format is numpy's ``.npz`` (a zip of ``.npy`` arrays, uncompressed as ``np.savez`` writes it):

- ``meta.npy``: UTF-8 JSON as a uint8 array: the format name and version, the model's architecture
  (a small dict that says how to rebuild it), the epoch, the training history, the optimizer's
  hyperparameters and step count, and any JSON-able ``extra`` (a training run's configuration);
- ``weights/<name>.npy``: one array per parameter, named as ``Module.named_parameters()`` names it;
- ``optimizer/<slot>/<i>.npy``: the optimizer's buffers (momentum, Adam's moments), one per parameter.

No pickles anywhere, so a checkpoint from an untrusted source cannot run code when loaded.

Every file is written atomically (:func:`atomic_write`): to a temporary file in the same folder, flushed
to disk, then renamed over the target. A run killed at any moment leaves either the previous complete
file or the new complete file, never half of one. Reading validates everything before any of it is used,
and every problem (missing, truncated, not an npz, from another model or a newer format) raises
:class:`~microgradx.errors.CheckpointError` whose message starts with the file's path.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write
from .errors import CheckpointError
from .nn import Module
from .optim import Optimizer

__all__ = ["Checkpoint", "FORMAT", "VERSION", "atomic_write", "load_checkpoint", "save_checkpoint"]

FORMAT = "microgradx-checkpoint"
VERSION = 1
PathLike = str | os.PathLike[str]

_META = "meta"
_WEIGHTS = "weights/"
_OPTIMIZER = "optimizer/"
# Deflate cannot shrink data by more than about 1032:1, so a member that claims to unpack to more than
# this multiple of its stored size is lying; refusing it keeps a crafted file from asking for huge memory.
_MAX_INFLATION = 1100
_META_KEYS = ("format", "version", "architecture", "epoch", "history", "optimizer", "extra")


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read: validated, but not yet applied to any model."""

    path: Path
    architecture: dict[str, Any]
    weights: dict[str, np.ndarray]
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    optimizer: dict[str, Any] | None = None   # in the form of Optimizer.state_dict()
    extra: dict[str, Any] = field(default_factory=dict)

    def restore(self, model: Module, optimizer: Optimizer | None = None) -> None:
        """Copy the weights (and the optimizer state, when given) into ``model`` and ``optimizer``.

        All or nothing: when either does not fit, both are left as they were.

        Raises:
            CheckpointError: the weights' names or shapes do not fit ``model``, or the optimizer state
                does not fit ``optimizer`` (another type, other settings, other shapes).
        """
        previous = None
        if optimizer is not None:
            if self.optimizer is None:
                raise CheckpointError(f"{self.path}: holds no optimizer state to resume from")
            previous = optimizer.state_dict()
            try:
                optimizer.load_state_dict(self.optimizer)
            except ValueError as e:
                raise CheckpointError(f"{self.path}: {e}") from None
        try:
            model.load_state_dict(self.weights)     # checks everything before it changes anything
        except CheckpointError as e:
            if previous is not None:
                optimizer.load_state_dict(previous)
            raise CheckpointError(f"{self.path}: {e}") from None


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------

def save_checkpoint(path: PathLike, model: Module, architecture: Mapping[str, Any], *,
                    optimizer: Optimizer | None = None, epoch: int = 0,
                    history: Sequence[Mapping[str, float]] = (),
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s weights, ``optimizer``'s state and the rest atomically to ``path``.

    ``architecture`` and ``extra`` must be JSON-able; they come back unchanged from
    :func:`load_checkpoint`. Returns the path written.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    for name, p in model.named_parameters():
        arrays[_WEIGHTS + name] = np.asarray(p.data)
    if not arrays:      # load_checkpoint would refuse the file: do not write it
        raise CheckpointError(f"{path}: {type(model).__name__} has no parameters; a checkpoint needs weights")
    opt_meta = None
    if optimizer is not None:
        state = optimizer.state_dict()
        opt_meta = {
            "name": state["name"],
            "hyper": state["hyper"],
            "steps": state["steps"],
            "slots": {slot: len(buffers) for slot, buffers in state["slots"].items()},
        }
        for slot, buffers in state["slots"].items():
            for i, buf in enumerate(buffers):
                arrays[f"{_OPTIMIZER}{slot}/{i}"] = buf
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": dict(architecture),
        "epoch": int(epoch),
        "history": [dict(h) for h in history],
        "optimizer": opt_meta,
        "extra": dict(extra or {}),
    }
    # allow_nan=False: NaN is not JSON, and a file other tools cannot parse is not worth writing.
    text = json.dumps(meta, allow_nan=False, sort_keys=True)
    arrays[_META] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------

def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is missing or unreadable, is not an npz archive, is truncated or
            corrupt, lacks the metadata, comes from a newer format version, or holds arrays that are not
            float numbers where weights are expected. The message starts with the path.
    """
    path = Path(path)
    arrays = _read_npz(path)
    if _META not in arrays:
        raise CheckpointError(f"{path}: not a microgradx checkpoint (an npz archive without its metadata)")
    meta = _parse_meta(path, arrays.pop(_META))

    weights: dict[str, np.ndarray] = {}
    buffers: dict[str, dict[int, np.ndarray]] = {}
    for key, arr in arrays.items():
        if arr.dtype.kind != "f":
            raise CheckpointError(f"{path}: array {key} holds {arr.dtype} data, expected floats")
        if key.startswith(_WEIGHTS) and len(key) > len(_WEIGHTS):
            weights[key[len(_WEIGHTS):]] = arr
        elif key.startswith(_OPTIMIZER) and key.count("/") == 2:
            _, slot, index = key.split("/")
            if not index.isdecimal():
                raise CheckpointError(f"{path}: unexpected array {key}")
            buffers.setdefault(slot, {})[int(index)] = arr
        else:
            raise CheckpointError(f"{path}: unexpected array {key}")
    if not weights:
        raise CheckpointError(f"{path}: holds no weights")

    optimizer = None
    opt_meta = meta["optimizer"]
    if opt_meta is not None:
        slots = {}
        if set(buffers) != set(opt_meta["slots"]):
            raise CheckpointError(f"{path}: optimizer buffers {sorted(buffers)} do not match its "
                                  f"metadata {sorted(opt_meta['slots'])}")
        for slot, count in opt_meta["slots"].items():
            if sorted(buffers[slot]) != list(range(count)):
                raise CheckpointError(f"{path}: optimizer buffers {slot} are incomplete")
            slots[slot] = [buffers[slot][i] for i in range(count)]
        optimizer = {"name": opt_meta["name"], "hyper": opt_meta["hyper"], "steps": opt_meta["steps"],
                     "slots": slots}
    elif buffers:
        raise CheckpointError(f"{path}: optimizer buffers without optimizer metadata")

    return Checkpoint(path=path, architecture=meta["architecture"], weights=weights, epoch=meta["epoch"],
                      history=meta["history"], optimizer=optimizer, extra=meta["extra"])


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array in the archive, by name (without ``.npy``), read with bounded memory and no pickles."""
    # What zipfile, zlib and numpy's .npy parser raise on damaged input, depending on where the damage
    # is. NotImplementedError: an unsupported compression method; RuntimeError: an "encrypted" member.
    damaged = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, struct.error, NotImplementedError,
               RuntimeError, OverflowError)
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            arrays = {}
            for info in members:
                if not info.filename.endswith(".npy"):
                    raise CheckpointError(f"{path}: unexpected member {info.filename!r} in the archive")
                name = info.filename[:-4]
                if name in arrays:
                    raise CheckpointError(f"{path}: member {info.filename!r} appears twice")
                if info.compress_size > size or info.file_size > _MAX_INFLATION * info.compress_size + 1024:
                    raise CheckpointError(f"{path}: corrupt archive (member {info.filename!r} claims "
                                          f"{info.file_size} bytes)")
                # read() checks the member's CRC, so damaged data is caught here rather than used.
                arrays[name] = _parse_npy(path, info.filename, archive.read(info))
            return arrays
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, expected a checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"{path}: not a readable npz archive (truncated, corrupt, or another kind of "
                              f"file: {e})") from None
    except damaged as e:
        raise CheckpointError(f"{path}: truncated or corrupt ({type(e).__name__}: {e})") from None


def _parse_npy(path: Path, member: str, raw: bytes) -> np.ndarray:
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise CheckpointError(f"{path}: {member}: unsupported .npy version {version}")
    if dtype.hasobject or dtype.kind not in "fu" or dtype.fields is not None:
        raise CheckpointError(f"{path}: {member}: holds {dtype} data; a checkpoint holds only float arrays "
                              "(and its metadata as bytes)")
    if any(n < 0 for n in shape):
        raise CheckpointError(f"{path}: {member}: negative size in shape {shape}")
    # Checked before numpy allocates anything: the header's shape must match the bytes really present.
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(raw) - stream.tell():
        raise CheckpointError(f"{path}: {member}: header claims {shape} of {dtype} ({expected} bytes) "
                              f"but {len(raw) - stream.tell()} bytes follow")
    flat = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=stream.tell())
    return (flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)).copy()


def _parse_meta(path: Path, raw: np.ndarray) -> dict[str, Any]:
    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"{path}: bad metadata ({problem})")

    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise bad("not a byte string")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise bad(f"not JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a microgradx checkpoint (format {_get(meta, 'format')!r})")
    missing = [key for key in _META_KEYS if key not in meta]
    if missing:
        raise bad(f"no {', '.join(missing)}")
    version = meta["version"]
    if not _is_int(version) or version < 1:
        raise bad(f"version {version!r}")
    if version > VERSION:
        raise CheckpointError(f"{path}: written in checkpoint format version {version}, newer than this "
                              f"microgradx reads ({VERSION}); upgrade microgradx")
    if not isinstance(meta.get("architecture"), dict):
        raise bad("no architecture")
    if not _is_int(meta.get("epoch")) or meta["epoch"] < 0:
        raise bad(f"epoch {meta.get('epoch')!r}")
    history = meta.get("history")
    if not isinstance(history, list) or not all(
        isinstance(h, dict) and all(_is_number(v) for v in h.values()) for h in history
    ):
        raise bad("history is not a list of records of numbers")
    if not isinstance(meta.get("extra"), dict):
        raise bad("extra is not a mapping")
    opt = meta["optimizer"]
    if opt is not None:
        ok = (
            isinstance(opt, dict)
            and isinstance(opt.get("name"), str)
            and isinstance(opt.get("hyper"), dict)
            and all(_is_number(v) for v in opt["hyper"].values())
            and _is_int(opt.get("steps"))
            and opt["steps"] >= 0
            and isinstance(opt.get("slots"), dict)
            and all(_is_int(n) and n >= 0 for n in opt["slots"].values())
        )
        if not ok:
            raise bad("optimizer state")
    return meta


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    # Finite too: json.loads reads NaN and Infinity, which save_checkpoint never writes.
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
