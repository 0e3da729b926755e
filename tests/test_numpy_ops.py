"""The ops named after numpy's functions compute what numpy computes, and the few facts about their
derivatives that the finite-difference tests cannot see (at zeros, NaNs and jumps).

Derivatives against finite differences are in test_ops.py, one OpCase per op.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import microgradx as mg
from microgradx import functional as F
from microgradx import ops
from microgradx.engine import TABLE

RNG = np.random.default_rng(0)
X = RNG.uniform(0.2, 0.9, size=(3, 4))          # inside every domain below
Y = RNG.uniform(-2.0, 2.0, size=(4,))           # broadcasts against X

UNARY = ["sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh", "arctanh", "log1p",
         "expm1", "log2", "log10", "exp2", "square", "reciprocal", "cbrt", "sign", "floor", "ceil", "rint",
         "trunc"]
BINARY = ["arctan2", "logaddexp", "logaddexp2", "hypot", "minimum", "fmax", "fmin", "mod", "fmod",
          "remainder"]


def _numpy_defaults():
    """(op, parameter, our default, numpy's) for each parameter an op shares, by name, with the numpy
    function it stands for, where both have a default."""
    found = []
    for name in sorted({*TABLE.primitives, *TABLE.composites}):
        op = getattr(TABLE, name)
        if getattr(op, "numpy", None) is None:
            continue
        try:
            theirs = inspect.signature(op.numpy).parameters
        except ValueError:           # a ufunc: positional operands, no defaults to compare
            continue
        for p in inspect.signature(getattr(op, "__wrapped__", op)).parameters.values():
            if p.default is not p.empty and p.name in theirs and theirs[p.name].default is not p.empty:
                # numpy's keepdims=<no value> means "not given": the same as False
                numpys = False if theirs[p.name].default is np._NoValue else theirs[p.name].default
                found.append((name, p.name, p.default, numpys))
    return found


def test_each_op_named_after_numpy_has_numpy_s_defaults():
    found = _numpy_defaults()
    assert len(found) > 40          # the comparison really reaches the ops
    wrong = [(name, param, ours, numpys) for name, param, ours, numpys in found
             if ours != numpys or type(ours) is not type(numpys)]
    assert not wrong, f"(op, parameter, our default, numpy's): {wrong}"


@pytest.mark.parametrize("name", UNARY)
def test_unary_forward_is_numpys(name):
    got = getattr(ops, name)(mg.Value(X * 3 - 1 if name in ("sign", "floor", "ceil", "rint", "trunc") else X))
    expected = getattr(np, name)(X * 3 - 1 if name in ("sign", "floor", "ceil", "rint", "trunc") else X)
    np.testing.assert_array_equal(got.data, expected)


@pytest.mark.parametrize("name", BINARY)
def test_binary_forward_is_numpys_and_broadcasts(name):
    got = getattr(ops, name)(mg.Value(X), mg.Value(Y))
    np.testing.assert_array_equal(got.data, getattr(np, name)(X, Y))
    assert got.shape == (3, 4)


def test_arccosh_and_round_with_decimals():
    np.testing.assert_array_equal(ops.arccosh(mg.Value(X + 1)).data, np.arccosh(X + 1))
    np.testing.assert_array_equal(ops.round(mg.Value(X * 10), 1).data, np.round(X * 10, 1))


def test_erf_values():
    np.testing.assert_allclose(ops.erf(np.array([0.0, 0.5, -1.0, 3.0])),
                               [0.0, 0.5204998778130465, -0.8427007929497149, 0.9999779095030014], rtol=1e-14)


@pytest.mark.parametrize("name", ["sign", "floor", "ceil", "round", "rint", "trunc"])
def test_steps_have_zero_derivative_even_at_their_jumps(name):
    x = mg.Value(np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 2.5]))
    getattr(ops, name)(x).sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros(6))


def test_fmax_and_fmin_send_the_gradient_past_a_nan():
    a, b = mg.Value(np.array([np.nan, 1.0, 3.0])), mg.Value(np.array([2.0, np.nan, 1.0]))
    ops.fmax(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(b.grad, [1.0, 0.0, 0.0])
    a.zero_grad(), b.zero_grad()
    ops.fmin(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(b.grad, [1.0, 0.0, 1.0])


def test_prod_and_cumprod_derivatives_are_exact_with_zeros():
    x = mg.Value(np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]]))
    ops.prod(x, axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [8.0, 4.0, 2.0]])
    x.zero_grad()
    ops.cumprod(x, axis=1).sum().backward()
    # row [2, 0, 3]: d/dx0 = 1 + 0 + 0, d/dx1 = 2 + 2*3, d/dx2 = 2*0
    np.testing.assert_array_equal(x.grad[0], [1.0, 8.0, 0.0])
    second = mg.grad(lambda v: mg.grad(ops.prod)(v).sum())(np.array([0.0, 2.0, 3.0]))
    np.testing.assert_array_equal(second, [5.0, 3.0, 2.0])       # d/dx_i sum_j prod(others of j)


def test_cumsum_and_cumprod_flatten_when_axis_is_none():
    x = mg.Value(X)
    assert ops.cumsum(x).shape == (12,) and ops.cumprod(x).shape == (12,)
    ops.cumsum(x).sum().backward()
    np.testing.assert_array_equal(x.grad.ravel(), np.arange(12, 0, -1))


def test_std_and_var_with_ddof_are_numpys():
    for ddof in (0, 1):
        np.testing.assert_allclose(F.var(X, axis=0, ddof=ddof).data, np.var(X, axis=0, ddof=ddof))
        np.testing.assert_allclose(F.std(X, axis=(0, 1), ddof=ddof).data, np.std(X, ddof=ddof))
    with pytest.raises(mg.ArgumentError, match="degrees of freedom"):
        F.var(np.ones(3), ddof=3)


def test_argmax_argmin_any_all_return_numpy_arrays_not_values():
    v = mg.Value(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 0.0]]))
    for fn, ref in ((F.argmax, np.argmax), (F.argmin, np.argmin), (F.any, np.any), (F.all, np.all)):
        for axis in (None, 0, 1, -1):
            got = fn(v, axis=axis)
            assert not isinstance(got, mg.Value)
            np.testing.assert_array_equal(got, ref(v.data, axis=axis))
    with pytest.raises(mg.AxisError):
        F.argmax(v, axis=2)


# --------------------------------------------------------------------------------------------------
# Products and mg.linalg
# --------------------------------------------------------------------------------------------------

A = RNG.standard_normal((2, 3, 3)) + 4 * np.eye(3)
B = RNG.standard_normal((2, 3, 2))


@pytest.mark.parametrize("name, args", [
    ("dot", (X, Y)), ("dot", (A, B[0])), ("inner", (X, Y)), ("inner", (X, RNG.standard_normal((5, 4)))),
    ("inner", (X, 2.0)), ("inner", (2.0, X)), ("dot", (2.0, X)), ("dot", (X, 2.0)), ("outer", (X, Y)),
    ("kron", (X, A)), ("tensordot", (A, B, ([0, 1], [0, 1]))), ("trace", (A, 1, 1, 2)),
    ("diagonal", (A, -1, 2, 0)), ("diag", (Y, 1)), ("diag", (Y, -2)), ("diag", (X, -1)), ("tril", (A, -1)),
    ("triu", (X, 1)),
])
def test_products_and_matrix_parts_are_numpys(name, args):
    np.testing.assert_allclose(getattr(F, name)(*args).data, getattr(np, name)(*args), rtol=1e-12)


T = RNG.standard_normal((2, 3, 4))


@pytest.mark.parametrize("b, axes", [
    (RNG.standard_normal((3, 4, 5)), None), (RNG.standard_normal((3, 4, 5)), 2),
    (RNG.standard_normal((4, 5)), 1), (RNG.standard_normal((2, 2)), 0), (RNG.standard_normal((3, 4)), 2),
    (RNG.standard_normal((4, 2, 3)), ([-1, 0, 1], [0, 1, 2])),
    (RNG.standard_normal((4, 5, 3)), ([2, 1], [0, -1])),
    (RNG.standard_normal((5, 2)), (0, 1)),
])
def test_tensordot_is_numpys_for_every_kind_of_axes(b, axes):
    # Operands of different ranks, contracted axes in and out of order: each letter of the einsum tensordot
    # writes must land on the right axis.
    got = F.tensordot(T, b) if axes is None else F.tensordot(T, b, axes)
    expected = np.tensordot(T, b) if axes is None else np.tensordot(T, b, axes)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.data, expected, rtol=1e-12)


@pytest.mark.parametrize("spec, shapes", [("ij,jk->ik", [(2, 3), (3, 4)]), ("ii", [(3, 3)]),
                                          ("iij,j->i", [(2, 2, 3), (3,)]), ("i,j", [(2,), (3,)])])
def test_einsum_is_numpys(spec, shapes):
    arrays = [RNG.standard_normal(s) for s in shapes]
    np.testing.assert_allclose(ops.einsum(spec, *arrays), np.einsum(spec, *arrays), rtol=1e-12)


def test_einsum_refuses_what_it_does_not_support():
    with pytest.raises(mg.ArgumentError, match="not supported"):
        ops.einsum("...i,i", X, Y)
    with pytest.raises(mg.ArgumentError, match="2 operands"):
        ops.einsum("ij,jk", X)


def test_linalg_is_numpys():
    from microgradx import linalg as LA
    np.testing.assert_allclose(LA.inv(A).data, np.linalg.inv(A))
    np.testing.assert_allclose(LA.det(A).data, np.linalg.det(A))
    sign, logdet = LA.slogdet(mg.Value(A))
    np.testing.assert_array_equal(sign, np.linalg.slogdet(A)[0])
    np.testing.assert_allclose(logdet.data, np.linalg.slogdet(A)[1])
    np.testing.assert_allclose(LA.solve(A, B).data, np.linalg.solve(A, B))
    np.testing.assert_allclose(LA.solve(A[0], Y[:3]).data, np.linalg.solve(A[0], Y[:3]))
    spd = A @ np.swapaxes(A, -1, -2)
    np.testing.assert_allclose(LA.cholesky(spd).data, np.linalg.cholesky(spd))
    for ord_, axis in ((None, None), ("fro", None), (1, None), (np.inf, None), (-1, None), (-np.inf, None),
                       (3, 1), (1, 0), (np.inf, -1), (None, (0, 2))):
        np.testing.assert_allclose(LA.norm(B[0] if axis is None else B, ord_, axis).data,
                                   np.linalg.norm(B[0] if axis is None else B, ord_, axis), rtol=1e-12)


def test_matrix_norm_1_and_inf_derivatives_go_to_the_largest_sum():
    from microgradx import linalg as LA
    x = mg.Value(np.array([[1.0, -4.0], [2.0, 1.0]]))
    LA.norm(x, 1).backward()              # column sums 3 and 5: the second column's signs
    np.testing.assert_array_equal(x.grad, [[0.0, -1.0], [0.0, 1.0]])


def test_singular_matrices_and_unsupported_norms_get_our_errors():
    from microgradx import linalg as LA
    with pytest.raises(mg.ShapeError, match="singular"):
        LA.inv(mg.Value(np.ones((2, 2))))
    with pytest.raises(mg.ArgumentError, match="nuc"):
        LA.norm(X, "nuc")


# --------------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------------

C = RNG.standard_normal((3, 4, 2))


@pytest.mark.parametrize("name, args, kwargs", [
    ("ravel", (C,), {}), ("flip", (C,), {}), ("flip", (C, (0, 2)), {}), ("roll", (C, 2), {}),
    ("roll", (C, (1, -3), (0, 1)), {}), ("rot90", (C, 3, (2, 0)), {}), ("tile", (X, (2, 1, 3)), {}),
    ("repeat", (X, [1, 0, 2]), {"axis": 0}), ("repeat", (X, 2), {}),
    ("pad", (X, ((1, 2), (2, 1))), {"mode": "reflect"}), ("pad", (X, 1), {"constant_values": 3.0}),
    ("pad", (X, ((0, 3), (1, 0))), {"mode": "wrap"}), ("pad", (X, 2), {"mode": "symmetric"}),
    ("pad", (X, 2), {"mode": "edge"}), ("atleast_3d", (Y,), {}), ("atleast_2d", (np.float64(2),), {}),
    ("hstack", ((X, X),), {}), ("vstack", ((Y, Y),), {}), ("dstack", ((X, X),), {}),
    ("column_stack", ((Y, Y),), {}), ("append", (X, Y), {}), ("append", (X, X), {"axis": 1}),
    ("take", (C, [0, 2, 2]), {"axis": 1}), ("take", (C, [5, -1]), {}),
    ("take_along_axis", (C, np.argsort(C, axis=1), 1), {}), ("sort", (C,), {}), ("sort", (C, None), {}),
    # fewer repetitions than axes, 2-d columns, empty inputs (where a -1 in a shape would be ambiguous)
    ("tile", (C, 2), {}), ("tile", (X, (2,)), {}), ("column_stack", ((X, Y[:3], X),), {}),
    ("atleast_3d", (np.float64(2),), {}), ("atleast_3d", (np.zeros(0),), {}), ("atleast_3d", (X,), {}),
    ("atleast_2d", (np.zeros(0),), {}), ("atleast_1d", (np.float64(2),), {}),
])
def test_shape_functions_are_numpys(name, args, kwargs):
    got = getattr(F, name)(*args, **kwargs)
    np.testing.assert_array_equal(got.data if isinstance(got, mg.Value) else got,
                                  getattr(np, name)(*args, **kwargs))


def test_split_and_array_split_are_numpys_and_split_refuses_unequal_parts():
    for sections, axis in ((2, 1), (5, 0), ([1, 3], 1)):      # 5 parts of 3 rows: the last two are empty
        ours, numpys = F.array_split(mg.Value(C), sections, axis=axis), np.array_split(C, sections, axis=axis)
        assert len(ours) == len(numpys)
        for part, expected in zip(ours, numpys, strict=True):
            assert part.shape == expected.shape
            np.testing.assert_array_equal(part.data, expected)
    assert [p.shape for p in F.split(C, [1, 3], axis=1)] == [p.shape for p in np.split(C, [1, 3], axis=1)]
    with pytest.raises(mg.ShapeError, match="equal parts"):
        F.split(C, 2)


def test_sort_sends_each_gradient_back_to_where_its_element_came_from():
    x = mg.Value(np.array([3.0, 1.0, 2.0]))
    (F.sort(x) * np.array([10.0, 20.0, 30.0])).sum().backward()
    np.testing.assert_array_equal(x.grad, [30.0, 10.0, 20.0])
    np.testing.assert_array_equal(F.argsort(x), [1, 2, 0])


def test_diag_refuses_three_dimensions():
    with pytest.raises(mg.ShapeError, match="1-d or 2-d"):
        F.diag(C)


def test_indices_must_be_integers():
    with pytest.raises(mg.DTypeError, match="integers"):
        F.take(X, np.array([0.0, 1.0]))
    with pytest.raises(mg.DTypeError, match="not a Value"):
        F.take_along_axis(X, mg.Value([[0.0]]), 0)
