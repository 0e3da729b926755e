"""Fuzzing the engine: random programs against finite differences, and ill-formed calls.

Part 1 draws random programs: a few input arrays of shapes that broadcast together, then a sequence of
steps, each an op from the list below applied to earlier nodes (any earlier node, so a node is often
used several times: diamonds and fan-out), to Python floats and to numpy arrays. The strategy runs each
step as it draws it, so it can keep every op away from its kinks and domain edges, as tests/op_cases.py
does for single ops: a ``log`` is fed ``x + c`` with the constant ``c`` chosen so that the argument is at
least 0.3, a ``relu`` is shifted so that no element is within 0.05 of 0, ``max`` is used only where the
winner leads by 0.05, and so on. The program's gradient is then checked with ``gradcheck``.

Part 2 makes ill-formed calls (wrong shapes, wrong types, bad axes, bad indices, bad seeds) and checks
that each raises one of our error classes, whose message names the op and the shapes involved.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import assume, given, settings

import microgradx as mg
from microgradx import ShapeError
from microgradx.errors import AxisError, DTypeError, GradientError, MicrogradxError
from microgradx.testing import arrays, gradcheck, gradgradcheck

MARGIN = 0.05          # distance kept from kinks (relu, abs, clip bounds, ties of max and maximum)
MAX_SIZE = 48          # elements per node: finite differences cost two program runs per input element
MAX_MAGNITUDE = 30.0   # larger values make central differences too inexact for gradcheck's tolerance

# --------------------------------------------------------------------------------------------------
# Random programs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One line of a program: ``fn(k, *nodes)``; ``k`` casts numpy constants to the run's dtype."""

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
        dtype = leaves[0].dtype

        def k(a: np.ndarray) -> np.ndarray:
            return np.asarray(a, dtype=dtype)

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
        out = fn(lambda a: a, *(self.values[i] for i in args))
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
        fn = {"log": lambda x: mg.log(x + c), "sqrt": lambda x: (x + c).sqrt(),
              "power": lambda x: (x + c) ** p, "reciprocal": lambda x: 1.0 / (x + c)}[kind]
        text = {"log": f"log({_plus(n, c)})", "sqrt": f"sqrt({_plus(n, c)})",
                "power": f"({_plus(n, c)}) ** {p}",
                "reciprocal": f"1 / ({_plus(n, c)})"}[kind]
        b.add(text, lambda k, x: fn(x), i)
    elif kind == "exp":
        c = -max(0.0, round(float(np.max(v)) - 2.0, 2))   # keep exp <= e**2
        b.add(f"exp({_plus(n, c)})", lambda k, x: (x + c).exp(), i)
    elif kind in ("relu", "abs"):
        c = _kink_shift(v)
        if c is not None:
            fn = {"relu": mg.relu, "abs": abs}[kind]
            b.add(f"{kind}({_plus(n, c)})", lambda k, x: fn(x + c), i)
    elif kind == "clip":
        lo, hi = sorted(b.number(-2, 2) for _ in range(2))
        if hi - lo > 0.2 and _clear_of(v, lo) and _clear_of(v, hi):
            b.add(f"{n}.clip({lo}, {hi})", lambda k, x: x.clip(lo, hi), i)
    else:
        fn = {"tanh": lambda x: x.tanh(), "sigmoid": lambda x: x.sigmoid(), "softplus": mg.softplus,
              "neg": operator.neg, "square": lambda x: x ** 2, "cube": lambda x: x * x * x}[kind]
        b.add(f"{kind}({n})", lambda k, x: fn(x), i)


ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "maximum": mg.maximum, "**": operator.pow}


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
        return op(left + lc if lc else left, right + rc if rc else right)

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
            b.add(f"{n} @ {n}.T-of-last-two", lambda k, x: x @ mg.ops.swapaxes(x), i)
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
        fn = {"softmax": mg.softmax, "log_softmax": mg.log_softmax}[kind]
        b.add(f"{kind}({n}, axis={axis})", lambda k, x: fn(x, axis=axis), i)
        return
    axis = _axis(b, v.ndim)
    keepdims = b.draw(st.booleans())
    if kind in ("max", "min") and not _slice_gap_ok(v, axis):
        return
    if kind == "logsumexp":
        b.add(f"logsumexp({n}, axis={axis}, keepdims={keepdims})",
              lambda k, x: mg.logsumexp(x, axis=axis, keepdims=keepdims), i)
    else:
        b.add(f"{n}.{kind}(axis={axis}, keepdims={keepdims})",
              lambda k, x: getattr(x, kind)(axis=axis, keepdims=keepdims), i)


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
          lambda k, x: op(x, getattr(x, kind)(axis=axis, keepdims=True)), i)


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
        b.add(f"{n}.reshape({shape})", lambda k, x: x.reshape(shape), i)
    elif kind == "flatten":
        b.add(f"{n}.flatten()", lambda k, x: x.flatten(), i)
    elif kind == "transpose":
        axes = tuple(b.draw(st.permutations(range(v.ndim))))
        b.add(f"{n}.transpose({axes})", lambda k, x: x.transpose(axes), i)
    elif kind == "T":
        b.add(f"{n}.T", lambda k, x: x.T, i)
    elif kind == "broadcast_to":
        shape = (2,) + tuple(2 if s == 1 else s for s in v.shape)
        b.add(f"broadcast_to({n}, {shape})", lambda k, x: mg.broadcast_to(x, shape), i)
    elif kind == "expand_dims":
        axis = b.draw(st.integers(-v.ndim - 1, v.ndim))
        b.add(f"expand_dims({n}, {axis})", lambda k, x: mg.expand_dims(x, axis), i)
    elif 1 in v.shape:
        b.add(f"{n}.squeeze()", lambda k, x: x.squeeze(), i)


def indexing(b: Builder) -> None:
    i = b.pick(lambda v: v.ndim >= 1)
    if i is None:
        return
    v, n = b.values[i].data, _name(i)
    size = v.shape[0]
    kind = b.draw(st.sampled_from(["int", "slice", "repeats", "mask", "reversed", "last-axis"]))
    if kind == "int":
        index: Any = b.draw(st.integers(-size, size - 1))
    elif kind == "slice":
        index = slice(b.draw(st.integers(0, size - 1)), None)
    elif kind == "repeats":                        # the same element picked several times
        index = np.array(b.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=5)))
    elif kind == "mask":
        bits = b.draw(st.lists(st.booleans(), min_size=size, max_size=size))
        assume(any(bits))
        index = np.array(bits)
    elif kind == "reversed":
        index = slice(None, None, -1)
    else:
        index = (Ellipsis, b.draw(st.integers(-v.shape[-1], v.shape[-1] - 1)))
    b.add(f"{n}[{index!r}]", lambda k, x: x[index], i)


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
        b.add(f"stack([{names}], axis={axis})", lambda k, *xs: mg.stack(list(xs), axis=axis), *parts)
    else:
        axis = b.draw(st.integers(-v.ndim, v.ndim - 1))
        b.add(f"concatenate([{names}], axis={axis})", lambda k, *xs: mg.concatenate(list(xs), axis=axis),
              *parts)


def selecting(b: Builder) -> None:
    """where(mask, x, y) with a constant mask that broadcasts against both."""
    i = b.pick()
    v, n = b.values[i].data, _name(i)
    j = b.pick(lambda w: _broadcasts(w.shape, v.shape))
    shape = np.broadcast_shapes(v.shape, b.values[j].shape)
    mask_shape = b.draw(hnp.broadcastable_shapes(shape, max_dims=3, max_side=3))
    mask = b.draw(hnp.arrays(bool, mask_shape))
    b.add(f"where(mask{mask.shape}, {n}, n{j})", lambda k, x, y: mg.where(mask, x, y), i, j)


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


@given(programs())
def test_random_program_gradients_match_finite_differences(program):
    gradcheck(program, *program.inputs, name=repr(program))


@settings(max_examples=15)
@given(programs(max_steps=5, max_inputs=2))
def test_random_program_second_derivatives_match_finite_differences(program):
    gradgradcheck(program, *program.inputs, name=repr(program))


@settings(max_examples=25)
@given(programs())
def test_random_program_backward_twice_doubles_leaf_gradients_and_agrees_with_grad(program):
    leaves = [mg.Value(a) for a in program.inputs]
    out = program(*leaves).sum()
    out.backward()
    first = [leaf.grad.copy() for leaf in leaves]
    out.backward()                                 # interior gradients are fresh; leaves accumulate
    for leaf, g in zip(leaves, first, strict=True):
        np.testing.assert_allclose(leaf.grad, 2 * g, rtol=1e-12, atol=1e-12)
    functional = mg.grad(lambda *xs: program(*xs).sum(), argnums=tuple(range(len(leaves))))(*program.inputs)
    for g, h in zip(first, functional, strict=True):
        np.testing.assert_allclose(h, g, rtol=1e-12, atol=1e-12)


@settings(max_examples=25)
@given(programs())
def test_random_program_in_float32_stays_float32(program):
    # Constants are Python floats or numpy arrays of the inputs' dtype: nothing may bring float64 in.
    leaves = [mg.Value(a.astype(np.float32)) for a in program.inputs]
    out = program(*leaves)
    assert out.dtype == np.float32, f"float32 inputs gave {out.dtype}\n{program!r}"
    out.sum().backward()
    for leaf in leaves:
        assert leaf.grad.dtype == np.float32 and leaf.grad.shape == leaf.shape


# --------------------------------------------------------------------------------------------------
# Ill-formed calls: our error classes, with messages that say what went wrong where
# --------------------------------------------------------------------------------------------------

def raises(error: type[Exception], call: Callable[[], Any], *mentions: str) -> str:
    """Run ``call``; it must raise ``error`` (never a bare numpy or Python error), mentioning each string."""
    with pytest.raises(MicrogradxError) as info:
        call()
    assert isinstance(info.value, error), f"{type(info.value).__name__}, not {error.__name__}: {info.value}"
    message = str(info.value)
    for text in mentions:
        assert text in message, f"{text!r} not in the message: {message}"
    assert mg.is_grad_enabled()                    # a failed op leaves the grad mode as it was
    return message


def as_operand(data: Any, a: np.ndarray) -> Any:
    """``a`` as a Value or as a plain numpy array, as drawn."""
    kind = data.draw(st.sampled_from(["value", "array", "constant value"]))
    if kind == "array":
        return a
    return mg.Value(a, requires_grad=kind == "value")


def values_or_arrays(data: Any, a: np.ndarray, b: np.ndarray) -> tuple[Any, Any]:
    """Operands for a binary call, at least one of them a Value."""
    x, y = as_operand(data, a), as_operand(data, b)
    if not isinstance(x, mg.Value) and not isinstance(y, mg.Value):
        x = mg.Value(a)
    return x, y


@st.composite
def mismatched_shapes(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that do not broadcast: in one trailing axis the sizes differ and neither is 1."""
    a = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
    b = list(draw(hnp.broadcastable_shapes(a, min_dims=1, max_dims=3, max_side=4)))
    axis = draw(st.integers(1, min(len(a), len(b))))
    b[-axis] = draw(st.integers(2, 5).filter(lambda s: s != a[-axis]))
    return a, tuple(b)


BINARY = {"add": operator.add, "subtract": operator.sub, "multiply": operator.mul,
          "divide": operator.truediv, "power": operator.pow, "maximum": mg.maximum}


@given(shapes=mismatched_shapes(), name=st.sampled_from(sorted(BINARY)), data=st.data())
def test_operands_that_do_not_broadcast_raise_shape_error(shapes, name, data):
    sa, sb = shapes
    x, y = values_or_arrays(data, np.ones(sa), np.ones(sb))
    raises(ShapeError, lambda: BINARY[name](x, y), name, str(sa), str(sb))


@given(shapes=mismatched_shapes(), data=st.data())
def test_where_with_shapes_that_do_not_broadcast_raises_shape_error(shapes, data):
    sa, sb = shapes
    x, y = values_or_arrays(data, np.ones(sa), np.ones(sb))
    raises(ShapeError, lambda: mg.where(np.ones(sa, dtype=bool), x, y), "where", str(sa), str(sb))


@st.composite
def matmul_mismatch(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    j = draw(st.integers(1, 5).filter(lambda s: s != k))
    kind = draw(st.sampled_from(["mm", "vec-mat", "mat-vec", "vec-vec", "batch", "scalar"]))
    if kind == "batch":                            # inner sizes fit, batch axes do not broadcast
        p = draw(st.integers(2, 4))
        return (p, n, k), (p + 1, k, m)
    if kind == "scalar":
        return draw(st.sampled_from([((), (k, m)), ((n, k), ())]))
    return {"mm": ((n, k), (j, m)), "vec-mat": ((k,), (j, m)), "mat-vec": ((n, k), (j,)),
            "vec-vec": ((k,), (j,))}[kind]


@given(shapes=matmul_mismatch(), data=st.data())
def test_matmul_of_mismatched_shapes_raises_shape_error(shapes, data):
    sa, sb = shapes
    x, y = values_or_arrays(data, np.ones(sa), np.ones(sb))
    raises(ShapeError, lambda: x @ y, "matmul", str(sa), str(sb))


NOT_NUMBERS = st.one_of(
    st.text(max_size=5), st.none(), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.complex_numbers(allow_nan=False, allow_infinity=False), st.binary(max_size=3),
    st.lists(st.text(min_size=1, max_size=2), min_size=1, max_size=3),
    st.sampled_from([np.array([1.0, 2j]), np.array([1, None], dtype=object), np.array(["a", "b"]),
                     [[1.0, 2.0], [3.0]], {1.0, 2.0}, object()]),
)

CALLS_WITH_A_BAD_OPERAND = {
    "add": lambda v, bad: v + bad, "radd": lambda v, bad: bad + v,
    "subtract": lambda v, bad: bad - v, "multiply": lambda v, bad: v * bad,
    "divide": lambda v, bad: bad / v, "power": lambda v, bad: v ** bad,
    "matmul": lambda v, bad: v @ bad, "maximum": lambda v, bad: mg.maximum(bad, v),
    "where": lambda v, bad: mg.where(np.ones(v.shape, dtype=bool), v, bad),
    "concatenate": lambda v, bad: mg.concatenate([v, bad]), "stack": lambda v, bad: mg.stack([bad, v]),
}


def _type_names(bad: Any) -> tuple[str, ...]:
    dtype = getattr(bad, "dtype", None)
    return (type(bad).__name__,) + ((str(dtype),) if dtype is not None else ())


@given(bad=NOT_NUMBERS, call=st.sampled_from(sorted(CALLS_WITH_A_BAD_OPERAND)))
def test_operands_that_are_not_real_numbers_raise_dtype_error(bad, call):
    v = mg.Value(np.ones(2))
    op = {"radd": "add"}.get(call, call)
    message = raises(DTypeError, lambda: CALLS_WITH_A_BAD_OPERAND[call](v, bad), op)
    assert any(name in message for name in _type_names(bad)), message


@given(bad=NOT_NUMBERS)
def test_values_of_things_that_are_not_real_numbers_raise_dtype_error(bad):
    message = raises(DTypeError, lambda: mg.Value(bad), "Value")
    assert any(name in message for name in _type_names(bad)), message


@given(bad=NOT_NUMBERS.filter(lambda bad: bad is not None))    # gradient=None means "no seed given"
def test_backward_seeded_with_something_that_is_not_a_number_raises_dtype_error(bad):
    loss = (mg.Value(np.ones(3)) * 2.0).sum()
    raises(DTypeError, lambda: loss.backward(gradient=bad), "backward")


@given(dtype=st.sampled_from(["int64", "int8", "bool", "complex128", "object", "U3"]))
def test_value_with_a_dtype_that_is_not_float_raises_dtype_error(dtype):
    raises(DTypeError, lambda: mg.Value([1.0, 2.0], dtype=dtype), "Value", str(np.dtype(dtype)))


# ---- axes ---------------------------------------------------------------------------------------

REDUCTIONS = {
    "sum": lambda x, axis: x.sum(axis=axis), "max": lambda x, axis: x.max(axis=axis),
    "min": lambda x, axis: x.min(axis=axis), "transpose": lambda x, axis: x.transpose(
        tuple(range(x.ndim - 1)) + (axis,)),
    "concatenate": lambda x, axis: mg.concatenate([x, x], axis=axis),
}
COMPOSITES = {
    "mean": lambda x, axis: x.mean(axis=axis), "var": lambda x, axis: x.var(axis=axis),
    "logsumexp": lambda x, axis: mg.logsumexp(x, axis=axis), "softmax": lambda x, axis: mg.softmax(x, axis),
    "log_softmax": lambda x, axis: mg.log_softmax(x, axis), "squeeze": lambda x, axis: x.squeeze(axis),
    "expand_dims": lambda x, axis: mg.expand_dims(x, axis),
}


@st.composite
def out_of_range_axis(draw: Any, extra: int = 0) -> tuple[tuple[int, ...], int]:
    """A shape and an axis outside [-ndim - extra, ndim + extra)."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    bound = len(shape) + extra
    axis = draw(st.one_of(st.integers(bound, bound + 3), st.integers(-bound - 3, -bound - 1)))
    return shape, axis


def _check_bad_axis(call: Callable[[Any, int], Any], name: str, shape: tuple[int, ...], axis: int) -> None:
    x = mg.Value(np.ones(shape))
    raises(AxisError, lambda: call(x, axis), name, str(shape), str(axis))


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(case=out_of_range_axis())
def test_axis_out_of_range_raises_axis_error(name, case):
    _check_bad_axis(REDUCTIONS[name], name, *case)


@given(case=out_of_range_axis(extra=1))         # stack makes a new axis: one more place is valid
def test_stack_along_an_axis_out_of_range_raises_axis_error(case):
    _check_bad_axis(lambda x, axis: mg.stack([x, x], axis=axis), "stack", *case)


@pytest.mark.parametrize("name, axis", [(name, axis) for name in sorted(COMPOSITES)
                                        for axis in ((3, -4) if name == "expand_dims" else (2, -3))])
def test_axis_out_of_range_in_a_composite_raises_axis_error_naming_it(name, axis):
    _check_bad_axis(COMPOSITES[name], name, (2, 3), axis)


@pytest.mark.parametrize("call", [lambda x: x.sum(axis=(0, 0)), lambda x: x.max(axis=(1, -1)),
                                  lambda x: x.transpose(0, 0), lambda x: x.transpose(1)],
                         ids=["sum", "max", "transpose", "transpose-too-few"])
def test_repeated_or_missing_axes_raise_our_error(call):
    x = mg.Value(np.ones((2, 3)))
    with pytest.raises((AxisError, ShapeError)) as info:
        call(x)
    assert "(2, 3)" in str(info.value)


@pytest.mark.parametrize("call", [lambda x: x.sum(axis=1.5), lambda x: x.max(axis="0"),
                                  lambda x: x.reshape("x"), lambda x: mg.softmax(x, axis="x"),
                                  lambda x: x.mean(axis=0.0)],
                         ids=["sum-float", "max-str", "reshape-str", "softmax-str", "mean-float"])
def test_axis_or_shape_of_the_wrong_type_names_the_parameter(call):
    x = mg.Value(np.ones((2, 3)))
    with pytest.raises((DTypeError, AxisError, ShapeError)) as info:
        call(x)
    message = str(info.value)
    assert "axis" in message or "shape" in message, message
    assert "(2, 3)" in message, message


# ---- reshape, broadcast_to, joining --------------------------------------------------------------

@st.composite
def bad_reshape(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
    size = int(np.prod(shape))
    kind = draw(st.sampled_from(["count", "two-unknowns", "indivisible"]))
    if kind == "count":
        target = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5).filter(
            lambda t: int(np.prod(t)) != size))
    elif kind == "two-unknowns":
        target = (-1, -1)
    else:
        d = draw(st.integers(2, 5).filter(lambda d: size % d != 0))
        target = (-1, d)
    return shape, target


@given(case=bad_reshape(), method=st.booleans())
def test_reshape_to_an_incompatible_shape_raises_shape_error(case, method):
    shape, target = case
    x = mg.Value(np.ones(shape))
    call = (lambda: x.reshape(target)) if method else (lambda: mg.reshape(x, target))
    raises(ShapeError, call, "reshape", str(shape), str(target))


@given(shapes=mismatched_shapes())
def test_broadcast_to_an_incompatible_shape_raises_shape_error(shapes):
    sa, sb = shapes
    if len(sb) < len(sa):                          # broadcast_to never drops axes: pad so only sizes clash
        sb = sa[: len(sa) - len(sb)] + sb
    raises(ShapeError, lambda: mg.broadcast_to(mg.Value(np.ones(sa)), sb), "broadcast_to", str(sa), str(sb))


@given(sa=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_joining_mismatched_shapes_raises_shape_error(sa, data):
    differ = data.draw(st.integers(0, len(sa) - 1))
    sb = sa[:differ] + (sa[differ] + data.draw(st.integers(1, 3)),) + sa[differ + 1:]
    x, y = values_or_arrays(data, np.ones(sa), np.ones(sb))
    raises(ShapeError, lambda: mg.stack([x, y]), "stack", str(sa), str(sb))
    if len(sa) > 1:                                # joined along an axis other than the one that differs
        axis = data.draw(st.sampled_from([a for a in range(len(sa)) if a != differ]))
        raises(ShapeError, lambda: mg.concatenate([x, y], axis=axis), "concatenate", str(sa), str(sb))


# ---- indexing -----------------------------------------------------------------------------------

@st.composite
def bad_index(draw: Any) -> tuple[tuple[int, ...], Any]:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    axis = draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    wrong = draw(st.one_of(st.integers(n, n + 5), st.integers(-n - 5, -n - 1)))
    kind = draw(st.sampled_from(["int", "array", "too-many", "mask"]))
    if kind == "int":
        return shape, (slice(None),) * axis + (wrong,)
    if kind == "array":
        good = draw(st.lists(st.integers(0, n - 1), max_size=3))
        return shape, (slice(None),) * axis + (np.array(good + [wrong]),)
    if kind == "too-many":
        return shape, (0,) * (len(shape) + 1)
    return shape, np.ones(shape[0] + 1, dtype=bool)


@given(case=bad_index())
def test_index_out_of_range_raises_axis_error(case):
    shape, index = case
    x = mg.Value(np.ones(shape))
    raises(AxisError, lambda: x[index], "getitem", str(shape))    # an AxisError is also an IndexError


@pytest.mark.parametrize("index", [1.5, "a", (0, 0.5)], ids=["float", "str", "tuple-with-float"])
def test_index_of_the_wrong_type_is_not_called_out_of_range(index):
    x = mg.Value(np.ones((2, 3)))
    with pytest.raises(MicrogradxError) as info:
        x[index]
    assert "out of range" not in str(info.value)
    assert "(2, 3)" in str(info.value)


# ---- backward -----------------------------------------------------------------------------------

@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4).filter(lambda s: int(np.prod(s)) > 1))
def test_backward_on_a_non_scalar_without_a_seed_raises_gradient_error(shape):
    y = mg.Value(np.ones(shape)).exp()
    raises(GradientError, y.backward, "backward", str(shape))
    raises(GradientError, lambda: mg.grad(lambda v: v.exp())(np.ones(shape)), "grad", str(shape))


@given(shapes=st.tuples(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
                        hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)).filter(lambda s: s[0] != s[1]),
       as_value=st.booleans())
def test_backward_seeded_with_a_gradient_of_the_wrong_shape_raises_shape_error(shapes, as_value):
    shape, seed_shape = shapes
    y = mg.Value(np.ones(shape)) * 3.0
    seed = mg.Value(np.ones(seed_shape)) if as_value else np.ones(seed_shape)
    raises(ShapeError, lambda: y.backward(seed, create_graph=as_value), "backward", str(shape),
           str(seed_shape))


def test_backward_on_something_that_needs_no_gradient_raises_gradient_error():
    raises(GradientError, mg.Value(2.0, requires_grad=False).exp().backward, "backward")
    with mg.no_grad():
        y = mg.Value(2.0) * 3.0
    raises(GradientError, y.backward, "backward")


def test_errors_inside_grad_and_no_grad_leave_the_grad_mode_as_it_was():
    with pytest.raises(ShapeError):
        mg.grad(lambda v: (v @ np.ones((5, 2))).sum())(np.ones((2, 3)))
    assert mg.is_grad_enabled()
    with pytest.raises(ShapeError), mg.no_grad():
        mg.Value(np.ones(2)) + np.ones(3)
    assert mg.is_grad_enabled()
    x = mg.Value(np.ones(2))
    (x * 2.0).sum().backward()                     # the engine still works afterwards
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
