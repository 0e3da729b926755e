"""Losses and metrics, composed from engine ops (no derivative code here). Also ``microgradx.nn.functional``.

All losses take the model's raw outputs (logits or scores) and targets of the same shape, and return
the mean over all elements as a 0-d Value. Shapes must match exactly: ``(N, 1)`` predictions against
``(N,)`` targets would otherwise broadcast to an ``(N, N)`` loss that trains on nonsense without any
error, which is the most common silent bug in hand-written training loops.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from . import ops
from .engine import Value, data_of
from .errors import ShapeError
from .functional import softplus

__all__ = ["mnist_loss", "binary_cross_entropy_with_logits", "mse_loss", "max_margin_loss", "accuracy",
           "class_accuracy"]


def _check_shapes(name: str, predictions: Any, targets: Any) -> None:
    if np.shape(predictions) != np.shape(targets):
        raise ShapeError(
            f"{name}: predictions have shape {np.shape(predictions)} but targets {np.shape(targets)}; "
            "they must match (reshape the targets, e.g. to (N, 1))"
        )


def mnist_loss(predictions: Any, targets: Any) -> Value:
    """fastbook's loss for 3-vs-7: how far the sigmoid of each prediction is from its target, on average.

    ``p = sigmoid(predictions)``; the loss is ``1 - p`` where the target is 1 and ``p`` where it is 0,
    averaged. It is bounded in [0, 1], so a bad step cannot make it explode, but its gradient vanishes
    for confident predictions, right or wrong.
    """
    _check_shapes("mnist_loss", predictions, targets)
    p = ops.sigmoid(predictions)
    return ops.where(np.asarray(data_of(targets)) == 1, 1 - p, p).mean()


def binary_cross_entropy_with_logits(logits: Any, targets: Any) -> Value:
    """Mean of ``-[t log(sigmoid(x)) + (1 - t) log(1 - sigmoid(x))]`` over all elements.

    Computed as ``softplus(x) - t * x``, which is the same quantity written without the logarithm of a
    sigmoid: ``log(sigmoid(x))`` is ``-inf`` in floating point once ``sigmoid(x)`` rounds to 0 (x below
    about -104 in float32), while softplus stays finite for every x. Targets may be probabilities in [0, 1].
    """
    _check_shapes("binary_cross_entropy_with_logits", logits, targets)
    return (softplus(logits) - targets * logits).mean()


def mse_loss(predictions: Any, targets: Any) -> Value:
    """Mean squared error: ``mean((predictions - targets)**2)``."""
    _check_shapes("mse_loss", predictions, targets)
    diff = predictions - targets
    return (diff * diff).mean()


def max_margin_loss(scores: Any, labels: Any, parameters: Iterable[Value] = (), alpha: float = 0.0) -> Value:
    """The SVM-style loss of micrograd's demo: ``mean(relu(1 - label * score)) + alpha * sum(w**2)``.

    ``labels`` are -1 or +1. A sample costs nothing once its score has the right sign with a margin of at
    least 1. The optional L2 term sums the squares of every array in ``parameters``, scaled by ``alpha``.
    """
    _check_shapes("max_margin_loss", scores, labels)
    loss = ops.relu(1 - labels * scores).mean()
    if alpha:
        loss = loss + alpha * sum((p * p).sum() for p in parameters)
    return loss


def accuracy(logits: Any, targets: Any) -> float:
    """The fraction of samples whose logit has the target's sign: positive for a target of 1 (or +1).

    Works for 0/1 targets (a logit > 0 means sigmoid > 0.5, the book's ``batch_accuracy``) and for -1/+1
    labels alike. A NaN logit predicts nothing, so it counts as wrong. Returns a Python float; no graph
    is recorded.
    """
    _check_shapes("accuracy", logits, targets)
    if np.size(targets) == 0:
        raise ShapeError("accuracy of an empty batch is undefined")
    logits = np.asarray(data_of(logits))
    right = ((logits > 0) == (np.asarray(data_of(targets)) > 0)) & ~np.isnan(logits)
    return float(np.mean(right))


def class_accuracy(logits: Any, targets: Any) -> float:
    """The fraction of samples whose largest logit is at the target's class index (fastai's ``accuracy``).

    ``logits`` is ``(N, C)`` and ``targets`` ``(N,)`` integer class indices. A row holding a NaN counts as
    wrong. Returns a Python float; no graph is recorded.
    """
    logits, targets = np.asarray(data_of(logits)), np.asarray(data_of(targets))
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ShapeError(f"class_accuracy: logits of shape {logits.shape} need (N, C) with targets (N,), got "
                         f"targets {targets.shape}")
    if targets.size == 0:
        raise ShapeError("accuracy of an empty batch is undefined")
    right = (logits.argmax(axis=1) == targets) & ~np.isnan(logits).any(axis=1)
    return float(np.mean(right))
