"""Fuzzing the checkpoint loader: every input loads correctly or raises CheckpointError, nothing else.

Inputs: a valid checkpoint cut short, with bytes flipped, inserted or appended; random bytes; archives
crafted to lie (pickles, headers claiming huge arrays, wrong dtypes); and metadata with any JSON in any
field. "Loads correctly" means: exactly the content that was saved.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microgradx import nn
from microgradx.checkpoint import load_checkpoint, save_checkpoint
from microgradx.errors import CheckpointError
from microgradx.optim import SGD, Adam
from microgradx.train import Dataset, Trainer, load_model

ARCH = {"kind": "mlp", "sizes": [784, 30, 1]}


def _model_and_optimizer():
    model = nn.MLP(784, [30, 1], rng=0)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = np.random.default_rng(0).random((4, 784), dtype=np.float32)
    model(x).sum().backward()
    opt.step()
    return model, opt


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


class Valid(tuple):
    """(bytes, model, optimizer) of a valid checkpoint, with a short repr for hypothesis' reports."""

    def __repr__(self) -> str:
        return "<a valid checkpoint>"


@pytest.fixture(scope="module")
def valid(folder) -> Valid:
    model, opt = _model_and_optimizer()
    history = [{"epoch": 1, "train_loss": 0.5, "valid_loss": 0.4, "valid_accuracy": 0.9, "seconds": 0.1}]
    extra = {"config": {"model": "mlp", "epochs": 3, "lr": 0.1, "batch_size": 256, "seed": 0},
             "data": {"source": "fuzz", "fingerprint": "0123"}}
    path = save_checkpoint(folder / "valid.npz", model, ARCH, optimizer=opt, epoch=1, history=history,
                           extra=extra)
    return Valid((path.read_bytes(), model, opt))


def _write(folder: Path, data: bytes) -> Path:
    path = folder / "case.npz"
    path.write_bytes(data)
    return path


def _load_or_checkpoint_error(path: Path, model: nn.Module, opt: SGD) -> None:
    """The property: a CheckpointError, or a checkpoint identical to what was saved."""
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        assert str(e).startswith(str(path)), f"the message must name the file: {e}"
        return
    assert ckpt.architecture == ARCH and ckpt.epoch == 1
    state = model.state_dict()
    assert set(ckpt.weights) == set(state)
    for name, arr in state.items():
        assert np.array_equal(ckpt.weights[name], arr)
    for a, b in zip(ckpt.optimizer["slots"]["momentum"], opt.state_dict()["slots"]["momentum"], strict=True):
        assert np.array_equal(a, b)


def test_round_trip(valid, folder):
    data, model, opt = valid
    ckpt = load_checkpoint(_write(folder, data))
    _load_or_checkpoint_error(folder / "case.npz", model, opt)
    assert ckpt.history[0]["valid_accuracy"] == 0.9
    assert ckpt.extra["data"]["source"] == "fuzz"
    restored, _ = load_model(folder / "case.npz")
    for (n1, p1), (n2, p2) in zip(restored.named_parameters(), model.named_parameters(), strict=True):
        assert n1 == n2 and np.array_equal(p1.data, p2.data) and p1.dtype == np.float32


@given(cut=st.integers(min_value=0))
def test_truncated_checkpoints_are_refused(valid, folder, cut):
    data, model, opt = valid
    path = _write(folder, data[: cut % len(data)])
    with pytest.raises(CheckpointError, match="case.npz"):
        load_checkpoint(path)


@given(st.data())
def test_flipped_bytes_load_correctly_or_are_refused(valid, folder, data):
    raw, model, opt = valid
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 8))):
        # Bias half the flips toward the zip's structures (headers and central directory at the end),
        # where a flip is most likely to confuse the reader rather than just fail a CRC.
        near_end = data.draw(st.booleans())
        lo = max(0, len(buf) - 600) if near_end else 0
        pos = data.draw(st.integers(lo, len(buf) - 1))
        buf[pos] ^= data.draw(st.integers(1, 255))
    _load_or_checkpoint_error(_write(folder, bytes(buf)), model, opt)


@given(st.data())
def test_inserted_and_appended_bytes_load_correctly_or_are_refused(valid, folder, data):
    raw, model, opt = valid
    pos = data.draw(st.integers(0, len(raw)))
    junk = data.draw(st.binary(min_size=1, max_size=64))
    _load_or_checkpoint_error(_write(folder, raw[:pos] + junk + raw[pos:]), model, opt)


@given(st.binary(max_size=2000))
def test_random_bytes_are_refused(folder, blob):
    with pytest.raises(CheckpointError):
        load_checkpoint(_write(folder, blob))


@given(st.binary(max_size=200))
def test_a_zip_prefix_with_random_rest_is_refused(folder, rest):
    with pytest.raises(CheckpointError):
        load_checkpoint(_write(folder, b"PK\x03\x04" + rest))


# --------------------------------------------------------------------------------------------------
# Archives that are well-formed zips but lie
# --------------------------------------------------------------------------------------------------

def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, arr, allow_pickle=allow_pickle)
    return out.getvalue()


def _meta(**changes) -> bytes:
    meta = {"format": "microgradx-checkpoint", "version": 1, "architecture": {"kind": "linear",
            "sizes": [784, 1]}, "epoch": 0, "history": [], "optimizer": None, "extra": {}}
    meta.update(changes)
    return _npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def _huge_header(shape: tuple[int, ...]) -> bytes:
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + b"\0" * 16


LINEAR = {"weights/weight.npy": _npy(np.zeros((784, 1), np.float32)),
          "weights/bias.npy": _npy(np.zeros(1, np.float32))}


@pytest.mark.parametrize("members, message", [
    ({"meta.npy": _meta(), **LINEAR}, None),     # the control: this one is valid
    (LINEAR, "without its metadata"),
    ({"meta.npy": _meta()}, "holds no weights"),
    ({"meta.npy": _meta(), "weights/weight.npy": _npy(np.array([object()], dtype=object), allow_pickle=True)},
     "holds only float arrays"),
    ({"meta.npy": _meta(), "weights/weight.npy": _huge_header((10**6, 10**6))}, "header claims"),
    ({"meta.npy": _meta(), "weights/weight.npy": _huge_header((-4, -1))}, "negative size"),
    ({"meta.npy": _meta(), "weights/weight.npy": _npy(np.zeros(3, np.int64))}, "holds only float arrays"),
    ({"meta.npy": _meta(), **LINEAR, "notes.txt": b"hi"}, "unexpected member"),
    ({"meta.npy": _meta(), **LINEAR, "other.npy": _npy(np.zeros(2))}, "unexpected array other"),
    ({"meta.npy": _meta(version=2), **LINEAR}, "newer than this"),
    ({"meta.npy": _meta(format="something-else"), **LINEAR}, "not a microgradx checkpoint"),
    ({"meta.npy": _npy(np.frombuffer(b"\xff\xfe{", dtype=np.uint8)), **LINEAR}, "not JSON"),
    ({"meta.npy": _npy(np.frombuffer(b"[" * 100000, dtype=np.uint8)), **LINEAR}, "not JSON"),
    ({"meta.npy": _meta(epoch=-1), **LINEAR}, "epoch"),
    # NaN and Infinity are not JSON, but Python's json reads them: an edited file, refused on loading.
    ({"meta.npy": _meta(history=[{"epoch": 1, "train_loss": float("nan")}]), **LINEAR}, "history"),
    ({"meta.npy": _meta(optimizer={"name": "SGD", "hyper": {"lr": float("inf")}, "steps": 0, "slots": {}}),
      **LINEAR}, "optimizer state"),
    ({"meta.npy": _meta(optimizer={"name": "SGD", "hyper": {}, "steps": 0, "slots": {"momentum": 2}}),
      **LINEAR}, "optimizer buffers"),
    ({"meta.npy": _meta(architecture={"kind": "mlp", "sizes": [784, 30, 1]}), **LINEAR}, "missing layers"),
    ({"meta.npy": _meta(architecture={"kind": "cnn"}), **LINEAR}, "unknown model architecture"),
    ({"meta.npy": _meta(), "weights/weight.npy": _npy(np.zeros((1, 784), np.float32)),
      "weights/bias.npy": _npy(np.zeros(1, np.float32))}, r"shape \(1, 784\), expected \(784, 1\)"),
])
def test_crafted_archives(folder, members, message):
    path = _write(folder, _zip(members))
    if message is None:
        model, _ = load_model(path)
        assert model.weight.shape == (784, 1)
        return
    with pytest.raises(CheckpointError, match=message):
        load_model(path)


def test_a_model_without_parameters_is_not_saved(folder):
    # load_checkpoint refuses a file without weights, so save_checkpoint must not write one.
    with pytest.raises(CheckpointError, match="no parameters"):
        save_checkpoint(folder / "empty.npz", nn.Sequential(nn.ReLU()), ARCH)
    assert not (folder / "empty.npz").exists()


def test_restore_changes_nothing_when_either_part_does_not_fit(valid, folder):
    data, model, opt = valid
    saved = load_checkpoint(_write(folder, data))
    other_model, other_opt = _model_and_optimizer()
    for p in other_model.parameters():
        p.data[...] = 7.0
    other_opt.steps = 5
    unchanged = lambda: other_opt.steps == 5 and all(np.all(p.data == 7) for p in other_model.parameters())  # noqa: E731
    wrong_names = replace(saved, weights={f"x{k}": v for k, v in saved.weights.items()})
    with pytest.raises(CheckpointError, match="missing"):
        wrong_names.restore(other_model, other_opt)          # the optimizer state fits, the weights do not
    assert unchanged()
    with pytest.raises(CheckpointError, match="not Adam"):
        saved.restore(other_model, Adam(other_model.parameters()))   # the weights fit, the optimizer not
    assert unchanged()


def test_missing_file_and_folder(folder):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(folder / "absent.npz")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(folder)


# --------------------------------------------------------------------------------------------------
# Any JSON in any metadata field, through everything that reads it
# --------------------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["format", "version", "architecture", "epoch", "history", "optimizer", "extra"]


class TinyDataset(Dataset):
    def __repr__(self) -> str:
        return "<tiny dataset>"


@pytest.fixture(scope="module")
def tiny_dataset() -> Dataset:
    x = np.zeros((4, 784), np.float32)
    y = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
    return TinyDataset(x, y, x, y, source="tiny", fingerprint="0123")


@given(st.data())
def test_any_metadata_loads_or_raises_checkpoint_error(valid, folder, tiny_dataset, data):
    raw, model, opt = valid
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        members = {name: z.read(name) for name in z.namelist()}
        meta = json.loads(np.lib.format.read_array(io.BytesIO(members["meta.npy"])).tobytes())
    for key in data.draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)):
        if data.draw(st.booleans()):
            meta.pop(key)
        else:
            meta[key] = data.draw(JSON)
    # Sometimes mutate inside the nested records rather than replace them whole.
    for key in ("extra", "optimizer", "architecture"):
        if isinstance(meta.get(key), dict) and meta[key] and data.draw(st.booleans()):
            inner = data.draw(st.sampled_from(sorted(meta[key])))
            meta[key][inner] = data.draw(JSON)
    members["meta.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    path = _write(folder, _zip(members))
    for reader in (load_checkpoint, load_model, lambda p: Trainer.resume(p, tiny_dataset)):
        try:
            reader(path)
        except CheckpointError as e:
            assert str(e).startswith(str(path))
