"""``microgradx.nn.functional``: convolution, pooling, activations and classification losses.

Composites, like ``functional.py``: no derivative code here. Convolution and pooling are made of two
primitives from ``ops.py``: ``windows2d`` (a strided view of every window, no copy) and its adjoint
``scatter_windows2d``, plus ``reshape``, ``transpose`` and one ``matmul``. So their backward pass is made of
primitives too, and differentiates again (second derivatives of a convolution, as in a gradient penalty).
The losses of :mod:`microgradx.losses` are here as well, under the same names.

Layouts are PyTorch's: images ``(N, C, H, W)`` (or ``(C, H, W)``), convolution weights
``(C_out, C_in / groups, kh, kw)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops
from .compile import guard
from .engine import Value, as_value, data_of
from .errors import ArgumentError, AxisError, DataError, ShapeError
from .functional import log_softmax
from .functional import softplus as _softplus
from .losses import accuracy, binary_cross_entropy_with_logits, max_margin_loss, mnist_loss, mse_loss
from .ops import mean

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "cross_entropy", "nll_loss", "gelu", "silu", "elu",
           "leaky_relu", "softplus", "dropout", "flatten",
           "mnist_loss", "binary_cross_entropy_with_logits", "mse_loss", "max_margin_loss", "accuracy"]

IntPair = int | tuple[int, int]


def _pair(name: str, what: str, v: Any) -> tuple[int, int]:
    """``v`` (an int or a pair) as a pair of ints: at least 0 for padding, at least 1 for the rest."""
    pair = (v, v) if isinstance(v, int | np.integer) else tuple(v) if isinstance(v, tuple | list) else ()
    least = 0 if what == "padding" else 1
    if len(pair) != 2 or not all(isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= least
                                 for n in pair):
        raise ArgumentError(f"{name}: {what} must be an integer >= {least} or a pair of them, got {v!r}")
    return int(pair[0]), int(pair[1])


def _images(name: str, x: Any) -> tuple[Value, bool]:
    """x as a Value of shape (N, C, H, W), and whether it came without the batch axis."""
    x = as_value(x)
    if x.ndim not in (3, 4):
        raise ShapeError(f"{name}: expected images of shape (N, C, H, W) or (C, H, W), got shape {x.shape}")
    return (ops.reshape(x, shape=(1, *x.shape)), True) if x.ndim == 3 else (x, False)


def _unbatched(x: Value, was_unbatched: bool) -> Value:
    return ops.reshape(x, shape=x.shape[1:]) if was_unbatched else x


# --------------------------------------------------------------------------------------------------
# Convolution and pooling
# --------------------------------------------------------------------------------------------------

def conv2d(input: Any, weight: Any, bias: Any = None, stride: IntPair = 1, padding: IntPair = 0,  # noqa: A002
           dilation: IntPair = 1, groups: int = 1) -> Value:
    """2-d cross-correlation of ``(N, C, H, W)`` images with ``(O, C / groups, kh, kw)`` filters (PyTorch's).

    Every window is one column of a matrix (the strided view, copied once), and one matrix product per
    group applies all the filters: ``(O, C * kh * kw) @ (C * kh * kw, N * OH * OW)``. The backward pass is
    that product's two rules and the windows' adjoint, ``kh * kw`` strided adds.
    """
    x, unbatched = _images("conv2d", input)
    w = as_value(weight)
    if w.ndim != 4:
        raise ShapeError(f"conv2d: expected weights of shape (C_out, C_in / groups, kh, kw), got {w.shape}")
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
        raise ArgumentError(f"conv2d: groups must be a positive integer, got {groups!r}")
    n, c = x.shape[:2]
    o, cg, kh, kw = w.shape
    if c % groups or o % groups or cg != c // groups:
        raise ShapeError(f"conv2d: input of shape {x.shape} and weights of shape {w.shape}, groups={groups}: "
                         "expected channels and filters divisible by groups, and weights of shape "
                         f"(C_out, {c // groups if c % groups == 0 else 'C_in / groups'}, kh, kw)")
    stride, padding, dilation = (_pair("conv2d", k, v) for k, v in
                                 (("stride", stride), ("padding", padding), ("dilation", dilation)))
    cols = ops.windows2d(x, kernel=(kh, kw), stride=stride, padding=padding, dilation=dilation)
    oh, ow = cols.shape[-2:]
    g, og, k = groups, o // groups, cg * kh * kw
    # (kh, kw, N, C, OH, OW) -> (G, Cg * kh * kw, N * OH * OW): a column per window, for each group
    columns = ops.reshape(ops.transpose(ops.reshape(cols, shape=(kh, kw, n, g, cg, oh, ow)),
                                        axes=(3, 4, 0, 1, 2, 5, 6)), shape=(g, k, n * oh * ow))
    out = ops.reshape(ops.reshape(w, shape=(g, og, k)) @ columns, shape=(o, n, oh, ow))
    out = ops.transpose(out, axes=(1, 0, 2, 3))
    if bias is not None:
        b = as_value(bias)
        if b.shape != (o,):
            raise ShapeError(f"conv2d: expected a bias of shape ({o},), one per filter, got {b.shape}")
        out = out + ops.reshape(b, shape=(o, 1, 1))
    return _unbatched(out, unbatched)


def _pool_args(name: str, kernel_size: IntPair, stride: IntPair | None, padding: IntPair
               ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    kernel = _pair(name, "kernel_size", kernel_size)
    stride_ = kernel if stride is None else _pair(name, "stride", stride)
    pad = _pair(name, "padding", padding)
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        # As PyTorch: more padding would make windows of padding alone.
        raise ArgumentError(f"{name}: padding {pad} is more than half the kernel {kernel}")
    return kernel, stride_, pad


def max_pool2d(input: Any, kernel_size: IntPair, stride: IntPair | None = None,  # noqa: A002
               padding: IntPair = 0, dilation: IntPair = 1) -> Value:
    """The maximum of each window, as PyTorch's (stride defaults to the kernel size; padding is -inf).

    The gradient goes to each window's maximum (shared evenly between exact ties, where PyTorch picks one).
    """
    x, unbatched = _images("max_pool2d", input)
    kernel, stride_, pad = _pool_args("max_pool2d", kernel_size, stride, padding)
    dilation_ = _pair("max_pool2d", "dilation", dilation)
    cols = ops.windows2d(x, kernel=kernel, stride=stride_, padding=pad, dilation=dilation_, fill=-np.inf)
    for n, m, k, s, p, d in zip(x.shape[-2:], cols.shape[-2:], kernel, stride_, pad, dilation_, strict=True):
        taps = np.arange(m)[:, None] * s + np.arange(k) * d - p     # each window's rows (or columns)
        if not np.all(np.any((taps >= 0) & (taps < n), axis=1)):
            raise ArgumentError(f"max_pool2d: with kernel {kernel}, padding {pad} and dilation {dilation_}, "
                                f"some windows of an input of size {x.shape[-2:]} hold padding alone")
    return _unbatched(ops.max(_taps(cols), axis=0), unbatched)


def _taps(cols: Value) -> Value:
    """The windows with their two tap axes as one, (kh * kw, ..., OH, OW): a copy, so that a reduction
    over the taps runs over contiguous blocks (numpy reduces a strided view's axes many times slower)."""
    return ops.reshape(cols, shape=(-1, *cols.shape[2:]))


def avg_pool2d(input: Any, kernel_size: IntPair, stride: IntPair | None = None,  # noqa: A002
               padding: IntPair = 0, count_include_pad: bool = True) -> Value:
    """The mean of each window, as PyTorch's (stride defaults to the kernel size; padding is 0).

    With ``count_include_pad=False`` a window at the border is averaged over its input elements only.
    """
    x, unbatched = _images("avg_pool2d", input)
    kernel, stride_, pad = _pool_args("avg_pool2d", kernel_size, stride, padding)
    cols = ops.windows2d(x, kernel=kernel, stride=stride_, padding=pad)
    if count_include_pad or pad == (0, 0):
        out = mean(_taps(cols), axis=0)
    else:
        # How many input elements each window holds: the windows of an image of ones (a constant).
        inside = np.asarray(ops.windows2d(np.ones(x.shape[-2:], x.dtype), kernel=kernel, stride=stride_,
                                          padding=pad)).sum(axis=(0, 1))
        out = ops.sum(_taps(cols), axis=0) / inside
    return _unbatched(out, unbatched)


# --------------------------------------------------------------------------------------------------
# Classification losses
# --------------------------------------------------------------------------------------------------

def nll_loss(input: Any, target: Any, reduction: str = "mean", ignore_index: int = -100) -> Value:  # noqa: A002
    """The negative log-likelihood of class indices, given log-probabilities, as PyTorch's.

    ``input`` is ``(N, C)`` (or ``(N, C, d1, ...)``, or ``(C,)`` for one sample) and ``target`` holds one
    integer class per sample, shaped like ``input`` without its class axis. Samples whose target is
    ``ignore_index`` count for nothing, and the mean is over the others (0 when every sample is ignored,
    where PyTorch returns NaN).
    """
    x = as_value(input)
    t = np.asarray(data_of(target))
    if reduction not in ("mean", "sum", "none"):
        raise ArgumentError(f"nll_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    class_axis = 0 if x.ndim == 1 else 1
    expected = x.shape[:class_axis] + x.shape[class_axis + 1:]
    if x.ndim == 0 or t.shape != expected:
        raise ShapeError(f"nll_loss: input of shape {x.shape} needs a target of shape {expected} (one class "
                         f"index per sample), got {t.shape}")
    if t.dtype.kind not in "iu":
        raise DataError(f"nll_loss: targets must be integer class indices, got dtype {t.dtype}")
    n_classes = x.shape[class_axis]
    guard(_check_class_indices, t, np.int64(n_classes), np.int64(ignore_index))  # at every replay too
    keep = t != ignore_index
    safe = np.where(keep, t, 0)
    at = np.indices(t.shape, sparse=True)
    index = (safe,) if x.ndim == 1 else (at[0], safe, *at[1:])
    picked = ops.where(keep, -ops.getitem(x, index=index), 0.0)
    if reduction == "none":
        return picked
    total = ops.sum(picked)
    # The count as an array, not int(): a compiled step computes it afresh from each batch's targets.
    return total / np.maximum(keep.sum(), 1).astype(x.dtype) if reduction == "mean" else total


def _check_class_indices(t: np.ndarray, n_classes: Any, ignore_index: Any) -> None:
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if np.any(bad):
        raise DataError(f"nll_loss: target {t[bad][0]} is not a class index in [0, {n_classes})")


def cross_entropy(input: Any, target: Any, reduction: str = "mean", ignore_index: int = -100) -> Value:  # noqa: A002
    """Softmax cross-entropy of logits against class indices, as PyTorch's: ``nll_loss(log_softmax(x))``.

    Stable for any logits: ``log_softmax`` shifts by the maximum before exponentiating.
    """
    x = as_value(input)
    return nll_loss(log_softmax(x, axis=0 if x.ndim == 1 else 1), target, reduction=reduction,
                    ignore_index=ignore_index)


# --------------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------------

def gelu(input: Any, approximate: str = "none") -> Value:  # noqa: A002
    """``x * Phi(x)``, Phi the standard normal's CDF, as PyTorch's; ``approximate="tanh"`` its tanh form."""
    x = input
    if approximate == "none":
        return 0.5 * x * (1 + ops.erf(x * 0.7071067811865476))           # 1 / sqrt(2)
    if approximate == "tanh":
        return 0.5 * x * (1 + ops.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))   # sqrt(2 / pi)
    raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input: Any) -> Value:  # noqa: A002
    """``x * sigmoid(x)`` (also called swish)."""
    return input * ops.sigmoid(input)


def elu(input: Any, alpha: float = 1.0) -> Value:  # noqa: A002
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""
    # NOTE: expm1 sees only x <= 0 (the inner where), so that exp() cannot overflow on the branch not taken.
    positive = np.asarray(data_of(input)) > 0
    return ops.where(positive, input, alpha * ops.expm1(ops.where(positive, 0.0, input)))


def leaky_relu(input: Any, negative_slope: float = 0.01) -> Value:  # noqa: A002
    """``x`` for x > 0, ``negative_slope * x`` otherwise."""
    return ops.where(np.asarray(data_of(input)) > 0, input, negative_slope * input)


def softplus(input: Any, beta: float = 1.0) -> Value:  # noqa: A002
    """``log(1 + exp(beta * x)) / beta``, exact and finite for every x (PyTorch switches to x above a
    threshold instead)."""
    if not beta > 0:
        raise ArgumentError(f"softplus: beta must be positive, got {beta!r}")
    return _softplus(input * beta) / beta if beta != 1 else _softplus(input)


def dropout(input: Any, p: float = 0.5, training: bool = True,  # noqa: A002
            rng: np.random.Generator | int | None = None) -> Value:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``, in training only.

    ``rng`` (a seed or a ``np.random.Generator``) draws the mask, so a seeded run repeats exactly.
    """
    if not 0 <= p <= 1:
        raise ArgumentError(f"dropout: p must be in [0, 1], got {p!r}")
    x = as_value(input)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    keep = np.random.default_rng(rng).random(x.shape) >= p
    return x * (keep / (1 - p)).astype(x.dtype)


def flatten(input: Any, start_dim: int = 1, end_dim: int = -1) -> Value:  # noqa: A002
    """The axes ``start_dim`` to ``end_dim`` (both included) merged into one, as ``torch.flatten``."""
    x = as_value(input)
    if x.ndim == 0:
        return ops.reshape(x, shape=(1,))
    try:
        start, end = (ops._one_axis(a, x.ndim) for a in (start_dim, end_dim))
    except np.exceptions.AxisError as e:
        raise AxisError(f"flatten: input of shape {x.shape}: {e}") from None
    if start > end:
        raise ArgumentError(f"flatten: start_dim {start_dim} is after end_dim {end_dim} (shape {x.shape})")
    return ops.reshape(x, shape=(*x.shape[:start], -1, *x.shape[end + 1:]))
