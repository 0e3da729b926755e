"""Fuzzing the checkpoint loader: every input loads correctly or raises CheckpointError, nothing else.

Inputs: a valid checkpoint cut short, with bytes flipped, inserted or appended; random bytes; files
crafted to lie (headers claiming huge arrays, dtypes numpy lacks, wrong dtypes, a wrong checksum); the
old .npz format; and metadata with any JSON in any field. "Loads correctly" means: exactly the content
that was saved.
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save

from microgradx import nn
from microgradx.checkpoint import _digest, load_checkpoint, save_checkpoint
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
    path = save_checkpoint(folder / "valid.safetensors", model, ARCH, optimizer=opt, epoch=1, history=history,
                           extra=extra)
    return Valid((path.read_bytes(), model, opt))


def _write(folder: Path, data: bytes) -> Path:
    path = folder / "case.safetensors"
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
    _load_or_checkpoint_error(folder / "case.safetensors", model, opt)
    assert ckpt.history[0]["valid_accuracy"] == 0.9
    assert ckpt.extra["data"]["source"] == "fuzz"
    restored, _ = load_model(folder / "case.safetensors")
    for (n1, p1), (n2, p2) in zip(restored.named_parameters(), model.named_parameters(), strict=True):
        assert n1 == n2 and np.array_equal(p1.data, p2.data) and p1.dtype == np.float32


@given(cut=st.integers(min_value=0))
def test_truncated_checkpoints_are_refused(valid, folder, cut):
    data, model, opt = valid
    path = _write(folder, data[: cut % len(data)])
    with pytest.raises(CheckpointError, match="case.safetensors"):
        load_checkpoint(path)


@given(st.data())
def test_flipped_bytes_load_correctly_or_are_refused(valid, folder, data):
    raw, model, opt = valid
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 8))):
        # Bias half the flips toward the header (its length and JSON come first), where a flip is most
        # likely to confuse the reader rather than just fail the checksum.
        in_header = data.draw(st.booleans())
        pos = data.draw(st.integers(0, min(len(buf), 1200) - 1 if in_header else len(buf) - 1))
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
def test_a_header_length_with_random_rest_is_refused(folder, rest):
    with pytest.raises(CheckpointError):
        load_checkpoint(_write(folder, struct.pack("<Q", len(rest)) + rest))


# --------------------------------------------------------------------------------------------------
# Files that are well-formed safetensors but lie
# --------------------------------------------------------------------------------------------------

META = {"format": "microgradx-checkpoint", "version": 2,
        "architecture": {"kind": "linear", "sizes": [784, 1]}, "epoch": 0, "history": [], "optimizer": None,
        "extra": {}}
LINEAR = {"weight": np.zeros((784, 1), np.float32), "bias": np.zeros(1, np.float32)}


def _file(arrays: dict[str, np.ndarray], meta: dict | None = None, *, raw: dict[str, str] | None = None,
          digest: str | None = None) -> bytes:
    """A safetensors file of ``arrays`` with microgradx's metadata (each key JSON), checksummed right
    unless ``digest`` is given; ``raw`` adds metadata strings as they are."""
    metadata = {key: json.dumps(value) for key, value in (META if meta is None else meta).items()}
    metadata.update(raw or {})
    metadata["sha256"] = digest or _digest(metadata, arrays)
    return save(arrays, metadata=metadata)


def _header_only(header: dict, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize("content, message", [
    (_file(LINEAR), None),     # the control: this one is valid
    (save(LINEAR), "without its metadata"),
    (_file({}), "holds no weights"),
    (_file({"weight": np.zeros(3, np.int64)}), "holds int64 data, expected floats"),
    (_file({**LINEAR, "optimizer/x": np.zeros(2)}), "unexpected array optimizer/x"),
    (_file(LINEAR, digest="0" * 64), "do not match the checksum"),
    (_file(LINEAR, {**META, "version": 3}), "newer than this"),
    (_file(LINEAR, {**META, "format": "something-else"}), "not a microgradx checkpoint"),
    (_file(LINEAR, raw={"history": "{not json"}), "history is not JSON"),
    (_file(LINEAR, raw={"extra": "[" * 100000}), "extra is not JSON"),
    (_file(LINEAR, {k: v for k, v in META.items() if k != "epoch"}), "no epoch"),
    (_file(LINEAR, {**META, "epoch": -1}), "epoch"),
    # NaN and Infinity are not JSON, but Python's json reads them: an edited file, refused on loading.
    (_file(LINEAR, {**META, "history": [{"epoch": 1, "train_loss": float("nan")}]}), "history"),
    (_file(LINEAR, {**META, "optimizer": {"name": "SGD", "hyper": {"lr": float("inf")}, "steps": 0,
                                          "slots": {}}}), "optimizer state"),
    (_file(LINEAR, {**META, "optimizer": {"name": "SGD", "hyper": {}, "steps": 0, "slots": {"momentum": 2}}}),
     "optimizer buffers"),
    (_file(LINEAR, {**META, "architecture": {"kind": "mlp", "sizes": [784, 30, 1]}}), "missing layers"),
    (_file(LINEAR, {**META, "architecture": {"kind": "cnn"}}), "unknown model architecture"),
    (_file({"weight": np.zeros((1, 784), np.float32), "bias": np.zeros(1, np.float32)}),
     r"shape \(1, 784\), expected \(784, 1\)"),
    # A header claiming a terabyte the file does not hold, and a dtype numpy has no type for.
    (_header_only({"weight": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}}),
     "not a readable safetensors file"),
    (_header_only({"weight": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
     "not a readable safetensors file"),
])
def test_crafted_files(folder, content, message):
    path = _write(folder, content)
    if message is None:
        model, _ = load_model(path)
        assert model.weight.shape == (784, 1)
        return
    with pytest.raises(CheckpointError, match=message):
        load_model(path)


def test_an_npz_checkpoint_of_an_earlier_version_gets_a_clear_message(folder):
    path = folder / "checkpoint.npz"
    np.savez(path, meta=np.zeros(3, np.uint8))
    with pytest.raises(CheckpointError,
                       match=r"checkpoint\.npz: an \.npz checkpoint of an earlier microgradx;.*afresh"):
        load_checkpoint(path)


def test_a_model_without_parameters_is_not_saved(folder):
    # load_checkpoint refuses a file without weights, so save_checkpoint must not write one.
    with pytest.raises(CheckpointError, match="no parameters"):
        save_checkpoint(folder / "empty.safetensors", nn.Sequential(nn.ReLU()), ARCH)
    assert not (folder / "empty.safetensors").exists()


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
        load_checkpoint(folder / "absent.safetensors")
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
    source = _write(folder, raw)
    with safe_open(source, framework="np") as f:
        meta = {key: json.loads(value) for key, value in f.metadata().items() if key != "sha256"}
        arrays = {name: f.get_tensor(name) for name in f.keys()}
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
    path = _write(folder, _file(arrays, meta))
    for reader in (load_checkpoint, load_model, lambda p: Trainer.resume(p, tiny_dataset)):
        try:
            reader(path)
        except CheckpointError as e:
            assert str(e).startswith(str(path))


def test_an_architecture_kind_that_is_not_a_string_is_a_checkpoint_error(valid, folder, tiny_dataset):
    # Found by the fuzz test above: a list as the kind was looked up in the table of models, a TypeError.
    with safe_open(_write(folder, valid[0]), framework="np") as f:
        meta = {key: json.loads(value) for key, value in f.metadata().items() if key != "sha256"}
        arrays = {name: f.get_tensor(name) for name in f.keys()}
    meta["architecture"]["kind"] = []
    path = _write(folder, _file(arrays, meta))
    for reader in (load_model, lambda p: Trainer.resume(p, tiny_dataset)):
        with pytest.raises(CheckpointError, match="unknown model architecture"):
            reader(path)
