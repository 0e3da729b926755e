"""One input spec per op: how to draw valid inputs and call it. The property tests run every case.

A case is ``OpCase(name, draw)``: ``draw(data)`` returns ``(f, inputs)`` where ``f`` takes one Value per
input. Inputs stay away from kinks (relu and abs at 0, clip bounds, ties in max/min/maximum) and domain
edges (log and sqrt near 0), where finite differences cannot check a derivative.

``test_every_op_has_a_case`` fails when an op in ``ops.PRIMITIVES`` or ``functional.__all__`` has no case
here, so a new op cannot go untested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hypothesis.strategies as st
import numpy as np

import microgradx as mg
from microgradx import functional as F
from microgradx import linalg as LA
from microgradx import nn_functional as NF
from microgradx import ops
from microgradx.testing import arrays, broadcastable_shapes, positive_arrays, shapes


@dataclass(frozen=True)
class OpCase:
    name: str
    draw: Any  # (data) -> (f, [input arrays])
    covers: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name


def _pair(data, low=-3.0, high=3.0, avoid=()):
    sa, sb = data.draw(broadcastable_shapes(2))
    return data.draw(arrays(sa, low, high, avoid)), data.draw(arrays(sb, low, high, avoid))


def _one(data, low=-3.0, high=3.0, avoid=(), min_dims=0):
    return data.draw(arrays(shapes(min_dims=min_dims), low, high, avoid))


def _distinct(data, min_dims=1, min_side=1):
    """An array whose elements differ by at least 0.4: no ties for max/min."""
    shape = data.draw(shapes(min_dims=min_dims, min_side=min_side))
    n = int(np.prod(shape))
    perm = np.array(data.draw(st.permutations(range(n))), dtype=np.float64)
    jitter = data.draw(arrays((n,), 0.0, 0.1))
    return ((perm - n / 2) * 0.5 + jitter).reshape(shape)


def _axis(data, ndim):
    """None, one axis (maybe negative), or a tuple of distinct axes."""
    if ndim == 0:
        return None
    return data.draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
    ))


def _binary(name, fn, **kw):
    def draw(data):
        return fn, list(_pair(data, **kw))
    return OpCase(name, draw)


def _unary(name, fn, **kw):
    def draw(data):
        return fn, [_one(data, **kw)]
    return OpCase(name, draw)


def _divide(data):
    a, b = _pair(data)
    sign = np.where(b >= 0, 1.0, -1.0)
    return (lambda x, y: x / y), [a, sign * (0.5 + np.abs(b))]


def _power_const(data):
    p = data.draw(st.sampled_from([-2.0, -0.5, 0.0, 0.5, 1.5, 2.0, 3.0]))
    return (lambda x: x ** p), [data.draw(positive_arrays(shapes()))]


def _power_int_negative_base(data):
    p = data.draw(st.sampled_from([2, 3]))
    return (lambda x: x ** p), [_one(data)]


def _power_both(data):
    sa, sb = data.draw(broadcastable_shapes(2))
    return (lambda x, y: x ** y), [data.draw(positive_arrays(sa)), data.draw(arrays(sb, -2, 2))]


def _rpow(data):
    return (lambda x: 2.0 ** x), [_one(data)]


def _matmul(data):
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    kind = data.draw(st.sampled_from(["mm", "vec-mat", "mat-vec", "vec-vec", "batched", "batch-bcast"]))
    shapes_ = {"mm": ((n, k), (k, m)), "vec-mat": ((k,), (k, m)), "mat-vec": ((n, k), (k,)),
               "vec-vec": ((k,), (k,)), "batched": ((2, n, k), (2, k, m)),
               "batch-bcast": ((3, n, k), (k, m))}[kind]
    return (lambda a, b: a @ b), [data.draw(arrays(s)) for s in shapes_]


def _clip(data):
    x = _one(data, avoid=(-1.0, 1.0))
    return (lambda v: v.clip(-1.0, 1.0)), [x]


def _on_grid(data, shape, offset):
    """Elements 0.5 * k + offset + jitter (jitter < 0.1): two grids with offsets 0 and 0.25 never tie."""
    k = data.draw(arrays(shape, -6, 6)).round()
    return 0.5 * k + offset + data.draw(arrays(shape, 0.0, 0.1))


def _maximum(data):
    sa, sb = data.draw(broadcastable_shapes(2))
    return mg.maximum, [_on_grid(data, sa, 0.0), _on_grid(data, sb, 0.25)]


def _where(data):
    sc, sa, sb = data.draw(broadcastable_shapes(3))
    cond = data.draw(st.just(sc).flatmap(lambda s: st.lists(
        st.booleans(), min_size=int(np.prod(s)), max_size=int(np.prod(s))).map(
        lambda bits, s=s: np.array(bits, dtype=bool).reshape(s))))
    return (lambda a, b: mg.where(cond, a, b)), [data.draw(arrays(sa)), data.draw(arrays(sb))]


def _reduction(fn, distinct=False):
    def draw(data):
        x = _distinct(data) if distinct else _one(data)
        axis = _axis(data, x.ndim)
        keepdims = data.draw(st.booleans())
        return (lambda v: fn(v, axis=axis, keepdims=keepdims)), [x]
    return draw


def _reshape(data):
    x = _one(data)
    target = data.draw(st.sampled_from([(-1,), x.shape[::-1], (1,) + x.shape, (x.size, 1)]))
    return (lambda v: v.reshape(target)), [x]


def _transpose(data):
    x = _one(data)
    axes = data.draw(st.permutations(range(x.ndim)).map(tuple))
    return (lambda v: v.transpose(axes) if axes else v.T), [x]


def _broadcast_to(data):
    x = _one(data, min_dims=1)
    shape = (2,) + tuple(3 if n == 1 else n for n in x.shape)
    return (lambda v: mg.broadcast_to(v, shape)), [x]


def indices(shape: tuple[int, ...], nonempty: bool = False) -> st.SearchStrategy[Any]:
    """Every kind of index into an array of ``shape`` (at least 1-d) that getitem's rule must undo: an int, a
    slice, positions that repeat, a mask (picking something, with ``nonempty``), a reversal, and an int on
    the last axis behind an Ellipsis."""
    n, last = shape[0], shape[-1]
    masks = st.lists(st.booleans(), min_size=n, max_size=n)
    return st.one_of(
        st.integers(-n, n - 1),
        st.integers(0, n - 1).map(lambda start: slice(start, None)),
        st.lists(st.integers(0, n - 1), min_size=1, max_size=6).map(np.array),
        (masks.filter(any) if nonempty else masks).map(np.array),
        st.just(slice(None, None, -1)),
        st.integers(-last, last - 1).map(lambda j: (Ellipsis, j)))


def _getitem(data):
    x = _one(data, min_dims=1)
    index = data.draw(indices(x.shape))
    return (lambda v: v[index]), [x]


def _scatter_add(data):
    n = data.draw(st.integers(1, 5))
    index = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=6)))
    y = data.draw(arrays((len(index),)))
    return (lambda v: ops.scatter_add(v, index=index, shape=(n,))), [y]


def _join(fn):
    def draw(data):
        base = data.draw(shapes(min_dims=1))
        count = data.draw(st.integers(1, 3))
        axis = data.draw(st.integers(-len(base), len(base) - 1))
        if fn is mg.concatenate:
            parts = [data.draw(arrays(base[:axis % len(base)] + (data.draw(st.integers(1, 3)),)
                                      + base[axis % len(base) + 1:])) for _ in range(count)]
        else:
            parts = [data.draw(arrays(base)) for _ in range(count)]
        return (lambda *vs: fn(list(vs), axis=axis)), parts
    return draw


def _axis_composite(fn):
    def draw(data):
        x = _one(data, min_dims=1)
        axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
        return (lambda v: fn(v, axis=axis)), [x]
    return draw


def _squeeze(data):
    x = data.draw(arrays(st.sampled_from([(1, 3), (2, 1, 2), (1,), (1, 1)])))
    return F.squeeze, [x]


def _expand_dims(data):
    x = _one(data)
    axis = data.draw(st.integers(-x.ndim - 1, x.ndim))
    return (lambda v: F.expand_dims(v, axis)), [x]


def _modulo(fn, shift=0.0):
    """a / b kept 0.15 away from every integer, where mod and fmod jump."""
    def draw(data):
        sa, sb = data.draw(broadcastable_shapes(2))
        b = data.draw(arrays(sb, 0.5, 2.0)) * data.draw(st.sampled_from([1.0, -1.0]))
        q = data.draw(arrays(sa, -3, 3)).round() + data.draw(arrays(sa, 0.15, 0.85))
        return fn, [b * q, b]
    return draw


def _off_grid(fn, step=1.0):
    """Inputs 0.15 to 0.35 of a step past a multiple of ``step``: away from the jumps of steps and halves."""
    def draw(data):
        shape = data.draw(shapes())
        k = data.draw(arrays(shape, -4, 4)).round()
        return fn, [(k + data.draw(arrays(shape, 0.15, 0.35)) * data.draw(st.sampled_from([1, -1]))) * step]
    return draw


def _fminmax(fn):
    def draw(data):
        sa, sb = data.draw(broadcastable_shapes(2))
        return fn, [_on_grid(data, sa, 0.0), _on_grid(data, sb, 0.25)]
    return draw


def _window_args(data, pad_dilated=True):
    """Kernel, stride, padding and dilation, and an input size (H, W) they fit.

    Without ``pad_dilated``, no padding along a dilated axis (where max pooling could see padding only).
    """
    kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(2))
    stride = tuple(data.draw(st.integers(1, 2)) for _ in range(2))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(2))
    padding = tuple(data.draw(st.integers(0, k // 2 if pad_dilated or d == 1 else 0))
                    for k, d in zip(kernel, dilation, strict=True))
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + data.draw(st.integers(0, 2))
                 for k, d, p in zip(kernel, dilation, padding, strict=True))
    return dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation), size




def _windows2d(data):
    args, size = _window_args(data)
    lead = data.draw(shapes(max_dims=2, max_side=2))
    return (lambda v: ops.windows2d(v, **args)), [data.draw(arrays(lead + size))]


def _scatter_windows2d(data):
    args, size = _window_args(data)
    lead = data.draw(shapes(max_dims=2, max_side=2))
    cols_shape = ops.windows2d(np.zeros(lead + size), **args).shape
    return (lambda v: ops.scatter_windows2d(v, shape=lead + size, **args)), [data.draw(arrays(cols_shape))]


def _conv2d(data):
    args, size = _window_args(data)
    groups = data.draw(st.sampled_from([1, 2]))
    n, cg, og = (data.draw(st.integers(1, 2)) for _ in range(3))
    x = data.draw(arrays((n, groups * cg) + size))
    w = data.draw(arrays((groups * og, cg) + args["kernel"]))
    b = data.draw(arrays((groups * og,)))
    kw = dict(stride=args["stride"], padding=args["padding"], dilation=args["dilation"], groups=groups)
    return (lambda x, w, b: NF.conv2d(x, w, b, **kw)), [x, w, b]


def _max_pool2d(data):
    args, size = _window_args(data, pad_dilated=False)
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))) + size
    n = int(np.prod(shape))
    x = (np.array(data.draw(st.permutations(range(n))), dtype=np.float64) * 0.3 - n * 0.15).reshape(shape)
    kernel, stride, padding, dilation = args.values()
    return (lambda v: NF.max_pool2d(v, kernel, stride, padding, dilation)), [x]


def _avg_pool2d(data):
    args, size = _window_args(data)
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))) + size
    include = data.draw(st.booleans())
    return (lambda v: NF.avg_pool2d(v, args["kernel"], args["stride"], args["padding"],
                                    count_include_pad=include)), [data.draw(arrays(shape))]


def _classification(fn):
    def draw(data):
        n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
        target = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
        reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
        return (lambda v: fn(v, target, reduction=reduction)), [data.draw(arrays((n, c)))]
    return draw


def _nn_flatten(data):
    x = _one(data, min_dims=2)
    start = data.draw(st.integers(0, x.ndim - 1))
    end = data.draw(st.integers(start, x.ndim - 1))
    return (lambda v: NF.flatten(v, start, end)), [x]


def _reciprocal(data):
    x = _one(data)
    return mg.ops.reciprocal, [np.where(x >= 0, 1.0, -1.0) * (0.5 + np.abs(x))]



def _with_zeros(data, min_dims=0):
    """An array in [-2, 2] with some elements exactly 0 (maybe none): products must handle them."""
    x = _one(data, low=-2.0, high=2.0, min_dims=min_dims)
    zeros = np.array(data.draw(st.lists(st.booleans(), min_size=x.size, max_size=x.size)), dtype=bool)
    return np.where(zeros.reshape(x.shape) & (data.draw(st.integers(0, 2)) > 0), 0.0, x)


def _prod(data):
    x = _with_zeros(data)
    axis, keepdims = _axis(data, x.ndim), data.draw(st.booleans())
    return (lambda v: ops.prod(v, axis=axis, keepdims=keepdims)), [x]


def _running(fn, zeros=False):
    def draw(data):
        x = _with_zeros(data) if zeros else _one(data)
        axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1))) if x.ndim else None
        return (lambda v: fn(v, axis=axis)), [x]
    return draw


def _var_ddof(fn):
    def draw(data):
        # std is sqrt(var): its derivative is infinite where var is 0, so no axes of one element.
        x = _one(data, min_dims=1) if fn is F.var else _distinct(data, min_side=2)
        axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
        ddof = data.draw(st.integers(0, 1)) if x.shape[axis] > 1 else 0
        keepdims = data.draw(st.booleans())
        return (lambda v: fn(v, axis=axis, keepdims=keepdims, ddof=ddof)), [x]
    return draw



EINSUMS = ["ij,jk->ik", "ij,jk", "i,i", "i,i->i", "ii->i", "ii", "ij->", "ij->ji", "ij,k->ijk", "iij,j->i",
           "ijk,jl,l->ik", "bij,bjk->bik"]


def _einsum(data):
    spec = data.draw(st.sampled_from(EINSUMS))
    sizes = {c: data.draw(st.integers(1, 3)) for c in sorted(set(spec) - set(",->"))}
    terms = spec.partition("->")[0].split(",")
    inputs = [data.draw(arrays(tuple(sizes[c] for c in t))) for t in terms]
    return (lambda *vs: ops.einsum(spec, *vs)), inputs


def _tensordot(data):
    a = _one(data, min_dims=1)
    n = data.draw(st.integers(0, a.ndim))
    extra = data.draw(shapes(max_dims=2))
    b = data.draw(arrays(a.shape[a.ndim - n:] + extra))
    if data.draw(st.booleans()) or n == 0:
        return (lambda x, y: F.tensordot(x, y, n)), [a, b]
    # the same contraction as two lists of axes, b's in another order
    b = np.moveaxis(b, 0, n - 1)
    axes = (list(range(a.ndim - n, a.ndim)), [n - 1] + list(range(n - 1)))
    return (lambda x, y: F.tensordot(x, y, axes)), [a, b]


def _dot_like(fn):
    def draw(data):
        k = data.draw(st.integers(1, 3))
        lead_a = data.draw(shapes(max_dims=2))
        kind = data.draw(st.sampled_from(["scalar", "vector", "matrix"]))
        a = data.draw(arrays(lead_a + (k,)))
        if kind == "scalar":
            return fn, [a, data.draw(arrays(()))]
        if kind == "vector" or fn is not F.dot:
            b_shape = (k,) if kind == "vector" else data.draw(shapes(max_dims=2)) + (k,)
        else:
            b_shape = data.draw(shapes(max_dims=1)) + (k, data.draw(st.integers(1, 3)))
        return fn, [a, data.draw(arrays(b_shape))]
    return draw


def _two(fn):
    def draw(data):
        return fn, [_one(data), _one(data)]
    return draw


def _kron(data):
    return F.kron, [_one(data, min_dims=1), _one(data)]


def _matrix_part(fn, with_axes=False):
    def draw(data):
        x = _one(data, min_dims=2)
        offset = data.draw(st.integers(-2, 2))
        if with_axes:
            a1, a2 = data.draw(st.permutations(range(x.ndim)))[:2]
            return (lambda v: fn(v, offset, a1, a2)), [x]
        return (lambda v: fn(v, offset)), [x]
    return draw


def _diag(data):
    x = data.draw(arrays(shapes(min_dims=1, max_dims=2)))
    k = data.draw(st.integers(-2, 2))
    return (lambda v: F.diag(v, k)), [x]


def _square(data, n=None):
    """A stack of well-conditioned n x n matrices (the identity times n + 1, plus noise in [-1, 1])."""
    n = n or data.draw(st.integers(1, 3))
    batch = data.draw(shapes(max_dims=2, max_side=2))
    return data.draw(arrays(batch + (n, n), -1.0, 1.0)) + (n + 1) * np.eye(n)


def _solve(data):
    a = _square(data)
    n = a.shape[-1]
    vector = a.ndim == 2 and data.draw(st.booleans())
    b = data.draw(arrays((n,) if vector else a.shape[:-2] + (n, data.draw(st.integers(1, 3)))))
    return LA.solve, [a, b]


def _cholesky(data):
    # Of the symmetric part: numpy reads only the lower triangle, which differentiates differently.
    return (lambda v: LA.cholesky(0.5 * (v + ops.swapaxes(v)))), [_square(data)]


def _norm(data):
    x = _one(data, min_dims=1, avoid=(0.0,))
    kind = data.draw(st.sampled_from(["vector", "matrix"] if x.ndim >= 2 else ["vector"]))
    if kind == "matrix":
        ord_ = data.draw(st.sampled_from(["fro", None]))      # 1 and inf pick a maximum: see test_linalg
        axis = (0, 1)
    else:
        ord_ = data.draw(st.sampled_from([None, 2, 1, 3, 0.5, -2]))
        axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    keepdims = data.draw(st.booleans())
    return (lambda v: LA.norm(v, ord_, axis, keepdims)), [x]



def _some_axes(data, ndim):
    """None, or a tuple of distinct axes."""
    return data.draw(st.one_of(st.none(), st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                                                   unique=True).map(tuple)))


def _swapaxes(data):
    x = _one(data, min_dims=1)
    a, b = (data.draw(st.integers(-x.ndim, x.ndim - 1)) for _ in range(2))
    return (lambda v: ops.swapaxes(v, a, b)), [x]


def _moveaxis(data):
    x = _one(data, min_dims=1)
    src = data.draw(st.permutations(range(x.ndim)))[:data.draw(st.integers(1, x.ndim))]
    dst = data.draw(st.permutations(range(x.ndim)))[:len(src)]
    return (lambda v: ops.moveaxis(v, tuple(src), tuple(dst))), [x]


def _flip(data):
    x = _one(data, min_dims=1)
    axis = _some_axes(data, x.ndim)
    return (lambda v: F.flip(v, axis)), [x]


def _roll(data):
    x = _one(data, min_dims=1)
    axis = _some_axes(data, x.ndim)
    shifts = st.integers(-5, 5)
    shift = data.draw(shifts) if axis is None else tuple(data.draw(shifts) for _ in axis)
    return (lambda v: F.roll(v, shift, axis)), [x]


def _rot90(data):
    x = _one(data, min_dims=2)
    k = data.draw(st.integers(-1, 4))
    axes = tuple(data.draw(st.permutations(range(x.ndim)))[:2])
    return (lambda v: F.rot90(v, k, axes)), [x]


def _splits(fn):
    def draw(data):
        x = _one(data, min_dims=1)
        axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
        n = x.shape[axis]
        if fn is F.split:
            parts = data.draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
        else:
            cuts = st.lists(st.integers(0, n), max_size=3).map(sorted)
            parts = data.draw(st.one_of(st.integers(1, 4), cuts))
        pick = data.draw(st.integers(0, 100))
        # One output of the list (each is a Value): a different one in different examples.
        return (lambda v: _nonempty(fn(v, parts, axis), pick)), [x]
    return draw


def _nonempty(parts, pick):
    full = [p for p in parts if p.size]
    return full[pick % len(full)]


def _tile(data):
    x = _one(data)
    per_axis = st.lists(st.integers(1, 2), min_size=1, max_size=4).map(tuple)
    reps = data.draw(st.one_of(st.integers(1, 3), per_axis))
    return (lambda v: F.tile(v, reps)), [x]


def _repeat(data):
    x = _one(data, min_dims=1)
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    n = x.size if axis is None else x.shape[axis]
    repeats = data.draw(st.one_of(st.integers(1, 3), st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    if isinstance(repeats, list) and not any(repeats):
        repeats[0] = 1
    return (lambda v: F.repeat(v, repeats, axis)), [x]


def _pad(data):
    x = _one(data, min_dims=1)
    mode = data.draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
    most = 1 if mode == "reflect" else 3
    widths = [(data.draw(st.integers(0, min(most, n - 1) if mode == "reflect" else most)),
               data.draw(st.integers(0, min(most, n - 1) if mode == "reflect" else most))) for n in x.shape]
    value = data.draw(st.sampled_from([0.0, 1.5]))
    if mode == "constant":
        return (lambda v: F.pad(v, widths, constant_values=value)), [x]
    return (lambda v: F.pad(v, widths, mode=mode)), [x]


def _atleast(fn):
    def draw(data):
        return fn, [data.draw(arrays(shapes(max_dims=3)))]
    return draw


def _stacks(fn):
    def draw(data):
        one_d = fn in (F.hstack, F.vstack, F.column_stack) and data.draw(st.booleans())
        base = (data.draw(st.integers(1, 3)),) if one_d else data.draw(shapes(min_dims=2, max_dims=3))
        count = data.draw(st.integers(1, 3))
        return (lambda *vs: fn(list(vs))), [data.draw(arrays(base)) for _ in range(count)]
    return draw


def _append(data):
    x = _one(data, min_dims=1)
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    if axis is None:
        return (lambda a, b: F.append(a, b)), [x, _one(data)]
    other = list(x.shape)
    other[axis] = data.draw(st.integers(1, 3))
    return (lambda a, b: F.append(a, b, axis)), [x, data.draw(arrays(tuple(other)))]


def _take(data):
    x = _one(data, min_dims=1)
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    n = x.size if axis is None else x.shape[axis]
    idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=5)))
    return (lambda v: F.take(v, idx, axis)), [x]


def _take_along_axis(data):
    x = _one(data, min_dims=1)
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    shape = list(x.shape)
    shape[axis] = data.draw(st.integers(1, 4))
    idx = data.draw(arrays(tuple(shape), 0, x.shape[axis] - 1)).round().astype(int)
    return (lambda v: F.take_along_axis(v, idx, axis)), [x]


def _sort(data):
    x = _distinct(data)
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    return (lambda v: F.sort(v, axis)), [x]


CASES: list[OpCase] = [
    _binary("add", lambda a, b: a + b),
    _binary("subtract", lambda a, b: a - b),
    _binary("radd-rsub-constants", lambda a, b: 1.0 - a + (b * 0 + 2.0)),
    _binary("multiply", lambda a, b: a * b),
    OpCase("divide", _divide),
    OpCase("rdivide", lambda d: ((lambda x: 1.0 / x), [0.5 + np.abs(_one(d))])),
    _unary("negative", lambda x: -x),
    _unary("identity", ops.identity),
    _unary("astype", lambda x: x.astype(x.dtype)),   # casts between dtypes: test_engine's dtype tests
    OpCase("power", _power_const),
    OpCase("power-int-negative-base", _power_int_negative_base),
    OpCase("power-value-exponent", _power_both),
    OpCase("rpow", _rpow),
    OpCase("matmul", _matmul),
    _unary("exp", lambda x: x.exp()),
    OpCase("log", lambda d: ((lambda x: x.log()), [d.draw(positive_arrays(shapes()))])),
    OpCase("sqrt", lambda d: ((lambda x: x.sqrt()), [d.draw(positive_arrays(shapes()))])),
    _unary("abs", lambda x: x.abs(), avoid=(0.0,)),
    _unary("tanh", lambda x: x.tanh()),
    _unary("sigmoid", lambda x: x.sigmoid()),
    _unary("relu", lambda x: x.relu(), avoid=(0.0,)),
    OpCase("clip", _clip),
    OpCase("maximum", _maximum),
    OpCase("where", _where),
    OpCase("sum", _reduction(mg.sum)),
    OpCase("max", _reduction(mg.max, distinct=True)),
    OpCase("min", _reduction(mg.min, distinct=True)),
    OpCase("reshape", _reshape),
    OpCase("transpose", _transpose),
    OpCase("broadcast_to", _broadcast_to),
    OpCase("getitem", _getitem),
    OpCase("scatter_add", _scatter_add),
    OpCase("concatenate", _join(mg.concatenate)),
    OpCase("stack", _join(mg.stack)),
    # composites
    OpCase("mean", _reduction(mg.mean)),
    OpCase("var", _reduction(F.var)),
    OpCase("logsumexp", _reduction(F.logsumexp)),
    OpCase("softmax", _axis_composite(F.softmax)),
    OpCase("log_softmax", _axis_composite(F.log_softmax)),
    _unary("softplus", F.softplus),
    _unary("flatten", F.flatten),
    OpCase("squeeze", _squeeze),
    OpCase("expand_dims", _expand_dims),
    # more elementwise functions
    _unary("sin", ops.sin),
    _unary("cos", ops.cos),
    _unary("tan", ops.tan, low=-1.2, high=1.2),
    _unary("arcsin", ops.arcsin, low=-0.8, high=0.8),
    _unary("arccos", ops.arccos, low=-0.8, high=0.8),
    _unary("arctan", ops.arctan),
    OpCase("arctan2", lambda d: (ops.arctan2, list(_pair(d, avoid=(0.0,))))),
    _unary("sinh", ops.sinh),
    _unary("cosh", ops.cosh),
    _unary("arcsinh", ops.arcsinh),
    _unary("arccosh", ops.arccosh, low=1.2, high=3.0),
    _unary("arctanh", ops.arctanh, low=-0.8, high=0.8),
    _unary("log1p", ops.log1p, low=-0.5, high=3.0),
    _unary("expm1", ops.expm1),
    _unary("log2", ops.log2, low=0.5, high=3.0),
    _unary("log10", ops.log10, low=0.5, high=3.0),
    _unary("exp2", ops.exp2),
    _binary("logaddexp", ops.logaddexp),
    _binary("logaddexp2", ops.logaddexp2),
    _unary("square", ops.square),
    OpCase("reciprocal", _reciprocal),
    _unary("cbrt", ops.cbrt, avoid=(0.0,)),
    _binary("hypot", ops.hypot, avoid=(0.0,)),
    _unary("erf", ops.erf),
    OpCase("minimum", _fminmax(ops.minimum)),
    OpCase("fmax", _fminmax(ops.fmax)),
    OpCase("fmin", _fminmax(ops.fmin)),
    OpCase("mod", _modulo(ops.mod)),
    OpCase("fmod", _modulo(ops.fmod)),
    # steps: derivative 0, checked away from the jumps
    _unary("sign", ops.sign, avoid=(0.0,)),
    OpCase("floor", _off_grid(ops.floor)),
    OpCase("ceil", _off_grid(ops.ceil)),
    OpCase("round", _off_grid(ops.round)),
    OpCase("round-decimals", _off_grid(lambda v: ops.round(v, 1), step=0.1)),
    OpCase("rint", _off_grid(ops.rint)),
    OpCase("trunc", _off_grid(ops.trunc)),
    # sliding windows, and what nn.functional builds on them
    OpCase("windows2d", _windows2d),
    OpCase("scatter_windows2d", _scatter_windows2d),
    OpCase("nn.conv2d", _conv2d),
    OpCase("nn.max_pool2d", _max_pool2d),
    OpCase("nn.avg_pool2d", _avg_pool2d),
    OpCase("nn.cross_entropy", _classification(NF.cross_entropy)),
    OpCase("nn.nll_loss", _classification(NF.nll_loss)),
    _unary("nn.gelu", NF.gelu),
    _unary("nn.gelu-tanh", lambda v: NF.gelu(v, approximate="tanh")),
    _unary("nn.silu", NF.silu),
    _unary("nn.elu", lambda v: NF.elu(v, alpha=0.7), avoid=(0.0,)),
    _unary("nn.leaky_relu", lambda v: NF.leaky_relu(v, 0.2), avoid=(0.0,)),
    _unary("nn.softplus", lambda v: NF.softplus(v, beta=2.0)),
    _unary("nn.dropout", lambda v: NF.dropout(v, 0.4, rng=3)),
    OpCase("nn.flatten", _nn_flatten),
    # more reductions
    OpCase("prod", _prod),
    OpCase("cumsum", _running(ops.cumsum)),
    OpCase("cumprod", _running(ops.cumprod, zeros=True)),
    OpCase("var-ddof", _var_ddof(F.var)),
    OpCase("std", _var_ddof(F.std)),
    # products and matrix parts
    OpCase("einsum", _einsum, covers=("einsum_of",)),
    OpCase("tensordot", _tensordot),
    OpCase("dot", _dot_like(F.dot)),
    OpCase("inner", _dot_like(F.inner)),
    OpCase("outer", _two(F.outer)),
    OpCase("kron", _kron),
    OpCase("diagonal", _matrix_part(F.diagonal, with_axes=True)),
    OpCase("trace", _matrix_part(F.trace, with_axes=True)),
    OpCase("diag", _diag),
    OpCase("tril", _matrix_part(F.tril)),
    OpCase("triu", _matrix_part(F.triu)),
    # mg.linalg
    OpCase("inv", lambda d: (LA.inv, [_square(d)])),
    OpCase("det", lambda d: (LA.det, [_square(d)])),
    OpCase("logabsdet", lambda d: (LA.logabsdet, [_square(d)])),
    OpCase("linalg.slogdet", lambda d: ((lambda v: LA.slogdet(v)[1]), [_square(d)])),
    OpCase("solve", _solve),
    OpCase("cholesky", _cholesky),
    OpCase("linalg.norm", _norm),
    # shapes
    OpCase("swapaxes", _swapaxes),
    OpCase("moveaxis", _moveaxis),
    _unary("ravel", F.ravel),
    OpCase("flip", _flip),
    OpCase("roll", _roll),
    OpCase("rot90", _rot90),
    OpCase("split", _splits(F.split)),
    OpCase("array_split", _splits(F.array_split)),
    OpCase("tile", _tile),
    OpCase("repeat", _repeat),
    OpCase("pad", _pad),
    OpCase("atleast_1d", _atleast(F.atleast_1d)),
    OpCase("atleast_2d", _atleast(F.atleast_2d)),
    OpCase("atleast_3d", _atleast(F.atleast_3d)),
    OpCase("hstack", _stacks(F.hstack)),
    OpCase("vstack", _stacks(F.vstack)),
    OpCase("dstack", _stacks(F.dstack)),
    OpCase("column_stack", _stacks(F.column_stack)),
    OpCase("append", _append),
    OpCase("take", _take),
    OpCase("take_along_axis", _take_along_axis),
    OpCase("sort", _sort),
]
