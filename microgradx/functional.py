"""Composites: ops built from the primitives in ``ops.py``, with no derivative code of their own.

Their gradients (and higher derivatives) come from the primitives they are made of. Each accepts Values,
numpy arrays and numbers alike, like the primitives, and is registered in the engine's op table, which
``Value``'s methods (``v.softmax()``) and numpy's functions on Values (``np.var(v)``) call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from . import ops
from .engine import TABLE, Value, as_value, data_of
from .errors import AxisError, ShapeError

__all__ = ["var", "logsumexp", "softmax", "log_softmax", "softplus", "flatten", "squeeze", "expand_dims"]

F = TypeVar("F", bound=Callable[..., Any])


def composite(numpy: Any = None) -> Callable[[F], F]:
    """Register a composite in the op table; ``numpy`` is the numpy function it stands for, if any."""
    def register(fn: F) -> F:
        fn.numpy = numpy  # type: ignore[attr-defined]
        return TABLE.register(fn)  # type: ignore[no-any-return]
    return register


def _checked(name: str, x: Any, axis: Any, new_axis: bool = False) -> Any:
    """``axis`` once checked to name axes of ``x`` (or, with ``new_axis``, a place for one)."""
    shape = np.shape(data_of(x))
    try:
        axes = ops._normalize_axes(axis, len(shape) + new_axis)
    except (np.exceptions.AxisError, TypeError) as e:
        raise AxisError(f"{name}: input of shape {shape}, axis={axis!r}: {e}") from None
    if isinstance(axis, list) or len(set(axes)) != len(axes):
        raise AxisError(f"{name}: input of shape {shape}, axis={axis!r}: expected one axis or a tuple of "
                        "distinct axes")
    return None if not shape and not new_axis else axis    # axis 0 of a 0-d array is all of it


@composite(np.var)
def var(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Population variance over ``axis`` (``ddof=0``, as ``np.var``)."""
    axis = _checked("var", x, axis)
    centred = x - ops.mean(x, axis=axis, keepdims=True)
    return ops.mean(centred * centred, axis=axis, keepdims=keepdims)


@composite()
def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """log(sum(exp(x))) over ``axis``, without overflow for large x."""
    x = as_value(x)
    axis = _checked("logsumexp", x, axis)
    shift = _shift(x, axis)
    out = ops.log(ops.sum(ops.exp(x - shift), axis=axis, keepdims=True)) + shift
    if not keepdims:   # drop the reduced axes (kept above so that the shift broadcasts)
        axes = ops._normalize_axes(axis, x.ndim)
        out = ops.reshape(out, tuple(n for i, n in enumerate(x.shape) if i not in axes))
    return out


@composite()
def softmax(x: Any, axis: int = -1) -> Any:
    """exp(x) / sum(exp(x)) along ``axis``: non-negative, sums to 1 along that axis."""
    x = as_value(x)
    axis = _checked("softmax", x, axis)
    e = ops.exp(x - _shift(x, axis))
    return e / ops.sum(e, axis=axis, keepdims=True)


def _shift(x: Value, axis: Any) -> np.ndarray:
    """The max of ``x`` over ``axis`` (kept), to subtract before exp() so that it stays <= 1.

    A constant (raw data, detached): it cancels exactly, so the gradient is unchanged. An infinite max
    would give inf - inf = nan, and an empty reduction has no max (numpy refuses one): 0 there instead.
    """
    shift = np.max(x.data, axis=axis, keepdims=True, initial=-np.inf)
    return np.where(np.isfinite(shift), shift, 0)


@composite()
def log_softmax(x: Any, axis: int = -1) -> Any:
    """log(softmax(x)) along ``axis``, computed as x - logsumexp(x), which stays finite."""
    axis = _checked("log_softmax", x, axis)
    return x - logsumexp(x, axis=axis, keepdims=True)


@composite()
def softplus(x: Any) -> Any:
    """log(1 + exp(x)), computed without overflow for any x; smooth, with exact derivatives of all orders."""
    # NOTE: two branches, each fed only the inputs it is safe on (the inner where), so that exp() never
    # overflows and no inf * 0 = NaN leaks into the gradient of the branch not taken:
    #   x > 0:  x + log(1 + exp(-x))        x <= 0:  log(1 + exp(x))
    # (max(x, 0) + log(1 + exp(-|x|)) is shorter, but its kinks at 0 give wrong derivatives there.)
    positive = np.asarray(data_of(x)) > 0
    xp = ops.where(positive, x, 0.0)
    xn = ops.where(positive, 0.0, x)
    return ops.where(positive, xp + ops.log(1 + ops.exp(-xp)), ops.log(1 + ops.exp(xn)))


@composite()
def flatten(x: Any) -> Any:
    """A 1-d copy of x's elements (C order)."""
    return ops.reshape(x, (-1,))


@composite(np.squeeze)
def squeeze(x: Any, axis: Any = None) -> Any:
    """x without the axes of size 1 (only ``axis`` when given), as ``np.squeeze``."""
    shape = np.shape(data_of(x))
    if axis is not None:
        named = ops._normalize_axes(_checked("squeeze", x, axis), len(shape))
        if any(shape[a] != 1 for a in named):
            raise ShapeError(f"squeeze: input of shape {shape}, axis={axis!r}: only axes of size 1 can go")
    return ops.reshape(x, np.squeeze(np.empty(shape, dtype=bool), axis=axis).shape)


@composite(np.expand_dims)
def expand_dims(x: Any, axis: int) -> Any:
    """x with a new axis of size 1 at ``axis``, as ``np.expand_dims``."""
    axis = _checked("expand_dims", x, axis, new_axis=True)
    return ops.reshape(x, np.expand_dims(np.empty(np.shape(x), dtype=bool), axis).shape)
