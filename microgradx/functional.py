"""Composites: ops built from the primitives in ``ops.py``, with no derivative code of their own.

Their gradients (and higher derivatives) come from the primitives they are made of. Each accepts Values,
numpy arrays and numbers alike, like the primitives, and is registered in the engine's op table, which
``Value``'s methods (``v.softmax()``) and numpy's functions on Values (``np.var(v)``) call.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from . import ops
from .engine import Value, as_value, data_of
from .errors import ArgumentError, AxisError, DTypeError, ShapeError
from .ops import composite

__all__ = ["var", "logsumexp", "softmax", "log_softmax", "softplus", "flatten", "squeeze",
           "expand_dims", "std", "argmax", "argmin", "any", "all",
           "tensordot", "dot", "inner", "outer", "kron", "diagonal", "trace", "diag", "tril", "triu",
           "ravel", "flip", "roll", "rot90", "array_split", "split", "tile", "repeat", "pad", "atleast_1d",
           "atleast_2d", "atleast_3d", "hstack", "vstack", "dstack", "column_stack", "append", "take",
           "take_along_axis", "sort", "argsort"]

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
def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """Variance over ``axis``: the squared deviations summed and divided by ``N - ddof``, as ``np.var``.

    ``ddof=0`` (the default) is the population variance, ``ddof=1`` the unbiased sample variance.
    """
    axis = _checked("var", x, axis)
    centred = x - ops.mean(x, axis=axis, keepdims=True)
    if ddof == 0:
        return ops.mean(centred * centred, axis=axis, keepdims=keepdims)
    n = ops.reduced_size(np.shape(x), axis) - ddof
    if n <= 0:
        raise ArgumentError(f"var: ddof={ddof!r} leaves no degrees of freedom for {n + ddof} elements")
    return ops.sum(centred * centred, axis=axis, keepdims=keepdims) / n


@composite(np.std)
def std(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """Standard deviation over ``axis``: ``sqrt(var(x, axis, ddof=ddof))``, as ``np.std``."""
    return ops.sqrt(var(x, axis=axis, keepdims=keepdims, ddof=ddof))


# Functions of numpy's with no derivative to take: they return integers or booleans, as numpy arrays
# (not Values), and record nothing.

@composite(np.argmax)
def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """The index of the largest element (of the flattened x when ``axis`` is None), as ``np.argmax``."""
    return np.argmax(data_of(x), axis=_checked("argmax", x, axis), keepdims=keepdims)


@composite(np.argmin)
def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """The index of the smallest element (of the flattened x when ``axis`` is None), as ``np.argmin``."""
    return np.argmin(data_of(x), axis=_checked("argmin", x, axis), keepdims=keepdims)


@composite(np.any)
def any(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - numpy's name
    """Whether any element over ``axis`` is non-zero, as ``np.any``: booleans."""
    return np.any(data_of(x), axis=_checked("any", x, axis), keepdims=keepdims)


@composite(np.all)
def all(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001 - numpy's name
    """Whether every element over ``axis`` is non-zero, as ``np.all``: booleans."""
    return np.all(data_of(x), axis=_checked("all", x, axis), keepdims=keepdims)


NO_GRADIENT = ("argmax", "argmin", "any", "all", "argsort")


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
        if builtins.any(shape[a] != 1 for a in named):   # this module's any() is numpy's
            raise ShapeError(f"squeeze: input of shape {shape}, axis={axis!r}: only axes of size 1 can go")
    return ops.reshape(x, np.squeeze(np.empty(shape, dtype=bool), axis=axis).shape)


@composite(np.expand_dims)
def expand_dims(x: Any, axis: int) -> Any:
    """x with a new axis of size 1 at ``axis``, as ``np.expand_dims``."""
    axis = _checked("expand_dims", x, axis, new_axis=True)
    return ops.reshape(x, np.expand_dims(np.empty(np.shape(x), dtype=bool), axis).shape)


# --------------------------------------------------------------------------------------------------
# Products and matrix parts, built on einsum, getitem and where
# --------------------------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@composite(np.tensordot)
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


@composite(np.dot)
def dot(a: Any, b: Any) -> Any:
    """``np.dot``: a product of numbers, the inner product of vectors, the matrix product of matrices, and
    for N-d arrays the sum over a's last axis and b's second-to-last."""
    if np.ndim(data_of(a)) == 0 or np.ndim(data_of(b)) == 0:
        return a * b
    return tensordot(a, b, axes=([-1], [-2 if np.ndim(data_of(b)) > 1 else 0]))


@composite(np.inner)
def inner(a: Any, b: Any) -> Any:
    """``np.inner``: the sum of products over the last axes of a and b."""
    if np.ndim(data_of(a)) == 0 or np.ndim(data_of(b)) == 0:
        return a * b
    return tensordot(a, b, axes=([-1], [-1]))


@composite(np.outer)
def outer(a: Any, b: Any) -> Any:
    """``np.outer``: every element of a (flattened) times every element of b, as a matrix."""
    return ops.einsum("i,j->ij", ops.reshape(a, shape=(-1,)), ops.reshape(b, shape=(-1,)))


@composite(np.kron)
def kron(a: Any, b: Any) -> Any:
    """``np.kron``: the Kronecker product, blocks of b scaled by each element of a."""
    sa, sb = np.shape(data_of(a)), np.shape(data_of(b))
    n = max(len(sa), len(sb))
    sa, sb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    # a's axes interleaved with b's: element (i0, j0, i1, j1, ...) is a[i0, i1, ...] * b[j0, j1, ...].
    spread_a = ops.reshape(a, shape=tuple(x for s in sa for x in (s, 1)))
    spread_b = ops.reshape(b, shape=tuple(x for s in sb for x in (1, s)))
    return ops.reshape(spread_a * spread_b, shape=tuple(p * q for p, q in zip(sa, sb, strict=True)))


@composite(np.diagonal)
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


@composite(np.trace)
def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """``np.trace``: the sum of the diagonal (i, i + offset) of axes axis1 and axis2."""
    return ops.sum(diagonal(x, offset, axis1, axis2), axis=-1)


@composite(np.diag)
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


@composite(np.tril)
def tril(x: Any, k: int = 0) -> Any:
    """``np.tril``: x with the elements above the k-th diagonal (of its last two axes) zeroed."""
    return _triangle("tril", x, lambda n, m: np.tri(n, m, k, dtype=bool))


@composite(np.triu)
def triu(x: Any, k: int = 0) -> Any:
    """``np.triu``: x with the elements below the k-th diagonal (of its last two axes) zeroed."""
    return _triangle("triu", x, lambda n, m: ~np.tri(n, m, k - 1, dtype=bool))


# --------------------------------------------------------------------------------------------------
# Shapes: numpy's ways to cut, join, repeat and reorder, as getitem, scatter_add, reshape, concatenate
# --------------------------------------------------------------------------------------------------

def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(data_of(x))


def _along(axis: int, index: Any) -> tuple:
    """An index that applies ``index`` to axis ``axis`` (non-negative) and takes everything else."""
    return (slice(None),) * axis + (index,)


@composite(np.ravel)
def ravel(x: Any) -> Any:
    """``np.ravel``: the elements of x as a 1-d array, in C order."""
    return ops.reshape(x, shape=(-1,))


@composite(np.flip)
def flip(x: Any, axis: Any = None) -> Any:
    """``np.flip``: x with the order of its elements reversed along ``axis`` (every axis when None)."""
    axes = ops._normalize_axes(_checked("flip", x, axis), len(_shape(x)))
    return ops.getitem(x, index=tuple(slice(None, None, -1) if i in axes else slice(None)
                                       for i in range(len(_shape(x)))))


@composite(np.roll)
def roll(x: Any, shift: Any, axis: Any = None) -> Any:
    """``np.roll``: elements shifted by ``shift`` along ``axis``, those past the end coming round to the
    start (over the flattened x when ``axis`` is None)."""
    if axis is None:
        return ops.reshape(roll(ravel(x), shift, 0), shape=_shape(x))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    shifts = (shift,) * len(axes) if isinstance(shift, int | np.integer) else tuple(shift)
    if len(shifts) != len(axes):
        raise ArgumentError(f"roll: shift {shift!r} and axis {axis!r} must name as many shifts as axes")
    for s, a in zip(shifts, axes, strict=True):
        a = _one_axis_checked("roll", x, a)
        n = _shape(x)[a]
        x = ops.getitem(x, index=_along(a, (np.arange(n) - s) % n)) if n else x
    return x


@composite(np.rot90)
def rot90(m: Any, k: int = 1, axes: tuple[int, int] = (0, 1)) -> Any:
    """``np.rot90``: m rotated by 90 degrees ``k`` times, from the first of ``axes`` towards the second."""
    a0, a1 = (_one_axis_checked("rot90", m, a) for a in axes)
    if a0 == a1:
        raise AxisError(f"rot90: axes {axes!r} must be two different axes")
    k %= 4
    if k == 0:
        return ops.identity(m)
    if k == 2:
        return flip(flip(m, a0), a1)
    if k == 1:
        return ops.swapaxes(flip(m, a1), a0, a1)
    return flip(ops.swapaxes(m, a0, a1), a1)


@composite(np.array_split)
def array_split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """``np.array_split``: x cut along ``axis`` into that many nearly equal parts, or at those indices."""
    axis = _one_axis_checked("array_split", x, axis)
    # numpy's own cut of the positions 0..n-1 says where each part starts and stops.
    pieces = np.array_split(np.arange(_shape(x)[axis]), indices_or_sections)
    return [ops.getitem(x, index=_along(axis, slice(int(p[0]), int(p[-1]) + 1) if len(p) else slice(0, 0)))
            for p in pieces]


@composite(np.split)
def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """``np.split``: as ``array_split``, but a number of sections must divide the axis exactly."""
    n, parts = _shape(x)[_one_axis_checked("split", x, axis)], indices_or_sections
    if isinstance(parts, int | np.integer) and (parts <= 0 or n % parts):
        raise ShapeError(f"split: an axis of {n} elements does not split into {parts} equal parts "
                         "(array_split allows unequal ones)")
    return array_split(x, indices_or_sections, axis)


@composite(np.tile)
def tile(x: Any, reps: Any) -> Any:
    """``np.tile``: x repeated ``reps`` times along each axis (as whole blocks)."""
    reps = (reps,) if isinstance(reps, int | np.integer) else tuple(reps)
    shape = _shape(x)
    n = max(len(shape), len(reps))
    shape, reps = (1,) * (n - len(shape)) + shape, (1,) * (n - len(reps)) + reps
    spread = ops.reshape(x, shape=tuple(v for s in shape for v in (1, s)))
    pairs = list(zip(reps, shape, strict=True))
    blocks = ops.broadcast_to(spread, shape=tuple(v for r, s in pairs for v in (r, s)))
    return ops.reshape(blocks, shape=tuple(r * s for r, s in pairs))


@composite(np.repeat)
def repeat(x: Any, repeats: Any, axis: int | None = None) -> Any:
    """``np.repeat``: each element repeated ``repeats`` times (a number, or one per element) along ``axis``
    (over the flattened x when None)."""
    if axis is None:
        return repeat(ravel(x), repeats, 0)
    axis = _one_axis_checked("repeat", x, axis)
    return ops.getitem(x, index=_along(axis, np.repeat(np.arange(_shape(x)[axis]), repeats)))


@composite(np.pad)
def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: float = 0.0) -> Any:
    """``np.pad`` with modes constant, edge, reflect, symmetric and wrap.

    Padding by a constant puts x into a larger array of that constant; the other modes take, along each
    axis, the positions numpy's own ``np.pad`` of ``arange(n)`` names, so the gradient of an element
    copied into the border adds up over its copies.
    """
    shape = _shape(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (len(shape), 2))
    if np.any(widths < 0):
        raise ArgumentError(f"pad: pad_width {pad_width!r} must not be negative")
    if mode == "constant":
        padded = tuple(int(n + a + b) for n, (a, b) in zip(shape, widths, strict=True))
        inside = tuple(slice(int(a), int(a) + n) for n, (a, _) in zip(shape, widths, strict=True))
        out = ops.scatter_add(x, index=inside, shape=padded)
        if constant_values != 0:
            border = np.ones(padded, dtype=np.result_type(data_of(x)))
            border[inside] = 0
            out = out + border * constant_values
        return out
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise ArgumentError(f"pad: mode {mode!r} is not supported (constant, edge, reflect, symmetric, wrap)")
    for axis, (before, after) in enumerate(widths):
        if before or after:
            positions = np.pad(np.arange(shape[axis]), (int(before), int(after)), mode=mode)
            x = ops.getitem(x, index=_along(axis, positions))
    return ops.identity(x) if not np.any(widths) else x


@composite(np.atleast_1d)
def atleast_1d(*arys: Any) -> Any:
    """``np.atleast_1d``: each input with at least one axis (a number becomes shape (1,))."""
    out = [x if len(_shape(x)) >= 1 else ops.reshape(x, shape=(1,)) for x in arys]
    return out[0] if len(out) == 1 else out


@composite(np.atleast_2d)
def atleast_2d(*arys: Any) -> Any:
    """``np.atleast_2d``: each input with at least two axes ((N,) becomes (1, N))."""
    out = [x if len(_shape(x)) >= 2 else ops.reshape(x, shape=(1, -1) if _shape(x) else (1, 1)) for x in arys]
    return out[0] if len(out) == 1 else out


@composite(np.atleast_3d)
def atleast_3d(*arys: Any) -> Any:
    """``np.atleast_3d``: each input with at least three axes ((N,) becomes (1, N, 1), (M, N) (M, N, 1))."""
    def three(x: Any) -> Any:
        shape = _shape(x)
        if len(shape) >= 3:
            return x
        return ops.reshape(x, shape={0: (1, 1, 1), 1: (1, *shape, 1), 2: (*shape, 1)}[len(shape)])
    out = [three(x) for x in arys]
    return out[0] if len(out) == 1 else out


def _listed(name: str, tup: Any) -> list[Any]:
    if isinstance(tup, Value | np.ndarray):
        raise ArgumentError(f"{name} takes a sequence of arrays (a list or tuple), not one array")
    return list(tup)


@composite(np.hstack)
def hstack(tup: Any) -> Any:
    """``np.hstack``: join along the second axis (the first, for 1-d inputs)."""
    arrays = [atleast_1d(x) for x in _listed("hstack", tup)]
    return ops.concatenate(arrays, axis=0 if arrays and len(_shape(arrays[0])) == 1 else 1)


@composite(np.vstack)
def vstack(tup: Any) -> Any:
    """``np.vstack``: join along the first axis, 1-d inputs as rows."""
    return ops.concatenate([atleast_2d(x) for x in _listed("vstack", tup)], axis=0)


@composite(np.dstack)
def dstack(tup: Any) -> Any:
    """``np.dstack``: join along the third axis, inputs made 3-d first (as ``atleast_3d``)."""
    return ops.concatenate([atleast_3d(x) for x in _listed("dstack", tup)], axis=2)


@composite(np.column_stack)
def column_stack(tup: Any) -> Any:
    """``np.column_stack``: 1-d inputs as columns, joined with 2-d ones along the second axis."""
    arrays = _listed("column_stack", tup)
    columns = [ops.reshape(x, shape=(-1, 1)) if len(_shape(x)) < 2 else x for x in arrays]
    return ops.concatenate(columns, axis=1)


@composite(np.append)
def append(arr: Any, values: Any, axis: int | None = None) -> Any:
    """``np.append``: values joined after arr along ``axis`` (both flattened when it is None)."""
    if axis is None:
        return ops.concatenate([ravel(arr), ravel(values)], axis=0)
    return ops.concatenate([arr, values], axis=axis)


def _positions(name: str, indices: Any) -> np.ndarray:
    if isinstance(indices, Value):
        raise DTypeError(f"{name}: indices must be integers (a numpy array or list), not a Value")
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{name}: indices must be integers, got dtype {idx.dtype}")
    return idx


@composite(np.take)
def take(a: Any, indices: Any, axis: int | None = None) -> Any:
    """``np.take``: the elements at ``indices`` along ``axis`` (of the flattened a when None)."""
    idx = _positions("take", indices)
    if axis is None:
        return ops.getitem(ravel(a), index=idx)
    return ops.getitem(a, index=_along(_one_axis_checked("take", a, axis), idx))


@composite(np.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: int | None) -> Any:
    """``np.take_along_axis``: ``arr`` indexed along ``axis`` by ``indices`` of its own number of axes
    (as ``np.argsort`` returns them)."""
    idx = _positions("take_along_axis", indices)
    if axis is None:
        arr, axis = ravel(arr), 0
    shape = _shape(arr)
    axis = _one_axis_checked("take_along_axis", arr, axis)
    if idx.ndim != len(shape):
        raise ShapeError(f"take_along_axis: indices of shape {idx.shape} need as many axes as arr {shape}")
    # The positions along every other axis, shaped to broadcast against the indices (numpy's own way).
    index = tuple(idx if d == axis else np.arange(n).reshape((1,) * d + (n,) + (1,) * (len(shape) - d - 1))
                  for d, n in enumerate(shape))
    return ops.getitem(arr, index=index)


@composite(np.sort)
def sort(a: Any, axis: int | None = -1) -> Any:
    """``np.sort``: a sorted along ``axis`` (the flattened a when None). The gradient goes back through the
    permutation: each element's to where it came from (ties kept in order, a stable sort)."""
    if axis is None:
        a, axis = ravel(a), 0
    axis = _one_axis_checked("sort", a, axis)
    return take_along_axis(a, np.argsort(data_of(a), axis=axis, kind="stable"), axis)


@composite(np.argsort)
def argsort(a: Any, axis: int | None = -1) -> np.ndarray:
    """``np.argsort`` (stable): the positions that sort a along ``axis``, as a numpy array."""
    return np.argsort(data_of(a), axis=axis, kind="stable")
