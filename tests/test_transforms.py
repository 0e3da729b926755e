"""The function transforms (microgradx/transforms.py): jacobian, hessian, hvp, jvp, vjp, elementwise_grad.

Four kinds of test:

* against ``torch.func`` in float64, on random programs from tests/fuzz_programs.py run on PyTorch
  tensors (skipped where PyTorch is not installed: ``pip install torch``);
* against central finite differences, on the same random programs, without PyTorch;
* shapes and types on functions whose derivatives are known by hand: scalar, vector and matrix inputs
  and outputs, several ``argnums``, tuples of outputs, nesting inside ``grad`` and each other;
* every error: what was given and what was expected, in our error classes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import microgradx as mg
from microgradx.engine import data_of
from microgradx.errors import ArgumentError, GradientError, MicrogradxError, ShapeError
from microgradx.testing import numerical_gradient
from microgradx.transforms import elementwise_grad, hessian, hvp, jacobian, jvp, vjp

from fuzz_programs import Program, Torch, programs

# PyTorch warns about its own use of torch.jit when torch.func first loads.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="compares with torch.func: pip install torch")
EXACT = {"rtol": 1e-9, "atol": 1e-11}         # float64 against float64: only rounding differs
NUMERIC = {"rtol": 1e-4, "atol": 1e-5}        # against central differences (gradcheck's tolerance)


# --------------------------------------------------------------------------------------------------
# Random programs as functions of every input
# --------------------------------------------------------------------------------------------------

def output_shape(program: Program) -> tuple[int, ...]:
    return program(*(mg.Value(a) for a in program.inputs)).shape


def argnums_of(program: Program) -> tuple[int, ...]:
    return tuple(range(len(program.inputs)))


def weights_for(program: Program) -> np.ndarray:
    """Fixed weights of the output's shape: the scalar a Hessian needs, with every element counted."""
    return np.random.default_rng(0).uniform(0.5, 1.5, size=output_shape(program))


def scalar_of(program: Program) -> Callable[..., Any]:
    weights = weights_for(program)
    return lambda *xs: (program(*xs) * weights).sum()


def directions(program: Program, seed: int = 1) -> tuple[np.ndarray, ...]:
    """A random vector per input, of its shape: tangents, or the v of a Hessian-vector product."""
    rng = np.random.default_rng(seed)
    return tuple(rng.normal(size=a.shape) for a in program.inputs)


def close(ours: Any, theirs: Any, tolerance: dict[str, float], what: str) -> None:
    """Nested tuples of arrays (ours numpy, theirs numpy or torch) agree element by element."""
    if isinstance(theirs, tuple | list):
        assert isinstance(ours, tuple) and len(ours) == len(theirs), what
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            close(a, b, tolerance, f"{what}[{i}]")
        return
    theirs = theirs.detach().numpy(force=True) if hasattr(theirs, "detach") else np.asarray(theirs)
    assert np.shape(ours) == theirs.shape, f"{what}: shape {np.shape(ours)}, expected {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, err_msg=what, **tolerance)


# --------------------------------------------------------------------------------------------------
# Against torch.func
# --------------------------------------------------------------------------------------------------

class OnTorch:
    """A program and its scalar projection as functions of float64 tensors, and its inputs as tensors."""

    def __init__(self, program: Program) -> None:
        import torch
        self.torch, self.func = torch, torch.func
        backend = Torch()
        weights = torch.tensor(weights_for(program))
        self.f = lambda *ts: program.run(backend, *ts)
        self.scalar = lambda *ts: (program.run(backend, *ts) * weights).sum()
        self.inputs = self.tensors(program.inputs)

    def tensors(self, arrays: Any) -> tuple[Any, ...]:
        return tuple(self.torch.tensor(np.asarray(a, dtype=np.float64)) for a in arrays)


@needs_torch
@settings(max_examples=20)
@given(programs(max_steps=6))
def test_jacobian_matches_torch_jacrev(program):
    t = OnTorch(program)
    nums = argnums_of(program)
    close(jacobian(program, argnums=nums)(*program.inputs), t.func.jacrev(t.f, argnums=nums)(*t.inputs),
          EXACT, repr(program))


@needs_torch
@settings(max_examples=15)
@given(programs(max_steps=6))
def test_jvp_along_each_axis_rebuilds_torch_jacfwd(program):
    # Forward mode column by column: the jvp along every basis vector of every input is a column of the
    # Jacobian that torch builds in forward mode.
    t = OnTorch(program)
    theirs = t.func.jacfwd(t.f, argnums=argnums_of(program))(*t.inputs)
    out_shape = output_shape(program)
    for i, x in enumerate(program.inputs):
        columns = []
        for j in range(x.size):
            tangents = [np.zeros_like(a) for a in program.inputs]
            tangents[i].flat[j] = 1.0
            columns.append(np.reshape(jvp(program, program.inputs, tangents)[1], -1))
        ours = np.stack(columns, axis=-1).reshape(out_shape + x.shape) if columns else np.zeros(out_shape)
        close(ours, theirs[i], EXACT, f"input #{i}\n{program!r}")


@needs_torch
@settings(max_examples=15)
@given(programs(max_steps=5, max_inputs=2))
def test_hessian_matches_torch_hessian(program):
    t = OnTorch(program)
    nums = argnums_of(program)
    close(hessian(scalar_of(program), argnums=nums)(*program.inputs),
          t.func.hessian(t.scalar, argnums=nums)(*t.inputs), EXACT, repr(program))


@needs_torch
@settings(max_examples=20)
@given(programs(max_steps=6))
def test_hvp_matches_torch_forward_over_reverse(program):
    # torch.func has no hvp of its own: its documented recipe is jvp of grad.
    t = OnTorch(program)
    nums, vs = argnums_of(program), directions(program)
    theirs = t.func.jvp(t.func.grad(t.scalar, argnums=nums), t.inputs, t.tensors(vs))[1]
    close(hvp(scalar_of(program), argnums=nums)(*program.inputs, vs), theirs, EXACT, repr(program))


@needs_torch
@settings(max_examples=20)
@given(programs(max_steps=6))
def test_jvp_matches_torch_jvp(program):
    t = OnTorch(program)
    tangents = directions(program)
    out, pushed = jvp(program, program.inputs, tangents)
    their_out, their_pushed = t.func.jvp(t.f, t.inputs, t.tensors(tangents))
    close(out, their_out, EXACT, f"output\n{program!r}")
    close(pushed, their_pushed, EXACT, f"tangent\n{program!r}")


@needs_torch
@settings(max_examples=20)
@given(programs(max_steps=6))
def test_vjp_and_elementwise_grad_match_torch_vjp(program):
    t = OnTorch(program)
    cotangent = np.random.default_rng(2).normal(size=output_shape(program))
    out, pull = vjp(program, *program.inputs)
    their_out, their_pull = t.func.vjp(t.f, *t.inputs)
    close(out, their_out, EXACT, f"output\n{program!r}")
    close(pull(cotangent), their_pull(*t.tensors([cotangent])), EXACT, f"vjp\n{program!r}")
    ones = t.torch.ones(np.shape(out), dtype=t.torch.float64)
    close(elementwise_grad(program, argnums_of(program))(*program.inputs), their_pull(ones), EXACT,
          f"elementwise_grad\n{program!r}")


# --------------------------------------------------------------------------------------------------
# Against finite differences
# --------------------------------------------------------------------------------------------------

def numerical_jacobian(f: Callable[..., Any], inputs: tuple[np.ndarray, ...], index: int,
                       out_shape: tuple[int, ...]) -> np.ndarray:
    """Central differences of every output element of ``f`` w.r.t. ``inputs[index]``: out + in shape."""
    rows = []
    for k in range(int(np.prod(out_shape))):
        def element(*xs: Any, k: int = k) -> float:
            return float(np.reshape(data_of(f(*(mg.Value(x, requires_grad=False) for x in xs))), -1)[k])
        rows.append(numerical_gradient(element, inputs, index))
    return np.stack(rows).reshape(out_shape + inputs[index].shape)


@settings(max_examples=15)
@given(programs(max_steps=6))
def test_jacobian_matches_finite_differences(program):
    jacs = jacobian(program, argnums=argnums_of(program))(*program.inputs)
    for i, jac in enumerate(jacs):
        expected = numerical_jacobian(program, program.inputs, i, output_shape(program))
        close(jac, expected, NUMERIC, f"input #{i}\n{program!r}")


@settings(max_examples=10)
@given(programs(max_steps=5, max_inputs=2))
def test_hessian_matches_finite_differences_of_the_gradient(program):
    nums = argnums_of(program)
    scalar = scalar_of(program)
    hessians = hessian(scalar, argnums=nums)(*program.inputs)
    gradient = mg.grad(scalar, argnums=nums)
    for i in nums:
        for j in nums:
            def gradient_i(*xs: Any, i: int = i) -> Any:
                return gradient(*(data_of(x) for x in xs))[i]
            expected = numerical_jacobian(gradient_i, program.inputs, j, program.inputs[i].shape)
            close(hessians[i][j], expected, NUMERIC, f"block [{i}][{j}]\n{program!r}")


def along(f: Callable[..., Any], inputs: tuple[np.ndarray, ...], tangents: tuple[np.ndarray, ...],
          eps: float = 1e-6) -> np.ndarray:
    """(f(x + eps t) - f(x - eps t)) / 2 eps: the derivative of f at x in the direction t."""
    def at(sign: float) -> np.ndarray:
        return np.asarray(data_of(f(*(x + sign * eps * t for x, t in zip(inputs, tangents, strict=True)))))
    return (at(1.0) - at(-1.0)) / (2 * eps)


@given(programs(max_steps=6))
def test_jvp_matches_a_finite_difference_along_the_tangent(program):
    tangents = directions(program)
    out, pushed = jvp(program, program.inputs, tangents)
    close(out, data_of(program(*(mg.Value(a) for a in program.inputs))), EXACT, repr(program))
    close(pushed, along(lambda *xs: program(*(mg.Value(x) for x in xs)), program.inputs, tangents), NUMERIC,
          repr(program))


@given(programs(max_steps=6))
def test_hvp_matches_a_finite_difference_of_the_gradient(program):
    nums, vs = argnums_of(program), directions(program)
    ours = hvp(scalar_of(program), argnums=nums)(*program.inputs, vs)
    gradient = mg.grad(scalar_of(program), argnums=nums)
    for i in nums:
        close(ours[i], along(lambda *xs, i=i: gradient(*xs)[i], program.inputs, vs), NUMERIC,
              f"input #{i}\n{program!r}")


@settings(max_examples=15)
@given(programs(max_steps=6))
def test_vjp_is_the_cotangent_times_the_finite_difference_jacobian(program):
    shape = output_shape(program)
    cotangent = np.random.default_rng(2).normal(size=shape)
    out, pull = vjp(program, *program.inputs)
    for i, g in enumerate(pull(cotangent)):
        jac = numerical_jacobian(program, program.inputs, i, shape)
        expected = np.tensordot(cotangent, jac, axes=len(shape))
        close(g, expected, NUMERIC, f"input #{i}\n{program!r}")


@settings(max_examples=20)
@given(programs(max_steps=6), st.integers(0, 2**32 - 1))
def test_hvp_is_the_hessian_times_v_and_jvp_the_jacobian_times_t(program, seed):
    # The transforms agree with each other: products without the matrix equal the matrix times the vector.
    nums = argnums_of(program)
    vs = directions(program, seed)
    blocks = hessian(scalar_of(program), argnums=nums)(*program.inputs)
    products = hvp(scalar_of(program), argnums=nums)(*program.inputs, vs)
    for i in nums:
        expected = sum(np.tensordot(blocks[i][j], vs[j], axes=vs[j].ndim) for j in nums)
        close(products[i], expected, EXACT, f"hvp of input #{i}\n{program!r}")
    jacs = jacobian(program, argnums=nums)(*program.inputs)
    expected = sum(np.tensordot(jac, t, axes=t.ndim) for jac, t in zip(jacs, vs, strict=True))
    close(jvp(program, program.inputs, vs)[1], expected, EXACT, f"jvp\n{program!r}")


# --------------------------------------------------------------------------------------------------
# Shapes and types, on functions differentiated by hand
# --------------------------------------------------------------------------------------------------

A = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]])


@pytest.mark.parametrize("f, x, expected", [
    (lambda x: x**3, 2.0, 12.0),                                                     # scalar -> scalar
    (lambda x: x * np.array([1.0, 2.0, 3.0]), 2.0, np.array([1.0, 2.0, 3.0])),       # scalar -> vector
    (lambda x: (x * x).sum(), np.array([1.0, -2.0]), np.array([2.0, -4.0])),         # vector -> scalar
    (lambda x: A @ x, np.array([1.0, 2.0, 3.0]), A),                                 # vector -> vector
    (lambda x: x.sum(axis=0), np.ones((2, 3)),                                       # matrix -> vector
     np.stack([np.eye(3), np.eye(3)], axis=1)),
    (lambda x: x.T, np.ones((2, 3)), np.eye(6).reshape(2, 3, 2, 3).transpose(1, 0, 2, 3)),  # -> matrix
], ids=["scalar-scalar", "scalar-vector", "vector-scalar", "vector-vector", "matrix-vector",
        "matrix-matrix"])
def test_the_jacobian_has_the_output_shape_then_the_input_shape(f, x, expected):
    jac = jacobian(f)(x)
    assert np.shape(jac) == np.shape(f(mg.Value(x))) + np.shape(x)
    np.testing.assert_allclose(jac, expected, rtol=1e-12)
    assert isinstance(jac, np.ndarray | np.floating)


def test_jacobian_with_several_argnums_and_several_outputs():
    f = lambda x, y: (x * y, (x**2).sum() + y.sum())  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    (dprod_dx, dprod_dy), (dsum_dx, dsum_dy) = jacobian(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(dprod_dx, np.diag(y))
    np.testing.assert_allclose(dprod_dy, np.diag(x))
    np.testing.assert_allclose(dsum_dx, 2 * x)
    np.testing.assert_allclose(dsum_dy, [1.0, 1.0])
    only_y = jacobian(lambda x, y: x * y, argnums=-1)(x, y)     # counted from the end, as grad does
    np.testing.assert_allclose(only_y, np.diag(x))


def test_hessian_of_a_quadratic_form_is_the_symmetrised_matrix():
    m = np.array([[2.0, 1.0, 0.0], [3.0, 1.0, -1.0], [0.0, 2.0, 4.0]])
    x = np.array([0.3, -0.2, 1.0])
    np.testing.assert_allclose(hessian(lambda x: x @ (m @ x))(x), m + m.T, rtol=1e-12)
    # A matrix input: the Hessian has the input's shape twice.
    h = hessian(lambda w: (w**3).sum())(np.arange(6.0).reshape(2, 3))
    assert h.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(h.reshape(6, 6), np.diag(6 * np.arange(6.0)))


def test_hessian_with_several_argnums_is_a_tuple_of_blocks():
    f = lambda x, y: (x**2 * y**3).sum()  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    (hxx, hxy), (hyx, hyy) = hessian(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(hxx, np.diag(2 * y**3))
    np.testing.assert_allclose(hxy, np.diag(6 * x * y**2))
    np.testing.assert_allclose(hyx, hxy)
    np.testing.assert_allclose(hyy, np.diag(6 * x**2 * y))


def test_hvp_matches_the_hand_computed_product_and_takes_v_last():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    f = lambda x, c: 0.5 * (x @ (a @ x)) * c + mg.exp(x).sum()  # noqa: E731
    x0, v = np.array([0.1, -0.2]), np.array([1.0, 2.0])
    np.testing.assert_allclose(hvp(f)(x0, 2.0, v), 2.0 * a @ v + np.exp(x0) * v, rtol=1e-12)
    # With respect to the second argument: d2f/dc2 = 0.
    assert hvp(f, argnums=1)(x0, 2.0, 1.0) == 0.0


def test_jvp_and_vjp_take_and_return_tuples_as_jax_and_torch_func_do():
    f = lambda x, y: x * y.sum()  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])
    out, pushed = jvp(f, [x, y], [np.array([1.0, 0.0]), np.ones(3)])     # lists work too
    np.testing.assert_allclose(out, x * 12.0)
    np.testing.assert_allclose(pushed, np.array([1.0, 0.0]) * 12.0 + x * 3.0)
    out, pull = vjp(f, x, y)
    gx, gy = pull(np.array([1.0, -1.0]))
    np.testing.assert_allclose(gx, [12.0, -12.0])
    np.testing.assert_allclose(gy, [-1.0, -1.0, -1.0])
    (g,) = vjp(lambda x: x * 2.0, 3.0)[1](1.0)          # one primal: still a tuple of one
    assert g == 2.0
    twice = [pull(np.array([1.0, 0.0]))[0] for _ in range(2)]   # f ran once; pull as often as wanted
    np.testing.assert_array_equal(twice[0], twice[1])


def test_functions_of_several_outputs_take_and_give_tuples():
    f = lambda x: (x * 2.0, (x * x).sum())  # noqa: E731
    x = np.array([1.0, 3.0])
    (out_a, out_b), (t_a, t_b) = jvp(f, (x,), (np.array([1.0, 1.0]),))
    np.testing.assert_allclose(t_a, [2.0, 2.0])
    assert t_b == pytest.approx(8.0)
    _, pull = vjp(f, x)
    (g,) = pull((np.array([1.0, 0.0]), 1.0))
    np.testing.assert_allclose(g, [2.0 + 2.0, 6.0])


def test_elementwise_grad_is_the_derivative_at_every_element():
    x = np.linspace(-2.0, 2.0, 7).reshape(7, 1)
    np.testing.assert_allclose(elementwise_grad(lambda x: x.tanh())(x), 1 - np.tanh(x) ** 2, rtol=1e-12)
    dx, dy = elementwise_grad(lambda x, y: x * y, argnums=(0, 1))(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.testing.assert_allclose(dx, [3.0, 4.0])
    np.testing.assert_allclose(dy, [1.0, 2.0])


@pytest.mark.parametrize("kind", ["float", "int", "list", "array", "value"])
def test_inputs_may_be_numbers_lists_arrays_or_values(kind):
    x = {"float": 2.0, "int": 2, "list": [2.0], "array": np.array([2.0]), "value": mg.Value([2.0])}[kind]
    h = hessian(lambda x: (x**3).sum())(x)
    assert float(data_of(h).sum()) == 12.0
    # Given a Value that requires grad, the result is a Value recorded in the graph, as grad's is.
    assert isinstance(h, mg.Value) == (kind == "value")
    tangent = np.ones(np.shape(data_of(x)))
    assert float(data_of(jvp(lambda x: x**3, (x,), (tangent,))[1]).sum()) == 12.0


def test_float32_stays_float32():
    x = np.array([1.0, 2.0], np.float32)
    f = lambda x: (x * x).exp()  # noqa: E731
    assert jacobian(f)(x).dtype == np.float32
    assert hessian(lambda x: f(x).sum())(x).dtype == np.float32
    assert hvp(lambda x: f(x).sum())(x, np.ones(2, np.float32)).dtype == np.float32
    out, pushed = jvp(f, (x,), (np.ones(2, np.float32),))
    assert out.dtype == pushed.dtype == np.float32
    assert vjp(f, x)[1](np.ones(2, np.float32))[0].dtype == np.float32


def test_a_function_that_ignores_its_input_has_zero_derivatives():
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(jacobian(lambda x: np.ones(3))(x), np.zeros((3, 2)))
    np.testing.assert_array_equal(hessian(lambda x: 5.0)(x), np.zeros((2, 2)))
    np.testing.assert_array_equal(jvp(lambda x: np.ones(3), (x,), (x,))[1], np.zeros(3))
    np.testing.assert_array_equal(vjp(lambda x: 4.0, x)[1](1.0)[0], np.zeros(2))
    np.testing.assert_array_equal(jacobian(lambda x: x)(x), np.eye(2))      # the identity is its input


def test_results_are_fresh_arrays():
    x = np.array([1.0, 2.0])
    out, pull = vjp(lambda x: x + 0.0, x)
    ct = np.array([1.0, 1.0])
    (g,) = pull(ct)
    g += 5.0          # an in-place edit of a result changes nothing else
    np.testing.assert_array_equal(ct, [1.0, 1.0])
    np.testing.assert_array_equal(pull(ct)[0], [1.0, 1.0])


# ---- composition -----------------------------------------------------------------------------------

def test_hessian_is_the_jacobian_of_the_gradient_and_composes_to_third_derivatives():
    f = lambda x: (x**4).sum() + x[0] * x[1] ** 2  # noqa: E731
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(hessian(f)(x), jacobian(mg.grad(f))(x), rtol=1e-12)
    np.testing.assert_allclose(hessian(f)(x), jacobian(jacobian(f))(x), rtol=1e-12)
    third = jacobian(hessian(f))(x)
    expected = np.zeros((2, 2, 2))
    expected[0, 0, 0], expected[1, 1, 1] = 24 * x[0], 24 * x[1]
    expected[0, 1, 1] = expected[1, 0, 1] = expected[1, 1, 0] = 2.0      # d3(x0 x1^2)
    np.testing.assert_allclose(third, expected, rtol=1e-12)


@pytest.mark.parametrize("derivative, expected", [
    # Inside grad, each transform records its own passes: the outer grad differentiates the result.
    (lambda: mg.grad(lambda x: jvp(lambda y: y**3, (x,), (1.0,))[1])(2.0), 12.0),      # d/dx 3x^2
    (lambda: mg.grad(lambda x: vjp(lambda y: y**3, x)[1](1.0)[0])(2.0), 12.0),
    (lambda: mg.grad(lambda x: hessian(lambda y: y**3)(x))(2.0), 6.0),                 # d/dx 6x
    (lambda: mg.grad(lambda x: hvp(lambda y: y**3)(x, 1.0))(2.0), 6.0),
    (lambda: mg.grad(lambda x: jacobian(lambda y: y**2 * x)(1.0))(2.0), 2.0),          # closure: d/dx 2x
    (lambda: mg.grad(lambda t: jvp(lambda y: y**3, (2.0,), (t,))[1])(1.0), 12.0),      # linear in t
    (lambda: mg.grad(lambda c: vjp(lambda y: y**3, 2.0)[1](c)[0])(1.0), 12.0),         # linear in c
    (lambda: mg.grad(lambda x: elementwise_grad(lambda y: y * x * x)(x))(2.0), 4.0),   # own argument only
], ids=["jvp", "vjp", "hessian", "hvp", "jacobian-closure", "jvp-tangent", "vjp-cotangent",
        "elementwise-same-value"])
def test_transforms_nest_inside_grad(derivative, expected):
    assert float(derivative()) == pytest.approx(expected)


def test_jvp_of_grad_is_hvp_and_transforms_of_transforms_agree():
    f = lambda x: x.tanh().sum() * (x**2).sum()  # noqa: E731
    x, v = np.array([0.3, -1.2, 0.5]), np.array([1.0, 2.0, -1.0])
    by_hvp = hvp(f)(x, v)
    np.testing.assert_allclose(jvp(mg.grad(f), (x,), (v,))[1], by_hvp, rtol=1e-12)
    np.testing.assert_allclose(hessian(f)(x) @ v, by_hvp, rtol=1e-12)
    np.testing.assert_allclose(vjp(mg.grad(f), x)[1](v)[0], by_hvp, rtol=1e-12)   # H is symmetric


def test_a_value_argument_gets_a_result_that_can_be_differentiated_again():
    w = mg.Value(np.array([1.0, 2.0]))
    h = hessian(lambda x: (x**3).sum())(w)          # diag(6 w)
    assert isinstance(h, mg.Value)
    h.sum().backward()
    np.testing.assert_allclose(w.grad, [6.0, 6.0])


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------

def raises(error: type[Exception], call: Callable[[], Any], *mentions: str) -> None:
    with pytest.raises(MicrogradxError) as info:
        call()
    assert isinstance(info.value, error), f"{type(info.value).__name__}, not {error.__name__}: {info.value}"
    for text in mentions:
        assert text in str(info.value), f"{text!r} not in the message: {info.value}"
    assert mg.is_grad_enabled()


@pytest.mark.parametrize("who, call", [
    ("hessian", lambda: hessian(lambda x: x * 2.0)(np.ones(3))),
    ("hvp", lambda: hvp(lambda x: x * 2.0)(np.ones(3), np.ones(3))),
    ("grad", lambda: mg.grad(lambda x: x * 2.0)(np.ones(3))),
], ids=["hessian", "hvp", "grad"])
def test_a_function_that_is_not_scalar_is_refused_where_a_scalar_is_needed(who, call):
    raises(GradientError, call, who, "single number", "(3,)")


def test_hessian_of_a_function_returning_a_tuple_says_so():
    raises(GradientError, lambda: hessian(lambda x: (x, x))(1.0), "hessian", "single number", "tuple of 2")


@pytest.mark.parametrize("tangent_shape", [(2,), (3, 1), ()])
def test_a_tangent_of_the_wrong_shape_names_both_shapes(tangent_shape):
    raises(ShapeError, lambda: jvp(lambda x, y: x * y, (np.ones(3), 1.0), (np.ones(tangent_shape), 1.0)),
           "jvp", "tangent #0", str(tangent_shape), "(3,)")
    raises(ShapeError, lambda: hvp(lambda x: (x * x).sum())(np.ones(3), np.ones(tangent_shape)),
           "hvp", str(tangent_shape), "(3,)")


def test_a_cotangent_of_the_wrong_shape_names_both_shapes():
    _, pull = vjp(lambda x: x * 2.0, np.ones((2, 3)))
    raises(ShapeError, lambda: pull(np.ones(3)), "vjp", "cotangent", "(3,)", "(2, 3)")
    _, pull = vjp(lambda x: (x, x.sum()), np.ones(2))
    raises(ArgumentError, lambda: pull(np.ones(2)), "vjp", "2 outputs", "tuple of 2")
    raises(ShapeError, lambda: pull((np.ones(2), np.ones(2))), "cotangent #1", "(2,)", "()")


@pytest.mark.parametrize("primals, tangents, mentions", [
    ((1.0,), (1.0, 2.0), ("1 primals", "2 tangents")),
    (1.0, (1.0,), ("primals must be a tuple", "float")),
    ((1.0,), np.ones(1), ("tangents must be a tuple", "ndarray")),
    ((), (), ("empty",)),
], ids=["count", "primals-not-tuple", "tangents-not-tuple", "empty"])
def test_jvp_needs_one_tangent_per_primal_in_tuples(primals, tangents, mentions):
    raises(ArgumentError, lambda: jvp(lambda x: x, primals, tangents), "jvp", *mentions)


def test_hvp_needs_its_vector_and_one_vector_per_argnum():
    f = lambda x, y: (x * y).sum()  # noqa: E731
    raises(ArgumentError, lambda: hvp(f)(), "hvp", "no arguments")
    raises(ArgumentError, lambda: hvp(f, argnums=(0, 1))(1.0, 2.0, 1.0), "hvp", "tuple of 2")
    raises(ArgumentError, lambda: hvp(f, argnums=(0, 1))(1.0, 2.0, (1.0,)), "hvp", "1 vs for 2")
    raises(ArgumentError, lambda: vjp(f), "vjp", "no primals")


TAKING_ARGNUMS = {"jacobian": jacobian, "hessian": hessian, "hvp": hvp, "elementwise_grad": elementwise_grad}


@pytest.mark.parametrize("who", sorted(TAKING_ARGNUMS))
@pytest.mark.parametrize("argnums", [2, -3, (0, 2)])
def test_argnums_out_of_range_names_the_argnums_and_the_arguments(who, argnums):
    transformed = TAKING_ARGNUMS[who](lambda x, y: x * y, argnums)
    args = (1.0, 2.0, 1.0) if who == "hvp" else (1.0, 2.0)      # hvp's v comes last
    raises(GradientError, lambda: transformed(*args), who, f"argnums={argnums!r}", "called with 2 positional",
           "[-2, 2)")


@pytest.mark.parametrize("who", sorted(TAKING_ARGNUMS))
@pytest.mark.parametrize("argnums", [True, (), 0.5, "0", (0, None)])
def test_argnums_that_are_not_positions_are_refused_when_the_transform_is_made(who, argnums):
    raises(GradientError, lambda: TAKING_ARGNUMS[who](lambda x, y: x * y, argnums), who,
           f"argnums={argnums!r}", "expected an int or a non-empty tuple of ints")
