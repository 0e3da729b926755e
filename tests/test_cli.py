"""The command line end to end, through main([...]) and, for real signals, a subprocess."""

from __future__ import annotations

import gzip
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from microgradx import checkpoint as ckpt
from microgradx.cli import main
from microgradx.data import load_mnist_3_7
from microgradx.errors import CheckpointError
from microgradx.train import CHECKPOINT_NAME as CKPT

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _weights(path: Path) -> dict[str, bytes]:
    return {k: v.tobytes() for k, v in ckpt.load_checkpoint(path).weights.items()}


def _table(out: str) -> list[str]:
    """The header and rows of the training table."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("epoch"))
    return [lines[start]] + [line for line in lines[start + 1:] if re.match(r"\s+\d+\s", line)]


@pytest.fixture(scope="module")
def bundled():
    return load_mnist_3_7()


# --------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------


def test_train_prints_the_baseline_and_the_table_and_writes_its_files(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", "--epochs", "3", "--out", out_dir)
    assert code == 0, err
    assert "data: bundled sample (800 train, 200 valid)" in out
    assert re.search(r"baseline \(pixel similarity.*\): valid accuracy 0\.\d{4}", out)
    table = _table(out)
    assert table[0].split() == ["epoch", "train", "loss", "valid", "loss", "valid", "acc"]
    assert [row.split()[0] for row in table[1:]] == ["1", "2", "3"]
    assert sorted(p.name for p in out_dir.iterdir()) == [CKPT, "curves.png", "metrics.json"]
    assert (out_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    import json
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["config"] == {"model": "linear", "epochs": 3, "lr": 1.0, "batch_size": 256, "seed": 0,
                                 "compile": True, "schedule": "constant"}
    assert metrics["final"]["valid_accuracy"] == pytest.approx(float(table[-1].split()[-1]), abs=5e-5)
    assert ckpt.load_checkpoint(out_dir / CKPT).epoch == 3
    # Training afresh into the same folder says that it replaces the earlier run's checkpoint.
    code, _, err = run(capsys, "train", "--epochs", "1", "--out", out_dir)
    assert code == 0 and "starting afresh" in err
    assert ckpt.load_checkpoint(out_dir / CKPT).epoch == 1


def test_the_same_seed_prints_the_same_figures_and_writes_the_same_weights(tmp_path, capsys):
    outs = []
    for name in ("a", "b"):
        code, out, _ = run(capsys, "train", "--model", "mlp", "--epochs", "3", "--seed", "7",
                           "--out", tmp_path / name)
        assert code == 0
        outs.append(out.replace(str(tmp_path / name), "OUT"))
    assert outs[0] == outs[1]
    assert _weights(tmp_path / "a" / CKPT) == _weights(tmp_path / "b" / CKPT)
    code, out, _ = run(capsys, "train", "--model", "mlp", "--epochs", "3", "--seed", "8",
                       "--out", tmp_path / "c")
    assert _table(out) != _table(outs[0])


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path, capsys):
    code, straight, _ = run(capsys, "train", "--epochs", "4", "--seed", "2", "--out", tmp_path / "straight")
    assert code == 0
    assert run(capsys, "train", "--epochs", "2", "--seed", "2", "--out", tmp_path / "parts")[0] == 0
    code, resumed, err = run(capsys, "train", "--resume", "--epochs", "4", "--out", tmp_path / "parts")
    assert code == 0, err
    assert "resuming" in resumed and "at epoch 2 of 4" in resumed
    assert _table(resumed) == _table(straight)         # the full table, the first two rows included
    assert _weights(tmp_path / "parts" / CKPT) == \
        _weights(tmp_path / "straight" / CKPT)


def test_resume_refuses_settings_that_differ_from_the_checkpoint(tmp_path, capsys):
    assert run(capsys, "train", "--epochs", "1", "--out", tmp_path)[0] == 0
    before = (tmp_path / CKPT).read_bytes()
    code, out, err = run(capsys, "train", "--resume", "--lr", "0.5", "--out", tmp_path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "trained with --lr 1.0, not 0.5" in err
    code, _, err = run(capsys, "train", "--resume", "--model", "mlp", "--out", tmp_path)
    assert code == 2 and "--model linear, not mlp" in err
    assert (tmp_path / CKPT).read_bytes() == before


def test_schedule_is_an_option_kept_by_the_checkpoint(tmp_path, capsys):
    code, out, err = run(capsys, "train", "--epochs", "2", "--schedule", "linear", "--out", tmp_path)
    assert code == 0, err
    assert "SGD lr 1 (linear to 0), batch size 256" in out
    code, plain, _ = run(capsys, "train", "--epochs", "2", "--out", tmp_path / "plain")
    assert code == 0 and "SGD lr 1, batch size 256" in plain and _table(plain) != _table(out)
    code, out, err = run(capsys, "train", "--resume", "--schedule", "cosine", "--out", tmp_path)
    assert code == 2 and "trained with --schedule linear, not cosine" in err
    code, out, err = run(capsys, "train", "--schedule", "step", "--out", tmp_path)
    assert code == 2 and "invalid choice: 'step'" in err


def test_a_diverging_run_stops_with_one_line_and_keeps_its_last_good_checkpoint(tmp_path, capsys,
                                                                               monkeypatch):
    code, _, err = run(capsys, "train", "--model", "mlp", "--lr", "1e30", "--out", tmp_path / "new")
    assert code == 2 and err.count("\n") == 1
    assert "training diverged in epoch 1" in err and "lr 1e+30 is probably too large" in err
    assert not (tmp_path / "new").exists()       # nothing was saved, so not even the folder is left

    assert run(capsys, "train", "--model", "mlp", "--epochs", "2", "--out", tmp_path / "run")[0] == 0
    from microgradx.train import Trainer
    # Continue the good run with weights that will overflow: the epoch that diverges is not saved.
    original = Trainer.train_epoch

    def explode(self, on_batch=None):
        for p in self.model.parameters():
            p.data *= 1e30
        return original(self, on_batch)

    monkeypatch.setattr(Trainer, "train_epoch", explode)
    code, _, err = run(capsys, "train", "--resume", "--epochs", "4", "--out", tmp_path / "run")
    assert code == 2 and "diverged in epoch 3" in err
    assert ckpt.load_checkpoint(tmp_path / "run" / CKPT).epoch == 2


def test_resume_without_a_checkpoint(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--resume", "--out", tmp_path / "none")
    assert code == 2 and "no checkpoint to resume" in err and err.count("\n") == 1
    assert not (tmp_path / "none").exists()


def test_ctrl_c_between_epochs_names_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    from microgradx.train import Trainer

    original = Trainer.train_epoch

    def interrupt_third(self, on_batch=None):
        if self.epoch == 2:
            raise KeyboardInterrupt
        return original(self, on_batch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupt_third)
    code, _, err = run(capsys, "train", "--epochs", "5", "--out", tmp_path)
    assert code == 130
    assert f"interrupted; last complete checkpoint: {tmp_path / 'checkpoint.safetensors'} (epoch 2)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [CKPT]   # no plot, no temp files
    assert ckpt.load_checkpoint(tmp_path / CKPT).epoch == 2


def _start_training(out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "microgradx", "train", "--epochs", "100000", "--quiet",
                             "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _wait_for_epoch(proc: subprocess.Popen, path: Path, epoch: int) -> int:
    deadline = time.monotonic() + 120     # "does not hang": generous, not a speed requirement
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        if path.exists():
            done = ckpt.load_checkpoint(path).epoch   # must always load: every write is atomic
            if done >= epoch:
                return done
        time.sleep(0.05)
    proc.kill()
    pytest.fail("training did not reach the epoch in time")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_real_interruption_leaves_a_checkpoint_that_resumes_exactly(tmp_path, capsys, sig):
    out = tmp_path / "run"
    proc = _start_training(out)
    _wait_for_epoch(proc, out / CKPT, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert re.search(rf"interrupted; last complete checkpoint: .*{CKPT} \(epoch \d+\)", err), err
        assert "Traceback" not in err
        assert not list(out.glob("*.tmp")), "a temporary file was left behind"
    done = ckpt.load_checkpoint(out / CKPT).epoch
    assert done >= 2

    (out / f".{CKPT}.abc123.tmp").write_bytes(b"half a checkpoint")   # as kill -9 mid-write leaves
    code, _, err = run(capsys, "train", "--resume", "--epochs", done + 2, "--out", out)
    assert code == 0, err
    assert not list(out.glob("*.tmp"))
    assert run(capsys, "train", "--epochs", done + 2, "--out", tmp_path / "straight")[0] == 0
    assert _weights(out / CKPT) == _weights(tmp_path / "straight" / CKPT)


# --------------------------------------------------------------------------------------------------
# Bad input: one line, exit code 2, nothing written
# --------------------------------------------------------------------------------------------------


def _png_folder(root: Path, bundled, n: int = 3) -> Path:
    for split, images, labels in (("train", bundled.train_images, bundled.train_labels),
                                  ("valid", bundled.valid_images, bundled.valid_labels)):
        for digit in (3, 7):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for i, img in enumerate(images[labels == digit][:n]):
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def _idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims)
    path.write_bytes(gzip.compress(header + payload))


def _idx_folder(root: Path, bundled, labels_override: bytes | None = None, cut: int = 0) -> Path:
    root.mkdir()
    for split in ("train", "valid"):
        images, labels = getattr(bundled, f"{split}_images"), getattr(bundled, f"{split}_labels")
        rows = np.r_[np.flatnonzero(labels == 3)[:5], np.flatnonzero(labels == 7)[:5]]
        images, labels = images[rows], labels[rows]
        pixels = images.tobytes()
        _idx(root / f"{split}-images-idx3-ubyte.gz", 2051, images.shape, pixels[: len(pixels) - cut])
        _idx(root / f"{split}-labels-idx1-ubyte.gz", 2049, labels.shape, labels_override or labels.tobytes())
    return root


def _bad_png(root: Path, bundled) -> Path:
    _png_folder(root, bundled)
    Image.fromarray(np.zeros((27, 28), np.uint8)).save(root / "valid" / "7" / "1.png")
    return root / "valid" / "7" / "1.png"


def _rgb_png(root: Path, bundled) -> Path:
    _png_folder(root, bundled)
    Image.fromarray(bundled.train_images[0]).convert("RGB").save(root / "train" / "3" / "0.png")
    return root / "train" / "3" / "0.png"


def _no_sevens(root: Path, bundled) -> Path:
    _png_folder(root, bundled)
    for png in (root / "train" / "7").iterdir():
        png.unlink()
    (root / "train" / "7").rmdir()
    return root / "train" / "7"


BAD_DATA = {
    "missing folder": (lambda root, b: root, "no such folder"),
    "folder without 7s": (_no_sevens, "no such folder"),
    "PNG not 28x28": (_bad_png, "28x27 pixels, expected 28x28"),
    "PNG not grayscale": (_rgb_png, "mode RGB"),
    "truncated IDX": (lambda root, b: _idx_folder(root, b, cut=100) / "train-images-idx3-ubyte.gz",
                      "truncated"),
    "labels other than 3 and 7": (lambda root, b: _idx_folder(root, b, labels_override=bytes([3, 5] * 5))
                                  / "train-labels-idx1-ubyte.gz", "label 5"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_gives_one_line_naming_the_file_and_exit_code_2(tmp_path, capsys, bundled, case):
    make, problem = BAD_DATA[case]
    culprit = make(tmp_path / "data", bundled)
    for command in (["train"], ["lr-find"]):
        code, out, err = run(capsys, *command, "--data", tmp_path / "data", "--out", tmp_path / "out")
        assert code == 2
        assert err.startswith("microgradx: error: ") and err.count("\n") == 1, err
        assert str(culprit) in err and problem in err
        assert "Traceback" not in err and out == ""
        assert not (tmp_path / "out").exists()      # no output folder, so certainly no partial files


def test_the_small_png_and_idx_folders_do_load(tmp_path, capsys, bundled):
    # The control for the cases above: the same folders, undamaged, train fine.
    for make in (_png_folder, _idx_folder):
        data = make(tmp_path / make.__name__, bundled)
        code, out, err = run(capsys, "train", "--epochs", "1", "--data", data, "--out", tmp_path / "o")
        assert code == 0, err
        assert str(data) in out


def test_out_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "train", "--out", tmp_path / "file")
    assert code == 2 and "is not a folder" in err and err.count("\n") == 1


@pytest.mark.parametrize("command", [["train"], ["lr-find", "--steps", "1"], ["graph"]])
def test_an_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    # Root may write anywhere but a read-only mount, so the refusal is simulated where it is asked.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    code, out, err = run(capsys, *command, "--out", locked / "run")
    assert code == 2 and err.count("\n") == 1, err
    assert f"{locked / 'run'}: cannot write there" in err
    assert out == "" and not (locked / "run").exists()      # refused before loading data or training


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("command", [["train"], ["lr-find", "--steps", "1"], ["graph"]])
def test_an_out_in_proc_is_refused_before_any_work_even_for_root(capsys, command):
    # /proc passes os.access for root but takes no new files: the check must try to create one.
    code, out, err = run(capsys, *command, "--out", "/proc/x")
    assert code == 2 and err.count("\n") == 1, err
    assert "/proc/x: cannot write there" in err and out == ""


def test_out_expands_the_home_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    code, _, err = run(capsys, "lr-find", "--steps", "1", "--num", "2", "--quiet", "--out", "~/sweep")
    assert code == 0, err
    assert (tmp_path / "sweep" / "lr_find.png").is_file()


def test_an_out_that_is_a_dangling_symlink_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    code, out, err = run(capsys, "train", "--out", tmp_path / "link")
    assert code == 2 and "is not a folder" in err and out == "", err


def test_a_failed_write_mid_run_is_one_line_and_exit_code_1(tmp_path, capsys, monkeypatch):
    import microgradx.train as train_module

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "run" / CKPT))
    monkeypatch.setattr(train_module.ckpt, "save_checkpoint", disk_full)
    code, _, err = run(capsys, "train", "--epochs", "1", "--quiet", "--out", tmp_path / "run")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "No space left on device" in err


def test_a_closed_output_pipe_ends_the_run_quietly(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "microgradx", "train", "--quiet", "--epochs", "3",
                             "--out", str(tmp_path / "run")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("data: ")    # `microgradx train | head -1`
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert err == "", err


@pytest.mark.parametrize("argv, message", [
    (["train", "--lr", "0"], "--lr: expected a positive number"),
    (["train", "--epochs", "-3"], "--epochs: expected a positive integer"),
    (["train", "--model", "resnet"], "invalid choice: 'resnet'"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["predict", "x.png"], "--weights"),
    (["lr-find", "--min-lr", "1", "--max-lr", "0.1"], "--min-lr 1 must be below --max-lr 0.1"),
])
def test_usage_errors_are_one_line_and_exit_code_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and err.startswith("microgradx: error: ")


def test_help_and_no_command(capsys):
    assert run(capsys, "--help")[0] == 0
    assert run(capsys, "train", "--help")[0] == 0
    code, _, err = run(capsys)
    assert code == 2 and "train" in err and "predict" in err


# --------------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trained")
    paths = {}
    for model, epochs in (("linear", "5"), ("mlp", "20")):
        code = main(["train", "--model", model, "--epochs", epochs, "--quiet", "--out", str(root / model)])
        assert code == 0
        paths[model] = root / model / CKPT
    return paths


@pytest.fixture()
def digits(tmp_path, bundled) -> tuple[Path, Path]:
    three = bundled.valid_images[bundled.valid_labels == 3][0]
    seven = bundled.valid_images[bundled.valid_labels == 7][0]
    Image.fromarray(three).save(tmp_path / "three.png")
    Image.fromarray(seven).save(tmp_path / "seven.png")
    return tmp_path / "three.png", tmp_path / "seven.png"


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_predict_says_3_or_7_with_the_probability(capsys, trained, digits, model):
    three, seven = digits
    code, out, err = run(capsys, "predict", "--weights", trained[model], three, seven)
    assert code == 0, err
    lines = out.splitlines()
    assert re.fullmatch(rf"{re.escape(str(three))}: 3 \(p=(0\.[5-9]\d|1\.00)\)", lines[0])
    assert re.fullmatch(rf"{re.escape(str(seven))}: 7 \(p=(0\.[5-9]\d|1\.00)\)", lines[1])


def test_predict_refuses_weights_of_another_model_or_no_weights_at_all(tmp_path, capsys, trained, digits):
    three, _ = digits
    code, out, err = run(capsys, "predict", "--weights", trained["mlp"], "--model", "linear", three)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert str(trained["mlp"]) in err and "mlp model" in err
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(500))
    unreadable = "not a readable safetensors file"
    absent = tmp_path / "absent.safetensors"
    for weights, problem in ((junk, unreadable), (three, unreadable), (absent, "no such file")):
        code, out, err = run(capsys, "predict", "--weights", weights, three)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert str(weights) in err and problem in err


def test_predict_refuses_images_it_cannot_use(tmp_path, capsys, trained, digits):
    three, _ = digits
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "cut.png").write_bytes(three.read_bytes()[:70])
    noise = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)    # incompressible
    (tmp_path / "cut_rgb.png").write_bytes(_png_bytes(noise)[:2000])
    for name, problem in (("text.png", "not a readable PNG"), ("cut.png", "corrupt PNG"),
                          ("cut_rgb.png", "corrupt PNG"), ("absent.png", "no such file")):
        code, out, err = run(capsys, "predict", "--weights", trained["linear"], three, tmp_path / name)
        assert code == 2 and out == "", name       # nothing printed, not even for the good image
        assert err.count("\n") == 1 and str(tmp_path / name) in err and problem in err


def _png_bytes(pixels: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_predict_converts_colour_size_and_dark_on_light_and_says_so(tmp_path, capsys, trained, bundled):
    three = bundled.valid_images[bundled.valid_labels == 3][0]
    big = np.kron(three, np.ones((3, 3), np.uint8))                # 84x84, the same digit
    cases = {
        "rgb_big.png": (np.stack([big] * 3, axis=-1), ["from RGB to grey", "from 84x84 to 28x28"]),
        "dark_on_white.png": (255 - three, ["inverted: a dark digit on a light background"]),
        # Black ink whose opacity is the digit, on a transparent canvas: as a drawing app saves it.
        "ink.png": (np.dstack([np.zeros((28, 28, 3), np.uint8), three]), ["transparent pixels taken as white",
                                                                         "inverted"]),
    }
    for name, (pixels, _) in cases.items():
        Image.fromarray(pixels).save(tmp_path / name)
    code, out, err = run(capsys, "predict", "--weights", trained["mlp"], *(tmp_path / n for n in cases))
    assert code == 0, err
    lines = out.splitlines()
    for line, (name, (_, notes)) in zip(lines, cases.items(), strict=True):
        assert line.startswith(f"{tmp_path / name}: 3 (p="), line     # converted back into the digit it was
        for note in notes:
            assert note in line, (note, line)
    original = tmp_path / "original.png"
    Image.fromarray(three).save(original)
    code, out, _ = run(capsys, "predict", "--weights", trained["mlp"], original)
    assert code == 0 and "[" not in out           # nothing converted: no note


def test_predict_examples_classifies_the_shipped_digits(capsys, trained):
    code, out, err = run(capsys, "predict", "--weights", trained["mlp"], "--examples")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("examples: 8 digits in ")
    rows = [re.fullmatch(r"([37])-valid-\d{3}\.png: ([37]) \(p=[01]\.\d\d\)", line) for line in lines[1:-1]]
    assert len(rows) == 8 and all(rows), lines
    assert sorted(m.group(1) for m in rows) == ["3"] * 4 + ["7"] * 4
    right = sum(m.group(1) == m.group(2) for m in rows)
    assert lines[-1] == f"examples right: {right} of 8" and right >= 6
    code, out, err = run(capsys, "predict", "--weights", trained["mlp"])
    assert code == 2 and "--examples" in err and out == ""


# --------------------------------------------------------------------------------------------------
# lr-find and graph
# --------------------------------------------------------------------------------------------------


def test_lr_find_prints_a_suggestion_and_writes_the_plot(tmp_path, capsys):
    code, out, err = run(capsys, "lr-find", "--model", "mlp", "--steps", "15", "--min-lr", "1e-4",
                         "--max-lr", "1000", "--num", "4", "--out", tmp_path)
    assert code == 0, err
    assert re.search(r"suggested: lr \S+ to \S+", out)
    assert re.search(r"too small .*: 0\.0001", out)
    assert re.search(r"too large .*: 1e\+03", out)
    assert (tmp_path / "lr_find.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.filterwarnings("error::UserWarning")      # matplotlib's "identical low and high xlims"
def test_lr_find_at_a_single_rate_plots_without_warnings(tmp_path, capsys):
    code, _, err = run(capsys, "lr-find", "--steps", "2", "--num", "1", "--quiet", "--out", tmp_path)
    assert code == 0 and err == "", err
    assert (tmp_path / "lr_find.png").read_bytes()[:4] == b"\x89PNG"


def test_graph_without_dot_leaves_nothing_and_names_the_option_that_needs_none(tmp_path, capsys, trained,
                                                                               monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = run(capsys, "graph", "--weights", trained["linear"], "--out", tmp_path / "a" / "b" / "c")
    assert code == 2 and err.count("\n") == 1 and "graph --format dot" in err, err
    assert not (tmp_path / "a").exists()          # none of the folders it made


def test_graph_draws_the_trained_model_and_a_neuron(tmp_path, capsys, trained):
    code, out, err = run(capsys, "graph", "--weights", trained["mlp"], "--format", "dot", "--out", tmp_path)
    assert code == 0, err
    model_dot = (tmp_path / "graph_mlp.dot").read_text()
    assert model_dot.startswith("digraph") and "layers.0.weight" in model_dot and "mnist_loss" in model_dot
    assert "tanh" in (tmp_path / "graph_neuron.dot").read_text()


def test_graph_without_a_checkpoint(tmp_path, capsys):
    code, _, err = run(capsys, "graph", "--out", tmp_path)
    assert code == 2 and "checkpoint.safetensors: no such file" in err


def test_checkpoint_error_is_a_microgradx_error():
    # main() turns exactly the library's own errors into exit code 2; CheckpointError must be one.
    from microgradx.errors import MicrogradxError
    assert issubclass(CheckpointError, MicrogradxError)


# --------------------------------------------------------------------------------------------------
# no network
# --------------------------------------------------------------------------------------------------


def test_the_training_guides_commands_work_as_written_after_make_train(tmp_path, capsys, monkeypatch):
    import shlex

    monkeypatch.chdir(tmp_path)
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for line in re.findall(r"^\t\$\(BIN\)/microgradx (train .*?) \$\(ARGS\)$", makefile, re.M):
        assert run(capsys, *shlex.split(line), "--quiet")[0] == 0, line
    guide = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    # Those of its commands that need no data but the bundled sample and what make train wrote.
    commands = re.findall(r"^\$ microgradx (.*)$", guide, re.M)
    commands += re.findall(r"a bare `microgradx (graph)`", guide)
    commands = [c for c in commands if "mnist_sample" not in c]
    assert any("--examples" in c for c in commands) and "graph" in commands
    for command in commands:
        code, out, err = run(capsys, *shlex.split(command))
        assert code == 0, (command, err)
    assert (tmp_path / "runs" / "linear" / "graph_linear.svg").is_file()
    assert (tmp_path / "runs" / "mlp" / "graph_mlp.svg").is_file()


def test_every_command_runs_with_the_network_switched_off(tmp_path, capsys, monkeypatch):
    # Any attempt to open a socket (a download, a telemetry ping) fails loudly instead of going out.
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("microgradx tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    out = tmp_path / "run"
    assert run(capsys, "train", "--epochs", "2", "--quiet", "--out", out)[0] == 0
    assert run(capsys, "lr-find", "--out", tmp_path / "lr")[0] == 0
    assert run(capsys, "graph", "--out", out)[0] == 0
    digit = tmp_path / "digit.png"
    Image.fromarray(load_mnist_3_7().valid_images[0]).save(digit)
    code, printed, _ = run(capsys, "predict", "--weights", out / CKPT, digit)
    assert code == 0 and re.search(r"digit\.png: [37] \(p=", printed)


def test_no_compile_trains_eagerly_to_the_same_table(tmp_path, capsys):
    tables = []
    for extra in ([], ["--no-compile"]):
        code, out, err = run(capsys, "train", "--model", "mlp", "--epochs", "2", "--out",
                             tmp_path / f"run{len(extra)}", *extra)
        assert code == 0, err
        tables.append([row.split()[:4] for row in _table(out)[1:]])
    assert tables[0] == tables[1]
