"""Checkpoints: a model's weights with everything needed to resume training, in one safetensors file.

safetensors is the file format PyTorch, JAX and the rest of the ecosystem keep weights in, read and
written here with the library of that name: a JSON header that names each array's dtype, shape and
place, then the arrays' bytes. Its reader loads no pickles (a checkpoint from an untrusted source cannot
run code) and checks the header against the file's size before it reads anything. A checkpoint holds:

- one array per parameter, named as ``Module.named_parameters()`` names it (``weight``, ``layers.0.bias``);
- the optimizer's buffers (momentum, Adam's moments), as ``optimizer/<slot>/<i>``;
- in the header's metadata, each as a JSON string: ``format`` and ``version``, the model's
  ``architecture`` (a small dict that says how to rebuild it), the ``epoch``, the training ``history``,
  the ``optimizer``'s hyperparameters and step count, and any JSON-able ``extra`` (a training run's
  configuration and its data's fingerprint); and ``sha256``, a digest of everything else, since the
  format itself has no checksum and a flipped bit would otherwise load as a wrong weight.

Every file is written atomically (:func:`atomic_write`): to a temporary file in the same folder, flushed
to disk, then renamed over the target. A run killed at any moment leaves either the previous complete
file or the new complete file, never half of one. Reading validates everything before any of it is used,
and every problem (missing, truncated, corrupt, from another model, a newer format or the old ``.npz``
one) raises :class:`~microgradx.errors.CheckpointError` whose message starts with the file's path.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
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
VERSION = 2           # 1 was an .npz archive, which this version no longer reads
PathLike = str | os.PathLike[str]

_OPTIMIZER = "optimizer/"
_DIGEST = "sha256"
_META_KEYS = ("format", "version", "architecture", "epoch", "history", "optimizer", "extra")
_ZIP_MAGIC = b"PK\x03\x04"


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
    from safetensors.numpy import save

    path = Path(path)
    arrays = {name: np.ascontiguousarray(p.data) for name, p in model.named_parameters()}
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
                arrays[f"{_OPTIMIZER}{slot}/{i}"] = np.ascontiguousarray(buf)
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
    metadata = {key: json.dumps(value, allow_nan=False, sort_keys=True) for key, value in meta.items()}
    metadata[_DIGEST] = _digest(metadata, arrays)
    with atomic_write(path) as f:
        f.write(save(arrays, metadata=metadata))
    return path


def _digest(metadata: Mapping[str, str], arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of the metadata (but the digest) and of every array's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for key in sorted(k for k in metadata if k != _DIGEST):
        h.update(json.dumps([key, metadata[key]]).encode())
    for name in sorted(arrays):
        arr = arrays[name]
        h.update(json.dumps([name, arr.dtype.str, list(arr.shape)]).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------

def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is missing or unreadable, is not a safetensors file, is truncated or
            corrupt, is an ``.npz`` checkpoint of an earlier microgradx, lacks the metadata, comes from a
            newer format version, or holds arrays that are not float numbers. The message starts with
            the path.
    """
    path = Path(path)
    metadata, arrays = _read_safetensors(path)
    if "format" not in metadata:
        raise CheckpointError(f"{path}: not a microgradx checkpoint (a safetensors file without its "
                              "metadata)")
    if metadata.get(_DIGEST) != _digest(metadata, arrays):
        raise CheckpointError(f"{path}: corrupt (its contents do not match the checksum saved with them)")
    meta = _parse_meta(path, metadata)

    weights: dict[str, np.ndarray] = {}
    buffers: dict[str, dict[int, np.ndarray]] = {}
    for key, arr in arrays.items():
        if arr.dtype.kind != "f":
            raise CheckpointError(f"{path}: array {key} holds {arr.dtype} data, expected floats")
        if not key.startswith(_OPTIMIZER):
            weights[key] = arr
        elif key.count("/") == 2 and key.split("/")[2].isdecimal():
            _, slot, index = key.split("/")
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


def _read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """The file's metadata and every array in it, by name; an .npz checkpoint is named as such."""
    from safetensors import SafetensorError, safe_open

    try:
        with open(path, "rb") as f:
            start = f.read(len(_ZIP_MAGIC))
        if start == _ZIP_MAGIC:
            raise CheckpointError(f"{path}: an .npz checkpoint of an earlier microgradx; checkpoints are "
                                  "safetensors files now and this one cannot be read: train afresh")
        with safe_open(path, framework="np") as f:
            metadata = f.metadata() or {}
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, expected a checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    # SafetensorError: a damaged header or a file of another kind; TypeError and ValueError: a dtype
    # numpy has no type for (bfloat16) or a shape it cannot make.
    except (SafetensorError, TypeError, ValueError, OverflowError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file (truncated, corrupt, or another "
                              f"kind of file: {e})") from None
    return metadata, arrays


def _parse_meta(path: Path, metadata: Mapping[str, str]) -> dict[str, Any]:
    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"{path}: bad metadata ({problem})")

    meta: dict[str, Any] = {}
    for key in _META_KEYS:
        if key not in metadata:
            raise bad(f"no {key}")
        try:
            meta[key] = json.loads(metadata[key])
        except (json.JSONDecodeError, RecursionError) as e:
            raise bad(f"{key} is not JSON: {e}") from None
    if meta["format"] != FORMAT:
        raise CheckpointError(f"{path}: not a microgradx checkpoint (format {meta['format']!r})")
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


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    # Finite too: json.loads reads NaN and Infinity, which save_checkpoint never writes.
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
