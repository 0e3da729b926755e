"""Random programs for fuzzing the engine and the transforms built on it.

A program is a few input arrays of shapes that broadcast together, then a sequence of steps, each an op
from the list below applied to earlier nodes (any earlier node, so a node is often used several times:
diamonds and fan-out), to Python floats and to numpy arrays. The strategy runs each step as it draws it,
so it can keep every op away from its kinks and domain edges, as tests/op_cases.py does for single ops:
a ``log`` is fed ``x + c`` with the constant ``c`` chosen so that the argument is at least 0.3, a ``relu``
is shifted so that no element is within 0.05 of 0, ``max`` is used only where the winner leads by 0.05,
and so on.

Steps call their ops through a backend (``k.exp(x)``, ``k.sum(x, axis, keepdims)``), so that the same
program runs on microgradx Values (:data:`MG`, through the Value methods and module functions a user
would call) and, in tests/test_transforms.py, on PyTorch tensors, where ``torch.func`` can differentiate it.
Used by tests/test_fuzz_engine.py and tests/test_transforms.py.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
from hypothesis import assume

import microgradx as mg
from microgradx.testing import arrays

from op_cases import indices

MARGIN = 0.05          # distance kept from kinks (relu, abs, clip bounds, ties of max and maximum)
MAX_SIZE = 48          # elements per node: finite differences cost two program runs per input element
MAX_MAGNITUDE = 30.0   # larger values make central differences too inexact for gradcheck's tolerance

# --------------------------------------------------------------------------------------------------
# Backends: what a step calls its ops through
# --------------------------------------------------------------------------------------------------

class Microgradx:
    """Runs steps on Values, with the methods and functions a microgradx user would call.

    Called on a numpy constant, it casts it to the run's dtype (none while drawing), so that constants
    never bring float64 into a float32 run.
    """

    def __init__(self, dtype: Any = None) -> None:
        self.dtype = dtype

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return a if self.dtype is None else np.asarray(a, dtype=self.dtype)

    exp = staticmethod(lambda x: x.exp())
    log = staticmethod(mg.log)
    sqrt = staticmethod(lambda x: x.sqrt())
    tanh = staticmethod(lambda x: x.tanh())
    sigmoid = staticmethod(lambda x: x.sigmoid())
    softplus = staticmethod(mg.softplus)
    relu = staticmethod(mg.relu)
    clip = staticmethod(lambda x, lo, hi: x.clip(lo, hi))
    maximum = staticmethod(mg.maximum)
    power = staticmethod(operator.pow)
    swapaxes = staticmethod(mg.ops.swapaxes)
    reduce = staticmethod(lambda kind, x, axis, keepdims: getattr(x, kind)(axis=axis, keepdims=keepdims))
    logsumexp = staticmethod(lambda x, axis, keepdims: mg.logsumexp(x, axis=axis, keepdims=keepdims))
    softmax = staticmethod(lambda x, axis: mg.softmax(x, axis=axis))
    log_softmax = staticmethod(lambda x, axis: mg.log_softmax(x, axis=axis))
    reshape = staticmethod(lambda x, shape: x.reshape(shape))
    flatten = staticmethod(lambda x: x.flatten())
    transpose = staticmethod(lambda x, axes: x.transpose(axes))
    T = staticmethod(lambda x: x.T)  # noqa: N815 - numpy's name
    broadcast_to = staticmethod(mg.broadcast_to)
    expand_dims = staticmethod(mg.expand_dims)
    squeeze = staticmethod(lambda x: x.squeeze())
    getitem = staticmethod(lambda x, index: x[index])
    stack = staticmethod(lambda xs, axis: mg.stack(list(xs), axis=axis))
    concatenate = staticmethod(lambda xs, axis: mg.concatenate(list(xs), axis=axis))
    where = staticmethod(mg.where)


DRAWING = Microgradx()


class Torch:
    """Runs steps on float64 PyTorch tensors, each op the torch function with numpy's meaning.

    For tests against ``torch.func``: it differentiates the program with PyTorch's own derivative rules.
    """

    def __init__(self) -> None:
        import torch
        self.torch = torch

    def __call__(self, a: Any) -> Any:
        return self.torch.as_tensor(np.asarray(a), dtype=self.torch.float64)

    def _dims(self, x: Any, axis: Any) -> tuple[int, ...]:
        return tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)

    def exp(self, x: Any) -> Any:
        return self.torch.exp(x)

    def log(self, x: Any) -> Any:
        return self.torch.log(x)

    def sqrt(self, x: Any) -> Any:
        return self.torch.sqrt(x)

    def tanh(self, x: Any) -> Any:
        return self.torch.tanh(x)

    def sigmoid(self, x: Any) -> Any:
        return self.torch.sigmoid(x)

    def softplus(self, x: Any) -> Any:
        return self.torch.logaddexp(x, self(0.0))    # F.softplus turns linear past 20: not the same function

    def relu(self, x: Any) -> Any:
        return self.torch.relu(x)

    def clip(self, x: Any, lo: float, hi: float) -> Any:
        return self.torch.clamp(x, lo, hi)

    def maximum(self, a: Any, b: Any) -> Any:
        as_tensor = lambda v: v if isinstance(v, self.torch.Tensor) else self(v)  # noqa: E731
        return self.torch.maximum(as_tensor(a), as_tensor(b))

    def power(self, a: Any, b: Any) -> Any:
        # NOTE: torch's rule for a tensor exponent masks the exponent's zeros, which loses the second
        # derivative there (pytorch/pytorch#89757). The programs keep every base positive, where
        # exp(b log a) is the same function with plain rules.
        if isinstance(b, self.torch.Tensor):
            base = a if isinstance(a, self.torch.Tensor) else self(a)
            return self.torch.exp(b * self.torch.log(base))
        return a ** b

    def swapaxes(self, x: Any) -> Any:
        return x.transpose(-1, -2)

    def reduce(self, kind: str, x: Any, axis: Any, keepdims: bool) -> Any:
        dims = self._dims(x, axis)
        t = self.torch
        if kind == "var":
            return t.var(x, dim=dims, correction=0, keepdim=keepdims)
        fn = {"sum": t.sum, "mean": t.mean, "max": t.amax, "min": t.amin}[kind]
        return fn(x, dim=dims, keepdim=keepdims)

    def logsumexp(self, x: Any, axis: Any, keepdims: bool) -> Any:
        return self.torch.logsumexp(x, dim=self._dims(x, axis), keepdim=keepdims)

    def softmax(self, x: Any, axis: int) -> Any:
        return self.torch.softmax(x, dim=axis)

    def log_softmax(self, x: Any, axis: int) -> Any:
        return self.torch.log_softmax(x, dim=axis)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        return x.reshape(shape)

    def flatten(self, x: Any) -> Any:
        return x.reshape(-1)

    def transpose(self, x: Any, axes: tuple[int, ...]) -> Any:
        return x.permute(axes)

    def T(self, x: Any) -> Any:  # noqa: N802 - numpy's name
        return x.permute(tuple(reversed(range(x.ndim))))

    def broadcast_to(self, x: Any, shape: tuple[int, ...]) -> Any:
        return self.torch.broadcast_to(x, shape)

    def expand_dims(self, x: Any, axis: int) -> Any:
        return self.torch.unsqueeze(x, axis)

    def squeeze(self, x: Any) -> Any:
        return x.squeeze()

    def getitem(self, x: Any, index: Any) -> Any:
        if isinstance(index, slice) and index.step == -1:
            return self.torch.flip(x, (0,))            # torch slices take no negative steps
        if isinstance(index, np.ndarray):
            return x[self.torch.as_tensor(index)]
        return x[index]

    def stack(self, xs: Any, axis: int) -> Any:
        return self.torch.stack(list(xs), dim=axis)

    def concatenate(self, xs: Any, axis: int) -> Any:
        return self.torch.cat(list(xs), dim=axis)

    def where(self, mask: np.ndarray, x: Any, y: Any) -> Any:
        return self.torch.where(self.torch.as_tensor(mask), x, y)


# --------------------------------------------------------------------------------------------------
# Programs
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One line of a program: ``fn(k, *nodes)``, with ``k`` the backend (see :class:`Microgradx`)."""

    text: str
    fn: Callable[..., Any]
    args: tuple[int, ...]


@dataclass(frozen=True)
class Program:
    """Inputs n0..n{k-1}, then one node per step. Returns the last node plus the sum of every node
    that nothing uses, so that every step takes part in the gradient."""

    inputs: tuple[np.ndarray, ...]
    steps: tuple[Step, ...]

    def __call__(self, *leaves: mg.Value) -> mg.Value:
        return self.run(Microgradx(leaves[0].dtype), *leaves)

    def run(self, k: Any, *leaves: Any) -> Any:
        """The program on ``leaves`` (Values, or the backend's own arrays), its ops called through ``k``."""
        nodes = list(leaves)
        for step in self.steps:
            nodes.append(step.fn(k, *(nodes[i] for i in step.args)))
        out = nodes[-1]
        for i in self.unused():
            out = out + nodes[i].sum()
        return out

    def unused(self) -> list[int]:
        used = {i for step in self.steps for i in step.args}
        return [i for i in range(len(self.inputs) + len(self.steps) - 1) if i not in used]

    def __repr__(self) -> str:
        lines = [f"n{i} = input of shape {a.shape}: {a.tolist()}" for i, a in enumerate(self.inputs)]
        first = len(self.inputs)
        lines += [f"n{first + j} = {step.text}" for j, step in enumerate(self.steps)]
        last = first + len(self.steps) - 1
        lines.append("output = " + " + ".join([f"n{last}"] + [f"n{i}.sum()" for i in self.unused()]))
        return "Program:\n    " + "\n    ".join(lines)


class Builder:
    """Draws steps while running them, so each choice can look at the values it will be applied to."""

    def __init__(self, draw: Any, inputs: list[np.ndarray]) -> None:
        self.draw = draw
        self.values = [mg.Value(a, requires_grad=False) for a in inputs]
        self.steps: list[Step] = []

    def pick(self, ok: Callable[[np.ndarray], bool] = lambda v: True) -> int | None:
        """Index of an earlier node whose data passes ``ok`` (recent nodes first when shrinking)."""
        candidates = [i for i in reversed(range(len(self.values))) if ok(self.values[i].data)]
        return self.draw(st.sampled_from(candidates)) if candidates else None

    def constant(self, shape: tuple[int, ...], low: float = -2.0, high: float = 2.0) -> np.ndarray:
        """A numpy array whose shape broadcasts with ``shape``."""
        s = self.draw(hnp.broadcastable_shapes(shape, max_dims=3, max_side=3))
        return self.draw(arrays(s, low, high))

    def number(self, low: float = -2.0, high: float = 2.0) -> float:
        return round(self.draw(st.floats(low, high)), 2)

    def add(self, text: str, fn: Callable[..., Any], *args: int) -> None:
        """Run the step on the drawn values; keep it if its result is usable."""
        out = fn(DRAWING, *(self.values[i] for i in args))
        data = np.asarray(out.data)
        if 0 < data.size <= MAX_SIZE and np.all(np.isfinite(data)) and np.max(np.abs(data)) <= MAX_MAGNITUDE:
            self.values.append(out)
            self.steps.append(Step(text, fn, args))


def _name(i: int) -> str:
    return f"n{i}"


def _at_least(v: np.ndarray, low: float) -> float:
    """A constant c (0 when none is needed) with v + c >= low everywhere."""
    m = float(np.min(v))
    return 0.0 if m >= low else round(low - m + 0.1, 2)


def _clear_of(v: np.ndarray, point: float) -> bool:
    return bool(np.min(np.abs(v - point)) >= MARGIN)


def _kink_shift(v: np.ndarray) -> float | None:
    """The smallest constant c (by size) with every element of v + c at least MARGIN away from 0."""
    for c in sorted(np.round(np.arange(-3.0, 3.001, 0.05), 2), key=abs):
        if _clear_of(v + c, 0.0):
            return float(c)
    return None


def _plus(text: str, c: float) -> str:
    return text if c == 0 else f"{text} + {c}"


def _term(text: str, c: float) -> str:
    return text if c == 0 else f"({text} + {c})"


# ---- the ops a program is made of: each draws its operands and adds one step ----------------------

def unary(b: Builder) -> None:
    i = b.pick()
    v, n = b.values[i].data, _name(i)
    kind = b.draw(st.sampled_from(["exp", "log", "sqrt", "tanh", "sigmoid", "softplus", "neg", "square",
                                   "cube", "power", "reciprocal", "relu", "abs", "clip"]))
    if kind in ("log", "sqrt", "power", "reciprocal"):
        c = _at_least(v, 0.3)                      # domain edge (and the pole of x ** -p) at 0
        p = b.draw(st.sampled_from([-1.5, -1.0, 0.5, 1.5, 2.5]))
        fn = {"log": lambda k, x: k.log(x + c), "sqrt": lambda k, x: k.sqrt(x + c),
              "power": lambda k, x: (x + c) ** p, "reciprocal": lambda k, x: 1.0 / (x + c)}[kind]
        text = {"log": f"log({_plus(n, c)})", "sqrt": f"sqrt({_plus(n, c)})",
                "power": f"({_plus(n, c)}) ** {p}",
                "reciprocal": f"1 / ({_plus(n, c)})"}[kind]
        b.add(text, fn, i)
    elif kind == "exp":
        c = -max(0.0, round(float(np.max(v)) - 2.0, 2))   # keep exp <= e**2
        b.add(f"exp({_plus(n, c)})", lambda k, x: k.exp(x + c), i)
    elif kind in ("relu", "abs"):
        c = _kink_shift(v)
        if c is not None:
            fn = {"relu": lambda k, x: k.relu(x + c), "abs": lambda k, x: abs(x + c)}[kind]
            b.add(f"{kind}({_plus(n, c)})", fn, i)
    elif kind == "clip":
        lo, hi = sorted(b.number(-2, 2) for _ in range(2))
        if hi - lo > 0.2 and _clear_of(v, lo) and _clear_of(v, hi):
            b.add(f"{n}.clip({lo}, {hi})", lambda k, x: k.clip(x, lo, hi), i)
    else:
        fn = {"tanh": lambda k, x: k.tanh(x), "sigmoid": lambda k, x: k.sigmoid(x),
              "softplus": lambda k, x: k.softplus(x), "neg": lambda k, x: -x,
              "square": lambda k, x: x ** 2, "cube": lambda k, x: x * x * x}[kind]
        b.add(f"{kind}({n})", fn, i)


# op(k, a, b): the operators as they are, maximum and ** through the backend.
ARITHMETIC = {"+": lambda k, a, b: a + b, "-": lambda k, a, b: a - b, "*": lambda k, a, b: a * b,
              "/": lambda k, a, b: a / b, "maximum": lambda k, a, b: k.maximum(a, b),
              "**": lambda k, a, b: k.power(a, b)}


def binary(b: Builder) -> None:
    """x op y with y another node (maybe x itself), a Python float or a numpy array, on either side."""
    i = b.pick()
    v, n = b.values[i].data, _name(i)
    symbol = b.draw(st.sampled_from(sorted(ARITHMETIC)))
    op = ARITHMETIC[symbol]
    kind = b.draw(st.sampled_from(["node", "float", "array"]))
    if kind == "node":                             # prefer a partner of another shape: broadcasting
        j = b.pick(lambda w: w.shape != v.shape and _broadcasts(w.shape, v.shape))
        if j is None or b.draw(st.booleans()):
            j = b.pick(lambda w: _broadcasts(w.shape, v.shape))
        w, m, args = b.values[j].data, _name(j), (i, j)
    elif kind == "float":
        w = b.number()
        m, args = repr(w), (i,)
    else:
        w = b.constant(v.shape)
        m, args = f"array{w.shape}", (i,)
    swap = b.draw(st.booleans())
    left, right = (w, v) if swap else (v, w)
    # Constants added to either side keep the op off its pole, domain edge or kink.
    lc = rc = 0.0
    if symbol == "/" and not (np.min(np.abs(right)) >= 0.3):
        rc = _at_least(right, 0.3)
    elif symbol == "**":
        lc = _at_least(left, 0.3)                  # a positive base: any real exponent is defined
        if np.max(np.abs(right)) > 3:
            return
    elif symbol == "maximum" and not np.all(np.abs(left - right) >= MARGIN):
        return                                     # a near tie
    lt, rt = (_term(m, lc), _term(n, rc)) if swap else (_term(n, lc), _term(m, rc))
    text = f"maximum({lt}, {rt})" if symbol == "maximum" else f"{lt} {symbol} {rt}"

    def step(k: Any, x: mg.Value, *node: mg.Value) -> mg.Value:
        y = node[0] if kind == "node" else k(w) if kind == "array" else w
        left, right = (y, x) if swap else (x, y)
        return op(k, left + lc if lc else left, right + rc if rc else right)

    b.add(text, step, *args)


def matmul(b: Builder) -> None:
    """x @ y for every pairing of 1-d and n-d operands, against a constant, a node or x itself."""
    i = b.pick(lambda v: v.ndim >= 1)
    if i is None:
        return
    v, n = b.values[i].data, _name(i)
    kind = b.draw(st.sampled_from(["constant-right", "constant-left", "self", "node"]))
    if kind == "constant-right":
        w = b.draw(arrays((v.shape[-1],) + b.draw(st.sampled_from([(), (2,), (3,)]))))
        b.add(f"{n} @ array{w.shape}", lambda k, x: x @ k(w), i)
    elif kind == "constant-left":
        inner = v.shape[-2] if v.ndim >= 2 else v.shape[0]
        w = b.draw(arrays(b.draw(st.sampled_from([(), (2,)])) + (inner,)))
        b.add(f"array{w.shape} @ {n}", lambda k, x: k(w) @ x, i)
    elif kind == "self":                           # the same node on both sides
        if v.ndim == 1:
            b.add(f"{n} @ {n}", lambda k, x: x @ x, i)
        else:
            b.add(f"{n} @ {n}.T-of-last-two", lambda k, x: x @ k.swapaxes(x), i)
    else:
        j = b.pick(lambda w: w.ndim >= 1 and (w.shape[-2] if w.ndim >= 2 else w.shape[0]) == v.shape[-1]
                   and (v.ndim < 3 or w.ndim < 3 or _broadcasts(v.shape[:-2], w.shape[:-2])))
        if j is not None:
            b.add(f"{n} @ n{j}", lambda k, x, y: x @ y, i, j)


def _slice_gap_ok(v: np.ndarray, axis: Any) -> bool:
    """No near ties for the first place in any slice that max/min reduces over."""
    axes = tuple(range(v.ndim)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    axes = tuple(a % v.ndim for a in axes) if v.ndim else ()
    kept = [a for a in range(v.ndim) if a not in axes]
    flat = np.transpose(v, kept + list(axes)).reshape(int(np.prod([v.shape[a] for a in kept])), -1)
    if flat.shape[1] < 2:
        return True
    top = np.sort(flat, axis=1)
    return bool(np.all(top[:, -1] - top[:, -2] >= MARGIN) and np.all(top[:, 1] - top[:, 0] >= MARGIN))


def reduction(b: Builder) -> None:
    i = b.pick()
    v, n = b.values[i].data, _name(i)
    kind = b.draw(st.sampled_from(["sum", "mean", "var", "max", "min", "logsumexp", "softmax",
                                   "log_softmax"]))
    if kind in ("softmax", "log_softmax"):
        if v.ndim == 0:
            return
        axis = b.draw(st.integers(-v.ndim, v.ndim - 1))
        b.add(f"{kind}({n}, axis={axis})", lambda k, x: getattr(k, kind)(x, axis), i)
        return
    axis = _axis(b, v.ndim)
    keepdims = b.draw(st.booleans())
    if kind in ("max", "min") and not _slice_gap_ok(v, axis):
        return
    if kind == "logsumexp":
        b.add(f"logsumexp({n}, axis={axis}, keepdims={keepdims})",
              lambda k, x: k.logsumexp(x, axis, keepdims), i)
    else:
        b.add(f"{n}.{kind}(axis={axis}, keepdims={keepdims})",
              lambda k, x: k.reduce(kind, x, axis, keepdims), i)


def centring(b: Builder) -> None:
    """x combined with a reduction of itself kept as size-1 axes: a diamond that broadcasts back."""
    i = b.pick(lambda v: v.ndim >= 1)
    if i is None:
        return
    v, n = b.values[i].data, _name(i)
    axis = _axis(b, v.ndim)
    kind = b.draw(st.sampled_from(["sum", "mean", "max"]))
    symbol = b.draw(st.sampled_from(["+", "-", "*"]))
    if kind == "max" and not _slice_gap_ok(v, axis):
        return
    op = ARITHMETIC[symbol]
    b.add(f"{n} {symbol} {n}.{kind}(axis={axis}, keepdims=True)",
          lambda k, x: op(k, x, k.reduce(kind, x, axis, True)), i)


def _axis(b: Builder, ndim: int) -> Any:
    if ndim == 0:
        return None
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)
    return b.draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1), several))


def reshaping(b: Builder) -> None:
    i = b.pick()
    v, n = b.values[i].data, _name(i)
    kind = b.draw(st.sampled_from(["reshape", "flatten", "transpose", "T", "broadcast_to", "expand_dims",
                                   "squeeze"]))
    if kind == "reshape":
        shape = b.draw(st.sampled_from([(-1,), v.shape[::-1], (1,) + v.shape, (v.size, 1)]))
        b.add(f"{n}.reshape({shape})", lambda k, x: k.reshape(x, shape), i)
    elif kind == "flatten":
        b.add(f"{n}.flatten()", lambda k, x: k.flatten(x), i)
    elif kind == "transpose":
        axes = tuple(b.draw(st.permutations(range(v.ndim))))
        b.add(f"{n}.transpose({axes})", lambda k, x: k.transpose(x, axes), i)
    elif kind == "T":
        b.add(f"{n}.T", lambda k, x: k.T(x), i)
    elif kind == "broadcast_to":
        shape = (2,) + tuple(2 if s == 1 else s for s in v.shape)
        b.add(f"broadcast_to({n}, {shape})", lambda k, x: k.broadcast_to(x, shape), i)
    elif kind == "expand_dims":
        axis = b.draw(st.integers(-v.ndim - 1, v.ndim))
        b.add(f"expand_dims({n}, {axis})", lambda k, x: k.expand_dims(x, axis), i)
    elif 1 in v.shape:
        b.add(f"{n}.squeeze()", lambda k, x: k.squeeze(x), i)


def indexing(b: Builder) -> None:
    i = b.pick(lambda v: v.ndim >= 1)
    if i is None:
        return
    n = _name(i)
    index = b.draw(indices(b.values[i].shape, nonempty=True))
    b.add(f"{n}[{index!r}]", lambda k, x: k.getitem(x, index), i)


def joining(b: Builder) -> None:
    """stack / concatenate of a node with itself and other nodes of its shape."""
    i = b.pick(lambda v: v.ndim >= 1)
    if i is None:
        return
    v = b.values[i].data
    same = [j for j in range(len(b.values)) if b.values[j].shape == v.shape]
    parts = [i] + b.draw(st.lists(st.sampled_from(same), min_size=1, max_size=2))
    names = ", ".join(_name(j) for j in parts)
    if b.draw(st.booleans()):
        axis = b.draw(st.integers(-v.ndim - 1, v.ndim))
        b.add(f"stack([{names}], axis={axis})", lambda k, *xs: k.stack(xs, axis), *parts)
    else:
        axis = b.draw(st.integers(-v.ndim, v.ndim - 1))
        b.add(f"concatenate([{names}], axis={axis})", lambda k, *xs: k.concatenate(xs, axis),
              *parts)


def selecting(b: Builder) -> None:
    """where(mask, x, y) with a constant mask that broadcasts against both."""
    i = b.pick()
    v, n = b.values[i].data, _name(i)
    j = b.pick(lambda w: _broadcasts(w.shape, v.shape))
    shape = np.broadcast_shapes(v.shape, b.values[j].shape)
    mask_shape = b.draw(hnp.broadcastable_shapes(shape, max_dims=3, max_side=3))
    mask = b.draw(hnp.arrays(bool, mask_shape))
    b.add(f"where(mask{mask.shape}, {n}, n{j})", lambda k, x, y: k.where(mask, x, y), i, j)


def _broadcasts(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


OPS = [unary, binary, matmul, reduction, centring, reshaping, indexing, joining, selecting]


@st.composite
def input_shapes(draw: Any, max_inputs: int) -> list[tuple[int, ...]]:
    """Shapes that broadcast together: a common shape with leading axes dropped and sizes set to 1.

    hypothesis's own shape strategies favour sizes of 1, where broadcasting has nothing to undo; here
    sides of 2 and 3 come first.
    """
    ndim = draw(st.sampled_from([2, 3, 1, 0]))
    common = [draw(st.sampled_from([2, 3, 1])) for _ in range(ndim)]
    shapes = []
    for _ in range(draw(st.sampled_from([2, 3, 1][:max_inputs]))):
        kept = common[ndim - draw(st.sampled_from(range(ndim, -1, -1))):]
        shapes.append(tuple(1 if draw(st.booleans()) else n for n in kept))
    return shapes


@st.composite
def programs(draw: Any, max_steps: int = 8, max_inputs: int = 3) -> Program:
    inputs = [draw(arrays(s, -2.0, 2.0)) for s in draw(input_shapes(max_inputs))]
    b = Builder(draw, inputs)
    wanted = draw(st.integers(3, max_steps))      # single ops are tested on their own in test_ops.py
    for _ in range(3 * wanted):                    # a step is dropped when its result is unusable
        if len(b.steps) == wanted:
            break
        draw(st.sampled_from(OPS))(b)
    assume(b.steps)
    return Program(tuple(inputs), tuple(b.steps))

