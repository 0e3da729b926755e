"""The op table: every primitive's forward and derivative, side by side.

Each entry is a numpy forward function decorated with one derivative rule per input::

    @primitive(lambda g, ans, a, b: g * b,      # d/da
               lambda g, ans, a, b: g * a)      # d/db
    def multiply(a, b):
        return a * b

A rule maps the output's gradient ``g`` (and the output ``ans``, the op's inputs and its keyword
parameters) to the gradient of one input. Rules never undo broadcasting themselves: the engine sums each
input's gradient back to that input's shape. ``None`` marks an input that takes no gradient (a mask, an
index).

Rules are written with these same primitives and with Python's operators, which work on plain arrays as
well as on Values. During an ordinary ``backward()`` they run on arrays; under ``create_graph=True`` they
run on Values and so record a graph of their own, which is what makes higher-order derivatives work.
Masks are computed from raw data (``_data``): the derivative of a mask is zero, so they stay constants.

Adding an op is one entry here (plus, for the property tests, one line of input spec in
``tests/op_cases.py``; a test fails if it is missing). Composites with no derivative code of their own
live in ``functional.py``.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from .engine import TABLE, Primitive, Rule, data_of
from .errors import ArgumentError, ShapeError

#: Every primitive by name (the engine's registry, which this module fills).
PRIMITIVES: dict[str, Primitive] = TABLE.primitives


def primitive(*vjps: Rule | None, expects: str = "", method: str | None = None,
              operators: tuple[str, ...] = (), symbol: str | None = None, symmetric: bool = False,
              numpy: Any = None, variadic: bool = False) -> Callable[[Callable[..., Any]], Primitive]:
    """Register ``forward`` as a primitive with one derivative rule per positional input.

    The keywords are the entry's metadata: ``method`` and ``operators`` name the ``Value`` method and
    operators that call it, ``symbol`` labels it in drawings, ``symmetric`` says its inputs can be
    swapped, and ``numpy`` is the numpy function it stands for (so ``np.exp(v)`` records ``exp``). A
    ``variadic`` op takes any number of inputs and one rule ``rule(argnum, g, ans, *inputs, **params)``.
    """
    def register(forward: Callable[..., Any]) -> Primitive:
        return TABLE.register(Primitive(forward, vjps, expects, variadic=variadic, method=method,  # type: ignore[no-any-return]
                                   operators=operators, symbol=symbol, symmetric=symmetric, numpy=numpy))
    return register


BROADCASTS = "shapes that broadcast together (in each trailing dimension equal sizes, or a 1)"

# --------------------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------------------

@primitive(lambda g, ans, a, b: g,
           lambda g, ans, a, b: g, expects=BROADCASTS,
           operators=("__add__", "__radd__"), symbol="+", symmetric=True, numpy=np.add)
def add(a, b):
    """a + b;  d/da = g,  d/db = g"""
    return a + b


@primitive(lambda g, ans, a, b: g,
           lambda g, ans, a, b: -g, expects=BROADCASTS,
           operators=("__sub__", "__rsub__"), symbol="-", numpy=np.subtract)
def subtract(a, b):
    """a - b;  d/da = g,  d/db = -g"""
    return a - b


@primitive(lambda g, ans, a, b: g * b,
           lambda g, ans, a, b: g * a, expects=BROADCASTS,
           operators=("__mul__", "__rmul__"), symbol="*", symmetric=True, numpy=np.multiply)
def multiply(a, b):
    """a * b;  d/da = g * b,  d/db = g * a"""
    return a * b


@primitive(lambda g, ans, a, b: g / b,
           lambda g, ans, a, b: -g * ans / b, expects=BROADCASTS,
           operators=("__truediv__", "__rtruediv__"), symbol="/", numpy=np.divide)
def divide(a, b):
    """a / b;  d/da = g / b,  d/db = -g * a / b**2  (written -g * ans / b)"""
    return a / b


@primitive(lambda g, ans, x: g)
def identity(x):
    """x itself, as a new node;  d/dx = g.  grad() gives each argument one, to tell its uses apart."""
    return x


@primitive(lambda g, ans, x: -g, operators=("__neg__",), symbol="neg", numpy=np.negative)
def negative(x):
    """-x;  d/dx = -g"""
    return -x


def _power_vjp_base(g, ans, a, b):
    # NOTE: b * a**(b-1) is 0 * inf = NaN at a = 0, b = 0, where the derivative of the constant a**0 is 0.
    # There the rule is evaluated at b = 1 instead (finite) and masked out, so that no NaN reaches this
    # derivative or, under create_graph, the derivatives of it. Elsewhere b = 0 needs no care.
    if isinstance(b, int | float) and b == 0:
        return g * 0
    pole = (data_of(a) == 0) & (data_of(b) == 0)
    if not np.any(pole):
        return g * b * power(a, b - 1)
    safe = where(pole, 1, b)
    return where(pole, 0, g * safe * power(a, safe - 1))


def _power_vjp_exponent(g, ans, a, b):
    # NOTE: d/db a**b = a**b log(a). At a = 0 and b >= 0 that is 0 * -inf; the derivative of 0**b there
    # is 0 (PyTorch's choice too), so log(1) stands in for log(0). At a = 0 and b < 0 it is inf * -inf
    # = -inf, left as it is.
    if isinstance(a, int | float):   # a Python base: its log as a Python float keeps b's dtype (float32)
        if a == 0:
            return g * where(data_of(b) >= 0, 0.0, ans * -np.inf)
        return g * ans * math.log(a)
    zero = (data_of(a) == 0) & (data_of(b) >= 0)
    with np.errstate(divide="ignore"):
        return g * ans * log(where(zero, 1.0, a))


@primitive(_power_vjp_base, _power_vjp_exponent, expects=BROADCASTS,
           operators=("__pow__", "__rpow__"), symbol="**", numpy=np.power)
def power(a, b):
    """a ** b;  d/da = g * b * a**(b-1),  d/db = g * a**b * log(a)"""
    return a ** b


def _matmul_vjp_left(g, ans, a, b):
    if np.ndim(b) == 1:                       # (..., n, k) @ (k,) -> (..., n)
        return expand_dims(g, -1) * b
    if np.ndim(a) == 1:                       # (k,) @ (..., k, m) -> (..., m)
        return squeeze_last(b @ expand_dims(g, -1))
    return g @ swapaxes(b)


def _matmul_vjp_right(g, ans, a, b):
    if np.ndim(a) == 1:                       # (k,) @ (..., k, m) -> (..., m)
        return expand_dims(a, -1) * expand_dims(g, -2) if np.ndim(b) > 1 else g * a
    if np.ndim(b) == 1:                       # (..., n, k) @ (k,) -> (..., n)
        return squeeze_last(swapaxes(a) @ expand_dims(g, -1))
    return swapaxes(a) @ g


@primitive(_matmul_vjp_left, _matmul_vjp_right,
           expects="the last axis of the left operand to equal the second-to-last axis of the right "
                   "(or the only axis of a 1-d operand); leading batch axes must broadcast",
           operators=("__matmul__", "__rmatmul__"), symbol="@", numpy=np.matmul)
def matmul(a, b):
    """a @ b;  d/da = g @ b.T,  d/db = a.T @ g  (1-d operands as vectors, batch axes broadcast)"""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        raise ShapeError(f"matmul: inputs of shape {np.shape(a)}, {np.shape(b)}: matmul needs operands with "
                         "at least one dimension, not scalars (use * for a scalar)")
    return np.matmul(a, b)


# --------------------------------------------------------------------------------------------------
# Elementwise functions
# --------------------------------------------------------------------------------------------------

@primitive(lambda g, ans, x: g * ans, method="exp", numpy=np.exp)
def exp(x):
    """exp(x);  d/dx = g * exp(x)"""
    return np.exp(x)


@primitive(lambda g, ans, x: g / x, method="log", numpy=np.log)
def log(x):
    """log(x) (natural);  d/dx = g / x.  log(0) = -inf, log(<0) = nan, as numpy."""
    return np.log(x)


@primitive(lambda g, ans, x: g / (2 * ans), method="sqrt", numpy=np.sqrt)
def sqrt(x):
    """sqrt(x);  d/dx = g / (2 sqrt(x)), which is inf at 0, as in PyTorch."""
    return np.sqrt(x)


@primitive(lambda g, ans, x: g * np.sign(data_of(x)), method="abs", operators=("__abs__",), numpy=np.abs)
def abs(x):  # noqa: A001 - numpy's name
    """|x|;  d/dx = g * sign(x), so 0 at x = 0 (the subgradient PyTorch uses)."""
    return np.abs(x)


@primitive(lambda g, ans, x: g * (1 - ans * ans), method="tanh", numpy=np.tanh)
def tanh(x):
    """tanh(x);  d/dx = g * (1 - tanh(x)**2).  Never overflows: numpy's tanh saturates at +-1."""
    return np.tanh(x)


@primitive(lambda g, ans, x: g * ans * (1 - ans), method="sigmoid")
def sigmoid(x):
    """1 / (1 + exp(-x));  d/dx = g * s * (1 - s)."""
    # NOTE: exp(-x) overflows for x < -709. With e = exp(-|x|) <= 1 both branches stay finite:
    # x >= 0: 1 / (1 + e);  x < 0: e / (1 + e)  (= exp(x) / (1 + exp(x))).
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


@primitive(lambda g, ans, x: g * (data_of(x) > 0), method="relu")
def relu(x):
    """max(x, 0);  d/dx = g where x > 0, else 0 (0 at x = 0, as in PyTorch)."""
    if isinstance(x, np.floating):
        # NOTE: a ufunc call on a single number costs about 2 us, several times this; scalar code makes
        # one per neuron. `not x <= 0` lets NaN through, as np.maximum does.
        return x if not x <= 0 else type(x)(0)
    return np.maximum(x, 0)


def _clip_vjp(g, ans, x, lo=None, hi=None):
    # Shaped like the output: array bounds may broadcast x up (the engine sums the gradient back down).
    inside = np.ones(np.shape(ans), dtype=bool)
    if lo is not None:
        inside &= data_of(x) >= lo
    if hi is not None:
        inside &= data_of(x) <= hi
    return g * inside


@primitive(_clip_vjp, method="clip", numpy=np.clip)
def clip(x, lo=None, hi=None):
    """x clipped to [lo, hi];  d/dx = g inside [lo, hi] (bounds included), 0 outside."""
    if lo is None and hi is None:
        raise ArgumentError("clip needs lo, hi or both")
    return np.clip(x, lo, hi)


def _tie_share(x, y):
    # NOTE: at a tie the gradient is split evenly, as in PyTorch's maximum/minimum.
    x, y = data_of(x), data_of(y)
    share = (x > y) + 0.5 * (x == y)           # float64 from bools: back to the inputs' float dtype
    return share.astype(np.result_type(x, y), copy=False)


@primitive(lambda g, ans, a, b: g * _tie_share(a, b),
           lambda g, ans, a, b: g * _tie_share(b, a), expects=BROADCASTS, symmetric=True,
           numpy=np.maximum)
def maximum(a, b):
    """elementwise max(a, b);  d/da = g where a > b, d/db = g where b > a; ties split g evenly."""
    return np.maximum(a, b)


@primitive(None,
           lambda g, ans, cond, a, b: where(cond, g, 0),
           lambda g, ans, cond, a, b: where(cond, 0, g), expects=BROADCASTS, numpy=np.where)
def where(cond, a, b):
    """a where cond, else b;  d/da = g where cond, d/db = g elsewhere; cond takes no gradient."""
    return np.where(data_of(cond), a, b)


# --------------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------------

def _kept_shape(shape, axis):
    """The shape a reduction over ``axis`` has with keepdims=True."""
    if not shape:
        return ()      # numpy lets axis 0 (or -1) reduce a 0-d array, to itself
    axes = _normalize_axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    if ndim == 0:
        # numpy lets axis 0 (or -1) name the one place of a 0-d array, which reduces to itself.
        for a in axes:
            if operator.index(a) not in (0, -1):
                raise np.exceptions.AxisError(a, 0)
        return ()
    return tuple(_one_axis(a, ndim) for a in axes)


def _reduction_axis(x, axis):
    """``axis`` as numpy's reductions take it: on a 0-d array, axis 0 or -1 is the whole array."""
    if axis is not None and np.ndim(x) == 0:
        _normalize_axes(axis, 0)
        return None
    return axis


def reduced_size(shape, axis):
    """How many elements a reduction over ``axis`` combines into each result."""
    return math.prod(shape[a] for a in _normalize_axes(axis, len(shape)))


def _one_axis(a, ndim):
    a = operator.index(a)
    if not -ndim <= a < ndim:
        raise np.exceptions.AxisError(a, ndim)
    return a % ndim if ndim else 0


def _sum_vjp(g, ans, x, axis=None, keepdims=False):
    shape = np.shape(x)
    if axis is not None and not keepdims:
        g = reshape(g, shape=_kept_shape(shape, axis))
    return broadcast_to(g, shape=shape)


@primitive(_sum_vjp, method="sum", numpy=np.sum)
def sum(x, axis=None, keepdims=False):  # noqa: A001 - numpy's name
    """sum over axis;  d/dx = g broadcast back over the summed axes"""
    return np.add.reduce(x, axis=_reduction_axis(x, axis), keepdims=keepdims)


@primitive(lambda g, ans, x, axis=None, keepdims=False:
           _sum_vjp(g * (1.0 / reduced_size(np.shape(x), axis)), ans, x, axis, keepdims),
           method="mean", numpy=np.mean)
def mean(x, axis=None, keepdims=False):
    """arithmetic mean over axis;  d/dx = g / n broadcast back over the n averaged elements"""
    # A primitive, not sum / n: numpy accumulates float16 in float32, where n itself may not fit.
    return np.mean(x, axis=_reduction_axis(x, axis), keepdims=keepdims)


def _extremum_vjp(g, ans, x, axis=None, keepdims=False):
    # NOTE: ties share the gradient evenly (as PyTorch's amax/amin), so it sums to g either way.
    shape = np.shape(x)
    kept = _kept_shape(shape, axis)
    hit = data_of(x) == np.reshape(data_of(ans), kept)
    share = (hit / np.sum(hit, axis=axis, keepdims=True)).astype(data_of(x).dtype, copy=False)
    return reshape(g, shape=kept) * share


@primitive(_extremum_vjp, method="max", numpy=np.max)
def max(x, axis=None, keepdims=False):  # noqa: A001 - numpy's name
    """max over axis;  d/dx = g at the maximum (shared evenly between ties), 0 elsewhere"""
    return np.maximum.reduce(x, axis=_reduction_axis(x, axis), keepdims=keepdims)


@primitive(_extremum_vjp, method="min", numpy=np.min)
def min(x, axis=None, keepdims=False):  # noqa: A001 - numpy's name
    """min over axis;  d/dx = g at the minimum (shared evenly between ties), 0 elsewhere"""
    return np.minimum.reduce(x, axis=_reduction_axis(x, axis), keepdims=keepdims)


# --------------------------------------------------------------------------------------------------
# Shapes, dtypes and indexing
# --------------------------------------------------------------------------------------------------

@primitive(lambda g, ans, x, dtype: astype(g, dtype=np.result_type(data_of(x))), method="astype")
def astype(x, dtype):
    """x cast to another float dtype;  d/dx = g cast back to x's dtype"""
    out = np.asarray(x, dtype=dtype)
    return out[()] if out.ndim == 0 else out


@primitive(lambda g, ans, x, shape: reshape(g, shape=np.shape(x)),
           expects="a shape with the same number of elements", method="reshape", numpy=np.reshape)
def reshape(x, shape):
    """x viewed with a new shape;  d/dx = g reshaped back"""
    return np.reshape(x, shape)


def _transpose_vjp(g, ans, x, axes=None):
    if axes is None:
        return transpose(g)
    return transpose(g, axes=tuple(np.argsort([_one_axis(a, np.ndim(x)) for a in axes])))


@primitive(_transpose_vjp, expects="axes that are a permutation of the array's dimensions",
           method="transpose", numpy=np.transpose)
def transpose(x, axes=None):
    """x with its axes permuted (reversed when axes is None);  d/dx = g permuted back"""
    return np.transpose(x, axes)


@primitive(lambda g, ans, x, shape: g, expects=BROADCASTS, numpy=np.broadcast_to)
def broadcast_to(x, shape):
    """x repeated along broadcast axes;  d/dx = g summed over them (done by the engine's unbroadcast)"""
    if math.prod(shape) <= _SMALL:
        # NOTE: np.broadcast_to costs microseconds of Python-level checks; for small results (as the
        # gradient of a sum over a small array) filling a fresh array is several times cheaper.
        out = np.empty(shape, dtype=np.result_type(x))
        out[...] = x
        return out
    return np.broadcast_to(x, shape)


_SMALL = 4096


@primitive(lambda g, ans, x, index: scatter_add(g, index=index, shape=np.shape(x)), expects="a valid index",
           operators=("__getitem__",))
def getitem(x, index):
    """x[index] (basic and advanced indexing);  d/dx = g added into zeros at index (repeats accumulate)"""
    return x[index]


@primitive(lambda g, ans, y, index, shape: getitem(g, index=index))
def scatter_add(y, index, shape):
    """zeros(shape) with y added at index (repeats accumulate): the adjoint of getitem;  d/dy = g[index]"""
    out = np.zeros(shape, dtype=np.result_type(y))
    if _is_basic(index):
        out[index] = y            # a basic index never names an element twice: plain assignment
    else:
        np.add.at(out, index, y)  # positions (arrays, lists) may repeat: add up every one
    return out


def _is_basic(index) -> bool:
    """Ints, slices, None and Ellipsis only: numpy's basic indexing, which names each element once."""
    parts = index if isinstance(index, tuple) else (index,)
    return builtins.all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice))  # noqa: UP038
                        for p in parts)


def _concatenate_vjp(argnum, g, ans, *arrays, axis=0):
    axis = _one_axis(axis, np.ndim(ans))
    start = builtins.sum(np.shape(a)[axis] for a in arrays[:argnum])
    stop = start + np.shape(arrays[argnum])[axis]
    return getitem(g, index=(slice(None),) * axis + (slice(start, stop),))


@primitive(_concatenate_vjp, variadic=True, numpy=np.concatenate,
           expects="inputs with equal sizes in every axis but the one joined")
def concatenate(arrays, axis=0):
    """arrays joined along an existing axis;  d/d(input i) = g's slice that input i filled"""
    return np.concatenate(arrays, axis=axis)


def _stack_vjp(argnum, g, ans, *arrays, axis=0):
    axis = _one_axis(axis, np.ndim(ans))
    return getitem(g, index=(slice(None),) * axis + (argnum,))


@primitive(_stack_vjp, variadic=True, numpy=np.stack, expects="inputs of exactly equal shapes")
def stack(arrays, axis=0):
    """arrays joined along a new axis;  d/d(input i) = g[..., i, ...] along that axis"""
    return np.stack(arrays, axis=axis)


# --------------------------------------------------------------------------------------------------
# Helpers the rules use (compositions of the primitives above, so they work on arrays and Values)
# --------------------------------------------------------------------------------------------------

def swapaxes(x, a=-1, b=-2):
    """x with two axes exchanged (the last two by default)."""
    if isinstance(x, np.ndarray):
        return x.swapaxes(a, b)   # a constant (a batch of inputs, in matmul's rule): just the view
    axes = list(range(np.ndim(x)))
    axes[a], axes[b] = axes[b], axes[a]
    return transpose(x, axes=tuple(axes))


def expand_dims(x, axis):
    """x with a new axis of size 1 at ``axis``."""
    shape = list(np.shape(x))
    shape.insert(axis if axis >= 0 else len(shape) + axis + 1, 1)
    return reshape(x, shape=tuple(shape))


def squeeze_last(x):
    return reshape(x, shape=np.shape(x)[:-1])
