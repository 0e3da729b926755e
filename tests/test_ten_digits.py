"""Ten digits and any classes on the command line: the task read from the labels, bad input, full MNIST."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from test_data import idx_bytes, write_idx, write_png

from microgradx.cli import main
from microgradx.data import load_bundled_digits
from microgradx.train import CHECKPOINT_NAME, TrainConfig, Trainer, prepare

from conftest import REPO

MNIST_IDX = REPO.parent / "shared" / "data" / "mnist_idx"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def digits_idx_folder(root, labels_override=None, cut_labels=None):
    data = load_bundled_digits()
    root.mkdir(parents=True, exist_ok=True)
    for prefix, images, labels in (("train", data.train_images, data.train_labels),
                                   ("t10k", data.valid_images, data.valid_labels)):
        labels = labels.astype(np.uint8)
        if prefix == "train" and labels_override is not None:
            labels = labels.copy()
            labels[: len(labels_override)] = labels_override
        if prefix == "t10k" and cut_labels is not None:
            labels = labels[:cut_labels]
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(images), gz=True)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(labels), gz=True)
    return root


def test_the_bundled_digits_hold_all_ten_classes_evenly():
    data = load_bundled_digits()
    assert np.bincount(data.train_labels).tolist() == [80] * 10
    assert np.bincount(data.valid_labels).tolist() == [20] * 10


def test_ten_digit_idx_files_train_a_softmax_model_and_predict_prints_the_digit(tmp_path, capsys):
    folder = digits_idx_folder(tmp_path / "mnist")
    code, out, err = run(capsys, "train", "--data", folder, "--model", "linear", "--epochs", "3",
                         "--out", tmp_path / "run", "--quiet")
    assert code == 0, err
    assert "softmax linear 784 -> 10" in out and "cross_entropy" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["classes"] == [str(d) for d in range(10)]
    assert metrics["model"] == {"kind": "linear", "sizes": [784, 10]}
    assert 0.5 < metrics["final"]["valid_accuracy"] <= 1        # chance is 0.1
    code, out, err = run(capsys, "predict", "--weights", tmp_path / "run" / CHECKPOINT_NAME, "--examples")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith(("3-", "7-"))]
    assert len(lines) == 8
    for line in lines:
        digit, p = line.split(": ")[1].split(" (p=")
        assert digit in "0123456789" and 0.1 <= float(p.rstrip(")")) <= 1


# The CNN's default 6 epochs: it leaves its first plateau in the third epoch on 800 digits (13 batches an
# epoch), and a cosine schedule squeezed into 3 epochs has lowered the rate before then.
@pytest.mark.parametrize("model, epochs", [("mlp", 3), ("cnn", 6)])
def test_the_digits_sample_trains_each_model(tmp_path, capsys, model, epochs):
    code, out, err = run(capsys, "train", "--sample", "digits", "--model", model, "--epochs", epochs,
                         "--out", tmp_path, "--quiet")
    assert code == 0, err
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert len(history) == epochs and history[-1]["valid_loss"] < history[0]["valid_loss"]
    assert history[-1]["valid_accuracy"] > 0.3           # chance is 0.1


def test_the_ten_class_mlp_is_784_100_10():
    dataset = prepare(load_bundled_digits())
    config = TrainConfig.for_model("mlp", epochs=2, seed=1, classes=10)
    straight = Trainer(config, dataset)
    straight.fit()
    assert straight.model.sizes == [784, 100, 10]


def test_resume_of_a_ten_digit_checkpoint(tmp_path):
    dataset = prepare(load_bundled_digits())
    straight = Trainer(TrainConfig.for_model("linear", epochs=3, seed=2, classes=10), dataset)
    straight.fit()
    first = Trainer(TrainConfig.for_model("linear", epochs=1, seed=2, classes=10), dataset)
    first.fit(tmp_path)
    resumed = Trainer.resume(tmp_path / CHECKPOINT_NAME, dataset, epochs=3)
    resumed.fit(tmp_path)
    assert resumed.history == straight.history
    np.testing.assert_array_equal(resumed.model.weight.data, straight.model.weight.data)


def _one_class_folder(root):
    for split in ("train", "valid"):
        write_png(root / split / "cat" / "0.png", np.zeros((28, 28), np.uint8))
    return root / "train", "1 class folder"


def _non_square_folder(root):
    for split in ("train", "valid"):
        for c in ("ant", "bee"):
            write_png(root / split / c / "0.png", np.zeros((28, 28), np.uint8))
    bad = write_png(root / "train" / "bee" / "1.png", np.zeros((28, 30), np.uint8))
    return bad, "must be square"


BAD = {
    "label outside the digits": (lambda root: (digits_idx_folder(root, labels_override=[0, 1, 12])
                                               / "train-labels-idx1-ubyte.gz", "label 12")),
    "images and labels of different lengths": (lambda root: (digits_idx_folder(root, cut_labels=150)
                                                             / "t10k-labels-idx1-ubyte.gz", "150 labels")),
    "a folder with one class": _one_class_folder,
    "non-square images": _non_square_folder,
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_naming_the_file_and_exit_code_2(tmp_path, capsys, case):
    culprit, problem = BAD[case](tmp_path / "data")
    code, out, err = run(capsys, "train", "--data", tmp_path / "data", "--out", tmp_path / "out")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert str(culprit) in err and problem in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ---- full MNIST: the targets (the CNN's is a long run, asked for with MICROGRADX_LONG=1) ----

def _full_mnist():
    from microgradx.data import is_mnist_idx_folder, load_mnist

    if not is_mnist_idx_folder(MNIST_IDX):
        pytest.skip("MNIST's four IDX files are not in shared/data/mnist_idx")
    return prepare(load_mnist(MNIST_IDX))


@pytest.mark.data
@pytest.mark.parametrize("model, target", [("linear", 0.92), ("mlp", 0.975)])
def test_full_mnist_meets_the_target_with_the_default_settings(model, target):
    dataset = _full_mnist()
    history = Trainer(TrainConfig.for_model(model, classes=10), dataset).fit()
    assert history[-1].valid_accuracy >= target


@pytest.mark.data
@pytest.mark.slow
def test_full_mnist_cnn_meets_99_percent():
    if not os.environ.get("MICROGRADX_LONG"):
        pytest.skip("the CNN's full run takes minutes per epoch; set MICROGRADX_LONG=1 to run it")
    history = Trainer(TrainConfig.for_model("cnn", classes=10), _full_mnist()).fit()
    assert history[-1].valid_accuracy >= 0.99


def _compiled_in(step_fn):
    """The mg.compile'd function inside a Trainer's batch step, if it has one."""
    cells = [c.cell_contents for c in step_fn.__closure__ or ()]
    return next((c for c in cells if hasattr(c, "traces")), None)


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_a_ten_digit_step_is_compiled_and_trains_as_eager(model):
    dataset = prepare(load_bundled_digits())
    runs = {}
    for compiled in (True, False):
        trainer = Trainer(TrainConfig.for_model(model, epochs=2, seed=3, classes=10, compile=compiled),
                          dataset)
        trainer.fit()
        runs[compiled] = trainer
        step = _compiled_in(trainer.learner.step_fn)
        assert (step is not None and len(step.traces) >= 1) == compiled
    for a, b in zip(runs[True].history, runs[False].history, strict=True):
        np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=1e-5)
        np.testing.assert_allclose(a.valid_loss, b.valid_loss, rtol=1e-5)
    for p, q in zip(runs[True].model.parameters(), runs[False].model.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-4, atol=1e-6)


def test_a_compiled_cross_entropy_step_checks_the_labels_of_every_replay():
    import microgradx as mg
    from microgradx import nn
    from microgradx.errors import DataError
    from microgradx.nn_functional import cross_entropy

    model = nn.Linear(6, 10)

    def step(x, t):
        loss = cross_entropy(model(x), t)
        loss.backward()
        return loss

    compiled = mg.compile(step)
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    for labels in ([0, 9, 3, 3, 1], [2, 2, 8, 0, 5]):     # the trace, then a replay
        t = np.array(labels)
        model.zero_grad()
        expected, grad = float(step(x, t).data), model.weight.grad.copy()
        model.zero_grad()
        np.testing.assert_allclose(float(compiled(x, t).data), expected, rtol=1e-6)
        np.testing.assert_allclose(model.weight.grad, grad, rtol=1e-5, atol=1e-7)
    assert len(compiled.traces) == 1 and "_check_class_indices(" in compiled.program
    for bad, shown in (([0, 1, 10, 2, 3], "10"), ([0, -1, 1, 2, 3], "-1")):
        with pytest.raises(DataError, match=rf"nll_loss: target {shown} is not a class index in \[0, 10\)"):
            compiled(x, np.array(bad))
    # ignore_index (-100) is not a bad label: those samples count for nothing, replayed too.
    t = np.array([0, -100, 4, -100, 7])
    model.zero_grad()
    expected = float(step(x, t).data)
    np.testing.assert_allclose(float(compiled(x, t).data), expected, rtol=1e-6)
