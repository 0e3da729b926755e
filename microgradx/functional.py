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
           "expand_dims", "std", "argmax", "argmin", "any", "all",
           "tensordot", "dot", "inner", "outer", "kron", "diagonal", "trace", "diag", "tril", "triu"]


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
# Products and matrix parts, built on einsum, getitem and where
# --------------------------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    """``np.tensordot``: the sum of products over ``axes``, the last N of a with the first N of b (or two
    lists of axes)."""
    na, nb = np.ndim(data_of(a)), np.ndim(data_of(b))
    if isinstance(axes, int | np.integer):
        if not 0 <= axes <= min(na, nb):
            raise AxisError(f"tensordot: axes={axes} for operands of {na} and {nb} dimensions")
        pairs = (list(range(na - axes, na)), list(range(axes)))
    else:
        pairs = tuple([axes_] if isinstance(axes_, int | np.integer) else list(axes_) for axes_ in axes)
    if len(pairs) != 2 or len(pairs[0]) != len(pairs[1]):
        raise AxisError(f"tensordot: axes={axes!r} must be an integer or two lists of equal length")
    sa = [_one_axis_checked("tensordot", a, i) for i in pairs[0]]
    sb = [_one_axis_checked("tensordot", b, i) for i in pairs[1]]
    letters_a = list(_LETTERS[:na])
    letters_b = list(_LETTERS[na:na + nb])
    for i, j in zip(sa, sb, strict=True):
        letters_b[j] = letters_a[i]
    out = [c for k, c in enumerate(letters_a) if k not in sa]
    out += [c for k, c in enumerate(letters_b) if k not in sb]
    return ops.einsum(f"{''.join(letters_a)},{''.join(letters_b)}->{''.join(out)}", a, b)


def _one_axis_checked(name: str, x: Any, axis: int) -> int:
    try:
        return ops._one_axis(axis, np.ndim(data_of(x)))
    except (np.exceptions.AxisError, TypeError) as e:
        raise AxisError(f"{name}: input of shape {np.shape(data_of(x))}, axis={axis!r}: {e}") from None


def dot(a: Any, b: Any) -> Any:
    """``np.dot``: a product of numbers, the inner product of vectors, the matrix product of matrices, and
    for N-d arrays the sum over a's last axis and b's second-to-last."""
    if np.ndim(data_of(a)) == 0 or np.ndim(data_of(b)) == 0:
        return a * b
    return tensordot(a, b, axes=([-1], [-2 if np.ndim(data_of(b)) > 1 else 0]))


def inner(a: Any, b: Any) -> Any:
    """``np.inner``: the sum of products over the last axes of a and b."""
    if np.ndim(data_of(a)) == 0 or np.ndim(data_of(b)) == 0:
        return a * b
    return tensordot(a, b, axes=([-1], [-1]))


def outer(a: Any, b: Any) -> Any:
    """``np.outer``: every element of a (flattened) times every element of b, as a matrix."""
    return ops.einsum("i,j->ij", ops.reshape(a, shape=(-1,)), ops.reshape(b, shape=(-1,)))


def kron(a: Any, b: Any) -> Any:
    """``np.kron``: the Kronecker product, blocks of b scaled by each element of a."""
    sa, sb = np.shape(data_of(a)), np.shape(data_of(b))
    n = max(len(sa), len(sb))
    sa, sb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    # a's axes interleaved with b's: element (i0, j0, i1, j1, ...) is a[i0, i1, ...] * b[j0, j1, ...].
    spread_a = ops.reshape(a, shape=tuple(x for s in sa for x in (s, 1)))
    spread_b = ops.reshape(b, shape=tuple(x for s in sb for x in (1, s)))
    return ops.reshape(spread_a * spread_b, shape=tuple(p * q for p, q in zip(sa, sb, strict=True)))


def diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """``np.diagonal``: the elements (i, i + offset) of the axes axis1 and axis2, as a last axis."""
    a1, a2 = _one_axis_checked("diagonal", x, axis1), _one_axis_checked("diagonal", x, axis2)
    if a1 == a2:
        raise AxisError(f"diagonal: axis1 and axis2 are the same axis ({axis1})")
    moved = ops.moveaxis(x, source=(a1, a2), destination=(-2, -1))
    rows, cols = np.shape(data_of(moved))[-2:]
    start = max(0, -offset)                          # the first row the diagonal crosses
    i = np.arange(start, max(start, min(rows, cols - offset)))
    return ops.getitem(moved, index=(Ellipsis, i, i + offset))


def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """``np.trace``: the sum of the diagonal (i, i + offset) of axes axis1 and axis2."""
    return ops.sum(diagonal(x, offset, axis1, axis2), axis=-1)


def diag(v: Any, k: int = 0) -> Any:
    """``np.diag``: a 1-d v put on the k-th diagonal of a square matrix of zeros; a 2-d v's k-th diagonal."""
    ndim = np.ndim(data_of(v))
    if ndim == 2:
        return diagonal(v, offset=k)
    if ndim != 1:
        raise ShapeError(f"diag: expected a 1-d or 2-d input, got shape {np.shape(data_of(v))}")
    n = np.shape(data_of(v))[0]
    i = np.arange(n)
    size = n + abs(k)
    return ops.scatter_add(v, index=(i + max(0, -k), i + max(0, k)), shape=(size, size))


def _triangle(name: str, x: Any, mask: Any) -> Any:
    shape = np.shape(data_of(x))
    if len(shape) < 2:
        raise ShapeError(f"{name}: expected an input of 2 or more dimensions, got shape {shape}")
    return ops.where(mask(*shape[-2:]), x, 0.0)


def tril(x: Any, k: int = 0) -> Any:
    """``np.tril``: x with the elements above the k-th diagonal (of its last two axes) zeroed."""
    return _triangle("tril", x, lambda n, m: np.tri(n, m, k, dtype=bool))


def triu(x: Any, k: int = 0) -> Any:
    """``np.triu``: x with the elements below the k-th diagonal (of its last two axes) zeroed."""
    return _triangle("triu", x, lambda n, m: ~np.tri(n, m, k - 1, dtype=bool))


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
