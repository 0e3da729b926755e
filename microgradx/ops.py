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
from typing import Any, TypeVar

import numpy as np

from .engine import TABLE, Primitive, Rule, Value, data_of
from .errors import ArgumentError, AxisError, ShapeError

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


F = TypeVar("F", bound=Callable[..., Any])


def composite(numpy: Any = None) -> Callable[[F], F]:
    """Register a composite (an op made of primitives, with no rule of its own) in the op table;
    ``numpy`` is the numpy function it stands for, if any (so ``np.var(v)`` records it)."""
    def register(fn: F) -> F:
        fn.numpy = numpy  # type: ignore[attr-defined]
        return TABLE.register(fn)  # type: ignore[no-any-return]
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
        with np.errstate(invalid="ignore"):      # a negative base: NaN, as numpy's log (not an error)
            return g * ans * float(np.log(a))
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
        # NOTE: a comparison, not a ufunc: scalar code makes one call per neuron, and a ufunc's dispatch
        # on a single number outweighs the work. `not x <= 0` lets NaN through, as np.maximum does.
        return x if not x <= 0 else type(x)(0)
    return np.maximum(x, 0)


def _clip_vjp(g, ans, x, lo=None, hi=None):
    # Shaped like the output: array bounds may broadcast x up (the engine sums the gradient back down).
    inside = np.ones(np.shape(ans), dtype=bool)
    if lo is not None:
        inside &= data_of(x) >= data_of(lo)
    if hi is not None:
        inside &= data_of(x) <= data_of(hi)
    return g * inside


@primitive(_clip_vjp, method="clip", numpy=np.clip)
def clip(x, lo=None, hi=None):
    """x clipped to [lo, hi];  d/dx = g inside [lo, hi] (bounds included), 0 outside."""
    if lo is None and hi is None:
        raise ArgumentError("clip needs lo, hi or both")
    return np.clip(x, data_of(lo), data_of(hi))    # the bounds are parameters: they take no gradient


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
        # NOTE: for small results (the gradient of a sum over a small array) a fresh array filled in
        # place is cheaper than np.broadcast_to's Python-level checks (benchmarks/README.md).
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
# More elementwise functions: trigonometric, hyperbolic, logarithms and exponentials in other bases
# --------------------------------------------------------------------------------------------------

@primitive(lambda g, ans, x: g * cos(x), numpy=np.sin)
def sin(x):
    """sin(x);  d/dx = g * cos(x)"""
    return np.sin(x)


@primitive(lambda g, ans, x: -g * sin(x), numpy=np.cos)
def cos(x):
    """cos(x);  d/dx = -g * sin(x)"""
    return np.cos(x)


@primitive(lambda g, ans, x: g * (1 + ans * ans), numpy=np.tan)
def tan(x):
    """tan(x);  d/dx = g * (1 + tan(x)**2)"""
    return np.tan(x)


@primitive(lambda g, ans, x: g / sqrt(1 - x * x), numpy=np.arcsin)
def arcsin(x):
    """arcsin(x), for x in [-1, 1];  d/dx = g / sqrt(1 - x**2)"""
    return np.arcsin(x)


@primitive(lambda g, ans, x: -g / sqrt(1 - x * x), numpy=np.arccos)
def arccos(x):
    """arccos(x), for x in [-1, 1];  d/dx = -g / sqrt(1 - x**2)"""
    return np.arccos(x)


@primitive(lambda g, ans, x: g / (1 + x * x), numpy=np.arctan)
def arctan(x):
    """arctan(x);  d/dx = g / (1 + x**2)"""
    return np.arctan(x)


@primitive(lambda g, ans, y, x: g * x / (x * x + y * y),
           lambda g, ans, y, x: -g * y / (x * x + y * y), expects=BROADCASTS, numpy=np.arctan2)
def arctan2(y, x):
    """the angle of the point (x, y);  d/dy = g * x / (x**2 + y**2),  d/dx = -g * y / (x**2 + y**2)"""
    return np.arctan2(y, x)


@primitive(lambda g, ans, x: g * cosh(x), numpy=np.sinh)
def sinh(x):
    """sinh(x);  d/dx = g * cosh(x)"""
    return np.sinh(x)


@primitive(lambda g, ans, x: g * sinh(x), numpy=np.cosh)
def cosh(x):
    """cosh(x);  d/dx = g * sinh(x)"""
    return np.cosh(x)


@primitive(lambda g, ans, x: g / sqrt(x * x + 1), numpy=np.arcsinh)
def arcsinh(x):
    """arcsinh(x);  d/dx = g / sqrt(x**2 + 1)"""
    return np.arcsinh(x)


@primitive(lambda g, ans, x: g / sqrt(x * x - 1), numpy=np.arccosh)
def arccosh(x):
    """arccosh(x), for x >= 1;  d/dx = g / sqrt(x**2 - 1)"""
    return np.arccosh(x)


@primitive(lambda g, ans, x: g / (1 - x * x), numpy=np.arctanh)
def arctanh(x):
    """arctanh(x), for x in (-1, 1);  d/dx = g / (1 - x**2)"""
    return np.arctanh(x)


@primitive(lambda g, ans, x: g / (1 + x), numpy=np.log1p)
def log1p(x):
    """log(1 + x), accurate for tiny x;  d/dx = g / (1 + x)"""
    return np.log1p(x)


@primitive(lambda g, ans, x: g * (ans + 1), numpy=np.expm1)
def expm1(x):
    """exp(x) - 1, accurate for tiny x;  d/dx = g * exp(x)  (written g * (expm1(x) + 1))"""
    return np.expm1(x)


_LN2, _LN10 = math.log(2.0), math.log(10.0)


@primitive(lambda g, ans, x: g / (x * _LN2), numpy=np.log2)
def log2(x):
    """log base 2 of x;  d/dx = g / (x ln 2)"""
    return np.log2(x)


@primitive(lambda g, ans, x: g / (x * _LN10), numpy=np.log10)
def log10(x):
    """log base 10 of x;  d/dx = g / (x ln 10)"""
    return np.log10(x)


@primitive(lambda g, ans, x: g * ans * _LN2, numpy=np.exp2)
def exp2(x):
    """2 ** x;  d/dx = g * 2**x * ln 2"""
    return np.exp2(x)


@primitive(lambda g, ans, a, b: g * exp(a - ans),
           lambda g, ans, a, b: g * exp(b - ans), expects=BROADCASTS, numpy=np.logaddexp)
def logaddexp(a, b):
    """log(exp(a) + exp(b)) without overflow;  d/da = g * exp(a - ans),  d/db = g * exp(b - ans)"""
    return np.logaddexp(a, b)


@primitive(lambda g, ans, a, b: g * exp2(a - ans),
           lambda g, ans, a, b: g * exp2(b - ans), expects=BROADCASTS, numpy=np.logaddexp2)
def logaddexp2(a, b):
    """log2(2**a + 2**b) without overflow;  d/da = g * 2**(a - ans),  d/db = g * 2**(b - ans)"""
    return np.logaddexp2(a, b)


@primitive(lambda g, ans, x: g * 2 * x, numpy=np.square)
def square(x):
    """x ** 2;  d/dx = g * 2 * x"""
    return np.square(x)


@primitive(lambda g, ans, x: -g * ans * ans, numpy=np.reciprocal)
def reciprocal(x):
    """1 / x;  d/dx = -g / x**2  (written -g * ans**2)"""
    return np.reciprocal(x)


@primitive(lambda g, ans, x: g / (3 * ans * ans), numpy=np.cbrt)
def cbrt(x):
    """the real cube root of x;  d/dx = g / (3 cbrt(x)**2), which is inf at 0"""
    return np.cbrt(x)


@primitive(lambda g, ans, a, b: g * a / ans,
           lambda g, ans, a, b: g * b / ans, expects=BROADCASTS, numpy=np.hypot)
def hypot(a, b):
    """sqrt(a**2 + b**2) without overflow;  d/da = g * a / ans,  d/db = g * b / ans"""
    return np.hypot(a, b)


def _erf(x):
    # numpy has no erf. Two forms, each where it is accurate (to about 1e-14, against math.erf): the
    # Taylor series near 0, and beyond 2.5 the continued fraction of erfc, whose terms are all positive.
    x = np.asarray(x)
    z = x.astype(np.float64)
    out = np.empty_like(z)
    near = np.abs(z) <= 2.5
    s = z[near]
    term, total = s.copy(), s.copy()
    for n in range(1, 45):                      # erf(s) = 2/sqrt(pi) sum (-1)^n s^(2n+1) / (n! (2n+1))
        term *= -s * s / n
        total += term / (2 * n + 1)
    out[near] = total * (2 / math.sqrt(math.pi))
    a = np.abs(z[~near])
    t = a.copy()
    for k in range(60, 0, -1):                  # erfc(a) = exp(-a^2) / sqrt(pi) / (a + (1/2) / (a + 1 / ...))
        t = a + (k / 2) / t
    out[~near] = np.sign(z[~near]) * (1 - np.exp(-a * a) / (math.sqrt(math.pi) * t))
    return out.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)[()]


@primitive(lambda g, ans, x: g * (2 / math.sqrt(math.pi)) * exp(-x * x))
def erf(x):
    """erf(x) = 2/sqrt(pi) * integral of exp(-t**2) over [0, x];  d/dx = g * 2/sqrt(pi) * exp(-x**2)"""
    return _erf(x)


# --------------------------------------------------------------------------------------------------
# Minimum, maximum and remainders
# --------------------------------------------------------------------------------------------------

@primitive(lambda g, ans, a, b: g * _tie_share(b, a),
           lambda g, ans, a, b: g * _tie_share(a, b), expects=BROADCASTS, numpy=np.minimum)
def minimum(a, b):
    """elementwise min(a, b);  d/da = g where a < b, d/db = g where b < a; ties split g evenly."""
    return np.minimum(a, b)


def _nan_share(x, y, share):
    # fmax and fmin ignore a NaN: the other operand is the result there, so it takes the gradient.
    nan_x, nan_y = np.isnan(data_of(x)), np.isnan(data_of(y))
    return np.where(nan_y & ~nan_x, 1, np.where(nan_x, 0, share)).astype(share.dtype, copy=False)


@primitive(lambda g, ans, a, b: g * _nan_share(a, b, _tie_share(a, b)),
           lambda g, ans, a, b: g * _nan_share(b, a, _tie_share(b, a)), expects=BROADCASTS, numpy=np.fmax)
def fmax(a, b):
    """elementwise max(a, b), ignoring a NaN;  d/da = g where a > b or b is NaN (ties split), as maximum"""
    return np.fmax(a, b)


@primitive(lambda g, ans, a, b: g * _nan_share(a, b, _tie_share(b, a)),
           lambda g, ans, a, b: g * _nan_share(b, a, _tie_share(a, b)), expects=BROADCASTS, numpy=np.fmin)
def fmin(a, b):
    """elementwise min(a, b), ignoring a NaN;  d/da = g where a < b or b is NaN (ties split), as minimum"""
    return np.fmin(a, b)


@primitive(lambda g, ans, a, b: g,
           lambda g, ans, a, b: -g * np.floor_divide(data_of(a), data_of(b)), expects=BROADCASTS,
           numpy=np.mod)
def mod(a, b):
    """a - floor(a / b) * b (the sign of b, as Python's %);  d/da = g,  d/db = -g * floor(a / b)"""
    return np.mod(a, b)


@primitive(lambda g, ans, a, b: g,
           lambda g, ans, a, b: -g * np.trunc(data_of(a) / data_of(b)), expects=BROADCASTS, numpy=np.fmod)
def fmod(a, b):
    """a - trunc(a / b) * b (the sign of a, as C's fmod);  d/da = g,  d/db = -g * trunc(a / b)"""
    return np.fmod(a, b)


remainder = mod     # numpy's two names for one function


# --------------------------------------------------------------------------------------------------
# Steps: piecewise-constant functions, whose derivative is 0 wherever it exists
# --------------------------------------------------------------------------------------------------
# NOTE: at a jump (0 for sign, the integers for floor...) there is no derivative; these rules say 0 there
# too, as PyTorch and JAX do, so that a step inside a model passes no gradient rather than NaN.

def _flat(g, ans, x, **params):
    return g * 0


@primitive(_flat, numpy=np.sign)
def sign(x):
    """-1, 0 or 1, the sign of x;  d/dx = 0 (also at 0, where sign jumps)"""
    return np.sign(x)


@primitive(_flat, numpy=np.floor)
def floor(x):
    """the largest integer <= x;  d/dx = 0 (also at the integers, where it jumps)"""
    return np.floor(x)


@primitive(_flat, numpy=np.ceil)
def ceil(x):
    """the smallest integer >= x;  d/dx = 0 (also at the integers, where it jumps)"""
    return np.ceil(x)


@primitive(_flat, method="round", numpy=np.round)
def round(x, decimals=0):  # noqa: A001 - numpy's name
    """x rounded to ``decimals`` digits, halves to even;  d/dx = 0 (also at the halves, where it jumps)"""
    return np.round(x, decimals)


@primitive(_flat, numpy=np.rint)
def rint(x):
    """x rounded to the nearest integer, halves to even;  d/dx = 0 (also at the halves, where it jumps)"""
    return np.rint(x)


@primitive(_flat, numpy=np.trunc)
def trunc(x):
    """x rounded towards 0;  d/dx = 0 (also at the integers, where it jumps)"""
    return np.trunc(x)


# --------------------------------------------------------------------------------------------------
# More reductions: products and running sums
# --------------------------------------------------------------------------------------------------

def _to_last(x, axis):
    """x with the axes of ``axis`` (all when None) merged into one last axis; the kept shape of the rest."""
    ndim = np.ndim(x)
    axes = _normalize_axes(axis, ndim)
    rest = tuple(i for i in range(ndim) if i not in axes)
    moved = transpose(x, axes=rest + axes) if rest + axes != tuple(range(ndim)) else x
    return reshape(moved, shape=tuple(np.shape(x)[i] for i in rest) + (-1,))


def _from_last(y, x, axis):
    """The inverse of ``_to_last`` for an array of x's size: back to x's shape and axis order."""
    ndim = np.ndim(x)
    axes = _normalize_axes(axis, ndim)
    rest = tuple(i for i in range(ndim) if i not in axes)
    order = rest + axes
    y = reshape(y, shape=tuple(np.shape(x)[i] for i in order))
    return transpose(y, axes=tuple(np.argsort(order))) if order != tuple(range(ndim)) else y


def _exclusive_cumprod(x):
    """Along the last axis: the product of the elements before each one (1 for the first)."""
    ones = np.ones(np.shape(x)[:-1] + (1,), dtype=np.result_type(data_of(x)))
    return concatenate([ones, cumprod(getitem(x, index=(Ellipsis, slice(None, -1))), axis=-1)], axis=-1)


def _prod_vjp(g, ans, x, axis=None, keepdims=False):
    if not np.ndim(x):
        return g
    # The product of the others, as the product of the elements before each one times that of those after
    # it (exclusive running products along the reduced axes, flattened). NOTE: not ans / x, which is 0 / 0
    # where x holds a zero, and whose own derivative cancels catastrophically where x is tiny.
    g = reshape(g, shape=_kept_shape(np.shape(x), axis))
    flat = _to_last(x, axis)
    others = _exclusive_cumprod(flat) * _reverse(_exclusive_cumprod(_reverse(flat)))
    return g * _from_last(others, x, axis)


def _divisible(x, ans):
    """Whether dividing ans by x loses nothing: no zero in x, nothing in x or ans so small (subnormal)
    that it has lost digits, and no product that overflowed (inf / x is not the product of the others)."""
    tiny = np.finfo(np.result_type(data_of(x))).tiny
    a = np.abs(data_of(ans))
    return bool(np.all(np.abs(data_of(x)) >= tiny) and np.all(a >= tiny) and np.all(a < np.inf))


def _reverse(x):
    return getitem(x, index=(Ellipsis, slice(None, None, -1)))


@primitive(_prod_vjp, method="prod", numpy=np.prod)
def prod(x, axis=None, keepdims=False):
    """product over axis;  d/dx = g * the product of the other elements (exact where x holds zeros)"""
    return np.multiply.reduce(x, axis=axis, keepdims=keepdims)


def _cumsum_vjp(g, ans, x, axis=None):
    if axis is None:   # numpy runs over the flattened array
        return reshape(_cumsum_vjp(g, None, reshape(x, shape=(-1,)), axis=0), shape=np.shape(x))
    # The sum of g from each position to the end: a running sum of g reversed. (The total less the
    # running sum, plus g, is shorter, but it cancels catastrophically where g's elements differ in scale.)
    backwards = (slice(None),) * _one_axis(axis, np.ndim(g)) + (slice(None, None, -1),)
    return getitem(cumsum(getitem(g, index=backwards), axis=axis), index=backwards)


@primitive(_cumsum_vjp, method="cumsum", numpy=np.cumsum)
def cumsum(x, axis=None):
    """running sum along axis (the flattened x when None);  d/dx = g summed from each position to the end"""
    return np.cumsum(x, axis=axis)


def _cumprod_vjp(g, ans, x, axis=None):
    if axis is None:
        return reshape(_cumprod_vjp(g, ans, reshape(x, shape=(-1,)), axis=0), shape=np.shape(x))
    if not isinstance(ans, Value) and _divisible(x, ans):   # ans is a Value under create_graph
        return _cumsum_vjp(g * ans, None, x, axis=axis) / x
    # NOTE: dividing by x is 0 / 0 where x holds a zero, and the derivative of the division (recorded
    # under create_graph) cancels catastrophically where x is tiny. So in those cases ans_j / x_i is the
    # product of x_k for k <= j, k != i, computed as such. Element i's derivative is sum over j >= i of
    # g_j * prod(x_k for k <= j, k != i): running products of x with x_i set to 1, one row per i (n^2
    # work along the axis, in those cases only).
    last = moveaxis(x, source=axis, destination=-1)
    n = np.shape(last)[-1]
    eye = np.eye(n, dtype=bool)
    rows = where(eye, 1.0, expand_dims(last, -2))                       # (..., i, k)
    later = np.triu(np.ones((n, n), dtype=bool))                        # j >= i
    gl = expand_dims(moveaxis(g, source=axis, destination=-1), -2)     # (..., 1, j)
    total = sum(where(later, gl * cumprod(rows, axis=-1), 0.0), axis=-1)
    return moveaxis(total, source=-1, destination=axis)


@primitive(_cumprod_vjp, method="cumprod", numpy=np.cumprod)
def cumprod(x, axis=None):
    """running product along axis (flattened when None);  d/dx = sum over j >= i of g_j * ans_j / x_i"""
    return np.cumprod(x, axis=axis)


# --------------------------------------------------------------------------------------------------
# Contractions: einsum, from which the other products of functional.py are built
# --------------------------------------------------------------------------------------------------

def _einsum_parts(subscripts, n_operands):
    """``"ij,jk->ik"`` as (["ij", "jk"], "ik"); an implicit output (letters used once, sorted) spelled out."""
    if not isinstance(subscripts, str):
        raise ArgumentError(f"einsum: subscripts must be a string such as 'ij,jk->ik', got {subscripts!r}")
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise ArgumentError("einsum: '...' is not supported; name every axis with a letter")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != n_operands:
        raise ArgumentError(f"einsum: subscripts {subscripts!r} name {len(terms)} operands, got {n_operands}")
    if not arrow:
        letters = "".join(terms)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return terms, output


def _einsum_vjp(argnum, g, ans, *operands, subscripts):
    terms, output = _einsum_parts(subscripts, len(operands))
    mine = terms[argnum]
    # The gradient of operand i is g contracted with the other operands, onto i's own letters. Two
    # cases need more: a letter i repeats (a diagonal, "ii"), which an einsum output cannot, and a
    # letter only i has (summed away), over which g is constant.
    sizes = dict(zip(mine, np.shape(operands[argnum]), strict=True))
    others = [(t, op) for k, (t, op) in enumerate(zip(terms, operands, strict=True)) if k != argnum]
    known = set(output).union(*(set(t) for t, _ in others))
    extra_terms, extra_ops = [], []
    target = []
    fresh = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in subscripts)
    seen = set()
    for c in mine:
        if c in seen:                       # a repeat: a fresh letter, tied to the first by an identity
            d = next(fresh)
            extra_terms.append(c + d)
            extra_ops.append(np.eye(sizes[c], dtype=np.result_type(data_of(g))))
            target.append(d)
            continue
        seen.add(c)
        target.append(c)
        if c not in known:                  # summed away by i alone: g is the same all along it
            extra_terms.append(c)
            extra_ops.append(np.ones(sizes[c], dtype=np.result_type(data_of(g))))
    spec = ",".join([output, *(t for t, _ in others), *extra_terms]) + "->" + "".join(target)
    return einsum_of([g, *(op for _, op in others), *extra_ops], subscripts=spec)


@primitive(_einsum_vjp, variadic=True,
           expects="operands with as many axes as their subscripts have letters, and equal sizes wherever "
                   "a letter repeats")
def einsum_of(operands, subscripts):
    """einsum(subscripts, *operands);  d/d(operand i) = einsum of g and the other operands onto i's letters"""
    # optimize: pairs of operands go to BLAS (tensordot) rather than to einsum's own loops.
    return np.einsum(subscripts, *operands, optimize=len(operands) > 1)


@composite(np.einsum)
def einsum(subscripts: str, *operands: Any) -> Any:
    """``np.einsum`` for Values and arrays: ``einsum("ij,jk->ik", a, b)`` is ``a @ b``. No ``...``."""
    _einsum_parts(subscripts, len(operands))     # our error for a bad spec, before numpy's
    return einsum_of(list(operands), subscripts=subscripts)





# --------------------------------------------------------------------------------------------------
# More shapes: numpy's ways to move, cut, repeat and reorder axes and elements
# --------------------------------------------------------------------------------------------------

@composite(np.moveaxis)
def moveaxis(x, source, destination):
    """``np.moveaxis``: the axes ``source`` moved to the places ``destination``, the others in order."""
    ndim = np.ndim(x)
    src, dst = _normalize_axes(source, ndim), _normalize_axes(destination, ndim)
    if len(src) != len(dst):
        raise AxisError(f"moveaxis: source {source!r} and destination {destination!r} name different "
                        "numbers of axes")
    order = [n for n in range(ndim) if n not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return transpose(x, axes=tuple(order)) if order != list(range(ndim)) else x


# --------------------------------------------------------------------------------------------------
# Sliding windows: the strided views that convolution and pooling are built on
# --------------------------------------------------------------------------------------------------

def _window_geometry(shape, kernel, stride, padding, dilation):
    """The number of windows (OH, OW) along the last two axes of ``shape``; checks the arguments."""
    if len(shape) < 2:
        raise ShapeError(f"windows over the last two axes need an input of 2 or more dimensions, got shape "
                         f"{tuple(shape)}")
    counts = []
    for n, k, s, p, d in zip(shape[-2:], kernel, stride, padding, dilation, strict=True):
        if k < 1 or s < 1 or d < 1 or p < 0:
            raise ArgumentError(f"windows: kernel size, stride and dilation must be >= 1 and padding >= 0, "
                                f"got kernel {kernel}, stride {stride}, padding {padding}, "
                                f"dilation {dilation}")
        span = d * (k - 1) + 1
        if n + 2 * p < span:
            raise ShapeError(f"windows: an input of spatial size {tuple(shape[-2:])} padded by {padding} is "
                             f"smaller than the kernel {kernel} (spanning {span} with dilation {dilation})")
        counts.append((n + 2 * p - span) // s + 1)
    return tuple(counts)


def _windows2d_vjp(g, ans, x, kernel, stride=(1, 1), padding=(0, 0), dilation=(1, 1), fill=0.0):
    return scatter_windows2d(g, shape=np.shape(x), kernel=kernel, stride=stride, padding=padding,
                             dilation=dilation)


@primitive(_windows2d_vjp)
def windows2d(x, kernel, stride=(1, 1), padding=(0, 0), dilation=(1, 1), fill=0.0):
    """x's windows over its last two axes, as (kh, kw, ..., OH, OW);  d/dx = scatter_windows2d(g)"""
    oh, ow = _window_geometry(np.shape(x), kernel, stride, padding, dilation)
    x = np.asarray(x)
    if padding[0] or padding[1]:
        # The padding is a constant: 0 for convolution and average pooling, -inf for max pooling.
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(padding[0],) * 2, (padding[1],) * 2], constant_values=fill)
    *lead, sh, sw = x.strides
    # A read-only view, no copy: tap (a, b) of window (i, j) is element (i*stride + a*dilation, ...). The
    # taps come first, so that each tap is one large strided block: reducing over the taps (pooling) and
    # adding them back one by one (the adjoint) run over whole blocks rather than over 2x2 corners.
    return np.lib.stride_tricks.as_strided(
        x, shape=(*kernel, *x.shape[:-2], oh, ow),
        strides=(sh * dilation[0], sw * dilation[1], *lead, sh * stride[0], sw * stride[1]), writeable=False)


def _scatter_windows2d_vjp(g, ans, cols, shape, kernel, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    return windows2d(g, kernel=kernel, stride=stride, padding=padding, dilation=dilation)


@primitive(_scatter_windows2d_vjp,
           expects="windows shaped (kh, kw, ..., OH, OW), as windows2d makes them from an input of `shape`")
def scatter_windows2d(cols, shape, kernel, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """zeros(shape) plus each window added back where windows2d took it;  d/dcols = windows2d(g)"""
    oh, ow = _window_geometry(shape, kernel, stride, padding, dilation)
    if np.shape(cols) != (*kernel, *shape[:-2], oh, ow):
        raise ShapeError(f"scatter_windows2d: windows of shape {np.shape(cols)} do not come from an input of "
                         f"shape {tuple(shape)}, whose windows have shape {(*kernel, *shape[:-2], oh, ow)}")
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    out = np.zeros((*shape[:-2], shape[-2] + 2 * ph, shape[-1] + 2 * pw), dtype=np.result_type(cols))
    # Windows may overlap, so one assignment could lose sums: one strided add per kernel tap (kh * kw of
    # them), each over every window of the whole batch at once.
    for a in range(kernel[0]):
        rows = slice(a * dh, a * dh + sh * (oh - 1) + 1, sh)
        for b in range(kernel[1]):
            out[..., rows, b * dw:b * dw + sw * (ow - 1) + 1:sw] += cols[a, b]
    return out[..., ph:ph + shape[-2], pw:pw + shape[-1]]


# --------------------------------------------------------------------------------------------------
# Helpers the rules use (compositions of the primitives above, so they work on arrays and Values)
# --------------------------------------------------------------------------------------------------

@composite(np.swapaxes)
def swapaxes(x, a=-1, b=-2):
    """``np.swapaxes``: x with two axes exchanged (the last two by default)."""
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

