"""Fuzzing the engine: random programs against finite differences, and ill-formed calls.

Part 1 checks the gradients of random programs (tests/fuzz_programs.py draws them: broadcasting inputs,
then steps of every kind of op, each kept away from its kinks and domain edges) with ``gradcheck``.

Part 2 makes ill-formed calls (wrong shapes, wrong types, bad axes, bad indices, bad seeds) and checks
that each raises one of our error classes, whose message names the op and the shapes involved.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import microgradx as mg
from microgradx import ShapeError
from microgradx.errors import AxisError, DTypeError, GradientError, MicrogradxError
from microgradx.testing import gradcheck, gradgradcheck

from fuzz_programs import programs

# --------------------------------------------------------------------------------------------------
# Random programs
# --------------------------------------------------------------------------------------------------

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
