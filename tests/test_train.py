"""Training: the baseline, determinism, exact resume, flat memory, lr-find, output files, and accuracy."""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from microgradx import checkpoint as ckpt
from microgradx.data import MnistData, load_mnist_3_7
from microgradx.errors import ArgumentError, CheckpointError, DataError
from microgradx.train import (
    CHECKPOINT_NAME,
    Dataset,
    EpochStats,
    TrainConfig,
    Trainer,
    build_model,
    evaluate,
    lenet,
    load_model,
    lr_find,
    pixel_similarity_accuracy,
    plot_history,
    plot_lr_find,
    predict_proba,
    prepare,
)


@pytest.fixture(scope="module")
def bundled() -> MnistData:
    return load_mnist_3_7()


@pytest.fixture(scope="module")
def dataset(bundled):
    return prepare(bundled)


def _weights(trainer: Trainer) -> dict[str, bytes]:
    return {name: arr.tobytes() for name, arr in trainer.model.state_dict().items()}


# --------------------------------------------------------------------------------------------------
# Models and the baseline
# --------------------------------------------------------------------------------------------------


def test_the_linear_model_is_the_books():
    model = build_model("linear", seed=0)
    assert [(n, p.shape) for n, p in model.named_parameters()] == [("weight", (784, 1)), ("bias", (1,))]
    assert model.weight.dtype == np.float32
    # init_params(size, std=1.0): standard normal weights
    assert 0.9 < model.weight.data.std() < 1.1
    assert np.array_equal(model.weight.data, build_model("linear", seed=0).weight.data)
    assert not np.array_equal(model.weight.data, build_model("linear", seed=1).weight.data)


def test_the_mlp_is_the_books_simple_net():
    model = build_model("mlp", seed=0)
    assert [p.shape for p in model.parameters()] == [(784, 30), (30,), (30, 1), (1,)]
    assert np.abs(model.layers[0].weight.data).max() <= 1 / np.sqrt(784)



def _fan_in(layer) -> int:
    w = layer.weight.data
    return w.shape[0] if w.ndim == 2 else int(np.prod(w.shape[1:]))    # Linear is (n_in, n_out)


def test_lenet_kaiming_init_is_hes_uniform_bound_with_zero_biases():
    uniform, kaiming = lenet(1, rng=0), lenet(1, rng=0, init="kaiming")
    layers = [(u, k) for u, k in zip(uniform.layers, kaiming.layers, strict=True) if hasattr(u, "weight")]
    assert len(layers) == 5      # two convolutions, three linear layers
    for i, (u, k) in enumerate(layers):
        # He's bound on the four layers a ReLU follows; the output layer keeps the uniform scale
        bound = np.sqrt(6 / _fan_in(k)) if i < 4 else 1 / np.sqrt(_fan_in(k))
        assert np.abs(k.weight.data).max() <= bound * (1 + 1e-6)
        assert np.abs(k.weight.data).max() > 0.9 * bound          # it fills the bound, not a fraction of it
        assert not k.bias.data.any()
        assert np.abs(u.weight.data).max() <= 1 / np.sqrt(_fan_in(u)) * (1 + 1e-6)
        assert u.bias.data.any()
    # He et al.'s variance, 2 / fan_in, on the layers with enough weights to measure it
    for _, k in layers[1:4]:
        assert abs(k.weight.data.std() / np.sqrt(2 / _fan_in(k)) - 1) < 0.05


def test_the_two_class_cnn_starts_from_kaiming_and_the_ten_class_from_uniform():
    two, ten = build_model("cnn", seed=0), build_model("cnn", seed=0, classes=10)
    assert not two.layers[1].bias.data.any()
    assert ten.layers[1].bias.data.any()
    assert np.abs(ten.layers[1].weight.data).max() <= 1 / 5 * (1 + 1e-6)     # fan_in 25


def test_lenet_refuses_an_unknown_init():
    with pytest.raises(ArgumentError, match="unknown init 'he'.*uniform, kaiming"):
        lenet(1, init="he")

def _images(value_left: int, value_right: int, n: int) -> np.ndarray:
    img = np.zeros((n, 28, 28), np.uint8)
    img[:, :, :14] = value_left
    img[:, :, 14:] = value_right
    return img


def test_pixel_similarity_baseline_on_a_known_case():
    # Training 3s are bright on the left, 7s on the right. Of the valid images, the first three look
    # like 3s, the fourth like a 7 but is labelled 3: 3 of 4 are classified correctly.
    train = np.concatenate([_images(200, 0, 5), _images(0, 200, 5)])
    valid = np.concatenate([_images(180, 10, 3), _images(10, 180, 1)])
    data = MnistData(train, np.array([3] * 5 + [7] * 5, np.uint8), valid, np.array([3, 3, 3, 3], np.uint8),
                     "synthetic")
    assert pixel_similarity_accuracy(data) == 0.75


def test_pixel_similarity_baseline_matches_the_books_formula(bundled):
    tr = bundled.train_images.astype(np.float32) / 255
    mean3, mean7 = tr[bundled.train_labels == 3].mean(0), tr[bundled.train_labels == 7].mean(0)

    def mnist_distance(a, b):
        return np.abs(a - b).mean((-1, -2))

    va = bundled.valid_images.astype(np.float32) / 255
    is_3 = mnist_distance(va, mean3) < mnist_distance(va, mean7)
    assert pixel_similarity_accuracy(bundled) == np.mean(is_3 == (bundled.valid_labels == 3))
    assert 0.9 < pixel_similarity_accuracy(bundled) < 1.0


# --------------------------------------------------------------------------------------------------
# Training runs
# --------------------------------------------------------------------------------------------------


def test_the_mlp_beats_the_pixel_similarity_baseline_on_the_bundled_sample(bundled, dataset):
    trainer = Trainer(TrainConfig.for_model("mlp"), dataset)    # the chapter's settings, default seed
    history = trainer.fit()
    assert len(history) == 40
    assert history[-1].valid_accuracy > pixel_similarity_accuracy(bundled)


@pytest.mark.parametrize("change, message", [
    (dict(x_train=np.zeros((0, 784), np.float32), y_train=np.zeros((0, 1), np.float32)),
     "train split holds no images"),
    (dict(y_valid=np.zeros(4, np.float32)), r"valid features \(4, 784\) and targets \(4,\)"),
    (dict(y_train=np.zeros((3, 1), np.float32)), r"train features \(4, 784\) and targets \(3, 1\)"),
])
def test_a_dataset_refuses_empty_or_mismatched_splits(change, message):
    # Without this check an empty split would divide by zero mid-epoch, or make lr_find loop forever.
    x, y = np.zeros((4, 784), np.float32), np.ones((4, 1), np.float32)
    fields = dict(x_train=x, y_train=y, x_valid=x, y_valid=y) | change
    with pytest.raises(DataError, match=message):
        Dataset(**fields, source="made up", fingerprint="0")


def test_the_linear_model_learns_on_the_bundled_sample(dataset):
    # With the book's std-1 init, 20 epochs of 4 batches do not reach the baseline on this small sample
    # (see the report); they must still learn: loss falls steadily and accuracy is far above chance.
    history = Trainer(TrainConfig.for_model("linear"), dataset).fit()
    assert history[-1].valid_loss < 0.5 * history[0].valid_loss
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].valid_accuracy >= 0.9


def test_the_same_seed_gives_the_same_weights_and_figures_bit_for_bit(dataset):
    a = Trainer(TrainConfig.for_model("mlp", epochs=3, seed=5), dataset)
    b = Trainer(TrainConfig.for_model("mlp", epochs=3, seed=5), dataset)
    assert a.fit() == b.fit()           # EpochStats compare every figure but the wall time
    assert _weights(a) == _weights(b)
    c = Trainer(TrainConfig.for_model("mlp", epochs=3, seed=6), dataset)
    c.fit()
    assert _weights(c) != _weights(a)


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(dataset, tmp_path, model):
    straight = Trainer(TrainConfig.for_model(model, epochs=4, seed=3), dataset)
    straight.fit()

    first = Trainer(TrainConfig.for_model(model, epochs=2, seed=3), dataset)
    first.fit(tmp_path)
    del first
    resumed = Trainer.resume(tmp_path / CHECKPOINT_NAME, dataset, epochs=4)
    assert resumed.epoch == 2 and resumed.optimizer.steps == 2 * len(resumed.loader)
    resumed.fit(tmp_path)

    assert _weights(resumed) == _weights(straight)
    assert resumed.history == straight.history
    assert ckpt.load_checkpoint(tmp_path / CHECKPOINT_NAME).epoch == 4


def test_a_scheduled_run_resumes_exactly_and_its_schedule_spans_the_whole_run(dataset, tmp_path):
    config = TrainConfig.for_model("mlp", epochs=4, seed=3, schedule="cosine")
    straight = Trainer(config, dataset)
    straight.fit()
    first = Trainer(TrainConfig.for_model("mlp", epochs=4, seed=3, schedule="cosine"), dataset)
    first.train_epoch()
    first.train_epoch()
    first.save(tmp_path / CHECKPOINT_NAME)
    assert first.optimizer.lr == config.lr              # the checkpoint holds the base rate
    resumed = Trainer.resume(tmp_path / CHECKPOINT_NAME, dataset)
    assert resumed.config.schedule == "cosine"
    resumed.fit()
    assert _weights(resumed) == _weights(straight) and resumed.history == straight.history
    constant = Trainer(TrainConfig.for_model("mlp", epochs=4, seed=3, schedule="constant"), dataset)
    constant.fit()
    assert constant.history != straight.history


def test_train_config_refuses_an_unknown_schedule():
    with pytest.raises(ValueError, match="unknown schedule 'step'; choose from constant, cosine, linear"):
        TrainConfig.for_model("linear", schedule="step")
    # a checkpoint written before schedules existed holds no "schedule": it trained at a constant rate
    assert TrainConfig(model="linear", epochs=1, lr=1.0, batch_size=256, seed=0).schedule == "constant"


def test_resume_refuses_other_data(dataset, tmp_path):
    Trainer(TrainConfig.for_model("linear", epochs=1), dataset).fit(tmp_path)
    images, labels = load_mnist_3_7().train_images[:8], np.array([3, 7] * 4, np.uint8)
    other = prepare(MnistData(images, labels, images, labels, "other"))
    with pytest.raises(CheckpointError, match="other data"):
        Trainer.resume(tmp_path / CHECKPOINT_NAME, other)


def test_fit_makes_its_folder_before_training(dataset, tmp_path):
    out = tmp_path / "new" / "run"
    Trainer(TrainConfig.for_model("linear", epochs=1), dataset).fit(out)
    assert (out / CHECKPOINT_NAME).is_file()


@pytest.mark.parametrize("lr", [True, float("nan"), 0, "1"])
def test_train_config_refuses_a_learning_rate_that_is_not_a_positive_number(lr):
    with pytest.raises(ValueError, match="lr must be a positive number"):
        TrainConfig.for_model("linear", lr=lr)
    with pytest.raises(ValueError, match="lr must be a positive number"):   # as read from a checkpoint
        TrainConfig(model="linear", epochs=1, lr=lr, batch_size=256, seed=0)
    lr = TrainConfig.for_model("linear", lr=np.float32(0.5)).lr
    assert type(lr) is float and lr == 0.5             # a plain float, as JSON and checkpoints want


def test_memory_stays_flat_over_many_epochs(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    labels = np.array([3, 7] * 32, np.uint8)
    small = prepare(MnistData(images, labels, images[:16], labels[:16], "random"))
    trainer = Trainer(TrainConfig.for_model("mlp", epochs=60, batch_size=16), small)
    sizes: dict[int, int] = {}

    def measure(stats: EpochStats) -> None:
        if stats.epoch in (5, 50):
            # A full collection also empties CPython's free lists (of dicts, tuples, floats), which keep
            # recently freed blocks that tracemalloc still counts; what is left is what is really held.
            gc.collect()
            sizes[stats.epoch] = tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        trainer.fit(tmp_path, on_epoch=measure)      # checkpoints every epoch too
    finally:
        tracemalloc.stop()
    # 45 epochs add 45 small history records (a few hundred bytes each) and nothing else; a leak of
    # one graph or one batch per epoch would add tens of kilobytes per epoch.
    growth = sizes[50] - sizes[5]
    assert growth < 64 * 1024, f"memory grew by {growth} bytes between epochs 5 and 50"


# --------------------------------------------------------------------------------------------------
# Evaluation, prediction, lr-find, files
# --------------------------------------------------------------------------------------------------


def test_predict_proba_agrees_with_evaluate(dataset, tmp_path):
    trainer = Trainer(TrainConfig.for_model("linear", epochs=2), dataset)
    trainer.fit(tmp_path)
    model, spec = load_model(tmp_path / CHECKPOINT_NAME, expect="linear")
    p3 = predict_proba(model, dataset.x_valid)
    assert p3.shape == (len(dataset.x_valid),) and np.all((p3 >= 0) & (p3 <= 1))
    _, acc = evaluate(model, dataset.x_valid, dataset.y_valid)
    assert np.mean((p3 > 0.5) == (dataset.y_valid[:, 0] == 1)) == acc
    with pytest.raises(CheckpointError, match="linear model .* not of the mlp model"):
        load_model(tmp_path / CHECKPOINT_NAME, expect="mlp")


def test_lr_find_tells_too_small_from_too_large(dataset):
    result = lr_find(dataset, "mlp", lrs=[1e-4, 0.3, 1000.0], steps=20)
    assert result.too_small == [1e-4]
    assert result.too_large == [1000.0]
    assert result.best_lr == 0.3 and result.suggested == (0.3, 0.3)
    assert result.losses[1] < result.initial_loss


def test_lr_find_default_sweep_suggests_the_books_rate_region(dataset):
    result = lr_find(dataset, "linear", steps=30)
    assert len(result.lrs) == 19
    assert result.lrs[0] == pytest.approx(1e-4) and result.lrs[-1] == pytest.approx(100)
    lo, hi = result.suggested
    assert lo <= result.best_lr <= hi
    assert 1e-4 in result.too_small
    assert all(lr < lo for lr in result.too_small) and all(lr > hi for lr in result.too_large)


def test_plots_are_pngs_written_atomically(tmp_path, monkeypatch):
    history = [EpochStats(i, 1 / i, 1.1 / i, 0.9, 0.0) for i in range(1, 4)]
    path = plot_history(history, tmp_path / "curves.png", baseline=0.95, title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = lr_find(prepare(load_mnist_3_7()), lrs=[0.1, 1.0], steps=2)
    assert plot_lr_find(result, tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"

    # A failure while drawing leaves the previous file as it was, and no temporary file.
    before = path.read_bytes()
    from matplotlib.figure import Figure

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(Figure, "savefig", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_history(history, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "lr.png"]


def test_atomic_write_keeps_the_old_file_on_failure_and_ctrl_c(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    for exc in (ValueError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with ckpt.atomic_write(target) as f:
                f.write(b"new, half written")
                raise exc
        assert target.read_bytes() == b"old"
        assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    with ckpt.atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    # A new file gets the mode any new file gets under the umask.
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_keeps_the_mode_and_the_symlink_of_what_it_replaces(tmp_path):
    target = tmp_path / "private.bin"
    target.write_bytes(b"old")
    target.chmod(0o600)
    link = tmp_path / "latest.bin"
    link.symlink_to(target.name)
    with ckpt.atomic_write(link) as f:
        f.write(b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):       # an error of the caller's own, of this very type
        with ckpt.atomic_write(tmp_path / "other.bin") as f:
            f.write(b"x")
            (tmp_path / "latest.bin").mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.bin", "private.bin"]   # no .tmp left
    with pytest.raises(FileNotFoundError, match="no such folder") as info:
        with ckpt.atomic_write(tmp_path / "absent" / "f.bin") as f:
            f.write(b"x")
    assert info.value.filename == str(tmp_path / "absent")


# --------------------------------------------------------------------------------------------------
# The chapter's accuracy on the full data set
# --------------------------------------------------------------------------------------------------

_FULL: dict[Path, object] = {}


def _full_dataset(folder: Path):
    # Decoding 14,434 PNGs takes seconds: do it once for both tests.
    if folder not in _FULL:
        _FULL[folder] = prepare(load_mnist_3_7(folder))
    return _FULL[folder]


@pytest.mark.data
@pytest.mark.slow
def test_linear_model_reaches_the_books_accuracy_on_the_full_sample(full_png_folder):
    # The chapter: lr 1.0, batch 256, 20 epochs, mnist_loss, std-1 init: 96.9%.
    history = Trainer(TrainConfig.for_model("linear"), _full_dataset(full_png_folder)).fit()
    assert history[-1].valid_accuracy >= 0.969


@pytest.mark.data
@pytest.mark.slow
def test_mlp_reaches_the_books_accuracy_on_the_full_sample(full_png_folder):
    # The chapter: 784-30-1 with ReLU, lr 0.1, 40 epochs: 98.2%.
    history = Trainer(TrainConfig.for_model("mlp"), _full_dataset(full_png_folder)).fit()
    assert history[-1].valid_accuracy >= 0.982


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_cnn_meets_the_3_vs_7_target_on_the_full_sample(full_idx_folder, seed):
    # Issue 15's target for the CNN on the chapter's data: >= 99.5% (its resnet18: 99.7%), from the final
    # epoch, with the defaults (sigmoid output and mnist_loss, as the chapter's models). About 75 s a seed:
    # the second seed runs with MICROGRADX_LONG=1.
    if seed and not os.environ.get("MICROGRADX_LONG"):
        pytest.skip("a second seed of the 3-vs-7 CNN's full run; set MICROGRADX_LONG=1 to run it")
    history = Trainer(TrainConfig.for_model("cnn", seed=seed), _full_dataset(full_idx_folder)).fit()
    assert history[-1].valid_accuracy >= 0.995
