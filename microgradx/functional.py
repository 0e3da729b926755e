"""Composites: ops built from the primitives in ``ops.py``, with no derivative code of their own.

Their gradients (and higher derivatives) come from the primitives they are made of. Each accepts Values,
numpy arrays and numbers alike, like the primitives.

The end of this file binds the primitives and composites to ``Value`` as operators and methods
(``v + w``, ``v.exp()``, ``v.sum(axis=0)``), so each op is still defined in one place only.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from . import ops
from .engine import Value, as_value, data_of
from .errors import ArgumentError, AxisError, DTypeError, ShapeError

__all__ = ["mean", "var", "logsumexp", "softmax", "log_softmax", "softplus", "flatten", "squeeze",
           "expand_dims", "std", "argmax", "argmin", "any", "all"]


def _checked(name: str, x: Any, axis: Any, new_axis: bool = False) -> Any:
    """``axis`` unchanged, once checked to name axes of ``x`` (or, with ``new_axis``, a place for one)."""
    shape = np.shape(data_of(x))
    try:
        axes = ops._normalize_axes(axis, len(shape) + new_axis)
    except (np.exceptions.AxisError, TypeError) as e:
        raise AxisError(f"{name}: input of shape {shape}, axis={axis!r}: {e}") from None
    if isinstance(axis, list) or len(set(axes)) != len(axes):
        raise AxisError(f"{name}: input of shape {shape}, axis={axis!r}: expected one axis or a tuple of "
                        "distinct axes")
    return axis


def _reduced_size(shape: tuple[int, ...], axis: Any) -> int:
    if axis is None:
        return math.prod(shape)
    return math.prod(shape[a] for a in ops._normalize_axes(axis, len(shape)))


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over ``axis`` (all axes when None), as ``np.mean``."""
    axis = _checked("mean", x, axis)
    return ops.sum(x, axis=axis, keepdims=keepdims) / _reduced_size(np.shape(x), axis)


def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """Variance over ``axis``: the squared deviations summed and divided by ``N - ddof``, as ``np.var``.

    ``ddof=0`` (the default) is the population variance, ``ddof=1`` the unbiased sample variance.
    """
    axis = _checked("var", x, axis)
    centred = x - mean(x, axis=axis, keepdims=True)
    if ddof == 0:
        return mean(centred * centred, axis=axis, keepdims=keepdims)
    n = _reduced_size(np.shape(x), axis) - ddof
    if n <= 0:
        raise ArgumentError(f"var: ddof={ddof!r} leaves no degrees of freedom for {n + ddof} elements")
    return ops.sum(centred * centred, axis=axis, keepdims=keepdims) / n


def std(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """Standard deviation over ``axis``: ``sqrt(var(x, axis, ddof=ddof))``, as ``np.std``."""
    return ops.sqrt(var(x, axis=axis, keepdims=keepdims, ddof=ddof))


# Functions of numpy's with no derivative to take: they return integers or booleans, as numpy arrays
# (not Values), and record nothing.

def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """The index of the largest element (of the flattened x when ``axis`` is None), as ``np.argmax``."""
    return np.argmax(data_of(x), axis=_checked("argmax", x, axis), keepdims=keepdims)


def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """The index of the smallest element (of the flattened x when ``axis`` is None), as ``np.argmin``."""
    return np.argmin(data_of(x), axis=_checked("argmin", x, axis), keepdims=keepdims)


def any(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - numpy's name
    """Whether any element over ``axis`` is non-zero, as ``np.any``: booleans."""
    return np.any(data_of(x), axis=_checked("any", x, axis), keepdims=keepdims)


def all(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - numpy's name
    """Whether every element over ``axis`` is non-zero, as ``np.all``: booleans."""
    return np.all(data_of(x), axis=_checked("all", x, axis), keepdims=keepdims)


NO_GRADIENT = ("argmax", "argmin", "any", "all")


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


def log_softmax(x: Any, axis: int = -1) -> Any:
    """log(softmax(x)) along ``axis``, computed as x - logsumexp(x), which stays finite."""
    axis = _checked("log_softmax", x, axis)
    return x - logsumexp(x, axis=axis, keepdims=True)


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


def flatten(x: Any) -> Any:
    """A 1-d copy of x's elements (C order)."""
    return ops.reshape(x, (-1,))


def squeeze(x: Any, axis: Any = None) -> Any:
    """x without the axes of size 1 (only ``axis`` when given), as ``np.squeeze``."""
    shape = np.shape(data_of(x))
    if axis is not None:
        named = ops._normalize_axes(_checked("squeeze", x, axis), len(shape))
        if builtins.any(shape[a] != 1 for a in named):   # this module's any() is numpy's
            raise ShapeError(f"squeeze: input of shape {shape}, axis={axis!r}: only axes of size 1 can go")
    return ops.reshape(x, np.squeeze(np.empty(shape, dtype=bool), axis=axis).shape)


def expand_dims(x: Any, axis: int) -> Any:
    """x with a new axis of size 1 at ``axis``, as ``np.expand_dims``."""
    axis = _checked("expand_dims", x, axis, new_axis=True)
    return ops.reshape(x, np.expand_dims(np.empty(np.shape(x), dtype=bool), axis).shape)


# --------------------------------------------------------------------------------------------------
# Value's operators and methods
# --------------------------------------------------------------------------------------------------

def _as_index(part: Any) -> Any:
    """Index parts as numpy takes them (a list becomes an array); a Value is refused."""
    if isinstance(part, Value):
        # A Value holds floats, even one made from a boolean mask, so it cannot say whether [1., 0., 1.]
        # means positions or a mask. Positions or masks are not differentiable anyway: ask for an array.
        raise DTypeError("a Value cannot be an index (Values hold floats, so a mask and positions look "
                         "alike); index with an integer or boolean numpy array instead")
    if isinstance(part, list):
        part = np.asarray(part)
    return part


def _getitem(self: Value, index: Any) -> Value:
    index = tuple(_as_index(p) for p in index) if isinstance(index, tuple) else _as_index(index)
    return ops.getitem(self, index=index)


def _reshape(self: Value, *shape: Any) -> Value:
    """``v.reshape(2, 3)`` or ``v.reshape((2, 3))``, as numpy."""
    return ops.reshape(self, shape=shape[0] if len(shape) == 1 else shape)


def _transpose(self: Value, *axes: Any) -> Value:
    """``v.transpose()`` reverses the axes; ``v.transpose(1, 0, 2)`` or ``v.transpose((1, 0, 2))``."""
    if len(axes) == 1 and not isinstance(axes[0], int | np.integer):
        axes = axes[0]
    return ops.transpose(self, axes=tuple(axes) if axes else None)


def _compare(ufunc: Any) -> Any:
    def compare(self: Value, other: Any) -> np.ndarray:
        return ufunc(self.data, other.data if isinstance(other, Value) else other)
    compare.__doc__ = f"Elementwise ``{ufunc.__name__}`` of the data: a numpy bool array (no gradient)."
    return compare


def _bind() -> None:
    def binary(op: ops.Primitive) -> tuple[Any, Any]:
        return ops.binary_method(op), ops.binary_method(op, reflected=True)

    v = Value
    v.__add__, v.__radd__ = binary(ops.add)
    v.__sub__, v.__rsub__ = binary(ops.subtract)
    v.__mul__, v.__rmul__ = binary(ops.multiply)
    v.__truediv__, v.__rtruediv__ = binary(ops.divide)
    v.__pow__, v.__rpow__ = binary(ops.power)
    v.__matmul__, v.__rmatmul__ = binary(ops.matmul)
    v.__neg__ = ops.unary_method(ops.negative)
    v.__pos__ = lambda self: self
    v.__abs__ = ops.unary_method(ops.abs)
    v.__getitem__ = _getitem
    for name, ufunc in (("__lt__", np.less), ("__le__", np.less_equal), ("__gt__", np.greater),
                        ("__ge__", np.greater_equal), ("__eq__", np.equal), ("__ne__", np.not_equal)):
        setattr(v, name, _compare(ufunc))
    for name in ("exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu"):
        setattr(v, name, ops.unary_method(getattr(ops, name)))
    v.sum = lambda self, axis=None, keepdims=False: ops.sum(self, axis=axis, keepdims=keepdims)
    v.max = lambda self, axis=None, keepdims=False: ops.max(self, axis=axis, keepdims=keepdims)
    v.min = lambda self, axis=None, keepdims=False: ops.min(self, axis=axis, keepdims=keepdims)
    v.mean = mean
    v.var = var
    v.clip = lambda self, lo=None, hi=None: ops.clip(self, lo=lo, hi=hi)
    v.reshape = _reshape
    v.transpose = _transpose
    v.T = property(lambda self: ops.transpose(self), doc="The Value with its axes reversed, as ``.T``.")
    v.flatten = flatten
    v.squeeze = squeeze
    v.logsumexp = logsumexp
    v.softmax = softmax
    v.log_softmax = log_softmax


_bind()
