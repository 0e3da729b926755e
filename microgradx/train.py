"""Training the 3-vs-7 classifier of fastbook's chapter 4: models, baseline, loop, checkpoints, lr-find.

Everything the ``microgradx train``, ``predict`` and ``lr-find`` commands do lives here, as functions that
take arrays and return numbers, so it can be used and tested without the command line.

Reproducibility: one integer seed decides everything random in a run. It is split (numpy's
``SeedSequence``) into one seed for the initial weights and one for the loader's shuffling, so the same
seed gives the same weights and the same figures, bit for bit, and changing the batch size does not
change the initial weights.

Resuming: a checkpoint holds the weights, the optimizer state (step count, momentum buffers), the epoch
and the history. The loader's shuffling is not stored: it is rebuilt from the seed and advanced by one
``iter()`` per finished epoch (:class:`~microgradx.data.DataLoader` draws one permutation per ``iter()``),
which puts it in exactly the state the interrupted run had. A resumed run therefore ends with the same
weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint as ckpt
from .compile import compile as compile_step
from .data import IMAGE_SHAPE, DataLoader, DataLoaders, LabelledImages, MnistData, to_features, to_targets
from .engine import Value, data_of, no_grad
from .errors import ArgumentError, CheckpointError, DataError, TrainingDivergedError
from .functional import softmax
from .learner import SCHEDULES, Callback, CancelFitException, Learner, LRScheduleCallback
from .losses import accuracy, class_accuracy, mnist_loss
from .nn import MLP, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential
from .nn_functional import cross_entropy
from .ops import reshape, sigmoid
from .optim import SGD, _is_number
from .threads import threads_for

__all__ = [
    "MODELS", "ModelSpec", "TrainConfig", "Dataset", "EpochStats", "Trainer", "TrainingDivergedError",
    "LrFindResult",
    "build_model", "model_spec", "load_model", "lenet", "LENET_INITS", "task_of", "MULTICLASS_MODELS",
    "prepare", "pixel_similarity_accuracy", "evaluate", "predict_proba",
    "lr_find", "batch_step", "plot_history", "plot_lr_find", "write_json",
]

CHECKPOINT_NAME = "checkpoint.safetensors"
CURVES_NAME = "curves.png"
METRICS_NAME = "metrics.json"
LR_FIND_NAME = "lr_find.png"


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSpec:
    """A model the command line can build, with its defaults (from the chapter)."""

    name: str
    sizes: tuple[int, ...]        # layer widths, input first: (784, 1) or (784, 30, 1); the cnn's in and out
    lr: float
    epochs: int
    init_std: float | None        # None: Linear's default scaled init; a number: normal with that std
    description: str
    momentum: float = 0.0
    batch_size: int = 256
    schedule: str = "constant"     # how the rate changes over the run: a name of learner.SCHEDULES
    init: str = "uniform"          # the cnn's initial weights: a name of LENET_INITS

    @property
    def architecture(self) -> dict[str, Any]:
        """What a checkpoint records to say which model its weights belong to."""
        return {"kind": self.name, "sizes": list(self.sizes)}

    @property
    def classes(self) -> int:
        """How many classes the model tells apart: one output is the chapter's two (3 or not)."""
        return max(self.sizes[-1], 2)

    def build(self, rng: np.random.Generator | int | None) -> Module:
        if self.name == "cnn":
            return lenet(self.sizes[-1], rng, init=self.init)
        if len(self.sizes) == 2:
            return Linear(*self.sizes, rng=rng, init_std=self.init_std)
        return MLP(self.sizes[0], self.sizes[1:], rng=rng, init_std=self.init_std)


class ToImages(Module):
    """Rows of 784 pixels to images (N, 1, 28, 28): lets a CNN take the same features as the other models."""

    def forward(self, x: Any) -> Value:
        return reshape(x, shape=(-1, 1, *IMAGE_SHAPE))


# How lenet() draws its initial weights. "uniform": each layer's own, PyTorch's scale (uniform within
# 1/sqrt(fan_in)), whose outputs have a third of the inputs' variance, and after a ReLU half that again, so
# the signal's variance shrinks about sixfold a layer. "kaiming": He et al. (2015) for the layers a ReLU
# follows, uniform within sqrt(6 / fan_in) (a variance of 2 / fan_in), which keeps the signal's scale
# through them; the output layer keeps the uniform scale, as no ReLU follows it, and large initial logits
# would push a sigmoid output into saturation, where mnist_loss has no gradient left. Biases start at 0.
LENET_INITS = ("uniform", "kaiming")


def lenet(outputs: int, rng: np.random.Generator | int | None = None, *, init: str = "uniform") -> Sequential:
    """A LeNet-5-style CNN (LeCun et al. 1998) for 28x28 digits, with ReLU and max pooling.

    conv 5x5 to 6 channels (padded: 28x28), pool to 14x14, conv 5x5 to 16 channels (10x10), pool to 5x5,
    then 400 -> 120 -> 84 -> ``outputs``.

    ``init`` is one of :data:`LENET_INITS`: ``"uniform"`` (default) keeps each layer's PyTorch-style
    uniform init; ``"kaiming"`` is He et al.'s uniform init for ReLU, weights within ``sqrt(6 / fan_in)``,
    on the four layers followed by a ReLU, with the output layer's weights left at the uniform scale; all
    biases start at 0.
    """
    if init not in LENET_INITS:
        raise ArgumentError(f"lenet: unknown init {init!r}; choose from {', '.join(LENET_INITS)}")
    gen = np.random.default_rng(rng)
    model = Sequential(
        ToImages(),
        Conv2d(1, 6, 5, padding=2, rng=gen), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, rng=gen), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(400, 120, rng=gen), ReLU(), Linear(120, 84, rng=gen), ReLU(), Linear(84, outputs, rng=gen),
    )
    if init == "kaiming":
        # The layers drew uniform(-b, b) with b = 1/sqrt(fan_in); times sqrt(6) that is uniform within
        # sqrt(6 / fan_in): the same draws, so a seed gives the same pattern of weights under either init.
        layers = [layer for layer in model.layers if isinstance(layer, Conv2d | Linear)]
        for layer in layers:
            if layer is not layers[-1]:
                layer.weight.data[...] *= np.sqrt(6.0)
            if layer.bias is not None:
                layer.bias.data[...] = 0
    return model


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        # The chapter's `linear1`: init_params((28*28, 1)) and init_params(1), i.e. randn * 1.0.
        ModelSpec("linear", (784, 1), lr=1.0, epochs=20, init_std=1.0,
                  description="linear 784 -> 1 (fastbook's init: std 1)"),
        # The chapter's `simple_net`: nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 1) with PyTorch's init.
        ModelSpec("mlp", (784, 30, 1), lr=0.1, epochs=40, init_std=None,
                  description="MLP 784 -> 30 -> ReLU -> 1"),
        # He's init and a cosine: from PyTorch's init at a constant rate the last epoch bounced (0.9941 after
        # 0.9985) and a cosine alone ended at 0.9936; with both it settles at 0.9975 (seed 0), 0.9966 (seed
        # 1), past issue 15's 0.995. He's scale on the output layer too can saturate the sigmoid at once
        # and stall the run at 50% (docs/learner.md).
        ModelSpec("cnn", (784, 1), lr=0.05, epochs=12, init_std=None, momentum=0.9, batch_size=64,
                  schedule="cosine", init="kaiming",
                  description="LeNet-style CNN (conv 6, pool, conv 16, pool, 120, 84) -> 1"),
    )
}

# All ten digits (or any number of classes above two): softmax outputs and cross-entropy.
MULTICLASS_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("linear", (784, 10), lr=0.5, epochs=10, init_std=None,
                  description="softmax linear 784 -> 10"),
        ModelSpec("mlp", (784, 100, 10), lr=0.1, epochs=10, init_std=None, momentum=0.9, batch_size=128,
                  description="MLP 784 -> 100 -> ReLU -> 10"),
        # The rate falls along a cosine to 0 over the run: at a constant rate the last epochs bounce
        # around the minimum and the last is often not the best; annealed, it settles (docs/learner.md).
        ModelSpec("cnn", (784, 10), lr=0.05, epochs=6, init_std=None, momentum=0.9, batch_size=64,
                  schedule="cosine",
                  description="LeNet-style CNN (conv 6, pool, conv 16, pool, 120, 84) -> 10"),
    )
}


def build_model(name: str, seed: int, classes: int = 2) -> Module:
    """A fresh model ``name`` ("linear", "mlp" or "cnn") for ``classes`` classes, with initial weights
    drawn from ``seed``."""
    init_seed, _ = _split_seed(seed)
    return model_spec(name, classes).build(init_seed)


def load_model(path: str | Path, expect: str | None = None) -> tuple[Module, ModelSpec]:
    """The model saved in checkpoint ``path``, ready to predict, and its spec.

    Raises:
        CheckpointError: the file is not a readable checkpoint, holds an architecture this version does
            not know, holds another model than ``expect``, or its weights do not fit.
    """
    checkpoint = ckpt.load_checkpoint(path)
    spec = _spec_of(checkpoint)
    if expect is not None and spec.name != expect:
        raise CheckpointError(f"{checkpoint.path}: holds weights of the {spec.name} model "
                              f"({_sizes(spec)}), not of the {expect} model ({_sizes(model_spec(expect))})")
    model = spec.build(0)    # any seed: every weight is overwritten next
    checkpoint.restore(model)
    return model, spec


def model_spec(name: str, classes: int = 2) -> ModelSpec:
    """The spec of model ``name`` for ``classes`` classes: the chapter's for two, softmax outputs above."""
    if name not in MODELS:
        raise ArgumentError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    if classes == 2:
        return MODELS[name]
    base = MULTICLASS_MODELS[name]
    return replace(base, sizes=(*base.sizes[:-1], classes),
                   description=base.description.rsplit("-> ", 1)[0] + f"-> {classes}")


def _spec_of(checkpoint: ckpt.Checkpoint) -> ModelSpec:
    arch = checkpoint.architecture
    spec = None
    sizes = arch.get("sizes")
    kind = arch.get("kind")
    known_kind = isinstance(kind, str) and kind in MODELS     # a file's kind may be any JSON value
    if known_kind and isinstance(sizes, list) and sizes and isinstance(sizes[-1], int) \
            and not isinstance(sizes[-1], bool) and sizes[-1] >= 1:
        spec = model_spec(kind, max(sizes[-1], 2))
    if spec is None or arch != spec.architecture:
        known = ", ".join(f"{s.name} ({_sizes(s)})" for s in MODELS.values())
        raise CheckpointError(f"{checkpoint.path}: holds an unknown model architecture {json.dumps(arch)}; "
                              f"this version knows {known} (or their ten-class forms)")
    return spec


def _sizes(spec: ModelSpec) -> str:
    return "-".join(map(str, spec.sizes))


def _split_seed(seed: int) -> tuple[int, int]:
    """Independent seeds for the initial weights and for the shuffling, both decided by ``seed``."""
    init_seed, shuffle_seed = np.random.SeedSequence(seed).generate_state(2)
    return int(init_seed), int(shuffle_seed)


# --------------------------------------------------------------------------------------------------
# Data and the baseline
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Dataset:
    """Training arrays: features (N, 784) float32 in [0, 1], and targets.

    Two classes are the chapter's task: targets (N, 1) float32, 1 for a 3. More classes (``vocab`` names
    them) have targets (N,) int64, class indices, for softmax and cross-entropy.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    source: str
    fingerprint: str      # a hash of the pixels and labels, so a resumed run can check it has the same data
    vocab: tuple[str, ...] = ("3", "7")

    @property
    def classes(self) -> int:
        return len(self.vocab)

    def __post_init__(self) -> None:
        # Every later step (batches, epochs, accuracy) assumes these shapes; an empty split would
        # otherwise surface as a division by zero mid-training, or a learning-rate sweep that never ends.
        binary = self.classes == 2
        for split in ("train", "valid"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            good_y = np.ndim(y) == 2 and np.shape(y)[1] == 1 if binary else np.ndim(y) == 1
            if np.ndim(x) != 2 or not good_y or len(x) != len(y):
                raise DataError(f"{self.source}: {split} features {np.shape(x)} and targets {np.shape(y)}; "
                                f"expected (N, pixels) and {'(N, 1)' if binary else '(N,)'}")
            if len(x) == 0:
                raise DataError(f"{self.source}: the {split} split holds no images")


def prepare(data: MnistData | LabelledImages) -> Dataset:
    """Features and targets for training, from images and labels: the chapter's 3-vs-7 from
    :class:`~microgradx.data.MnistData`, class indices from :class:`~microgradx.data.LabelledImages`."""
    digest = hashlib.sha256()
    for arr in (data.train_images, data.train_labels, data.valid_images, data.valid_labels):
        digest.update(np.ascontiguousarray(arr).tobytes())
    if isinstance(data, LabelledImages):
        for images in (data.train_images, data.valid_images):
            if images.shape[1:] != IMAGE_SHAPE:
                raise DataError(f"{data.source}: images are {images.shape[2]}x{images.shape[1]} pixels; the "
                                "models take 28x28")
        if len(data.vocab) == 2:
            # Two classes are the chapter's task: target 1 for the first class, as 3 is before 7.
            y_train, y_valid = ((labels == 0).astype(np.float32).reshape(-1, 1)
                                for labels in (data.train_labels, data.valid_labels))
        else:
            y_train, y_valid = data.train_labels.astype(np.int64), data.valid_labels.astype(np.int64)
        return Dataset(to_features(data.train_images), y_train, to_features(data.valid_images), y_valid,
                       source=data.source, fingerprint=digest.hexdigest()[:16], vocab=tuple(data.vocab))
    return Dataset(
        to_features(data.train_images), to_targets(data.train_labels),
        to_features(data.valid_images), to_targets(data.valid_labels),
        source=data.source, fingerprint=digest.hexdigest()[:16],
    )


def task_of(classes: int) -> tuple[Callable[[Any, Any], Value], Callable[[Any, Any], float]]:
    """The loss and the accuracy for ``classes`` classes: the chapter's mnist_loss and sign accuracy for
    two, cross-entropy and the most probable class for more."""
    return (mnist_loss, accuracy) if classes == 2 else (cross_entropy, class_accuracy)


def pixel_similarity_accuracy(data: MnistData | LabelledImages) -> float:
    """Valid accuracy of the chapter's baseline: call an image a 3 when it is closer to the mean 3.

    The "ideal" 3 and 7 are the pixel-wise means of the training 3s and 7s; the distance is fastbook's
    ``mnist_distance(a, b) = (a - b).abs().mean((-1, -2))``, the mean absolute difference (L1). The
    figure is the plain fraction of valid images classified correctly, the same metric as the models'
    (the book averages the two per-digit accuracies instead; on a balanced set the two agree closely).
    """
    if isinstance(data, LabelledImages):
        return _nearest_mean_accuracy(data)
    is_3, is_7 = data.train_labels == 3, data.train_labels == 7
    if not (is_3.any() and is_7.any()):
        raise DataError(f"{data.source}: the training split needs both 3s and 7s")
    train = data.train_images.astype(np.float32) / 255
    mean3, mean7 = train[is_3].mean(axis=0), train[is_7].mean(axis=0)
    valid = data.valid_images.astype(np.float32) / 255
    closer_to_3 = np.abs(valid - mean3).mean(axis=(-1, -2)) < np.abs(valid - mean7).mean(axis=(-1, -2))
    return float(np.mean(closer_to_3 == (data.valid_labels == 3)))


def _nearest_mean_accuracy(data: LabelledImages) -> float:
    """The baseline for any classes: each valid image gets the class of the nearest mean image (L1)."""
    train = data.train_images.astype(np.float32) / 255
    means = np.stack([train[data.train_labels == c].mean(axis=0) for c in range(len(data.vocab))])
    valid = data.valid_images.astype(np.float32) / 255
    right = 0
    for i in range(0, len(valid), 500):      # (500, classes, 28, 28) at a time: a few tens of MB
        distances = np.abs(valid[i:i + 500, None] - means).mean(axis=(-1, -2))
        right += int((distances.argmin(axis=1) == data.valid_labels[i:i + 500]).sum())
    return right / len(valid)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run. :meth:`for_model` fills the chapter's defaults for a model."""

    model: str = "linear"
    epochs: int = 20
    lr: float = 1.0
    batch_size: int = 256
    seed: int = 0
    compile: bool = True    # each batch's step replayed by mg.compile: the same numbers, faster
    # The rate over the run: "constant", or "cosine" / "linear" from lr down to 0 over all the epochs
    # (set per batch by learner.LRScheduleCallback). A checkpoint without it was trained at a constant rate.
    schedule: str = "constant"

    def __post_init__(self) -> None:
        model_spec(self.model)
        if self.schedule not in SCHEDULES:
            raise ArgumentError(f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size"):
            n = getattr(self, name)
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ArgumentError(f"{name} must be a positive integer, got {n!r}")
        if not (_is_number(self.lr) and np.isfinite(self.lr) and self.lr > 0):
            raise ArgumentError(f"lr must be a positive number, got {self.lr!r}")
        object.__setattr__(self, "lr", float(self.lr))    # frozen: set once, as a plain float
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ArgumentError(f"seed must be a non-negative integer, got {self.seed!r}")

    @classmethod
    def for_model(cls, model: str = "linear", *, epochs: int | None = None, lr: float | None = None,
                  batch_size: int | None = None, seed: int | None = None, classes: int = 2,
                  compile: bool = True, schedule: str | None = None) -> TrainConfig:  # noqa: A002
        """The settings of ``model`` for ``classes`` classes (the chapter's for two), with any of them
        overridden (None keeps the default)."""
        spec = model_spec(model, classes)
        return cls(model=model, epochs=spec.epochs if epochs is None else epochs,
                   lr=spec.lr if lr is None else lr,
                   batch_size=spec.batch_size if batch_size is None else batch_size,
                   seed=0 if seed is None else seed, compile=compile,
                   schedule=spec.schedule if schedule is None else schedule)


@dataclass(frozen=True)
class EpochStats:
    """One row of the training table."""

    epoch: int
    train_loss: float       # mean of the epoch's batch losses, weighted by batch size
    valid_loss: float
    valid_accuracy: float
    seconds: float = field(default=0.0, compare=False)   # wall time: not part of what must reproduce


class Trainer:
    """A training run of a built-in model: a :class:`~microgradx.learner.Learner` with the model's SGD and a
    seeded, shuffling loader, advanced one epoch at a time, with the run's settings kept for its checkpoint.

    ``Trainer(config, dataset)`` starts afresh; :meth:`resume` continues from a checkpoint.
    """

    def __init__(self, config: TrainConfig, dataset: Dataset) -> None:
        self.config = config
        self.dataset = dataset
        self.spec = model_spec(config.model, dataset.classes)
        init_seed, shuffle_seed = _split_seed(config.seed)
        self.model = self.spec.build(init_seed)
        self.loader = DataLoader(dataset.x_train, dataset.y_train, batch_size=config.batch_size, shuffle=True,
                                 seed=shuffle_seed)
        valid = DataLoader(dataset.x_valid, dataset.y_valid,
                           batch_size=_eval_batch(self.spec, len(dataset.x_valid)))
        loss_func, metric = task_of(dataset.classes)

        def opt_func(params: Any, lr: float) -> SGD:
            return SGD(params, lr=lr, momentum=self.spec.momentum)

        # The schedule spans the whole run (config.epochs), though fit() trains one epoch per call.
        schedule = [] if config.schedule == "constant" else \
            [LRScheduleCallback(config.schedule, n_epoch=config.epochs)]
        self.learner = Learner(DataLoaders(self.loader, valid, vocab=list(dataset.vocab)), self.model,
                               loss_func, opt_func=opt_func, lr=config.lr, metrics=[metric], cbs=schedule,
                               progress=False)
        self.optimizer = self.learner.opt
        self.history: list[EpochStats] = []
        self._steps: dict[bool, Callable[..., float]] = {}

    def use_step(self) -> None:
        """Give the learner its per-batch step: compiled unless ``config.compile`` is False (each kind
        made once, so a compiled step keeps its traces). Cross-entropy's check of the labels is a guard
        of the trace, so the ten-digit tasks compile too and a bad label still raises at every step."""
        compiled = self.config.compile
        if compiled not in self._steps:
            self._steps[compiled] = batch_step(self.model, self.learner.loss_func, compiled)
        self.learner.step_fn = self._steps[compiled]

    @property
    def epoch(self) -> int:
        """The number of epochs completed."""
        return len(self.history)

    @classmethod
    def resume(cls, path: str | Path, dataset: Dataset, epochs: int | None = None) -> Trainer:
        """Continue the run saved in checkpoint ``path``, on the same data, up to ``epochs`` in total.

        The model, learning rate, schedule, batch size and seed come from the checkpoint. A schedule spans
        the run's epochs in total, so with a larger ``epochs`` the rest of the run follows the longer
        schedule (from where the shorter one left off, not from its start).

        Raises:
            CheckpointError: the file is unreadable or not a training checkpoint, or ``dataset`` is not the
                data it was trained on.
        """
        checkpoint = ckpt.load_checkpoint(path)
        spec = _spec_of(checkpoint)
        config = _config_of(checkpoint, spec)
        if epochs is not None:
            config = replace(config, epochs=epochs)
        data_info = checkpoint.extra.get("data", {})
        if not isinstance(data_info, dict) or data_info.get("fingerprint") != dataset.fingerprint:
            source = data_info.get("source", "?") if isinstance(data_info, dict) else "?"
            raise CheckpointError(f"{checkpoint.path}: was trained on other data ({source}), not on "
                                  f"{dataset.source}; pass the same --data to resume")
        if len(checkpoint.history) != checkpoint.epoch:
            raise CheckpointError(f"{checkpoint.path}: bad metadata (history has {len(checkpoint.history)} "
                                  f"epochs, epoch is {checkpoint.epoch})")
        trainer = cls(config, dataset)
        checkpoint.restore(trainer.model, trainer.optimizer)
        try:
            trainer.history = [EpochStats(**row) for row in checkpoint.history]
        except TypeError:
            raise CheckpointError(f"{checkpoint.path}: bad metadata (history rows)") from None
        learner = trainer.learner
        learner.epoch = trainer.epoch
        learner.recorder.values = [[h.train_loss, h.valid_loss, h.valid_accuracy] for h in trainer.history]
        for _ in range(trainer.epoch):
            iter(trainer.loader)    # draws that epoch's permutation, as the interrupted run did
        return trainer

    def train_epoch(self, on_batch: Callable[[], None] | None = None) -> EpochStats:
        """One pass over the training data (a step per batch), then the validation figures."""
        work = max(self.config.batch_size, len(self.dataset.x_valid))
        self.use_step()
        with threads_for(_matmul_work(self.model, work)):
            self.learner.fit(self.epoch + 1, cbs=[_EachBatch(on_batch)] if on_batch is not None else None)
        rec = self.learner.recorder
        stats = EpochStats(self.epoch + 1, *rec.values[-1], seconds=rec.seconds[-1])
        self.history.append(stats)
        return stats

    def save(self, path: str | Path) -> Path:
        """Write the run's checkpoint atomically."""
        return ckpt.save_checkpoint(
            path, self.model, self.spec.architecture, optimizer=self.optimizer, epoch=self.epoch,
            history=[asdict(h) for h in self.history],
            extra={"config": asdict(self.config), "vocab": list(self.dataset.vocab),
                   "data": {"source": self.dataset.source, "fingerprint": self.dataset.fingerprint}},
        )

    def fit(self, out_dir: str | Path | None = None,
            on_epoch: Callable[[EpochStats], None] | None = None,
            on_batch: Callable[[], None] | None = None) -> list[EpochStats]:
        """Train until ``config.epochs`` epochs are done, writing a checkpoint after every epoch.

        With ``out_dir``, the checkpoint goes to ``out_dir/checkpoint.safetensors`` (replaced atomically each
        epoch, so an interruption leaves the last complete one). Returns the whole history.
        """
        path = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)     # now, not after an epoch's work
        while self.epoch < self.config.epochs:
            stats = self.train_epoch(on_batch)
            if path is not None:
                self.save(path)
            if on_epoch is not None:
                on_epoch(stats)
        return self.history


def batch_step(model: Module, loss_func: Callable[[Any, Any], Any],
               compiled: bool = True) -> Callable[..., float]:
    """A :attr:`Learner.step_fn <microgradx.learner.Learner.step_fn>` for ``model``: one batch's loss,
    its gradients left on the weights; with ``compiled``, traced once per batch shape by
    :func:`microgradx.compile` and replayed after."""
    def step(xb: Any, yb: Any) -> Any:
        loss = loss_func(model(xb), yb)
        loss.backward()
        return loss
    run = compile_step(step) if compiled else step

    def step_fn(_model: Module, _loss_func: Any, xb: Any, yb: Any) -> float:
        return float(data_of(run(xb, yb)))
    return step_fn


def _config_of(checkpoint: ckpt.Checkpoint, spec: ModelSpec) -> TrainConfig:
    saved = checkpoint.extra.get("config")
    try:
        config = TrainConfig(**saved)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{checkpoint.path}: not a training checkpoint (no usable run settings: {e})") \
            from None
    if config.model != spec.name:
        raise CheckpointError(f"{checkpoint.path}: its settings name the {config.model} model but its "
                              f"weights are of the {spec.name} model")
    return config


class _EachBatch(Callback):
    def __init__(self, on_batch: Callable[[], None]) -> None:
        self.on_batch = on_batch

    def after_batch(self) -> None:
        self.on_batch()


def _eval_batch(spec: ModelSpec, rows: int) -> int:
    # The dense models take the whole split at once; a CNN's unfolded windows (25 taps of 6 channels of
    # 28x28 per image) would take gigabytes for MNIST's 10,000 test images, so it goes a thousand at a time.
    return min(rows, 1000) if spec.name == "cnn" else rows


def evaluate(model: Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(loss, accuracy)`` of ``model`` on ``x``, ``y``, with no graph recorded: mnist_loss and the sign
    accuracy for targets (N, 1), cross-entropy and the most probable class for class indices (N,)."""
    loss_func, metric = task_of(2 if np.ndim(y) == 2 else 3)
    step = 1000 if any(isinstance(m, Conv2d) for m in model.modules()) else max(len(x), 1)    # as _eval_batch
    loss = right = 0.0
    with no_grad(), threads_for(_matmul_work(model, min(len(x), step))):
        for i in range(0, len(x), step):
            out, yb = model(x[i:i + step]), y[i:i + step]
            loss += float(loss_func(out, yb).data) * len(yb)
            right += metric(out, yb) * len(yb)
    return loss / len(x), right / len(x)


def predict_proba(model: Module, x: np.ndarray) -> np.ndarray:
    """For a model of one output, the probability that each row of ``x`` (N, 784) is a 3, (N,): the
    sigmoid of the output. For more outputs, the softmax: (N, classes)."""
    with no_grad(), threads_for(_matmul_work(model, len(x))):
        out = model(x)
        if out.shape[-1] == 1:
            return np.asarray(data_of(sigmoid(out))).reshape(-1)
        return np.asarray(data_of(softmax(out, axis=-1)))


def _matmul_work(model: Module, rows: int) -> int:
    """Multiply-adds in the largest matrix product of ``model`` on ``rows`` inputs: for layers of
    weights (in, out), the largest weight's size times the rows (the forward and both backward
    products of a layer all have that many)."""
    return rows * max((p.size for p in model.parameters()), default=0)


# --------------------------------------------------------------------------------------------------
# Learning-rate finder
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LrFindResult:
    """Valid loss after a short training at each learning rate, and what it suggests."""

    lrs: list[float]
    losses: list[float]           # valid loss after `steps` steps at each rate (may be nan or inf)
    initial_loss: float           # valid loss of the untrained model every rate starts from
    steps: int
    best_lr: float | None         # the rate with the lowest loss; None when no rate lowered it
    suggested: tuple[float, float] | None
    too_small: list[float]
    too_large: list[float]


def lr_find(dataset: Dataset, model: str = "linear", *, lrs: Sequence[float] | None = None, steps: int = 100,
            batch_size: int = 256, seed: int = 0, on_step: Callable[[], None] | None = None,
            compile: bool = True) -> LrFindResult:  # noqa: A002 - TrainConfig's name
    """Train a fresh copy of the same seeded model for ``steps`` batches at each rate in ``lrs``.

    Every rate starts from the same initial weights and sees the same batches, so the rates differ in the
    learning rate alone, and each point answers "where would `steps` steps at this rate get me?". (fastai's
    finder instead raises the rate during one run; it is quicker, but each point then depends on all the
    rates before it.) The default sweep is 19 rates spaced evenly in log scale from 1e-4 to 100.

    Judged by the improvement of the valid loss over the untrained model's: a rate below the best one is
    **too small** when it achieved less than half the best improvement (it learns, slowly); a rate above
    the best one is **too large** when it did (it bounced, diverged, or saturated the model into a dead
    end). The **suggested** range is the run of rates around the best whose improvement is at least 90%
    of the best: the low end is the safe choice, the high end the fastest that still behaved.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ArgumentError(f"steps must be a positive integer, got {steps!r}")
    lrs = [float(lr) for lr in (np.geomspace(1e-4, 100, 19) if lrs is None else lrs)]
    if not lrs or any(not (np.isfinite(lr) and lr > 0) for lr in lrs):
        raise ArgumentError(f"learning rates must be positive numbers, got {lrs}")
    lrs.sort()
    # Every trainer below builds the same initial weights from the same seed; this copy measures them.
    initial_loss, _ = evaluate(build_model(model, seed, dataset.classes), dataset.x_valid, dataset.y_valid)

    losses = []
    for lr in lrs:
        # Each rate is tried as it is, with no schedule: the question is what that rate does.
        config = TrainConfig.for_model(model, lr=lr, batch_size=batch_size, seed=seed,
                                       classes=dataset.classes, compile=compile, schedule="constant")
        trainer = Trainer(config, dataset)
        # numpy warnings (overflow in exp) are expected at the rates too large to work: they show as
        # non-finite losses in the result, not as noise on the terminal.
        trainer.use_step()
        with np.errstate(all="ignore"), threads_for(_matmul_work(trainer.model, batch_size)):
            try:
                trainer.learner.fit(-(-steps // len(trainer.loader)), cbs=[_StopAfter(steps, on_step)])
            except TrainingDivergedError:
                pass    # the rate is too large; the loss below says how much
            losses.append(evaluate(trainer.model, dataset.x_valid, dataset.y_valid)[0])

    gains = [initial_loss - loss if np.isfinite(loss) else -np.inf for loss in losses]
    best = int(np.argmax(gains))
    best_gain = gains[best]
    if best_gain <= 0:
        return LrFindResult(lrs, losses, initial_loss, steps, None, None, [], list(lrs))
    weak = [g < best_gain / 2 for g in gains]
    too_small = [lr for i, lr in enumerate(lrs) if i < best and weak[i]]
    too_large = [lr for i, lr in enumerate(lrs) if i > best and weak[i]]
    lo = hi = best
    while lo > 0 and gains[lo - 1] >= 0.9 * best_gain:
        lo -= 1
    while hi < len(lrs) - 1 and gains[hi + 1] >= 0.9 * best_gain:
        hi += 1
    return LrFindResult(lrs, losses, initial_loss, steps, lrs[best], (lrs[lo], lrs[hi]), too_small, too_large)


# --------------------------------------------------------------------------------------------------
# Output files
# --------------------------------------------------------------------------------------------------

class _StopAfter(Callback):
    """Ends the fit after ``steps`` batches, calling ``on_step`` after each."""

    def __init__(self, steps: int, on_step: Callable[[], None] | None) -> None:
        self.steps, self.on_step, self.done = steps, on_step, 0

    def after_batch(self) -> None:
        self.done += 1
        if self.on_step is not None:
            self.on_step()
        if self.done == self.steps:
            raise CancelFitException


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with ckpt.atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, allow_nan=False)
        f.write("\n")
    return Path(path)


def plot_history(history: Sequence[EpochStats], path: str | Path, baseline: float | None = None,
                 title: str = "") -> Path:
    """PNG of the train and valid loss (left) and the valid accuracy (right) per epoch, written atomically."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(figsize=(10, 4))
    epochs = [h.epoch for h in history]
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h.train_loss for h in history], marker=".", label="train loss")
    ax_loss.plot(epochs, [h.valid_loss for h in history], marker=".", label="valid loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("mnist_loss")
    ax_loss.legend()
    ax_acc.plot(epochs, [h.valid_accuracy for h in history], marker=".", color="C2", label="valid accuracy")
    if baseline is not None:
        ax_acc.axhline(baseline, color="grey", linestyle="--",
                       label=f"pixel-similarity baseline ({baseline:.4f})")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    # Below the axes, not inside: no corner of the plot is free of both the curve and the baseline
    # on every run (the full data's curve sits just above the baseline, in the lower right).
    ax_acc.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=9, frameon=False)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
    if title:
        fig.suptitle(title)
    return _save_figure(fig, path)


def plot_lr_find(result: LrFindResult, path: str | Path, title: str = "") -> Path:
    """PNG of valid loss against learning rate (log scale), with the suggested range shaded."""
    fig = _figure(figsize=(7, 4.5))
    ax = fig.subplots()
    finite = [(lr, loss) for lr, loss in zip(result.lrs, result.losses, strict=True) if np.isfinite(loss)]
    if finite:
        ax.plot(*zip(*finite, strict=True), marker="o", label=f"valid loss after {result.steps} steps")
    ax.axhline(result.initial_loss, color="grey", linestyle="--", label="untrained")
    if result.suggested is not None:
        ax.axvspan(*result.suggested, color="C2", alpha=0.15, label="suggested range")
    if result.too_large:
        # Non-finite losses have no height: they are marked along the top edge instead.
        y_of = {lr: loss for lr, loss in zip(result.lrs, result.losses, strict=True)}
        finite_large = [lr for lr in result.too_large if np.isfinite(y_of[lr])]
        ax.plot(finite_large, [y_of[lr] for lr in finite_large], "x", color="C3", markersize=9,
                label="too large")
        lost = [lr for lr in result.too_large if not np.isfinite(y_of[lr])]
        if lost:
            ax.plot(lost, [0.97] * len(lost), "^", color="C3", transform=ax.get_xaxis_transform(),
                    label="diverged (loss not finite)")
    if len(result.lrs) == 1:      # one rate: give it room (matplotlib warns about an empty range)
        ax.set_xlim(result.lrs[0] / 3, result.lrs[0] * 3)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("mnist_loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    if title:
        ax.set_title(title)
    return _save_figure(fig, path)


def _figure(figsize: tuple[float, float]) -> Any:
    # The object-oriented API with the Agg canvas, not pyplot: no global backend or figure state, no
    # display needed, and nothing left open between calls.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig: Any, path: str | Path) -> Path:
    with ckpt.atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return Path(path)
