"""fastai's ``Learner`` for any model: the chapter's training loop, written once, with callbacks.

The chapter ends with ``Learner(dls, nn.Linear(28*28, 1), opt_func=SGD, loss_func=mnist_loss,
metrics=batch_accuracy).fit(10, lr=1)``; this module gives the same call in microgradx names::

    learn = mg.Learner(dls, mg.nn.Linear(28 * 28, 1), loss_func=mg.mnist_loss, metrics=mg.accuracy)
    learn.fit(10, lr=1)

One epoch is: for each training batch, :func:`loss_and_grads` (forward, loss, backward), then the
optimizer's step; then the validation loss and metrics, with no graph recorded. Every other feature (the
recorder, the progress bar and table, early stopping, a learning-rate schedule, checkpoints) is a
:class:`Callback` that watches the events ``before_fit``, ``before_epoch``, ``before_batch``,
``after_batch``, ``after_epoch``, ``after_fit``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint as ckpt
from .data import DataLoaders
from .engine import Value, data_of, no_grad
from .errors import ArgumentError, DataError, ShapeError, TrainingDivergedError
from .functional import softmax
from .nn import Module
from .ops import sigmoid
from .optim import SGD, Optimizer, _is_number

__all__ = [
    "Learner", "Callback", "Recorder", "ProgressCallback", "EarlyStoppingCallback", "SaveEachEpochCallback",
    "LRScheduleCallback", "SCHEDULES", "sched_constant", "sched_cos", "sched_lin",
    "CancelFitException", "LrFindResult", "loss_and_grads",
]

LossFunc = Callable[[Any, Any], Value]
Metric = Callable[[Any, Any], float]


class CancelFitException(Exception):  # noqa: N818 (fastai's name)
    """Raised by a callback to end :meth:`Learner.fit` after the current event; ``after_fit`` still runs."""


def loss_and_grads(model: Module, loss_func: LossFunc, xb: np.ndarray, yb: np.ndarray) -> float:
    """One batch's loss, with the gradients of ``model``'s parameters accumulated by ``backward()``.

    The one place a training step computes anything: a compiled version of the step replaces this
    function (see :attr:`Learner.step_fn`), and the optimizer's update stays outside it.
    """
    loss = loss_func(model(xb), yb)
    loss.backward()
    return float(loss.data)


# --------------------------------------------------------------------------------------------------
# Callbacks
# --------------------------------------------------------------------------------------------------

class Callback:
    """Override any of the six events; ``self.learn`` is the :class:`Learner` being trained.

    ``learn.epoch`` counts the epochs completed; in ``after_epoch`` the callbacks that run after the
    :class:`Recorder` (``order`` above -10) see it count the epoch just finished. In the batch events,
    ``learn.iter`` is the batch's index in its epoch (of ``learn.n_iter``), ``learn.xb`` and ``learn.yb``
    the batch, and, after it, ``learn.loss`` its loss.

    Callbacks run in ascending ``order``, then in the order given.
    """

    order = 0
    learn: Learner

    def before_fit(self) -> None: ...
    def before_epoch(self) -> None: ...
    def before_batch(self) -> None: ...
    def after_batch(self) -> None: ...
    def after_epoch(self) -> None: ...
    def after_fit(self) -> None: ...


EVENTS = ("before_fit", "before_epoch", "before_batch", "after_batch", "after_epoch", "after_fit")


class Recorder(Callback):
    """Keeps every batch's training loss and, per epoch, ``[train loss, valid loss, *metrics]``.

    ``values`` has fastai's order; ``metric_names`` labels its columns (after the epoch column).
    """

    order = -10     # before the others, so that they see the epoch's row in after_epoch

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.values: list[list[float]] = []
        self.seconds: list[float] = []

    @property
    def metric_names(self) -> list[str]:
        return ["epoch", "train_loss", "valid_loss", *(_name_of(m) for m in self.learn.metrics)]

    def before_epoch(self) -> None:
        self._start = time.perf_counter()
        self._total, self._count = 0.0, 0

    def after_batch(self) -> None:
        n = len(self.learn.yb)
        self.losses.append(self.learn.loss)
        self._total += self.learn.loss * n
        self._count += n

    def after_epoch(self) -> None:
        train_loss = self._total / max(self._count, 1)
        self.values.append([train_loss, *self.learn.validate()])
        self.seconds.append(time.perf_counter() - self._start)

    def plot_loss(self, skip_start: int = 0) -> Any:
        """A matplotlib Figure: the loss of every training batch, and the valid loss at each epoch's end."""
        fig = _figure((7, 4))
        ax = fig.subplots()
        steps = np.arange(len(self.losses))
        ax.plot(steps[skip_start:], self.losses[skip_start:], label="train")
        if self.values:
            per_epoch = len(self.losses) // len(self.values)
            ends = [per_epoch * (i + 1) - 1 for i in range(len(self.values))]
            ax.plot(ends, [v[1] for v in self.values], marker="o", label="valid")
        ax.set_xlabel("batch")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
        return fig


class ProgressCallback(Callback):
    """A tqdm bar over the batches (on stderr, where the terminal shows it) and one table row per epoch.

    ``write`` prints a line (default: through tqdm, so the bar stays below the table). ``times=True`` adds
    each epoch's wall time; it is off by default so that a seeded run prints the same table every time.
    """

    order = 10

    def __init__(self, show_bar: bool | None = None, write: Callable[[str], None] | None = None,
                 times: bool = False) -> None:
        self.show_bar, self.times = show_bar, times
        self.write = write or _tqdm_write

    def before_fit(self) -> None:
        from tqdm import tqdm

        names = self.learn.recorder.metric_names
        self.write("  ".join(f"{n:>10}" for n in names) + ("  " + f"{'time':>8}" if self.times else ""))
        total = self.learn.n_epoch - self.learn.epoch
        # disable=None: no bar when stderr is not a terminal (tests, notebooks, logs).
        self.bar = tqdm(total=total * len(self.learn.dls.train), file=sys.stderr, leave=False, unit="batch",
                        disable=None if self.show_bar is None else not self.show_bar, dynamic_ncols=True)

    def before_epoch(self) -> None:
        self.bar.set_description(f"epoch {self.learn.epoch + 1}/{self.learn.n_epoch}")

    def after_batch(self) -> None:
        self.bar.update()

    def after_epoch(self) -> None:
        rec = self.learn.recorder
        row = "  ".join([f"{self.learn.epoch:>10}", *(f"{v:>10.4f}" for v in rec.values[-1])])
        self.write(row + (f"  {rec.seconds[-1]:>7.2f}s" if self.times else ""))

    def after_fit(self) -> None:
        self.bar.close()


def _tqdm_write(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)


class EarlyStoppingCallback(Callback):
    """Stop when ``monitor`` (a column of :attr:`Recorder.metric_names`) has not improved by ``min_delta``
    for ``patience`` epochs: the chapter's "stop when the model gets worse". Losses improve downwards,
    every other column upwards, unless ``comp`` (``np.less`` or ``np.greater``) says otherwise."""

    order = 0

    def __init__(self, monitor: str = "valid_loss", comp: Callable[[Any, Any], Any] | None = None,
                 min_delta: float = 0.0, patience: int = 1) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ArgumentError(f"EarlyStoppingCallback: patience must be a positive integer, "
                                f"got {patience!r}")
        self.monitor, self.min_delta, self.patience = monitor, float(min_delta), patience
        self.comp = comp if comp is not None else (np.less if "loss" in monitor else np.greater)

    def before_fit(self) -> None:
        names = self.learn.recorder.metric_names[1:]
        if self.monitor not in names:
            raise ArgumentError(f"EarlyStoppingCallback: no column {self.monitor!r}; choose from "
                                f"{', '.join(names)}")
        self.column = names.index(self.monitor)
        self.best, self.wait, self.stopped_epoch = None, 0, None

    def after_epoch(self) -> None:
        value = self.learn.recorder.values[-1][self.column]
        shift = -self.min_delta if self.comp is np.less else self.min_delta
        if self.best is None or self.comp(value - shift, self.best):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = self.learn.epoch
            raise CancelFitException


class SaveEachEpochCallback(Callback):
    """After every epoch, the Learner's checkpoint written atomically to ``path`` (the last complete epoch
    is what an interruption leaves)."""

    order = 20      # after the recorder and the table

    def __init__(self, path: str | Path, **save_kwargs: Any) -> None:
        self.path, self.save_kwargs = Path(path), save_kwargs

    def before_fit(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)     # now, not after an epoch's work

    def after_epoch(self) -> None:
        self.learn.save(self.path, **self.save_kwargs)


def sched_constant(pct: float) -> float:
    """The same rate throughout: 1 at every point of the training."""
    return 1.0


def sched_cos(pct: float) -> float:
    """Half a cosine from 1 at the start down to 0 at the end (``pct`` the fraction of training done)."""
    return 0.5 * (1.0 + math.cos(math.pi * pct))


def sched_lin(pct: float) -> float:
    """A straight line from 1 at the start down to 0 at the end."""
    return 1.0 - pct


# The schedules by the names the command line and :class:`~microgradx.train.TrainConfig` use.
SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": sched_constant, "cosine": sched_cos, "linear": sched_lin,
}


class LRScheduleCallback(Callback):
    """Sets the optimizer's rate before every batch to ``learn.lr * schedule(pct)``, where ``pct`` is the
    fraction of the training done, counted in batches: ``(epoch + batch / batches) / n_epoch``.

    ``schedule`` is a name of :data:`SCHEDULES` ("cosine", "linear", "constant") or any function of
    ``pct`` in [0, 1) returning a positive factor. ``n_epoch`` is the length of the training the schedule
    spans; by default the ``n_epoch`` of each :meth:`Learner.fit`, and it must be given when the training
    is split over several fits (as :class:`~microgradx.train.Trainer` does, one epoch per fit).

    The rate depends on the position alone, not on what came before, so a Learner resumed from a
    checkpoint (:meth:`Learner.load`) continues the schedule where it stopped. Between epochs and after
    the fit, the optimizer holds ``learn.lr`` again, so a checkpoint records the base rate.
    """

    order = -20     # before every other callback's before_batch, so that they see the batch's rate

    def __init__(self, schedule: str | Callable[[float], float] = "cosine",
                 n_epoch: int | None = None) -> None:
        if isinstance(schedule, str):
            if schedule not in SCHEDULES:
                raise ArgumentError(f"LRScheduleCallback: unknown schedule {schedule!r}; choose from "
                                    f"{', '.join(SCHEDULES)} or pass a function of the fraction done")
            schedule = SCHEDULES[schedule]
        elif not callable(schedule):
            raise ArgumentError(f"LRScheduleCallback: schedule must be a name or a function, got "
                                f"{type(schedule).__name__}")
        if n_epoch is not None and (isinstance(n_epoch, bool) or not isinstance(n_epoch, int) or n_epoch < 1):
            raise ArgumentError(f"LRScheduleCallback: n_epoch must be a positive integer, got {n_epoch!r}")
        self.schedule, self.n_epoch = schedule, n_epoch

    def before_fit(self) -> None:
        total = self.n_epoch if self.n_epoch is not None else self.learn.n_epoch
        if self.learn.n_epoch > total:
            raise ArgumentError(f"LRScheduleCallback: the schedule spans {total} epochs, but fit asks for "
                                f"{self.learn.n_epoch}")
        self.total = total

    def before_batch(self) -> None:
        learn = self.learn
        pct = (learn.epoch + learn.iter / learn.n_iter) / self.total
        factor = self.schedule(pct)
        if not (_is_number(factor) and math.isfinite(factor) and factor > 0):
            raise ArgumentError(f"LRScheduleCallback: {_name_of(self.schedule)}({pct:.4g}) gave {factor!r}; "
                                "a schedule must give a positive factor of the rate")
        learn.opt.lr = learn.lr * float(factor)

    def after_epoch(self) -> None:
        self.learn.opt.lr = self.learn.lr

    def after_fit(self) -> None:
        self.learn.opt.lr = self.learn.lr


# --------------------------------------------------------------------------------------------------
# The Learner
# --------------------------------------------------------------------------------------------------

class Learner:
    """A model, its data, a loss and an optimizer, trained by :meth:`fit`.

    ``opt_func(params, lr=lr)`` builds the optimizer (:class:`~microgradx.optim.SGD` by default). Each
    metric takes ``(outputs, targets)`` of a validation batch and returns a number; the figure of an epoch
    is their mean weighted by batch size. ``cbs`` are added to the Learner's own :class:`Recorder` and
    :class:`ProgressCallback` (pass ``progress=False`` to print nothing).

    ``step_fn`` is the function that computes one batch's loss and gradients (:func:`loss_and_grads`);
    replace it to change how a step is computed (for instance by a compiled one).
    """

    def __init__(self, dls: DataLoaders, model: Module, loss_func: LossFunc,
                 opt_func: Callable[..., Optimizer] = SGD, lr: float = 1e-3,
                 metrics: Metric | Sequence[Metric] | None = None, cbs: Iterable[Callback] | None = None,
                 progress: bool = True) -> None:
        if not isinstance(dls, DataLoaders):
            raise ArgumentError(f"Learner: dls must be a DataLoaders, got {type(dls).__name__}")
        if not isinstance(model, Module):
            raise ArgumentError(f"Learner: model must be a microgradx Module, got {type(model).__name__}")
        _check_lr(lr)
        self.dls, self.model, self.loss_func, self.lr = dls, model, loss_func, float(lr)
        self.opt = opt_func(model.parameters(), lr=self.lr)
        self.metrics: list[Metric] = [] if metrics is None else \
            [metrics] if callable(metrics) else list(metrics)
        self.step_fn: Callable[[Module, LossFunc, np.ndarray, np.ndarray], float] = loss_and_grads
        self.recorder = Recorder()
        self.cbs: list[Callback] = []
        self.add_cbs([self.recorder, *([ProgressCallback()] if progress else []), *(cbs or [])])
        self.epoch = 0          # epochs completed
        self.n_epoch = 0
        self.iter = 0           # the batch of the epoch being trained, from 0
        self.n_iter = 0         # batches in an epoch
        self._checked = False

    def add_cbs(self, cbs: Iterable[Callback]) -> None:
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise ArgumentError(f"Learner: a callback must be a Callback, got {type(cb).__name__}")
            cb.learn = self
            self.cbs.append(cb)
        self.cbs.sort(key=lambda cb: cb.order)      # stable: equal orders keep the order given

    def _event(self, name: str) -> None:
        for cb in self.cbs:
            getattr(cb, name)()

    # ---- training ----

    def fit(self, n_epoch: int, lr: float | None = None, cbs: Iterable[Callback] | None = None) -> Learner:
        """Train until ``n_epoch`` epochs are done in total (a resumed Learner continues its count).

        ``lr`` replaces the learning rate for this and later fits. ``cbs`` are added for this fit only.

        Raises:
            ShapeError: the model's output does not fit ``loss_func`` with the data's targets.
            TrainingDivergedError: a loss or weight stopped being finite (the last epoch is not counted).
        """
        if isinstance(n_epoch, bool) or not isinstance(n_epoch, int) or n_epoch < 0:
            raise ArgumentError(f"fit: n_epoch must be a non-negative integer, got {n_epoch!r}")
        if lr is not None:
            _check_lr(lr)
            self.lr = self.opt.lr = float(lr)
        extra = list(cbs or [])
        self.add_cbs(extra)
        self.n_epoch = n_epoch
        try:
            self._event("before_fit")
            try:
                while self.epoch < self.n_epoch:
                    self._one_epoch()
            except CancelFitException:
                pass
            finally:
                self._event("after_fit")
        finally:
            self.cbs = [cb for cb in self.cbs if all(cb is not e for e in extra)]
        return self

    def _one_epoch(self) -> None:
        self.model.train()
        self.n_iter = len(self.dls.train)
        self._event("before_epoch")
        # numpy's overflow warnings would only say what the finiteness check below says, less clearly.
        with np.errstate(over="ignore", invalid="ignore"):
            for i, (xb, yb) in enumerate(self.dls.train):
                self.iter, self.xb, self.yb = i, xb, yb        # what the batch callbacks look at
                self._event("before_batch")
                self.loss = self._step(self.xb, self.yb)
                self._event("after_batch")
        # The recorder's after_epoch runs validation; the epoch counts once it is found finite, so the
        # callbacks after the recorder see `epoch` counting the epoch just finished (and save it).
        for cb in self.cbs:
            cb.after_epoch()
            if cb is self.recorder:
                self._check_finite()
                self.epoch += 1

    def _step(self, xb: np.ndarray, yb: np.ndarray) -> float:
        self.opt.zero_grad()
        if not self._checked:
            loss = self._checked_loss(xb, yb)
            self._checked = True
        else:
            loss = self.step_fn(self.model, self.loss_func, xb, yb)
        self.opt.step()
        return loss

    def _checked_loss(self, xb: np.ndarray, yb: np.ndarray) -> float:
        """The first batch's step, with a loss that refuses the model's output reported in its shapes."""
        try:
            return self.step_fn(self.model, self.loss_func, xb, yb)
        except (ShapeError, DataError) as e:
            with no_grad():
                out_shape = np.shape(data_of(self.model(xb)))
            raise ShapeError(f"Learner: the model's output of shape {out_shape} does not fit "
                             f"{_name_of(self.loss_func)} with targets of shape {np.shape(yb)} "
                             f"(dtype {np.asarray(yb).dtype}): {e}") from None

    def _check_finite(self) -> None:
        row = self.recorder.values[-1]
        bad = [name for name, v in zip(("train loss", "valid loss"), row[:2], strict=True)
               if not math.isfinite(v)]
        if not all(np.isfinite(p.data).all() for p in self.model.parameters()):
            bad.append("weights")
        if bad:
            self.recorder.values.pop()
            self.recorder.seconds.pop()
            raise TrainingDivergedError(
                f"training diverged in epoch {self.epoch + 1}: {', '.join(bad)} not finite; lr "
                f"{self.lr:g} is probably too large (lr_find shows which rates work)")

    def validate(self) -> list[float]:
        """``[valid loss, *metrics]`` over ``dls.valid``, each the mean weighted by batch size."""
        self.model.eval()
        totals, count = np.zeros(1 + len(self.metrics)), 0
        with no_grad(), np.errstate(over="ignore", invalid="ignore"):
            for xb, yb in self.dls.valid:
                out = self.model(xb)
                loss = float(data_of(self.loss_func(out, yb)))
                figures = [loss, *(float(m(out, yb)) for m in self.metrics)]
                totals += np.asarray(figures) * len(xb)
                count += len(xb)
        self.model.train()
        if count == 0:
            raise DataError("Learner: the validation DataLoader holds no samples")
        return [float(t) for t in totals / count]

    # ---- using the model ----

    def get_preds(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """The model's raw outputs on ``x``, in batches, with no graph recorded."""
        self.model.eval()
        with no_grad():
            outs = [np.asarray(data_of(self.model(x[i:i + batch_size])))
                    for i in range(0, len(x), batch_size)]
        self.model.train()
        return np.concatenate(outs) if outs else np.empty((0,))

    def predict(self, x: np.ndarray) -> tuple[Any, np.ndarray]:
        """The class of one sample ``x`` (shaped like one row of the data) and the probabilities.

        A model with one output is read as the chapter's: the probability is its sigmoid, and the class
        is 1 when it is above 0.5. Several outputs are softmaxed and the class is the most probable.
        With ``dls.vocab``, the class is its name. Returns ``(class, probabilities)``.
        """
        out = self.get_preds(np.asarray(x)[None])[0].reshape(-1)
        if out.size == 1:
            p = float(np.asarray(data_of(sigmoid(out)))[0])
            index, probs = int(p > 0.5), np.array([1 - p, p])
        else:
            probs = np.asarray(data_of(softmax(out)))
            index = int(np.argmax(probs))
        vocab = self.dls.vocab
        return (vocab[index] if vocab is not None else index), probs

    # ---- checkpoints ----

    def save(self, path: str | Path, architecture: dict[str, Any] | None = None,
             extra: dict[str, Any] | None = None) -> Path:
        """The weights, the optimizer's state, the epoch and the recorder's rows, atomically to ``path``."""
        names = self.recorder.metric_names[1:]
        history = [dict(zip(names, row, strict=True)) for row in self.recorder.values]
        return ckpt.save_checkpoint(path, self.model, architecture or {"kind": type(self.model).__name__},
                                    optimizer=self.opt, epoch=self.epoch, history=history, extra=extra)

    def load(self, path: str | Path, with_opt: bool = True) -> ckpt.Checkpoint:
        """Restore what :meth:`save` wrote (all or nothing); the next :meth:`fit` continues from its epoch.

        Raises:
            CheckpointError: the file is unreadable, or its weights or optimizer state do not fit.
        """
        checkpoint = ckpt.load_checkpoint(path)
        checkpoint.restore(self.model, self.opt if with_opt else None)
        names = self.recorder.metric_names[1:]
        self.recorder.values = [[float(row[n]) for n in names] for row in checkpoint.history
                                if all(n in row for n in names)]
        self.epoch = checkpoint.epoch
        if with_opt:
            self.lr = self.opt.lr
        return checkpoint

    # ---- learning-rate finder ----

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
                stop_div: bool = True) -> LrFindResult:
        """fastai's finder: one short run raising the rate exponentially from ``start_lr`` to ``end_lr``
        over ``num_it`` batches, recording each batch's loss (smoothed); it stops once the loss passes four
        times its minimum. The weights and the optimizer are put back as they were afterwards.

        The suggestion is the steepest descent of the smoothed loss, in the log of the rate.
        """
        if not (0 < start_lr < end_lr):
            raise ArgumentError(f"lr_find: need 0 < start_lr < end_lr, got {start_lr!r} and {end_lr!r}")
        weights, opt_state, old_lr = self.model.state_dict(), self.opt.state_dict(), self.opt.lr
        weights = {k: v.copy() for k, v in weights.items()}
        lrs, losses = [], []
        smooth, best, done = 0.0, math.inf, 0
        try:
            with np.errstate(all="ignore"):
                while done < num_it:
                    for xb, yb in self.dls.train:
                        lr = start_lr * (end_lr / start_lr) ** (done / max(num_it - 1, 1))
                        self.opt.lr = lr
                        loss = self._step(xb, yb)
                        done += 1
                        smooth = 0.98 * smooth + 0.02 * loss
                        value = smooth / (1 - 0.98 ** done)         # debiased, as fastai's
                        lrs.append(lr)
                        losses.append(value)
                        best = min(best, value)
                        if done == num_it or (stop_div and (not math.isfinite(value) or value > 4 * best)):
                            done = num_it
                            break
        finally:
            self.model.load_state_dict(weights)
            self.opt.load_state_dict(opt_state)
            self.opt.lr = old_lr
        return LrFindResult(lrs, losses, _steepest(lrs, losses))


@dataclass(frozen=True)
class LrFindResult:
    """The rates :meth:`Learner.lr_find` tried, the smoothed loss at each, and its suggestion."""

    lrs: list[float]
    losses: list[float]
    steep: float | None       # the rate where the loss fell fastest

    def plot(self) -> Any:
        """A matplotlib Figure of loss against learning rate (log scale), the suggestion marked."""
        fig = _figure((7, 4))
        ax = fig.subplots()
        ax.plot(self.lrs, self.losses)
        if self.steep is not None:
            ax.axvline(self.steep, color="C3", linestyle="--", label=f"steepest: {self.steep:.2g}")
            ax.legend()
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss (smoothed)")
        ax.grid(alpha=0.3, which="both")
        return fig


def _steepest(lrs: list[float], losses: list[float]) -> float | None:
    """The rate where the smoothed loss falls fastest against log(rate), the first tenth skipped: there
    the smoothing has seen too few batches for its slope to mean anything."""
    skip = len(lrs) // 10
    if len(lrs) - skip < 3:
        return None
    values = np.asarray(losses[skip:], dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    slopes = np.gradient(values, np.log(lrs[skip:]))
    return lrs[skip + int(np.nanargmin(slopes))] if np.isfinite(slopes).any() else None


def _check_lr(lr: Any) -> None:
    if not (_is_number(lr) and math.isfinite(lr) and lr > 0):
        raise ArgumentError(f"lr must be a positive number, got {lr!r}")


def _name_of(f: Any) -> str:
    return getattr(f, "__name__", type(f).__name__)


def _figure(figsize: tuple[float, float]) -> Any:
    # The object-oriented API with the Agg canvas, as train.py's plots: no pyplot state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig
