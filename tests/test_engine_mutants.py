"""Facts about the engine that the derivative checks cannot see, each one a change that scripts/mutate.py
found surviving: forward values against numpy's, the documented choices at kinks, dtypes and aliasing of
gradients, and the bookkeeping around the graph (pruning, the version counter, the large-array path).
"""

from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest

import microgradx as mg
from microgradx import engine, ops
from microgradx import functional as F

RNG = np.random.default_rng(7)
A = RNG.normal(size=(3, 4, 2))      # no ties, no zeros: every forward below has one right answer


def _value(x: np.ndarray = A) -> mg.Value:
    return mg.Value(x.copy())


# --- Forward values are numpy's, axis by axis ----------------------------------------------------------

REDUCTIONS = ["sum", "mean", "var", "std", "max", "min", "prod"]
AXES = [None, 0, 1, -1, (0, 2), (1, 0)]


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_are_numpys(name, axis, keepdims):
    got = getattr(_value(), name)(axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(A, axis=axis, keepdims=keepdims)
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)], ids=str)
@pytest.mark.parametrize("ddof", [1, 2])
def test_var_and_std_with_ddof_are_numpys(axis, ddof):
    np.testing.assert_allclose(_value().var(axis=axis, ddof=ddof).data, np.var(A, axis=axis, ddof=ddof))
    np.testing.assert_allclose(_value().std(axis=axis, ddof=ddof).data, np.std(A, axis=axis, ddof=ddof))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_log_softmax_and_logsumexp_are_numpys_along_each_axis(axis):
    # Rows far apart in size: a shift taken along the wrong axis overflows or changes the answer.
    x = A * np.array([1.0, 30.0])[None, None, :] + np.arange(3)[:, None, None] * 400
    np.testing.assert_allclose(_value(x).softmax(axis=axis).data, _softmax(x, axis), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(_value(x).log_softmax(axis=axis).data,
                               x - x.max(axis=axis, keepdims=True)
                               - np.log(np.exp(x - x.max(axis=axis, keepdims=True)).sum(axis=axis,
                                                                                       keepdims=True)),
                               rtol=1e-10, atol=1e-12)
    for keepdims in (False, True):
        m = x.max(axis=axis, keepdims=True)
        expected = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
        got = _value(x).logsumexp(axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(got.data, expected if keepdims else np.squeeze(expected, axis), rtol=1e-12)


def test_softmax_gradient_is_the_jacobian_s():
    x = _value(A[0])
    w = RNG.normal(size=x.shape)
    (x.softmax(axis=0) * w).sum().backward()
    s = _softmax(A[0], 0)
    np.testing.assert_allclose(x.grad, s * (w - (s * w).sum(axis=0, keepdims=True)), rtol=1e-10)


@pytest.mark.parametrize("shape, axis", [((1, 3, 1), None), ((1, 3, 1), 0), ((1, 3, 1), -1),
                                         ((1, 3, 1), (0, 2)), ((3, 1), 1)])
def test_squeeze_is_numpys(shape, axis):
    x = RNG.normal(size=shape)
    got = mg.Value(x).squeeze(axis)
    np.testing.assert_array_equal(got.data, np.squeeze(x, axis))
    with pytest.raises(mg.ShapeError):
        mg.Value(np.ones((2, 3))).squeeze(0)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -4])
def test_expand_dims_and_unsqueeze_are_numpys(axis):
    got = F.expand_dims(_value(), axis)
    assert got.shape == np.expand_dims(A, axis).shape
    np.testing.assert_array_equal(got.data, np.expand_dims(A, axis))
    assert _value().unsqueeze(axis).shape == np.expand_dims(A, axis).shape


def test_transposes_are_numpys_and_send_the_gradient_back():
    x = _value()
    np.testing.assert_array_equal(x.T.data, A.T)
    np.testing.assert_array_equal(x.transpose(1, 0, 2).data, A.transpose(1, 0, 2))
    np.testing.assert_array_equal(x.transpose((2, 0, 1)).data, A.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.swapaxes(0, 2).data, A.swapaxes(0, 2))
    w = RNG.normal(size=(2, 3, 4))
    (x.transpose(2, 0, 1) * w).sum().backward()
    np.testing.assert_array_equal(x.grad, w.transpose(1, 2, 0))


@pytest.mark.parametrize("method, args", [("cumsum", (1,)), ("cumprod", (0,)), ("cumsum", ()),
                                          ("flatten", ()), ("ravel", ()), ("reshape", (4, 6)),
                                          ("reshape", ((2, -1),)), ("repeat", (2, 1)), ("diagonal", ()),
                                          ("trace", ()), ("take", ([2, 0], 1)), ("round", (1,)),
                                          ("argmax", (1,)), ("argmin", (0,)), ("argsort", ())])
def test_shape_methods_are_numpys(method, args):
    got = getattr(_value(), method)(*args)
    expected = getattr(A, method)(*args)
    np.testing.assert_allclose(getattr(got, "data", got), expected, rtol=1e-12)


def test_elementwise_methods_are_numpys():
    x, p = _value(), np.abs(A) + 0.5
    cases = {"exp": np.exp(A), "tanh": np.tanh(A), "abs": np.abs(A), "relu": np.maximum(A, 0),
             "sigmoid": 1 / (1 + np.exp(-A)), "softplus": np.log1p(np.exp(A))}
    for name, expected in cases.items():
        np.testing.assert_allclose(getattr(x, name)().data, expected, rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(mg.Value(p).log().data, np.log(p), rtol=1e-12)
    np.testing.assert_allclose(mg.Value(p).sqrt().data, np.sqrt(p), rtol=1e-12)
    np.testing.assert_array_equal(x.clip(-0.5, 0.5).data, np.clip(A, -0.5, 0.5))
    np.testing.assert_array_equal(x.clip(hi=0.1).data, np.minimum(A, 0.1))
    np.testing.assert_array_equal(x.clip(lo=0.1).data, np.maximum(A, 0.1))


def test_arithmetic_operators_are_numpys_both_ways_round():
    x, b = _value(), A[0] + 3.0
    pairs = [(x + b, A + b), (b + x, b + A), (x - b, A - b), (b - x, b - A), (x * b, A * b), (b * x, b * A),
             (x / b, A / b), (b / x, b / A), (abs(x) ** 1.5, np.abs(A) ** 1.5), (2.0 ** x, 2.0 ** A),
             (-x, -A), (+x, A), (x @ A[0].T, A @ A[0].T), (A[0] @ x[0].T, A[0] @ A[0].T)]
    for got, expected in pairs:
        np.testing.assert_allclose(got.data, expected, rtol=1e-12)


def test_comparisons_are_numpys():
    x, b = _value(), A[::-1]
    for name in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        np.testing.assert_array_equal(getattr(x, name)(b), getattr(A, name)(b), err_msg=name)
    np.testing.assert_array_equal(x == A, np.ones(A.shape, bool))
    np.testing.assert_array_equal(x <= A, np.ones(A.shape, bool))
    assert not (x < A).any() and not (x != A).any()


# --- The documented choices at kinks and ties ----------------------------------------------------------

def test_relu_derivative_is_zero_at_zero_and_one_above():
    x = mg.Value(np.array([-1.0, 0.0, 2.0]))
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])
    s = mg.Value(0.0)
    s.relu().backward()
    assert s.grad == 0.0
    s = mg.Value(np.float64(3.0))
    out = s.relu()
    out.backward()
    assert out.data == 3.0 and s.grad == 1.0


def test_abs_derivative_is_the_sign_and_zero_at_zero():
    x = mg.Value(np.array([-2.0, 0.0, 3.0]))
    abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 1.0])


def test_clip_derivative_counts_the_bounds_as_inside():
    x = mg.Value(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    x.clip(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 1.0, 0.0])
    for lo, hi, expected in [(None, 0.0, [1, 1, 1, 0, 0]), (0.0, None, [0, 0, 1, 1, 1])]:
        x.zero_grad()
        x.clip(lo, hi).sum().backward()
        np.testing.assert_array_equal(x.grad, expected)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_clip_with_bounds_that_are_values(requires_grad):
    x = mg.Value(np.array([-2.0, 0.0, 2.0]))
    lo, hi = mg.Value(-1.0, requires_grad=requires_grad), mg.Value(1.0, requires_grad=requires_grad)
    out = ops.clip(x, lo, hi)
    np.testing.assert_array_equal(out.data, [-1.0, 0.0, 1.0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])


@pytest.mark.parametrize("fn", [mg.maximum, mg.minimum])
def test_maximum_and_minimum_share_a_tie_evenly(fn):
    a = mg.Value(np.array([1.0, 2.0, 3.0]))
    b = mg.Value(np.array([2.0, 2.0, 2.0]))
    fn(a, b).sum().backward()
    big = [0.0, 0.5, 1.0]
    np.testing.assert_array_equal(a.grad, big if fn is mg.maximum else [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(b.grad, [1.0, 0.5, 0.0] if fn is mg.maximum else big)


def test_maximum_with_a_broadcast_scalar_sums_its_share():
    a = mg.Value(np.array([0.0, 1.0, -1.0]))
    b = mg.Value(0.0)
    mg.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.5, 1.0, 0.0])
    assert b.grad == 1.5


@pytest.mark.parametrize("method", ["max", "min"])
def test_max_and_min_share_ties_evenly_along_an_axis(method):
    x = mg.Value(np.array([[1.0, 5.0, 5.0], [2.0, 2.0, 2.0]]))
    getattr(x, method)(axis=1).sum().backward()
    expected = [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]] if method == "max" else [[1, 0, 0], [1 / 3] * 3]
    np.testing.assert_allclose(x.grad, expected)
    y = mg.Value(np.array([[1.0, 5.0], [5.0, 0.0]]))
    w = np.array([[2.0, 3.0]])
    (getattr(y, method)(axis=0, keepdims=True) * w).sum().backward()
    np.testing.assert_array_equal(y.grad, [[0, 3], [2, 0]] if method == "max" else [[2, 0], [0, 3]])


def test_power_derivatives_next_to_a_zero_base():
    base = mg.Value(np.array([0.0, 2.0]))
    (base ** 3.0).sum().backward()
    np.testing.assert_array_equal(base.grad, [0.0, 12.0])
    exponent = mg.Value(np.array([2.0, 3.0]))
    (np.array([0.0, 2.0]) ** exponent).sum().backward()
    np.testing.assert_allclose(exponent.grad, [0.0, 8 * np.log(2.0)])


# --- dtypes and aliasing of gradients ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_leaf_gradients_and_seeds_keep_the_leaf_s_dtype(dtype):
    x = mg.Value(np.ones((2, 3), dtype=dtype))
    y = x * 2
    y.backward(np.ones((2, 3)))                 # a float64 seed
    assert x.grad.dtype == dtype and y.dtype == dtype
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))
    s = mg.Value(np.ones(3, dtype=dtype))
    s.sum().backward()
    assert s.grad.dtype == dtype


def test_a_scalar_leaf_s_gradient_is_a_number_of_its_dtype():
    x = mg.Value(np.float32(2.0))
    (x * x).backward()
    assert x.grad == 4.0 and np.asarray(x.grad).dtype == np.float32


def test_a_leaf_s_grad_is_not_an_interior_node_s_array():
    x = mg.Value(np.ones(3))
    y = x + 0.0          # an identity: the rule may pass g straight through
    z = y * 1.0
    z.sum().backward()
    g = x.grad.copy()
    z.sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * g)
    a, b = mg.Value(np.ones(3)), mg.Value(np.ones(3))
    (a + b).sum().backward()
    a.grad[0] = 99.0
    assert b.grad[0] == 1.0


def test_a_seed_array_is_not_aliased_by_the_gradient():
    x = mg.Value(np.ones(3))
    seed = np.array([1.0, 2.0, 3.0])
    x.backward(seed)
    x.grad[0] = 7.0
    np.testing.assert_array_equal(seed, [1.0, 2.0, 3.0])
    y = mg.Value(np.ones(3))
    z = y * 1.0
    z.backward(seed)
    y.grad[1] = 9.0
    np.testing.assert_array_equal(seed, [1.0, 2.0, 3.0])


def test_backward_seeds_with_one_and_accumulates():
    x = mg.Value(3.0)
    y = x * x
    y.backward()
    assert x.grad == 6.0
    y.backward()
    assert x.grad == 12.0
    x.zero_grad()
    (x * 2).backward(np.float64(0.5))
    assert x.grad == 1.0


# --- Bookkeeping of the graph -----------------------------------------------------------------------

def test_len_iteration_op_parents_and_leafness():
    x = mg.Value(A)
    assert len(x) == 3 and [v.shape for v in x] == [(4, 2)] * 3
    np.testing.assert_array_equal(list(x)[2].data, A[2])
    y = x * 2
    assert x.op is None and y.op == "multiply" and x.is_leaf and not y.is_leaf
    assert y.parents[0] is x and len(y.parents) == 1
    assert (x + x).parents == (x, x)
    with pytest.raises(TypeError):
        len(mg.Value(1.0))


def test_requires_grad_is_kept_and_constants_record_nothing():
    c = mg.Value(np.ones(2), requires_grad=False)
    assert not c.requires_grad and (c * 2).op is None and not (c * 2).requires_grad
    x = mg.Value(np.ones(2))
    assert (c * x).requires_grad and x.detach().requires_grad is False
    assert x.requires_grad_(False) is x and not x.requires_grad


def test_grad_differentiates_only_the_targets_it_is_asked_for(monkeypatch):
    calls = []
    original = ops.sin.vjps[0] if hasattr(ops.sin, "vjps") else None
    if original is None:
        pytest.skip("the table keeps its rules elsewhere")

    def counting(g, ans, x):
        calls.append(1)
        return original(g, ans, x)

    monkeypatch.setattr(ops.sin, "vjps", (counting, *ops.sin.vjps[1:]))
    f = mg.grad(lambda a, b: (a * 2).sum() + ops.sin(b).sum(), argnums=0)
    np.testing.assert_array_equal(f(np.ones(3), np.ones(3)), [2.0, 2.0, 2.0])
    # A Value that needs a gradient but is no target (a parameter the function reads) is not followed.
    w = mg.Value(np.ones(3))
    g = mg.grad(lambda a: (a * 2).sum() + ops.sin(w * 3).sum())
    np.testing.assert_array_equal(g(np.ones(3)), [2.0, 2.0, 2.0])
    assert calls == []
    (ops.sin(w * 3).sum() + 0).backward()       # the counting rule is really the one backward uses
    assert calls == [1]


def test_grad_with_several_argnums_gives_each_its_own():
    f = mg.grad(lambda a, b, c: (a * b * c).sum(), argnums=(0, 2))
    ga, gc = f(np.full(2, 2.0), np.full(2, 3.0), np.full(2, 5.0))
    np.testing.assert_array_equal(ga, [15.0, 15.0])
    np.testing.assert_array_equal(gc, [6.0, 6.0])


@pytest.mark.parametrize("n", [4096, 4097, 10_000])
def test_large_sums_broadcast_the_gradient_back_into_a_writable_array(n):
    x = mg.Value(np.arange(n, dtype=float))
    y = (x.sum() * 3.0) + (x.mean() * n)
    y.backward()
    np.testing.assert_array_equal(x.grad, np.full(n, 4.0))
    assert x.grad.flags.writeable
    y.backward()
    np.testing.assert_array_equal(x.grad, np.full(n, 8.0))
    z = mg.Value(np.ones((n, 1)))
    out = ops.broadcast_to(z, shape=(n, 2))
    np.testing.assert_array_equal(out.data, np.ones((n, 2)))
    (out * np.arange(2.0)).sum().backward()
    np.testing.assert_array_equal(z.grad, np.ones((n, 1)))


def test_broadcast_to_is_numpys_on_both_paths():
    for shape in [(3, 4, 2), (600, 4, 2)]:
        v = RNG.normal(size=(4, 1))
        got = ops.broadcast_to(mg.Value(v), shape=shape)
        np.testing.assert_array_equal(got.data, np.broadcast_to(v, shape))
        assert got.dtype == v.dtype


# --- The version counter and in-place operators --------------------------------------------------------

@pytest.mark.parametrize("op, expected", [("__iadd__", 3.0), ("__isub__", -1.0), ("__imul__", 2.0),
                                          ("__itruediv__", 0.5)])
def test_in_place_operators_compute_their_operator(op, expected):
    p = mg.Value(np.ones(3))
    before = p.data
    with mg.no_grad():
        q = getattr(p, op)(2.0)
    assert q is p and p.data is before
    np.testing.assert_array_equal(p.data, np.full(3, expected))
    t = mg.Value(np.ones(3), requires_grad=False)
    x = mg.Value(np.full(3, 2.0))
    t = getattr(t, op)(x)
    assert t.requires_grad and t.op is not None
    t.sum().backward()
    assert x.grad is not None


def test_in_place_between_constants_outside_no_grad_updates_the_data():
    c = mg.Value(np.ones(2), requires_grad=False)
    data = c.data
    c += np.ones(2)
    assert c.data is data
    np.testing.assert_array_equal(c.data, [2.0, 2.0])


def test_every_in_place_change_after_recording_is_caught():
    for op in ("__iadd__", "__isub__", "__imul__", "__itruediv__"):
        x = mg.Value(np.full(2, 2.0))
        y = x * x
        with mg.no_grad():
            getattr(x, op)(1.0)
        with pytest.raises(mg.MicrogradxError, match="multiply"):
            y.sum().backward()


def test_an_unchanged_graph_backprops_after_an_unrelated_in_place_change():
    x, other = mg.Value(np.full(2, 2.0)), mg.Value(np.ones(2))
    y = x * x
    with mg.no_grad():
        other += 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


# --- Lists of Values and numpy's functions on Values ---------------------------------------------------

def test_lists_of_values_keep_the_graph_everywhere():
    x = mg.Value(2.0)
    np.testing.assert_array_equal(mg.grad(lambda x: mg.sum([x, x * 3, 1.0]))(2.0), 4.0)
    s = mg.Value([x, x * x])
    assert s.shape == (2,)
    np.testing.assert_array_equal(s.data, [2.0, 4.0])
    (s * np.array([1.0, 10.0])).sum().backward()
    assert x.grad == 41.0
    t = mg.Value((np.float64(1.0), 2.0), requires_grad=False)
    assert t.shape == (2,) and not t.requires_grad


def test_numpy_functions_on_values_record_and_give_numpys_answer():
    x = mg.Value(A)
    for fn in (np.sum, np.mean, np.exp, np.tanh):
        out = fn(x)
        assert isinstance(out, mg.Value) and out.requires_grad
        np.testing.assert_allclose(out.data, fn(A), rtol=1e-12)
    out = np.maximum(x, 0.0)
    assert isinstance(out, mg.Value)
    np.testing.assert_array_equal(out.data, np.maximum(A, 0.0))
    np.sum(np.exp(x)).backward()
    np.testing.assert_allclose(x.grad, np.exp(A), rtol=1e-12)


def test_a_value_seed_is_used_as_plain_data_unless_create_graph():
    x = mg.Value(np.array([1.0, 2.0]))
    seed = mg.Value(np.array([3.0, 4.0]))
    (x * x).backward(seed)
    assert isinstance(x.grad, np.ndarray) and not isinstance(x.grad, mg.Value)
    np.testing.assert_array_equal(x.grad, [6.0, 16.0])
    assert not np.any(seed.grad)
    x.zero_grad()
    (x * x).backward(seed, create_graph=True)
    assert isinstance(x.grad, mg.Value)
    np.testing.assert_array_equal(x.grad.data, [6.0, 16.0])


def test_erf_far_from_zero_is_numpys_neighbour():
    z = np.array([-4.0, -3.0, -1.0, 0.3, 2.5, 3.0, 6.0])
    got = ops.erf(mg.Value(z)).data
    np.testing.assert_allclose(got, [math.erf(v) for v in z], rtol=1e-13, atol=1e-15)


def test_assigning_data_converts_as_value_does():
    p = mg.Value(np.ones(2))
    p.data = np.array([1, 2])                  # integers become float64, as in Value(...)
    assert p.dtype == np.float64
    p.data = [1.0, 2.0]
    assert isinstance(p.data, np.ndarray) and p.dtype == np.float64
    kept = np.zeros(2, dtype=np.float32)
    p.data = kept                              # a float array is kept as it is
    assert p.data is kept
    p.data = np.array(2.0)                     # 0-d: a numpy scalar, as everywhere
    assert isinstance(p.data, np.float64)


@pytest.mark.parametrize("k", [None, 0, 1, 2, 3, -1, 5])
def test_rot90_is_numpys(k):
    x = RNG.normal(size=(2, 3, 4))
    got = F.rot90(mg.Value(x)) if k is None else F.rot90(mg.Value(x), k)
    np.testing.assert_array_equal(got.data, np.rot90(x) if k is None else np.rot90(x, k))
    np.testing.assert_array_equal(F.rot90(mg.Value(x), 1, (2, 0)).data, np.rot90(x, 1, (2, 0)))


def test_scatter_windows2d_is_the_adjoint_of_windows2d_with_its_defaults():
    x = RNG.normal(size=(1, 2, 5, 4))
    cols = ops.windows2d(mg.Value(x), kernel=(2, 3))
    c = RNG.normal(size=cols.shape)
    back = ops.scatter_windows2d(mg.Value(c), shape=x.shape, kernel=(2, 3))
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols.data * c), np.sum(x * back.data), rtol=1e-12)


def test_a_primitive_shows_its_forward_s_docstring():
    assert ops.exp.__doc__ == ops.exp.__wrapped__.__doc__
    assert "d/dx" in ops.exp.__doc__ and "d/da" in ops.multiply.__doc__


def test_a_numpy_method_on_a_value_is_named_in_the_error():
    with pytest.raises(mg.MicrogradxError, match=r"np\.add\.accumulate on a Value"):
        np.add.accumulate(mg.Value(np.ones(3)))


def test_tensordot_refuses_axis_lists_of_different_lengths():
    a = mg.Value(np.ones((2, 3)))
    for axes in (([0, 1], [0]), ([0], [0, 1])):
        with pytest.raises(mg.AxisError, match="equal length"):
            F.tensordot(a, a, axes=axes)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
def test_pad_is_numpys(mode):
    x = RNG.normal(size=(3, 4))
    widths = ((1, 2), (0, 1))
    np.testing.assert_array_equal(F.pad(mg.Value(x), widths, mode=mode).data, np.pad(x, widths, mode=mode))


def test_take_along_axis_with_no_axis_is_numpys():
    x = RNG.normal(size=(3, 4))
    idx = np.array([5, 0, 11])
    np.testing.assert_array_equal(F.take_along_axis(mg.Value(x), idx, None).data,
                                  np.take_along_axis(x, idx, None))


def test_a_generator_under_no_grad_can_be_closed_early():
    @mg.no_grad()
    def steps():
        for i in range(3):
            yield mg.is_grad_enabled(), i

    gen = steps()
    assert next(gen) == (False, 0)
    gen.close()                                 # no "generator ignored GeneratorExit"
    assert mg.is_grad_enabled()


def test_variadic_primitives_take_their_parameters_by_name_only():
    a = mg.Value(np.ones((2, 3)))
    assert ops.concatenate.param_names == ("axis",) and ops.stack.param_names == ("axis",)
    np.testing.assert_array_equal(mg.concatenate([a, a], axis=1).data, np.ones((2, 6)))


def _windows_by_loop(x, kernel, stride, padding, dilation, fill):
    """windows2d written out: tap (a, b) of window (i, j) is the padded input at (i*s + a*d, j*s + b*d)."""
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(padding[0],) * 2, (padding[1],) * 2], constant_values=fill)
    oh = (padded.shape[-2] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (padded.shape[-1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    out = np.empty((*kernel, *x.shape[:-2], oh, ow))
    for a, b, i, j in np.ndindex(*kernel, oh, ow):
        out[a, b, ..., i, j] = padded[..., i * stride[0] + a * dilation[0], j * stride[1] + b * dilation[1]]
    return out


# Each geometry differs between its two axes, so that a size, stride, padding or dilation read from the
# wrong axis shows; some have no leading axes, some two.
WINDOWS = [((2, 3), (2, 1), (1, 0), (1, 2), (2, 7, 9)),
           ((3, 2), (1, 3), (0, 2), (2, 1), (1, 2, 8, 6)),
           ((1, 2), (3, 2), (2, 1), (1, 1), (5, 4)),
           ((1, 1), (1, 1), (0, 0), (1, 1), (2, 3))]


@pytest.mark.parametrize("kernel, stride, padding, dilation, shape", WINDOWS)
@pytest.mark.parametrize("fill", [0.0, -np.inf, 2.5])
def test_windows2d_takes_each_window_where_a_loop_does(kernel, stride, padding, dilation, shape, fill):
    x = RNG.normal(size=shape)
    got = ops.windows2d(mg.Value(x), kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                        fill=fill)
    np.testing.assert_array_equal(got.data, _windows_by_loop(x, kernel, stride, padding, dilation, fill))


@pytest.mark.parametrize("kernel, stride, padding, dilation, shape", WINDOWS)
def test_scatter_windows2d_adds_each_window_back_where_a_loop_does(kernel, stride, padding, dilation, shape):
    cols_shape = ops.windows2d(np.zeros(shape), kernel=kernel, stride=stride, padding=padding,
                               dilation=dilation).shape
    cols = RNG.normal(size=cols_shape)
    # The loop: every tap added at its place in the padded input, the padding cut off at the end.
    out = np.zeros((*shape[:-2], shape[-2] + 2 * padding[0], shape[-1] + 2 * padding[1]))
    for a, b, i, j in np.ndindex(*kernel, *cols_shape[-2:]):
        out[..., i * stride[0] + a * dilation[0], j * stride[1] + b * dilation[1]] += cols[a, b, ..., i, j]
    expected = out[..., padding[0]:padding[0] + shape[-2], padding[1]:padding[1] + shape[-1]]
    got = ops.scatter_windows2d(mg.Value(cols), shape=shape, kernel=kernel, stride=stride, padding=padding,
                                dilation=dilation)
    np.testing.assert_allclose(got.data, expected, rtol=1e-13, atol=1e-15)


def test_variadic_primitives_take_numpy_s_positional_axis():
    a, b = mg.Value(np.ones((2, 3))), mg.Value(np.zeros((2, 3)))
    np.testing.assert_array_equal(mg.stack([a, b], 1).data, np.stack([a.data, b.data], 1))
    np.testing.assert_array_equal(mg.concatenate((a, b), 1).data, np.concatenate([a.data, b.data], 1))
    with pytest.raises(mg.ArgumentError, match="list or tuple of arrays first"):
        mg.stack(a, 0)


def test_softmax_defaults_to_the_last_axis_and_logsumexp_to_every_axis():
    x = RNG.normal(size=(3, 4))
    for got in (_value(x).softmax(), F.softmax(x)):
        np.testing.assert_allclose(got.data, _softmax(x, -1), rtol=1e-12)
    for got in (_value(x).log_softmax(), F.log_softmax(x)):
        np.testing.assert_allclose(got.data, np.log(_softmax(x, -1)), rtol=1e-12)
    for got in (_value(x).logsumexp(), F.logsumexp(x)):
        np.testing.assert_allclose(got.data, np.log(np.exp(x).sum()), rtol=1e-12)


@pytest.mark.parametrize("first", [1e-9, 1e-300])
def test_cumprod_s_second_derivative_is_exact_next_to_a_tiny_element(first):
    # y = x0 + x0 x1 + x0 x1 x2. The first derivative, recorded, must not be the running product divided
    # by x: differentiating that division again cancels catastrophically where x0 is tiny.
    x = mg.Value(np.array([first, 2.0, 3.0]))
    x.cumprod(axis=0).sum().backward(create_graph=True)
    dy = x.grad
    np.testing.assert_allclose(dy.data, [1 + 2 + 6, first + 3 * first, 2 * first], rtol=1e-14)
    x.zero_grad()
    (dy * np.array([1.0, 2.0, 3.0])).sum().backward()
    # d/dx of dy0 + 2 dy1 + 3 dy2 = (2 (1 + x2) + 3 x1, (1 + x2) + 3 x0, x1 + 2 x0)
    np.testing.assert_allclose(x.grad, [14.0, 4.0 + 3 * first, 2.0 + 2 * first], rtol=1e-14)


def test_a_value_inside_a_tuple_index_is_refused_too():
    v = mg.Value(np.arange(12.0).reshape(3, 4))
    with pytest.raises(mg.DTypeError, match="cannot be an index"):
        v[0, mg.Value(np.array([1.0, 0.0]))]
    np.testing.assert_array_equal(v[[0, 2], [1, 3]].data, [1.0, 11.0])


REFLECTED = {"__radd__": "add", "__rsub__": "sub", "__rmul__": "mul", "__rtruediv__": "truediv",
             "__rpow__": "pow", "__rmatmul__": "matmul"}


def test_every_reflected_operator_is_listed():
    assert {n for n in vars(mg.Value) if n.startswith("__r") and n != "__repr__"} == set(REFLECTED)


@pytest.mark.parametrize("name", sorted(REFLECTED))
def test_a_reflected_operator_with_a_list_on_the_left_records_numpy_s_answer(name):
    # A list has no numpy operator of its own, so Python hands `list <op> value` to the Value's __r<op>__
    # (an array on the left would go to __array_ufunc__ instead).
    import operator
    fn = getattr(operator, REFLECTED[name])
    left, x = [[1.5, 2.0], [0.5, 3.0]], np.array([[2.0, 0.5], [1.0, 2.5]])
    v = mg.Value(x.copy())
    out = fn(left, v)
    assert isinstance(out, mg.Value) and out.op is not None
    np.testing.assert_allclose(out.data, fn(np.array(left), x), rtol=1e-13)


MATMUL_SHAPES = [((4,), (4,)), ((3, 4), (4,)), ((2, 3, 4), (4,)), ((4,), (4, 5)), ((4,), (2, 4, 5)),
                 ((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((1, 3, 4), (2, 4, 5))]


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES, ids=str)
def test_matmul_gradients_for_every_kind_of_operand(sa, sb):
    # sum(w * (a @ b)) is linear in a (and in b): a finite difference with step 1 is its exact derivative.
    a0, b0 = RNG.normal(size=sa), RNG.normal(size=sb)
    w = RNG.normal(size=np.shape(a0 @ b0))
    a, b = mg.Value(a0.copy()), mg.Value(b0.copy())
    (w * (a @ b)).sum().backward()
    for x0, got, loss in ((a0, a.grad, lambda x: np.sum(w * (x @ b0))),
                          (b0, b.grad, lambda x: np.sum(w * (a0 @ x)))):
        expected = np.empty_like(x0)
        for idx in np.ndindex(*x0.shape):
            step = np.zeros_like(x0)
            step[idx] = 1.0
            expected[idx] = loss(x0 + step) - loss(x0)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_windows2d_s_defaults_forward_and_backward():
    # Called with the kernel alone (and a padding, for fill's default): the forward and both rules then
    # run on their own defaults, stride 1, no padding, dilation 1, padded with zeros.
    x = RNG.normal(size=(2, 4, 5))
    v = mg.Value(x.copy())
    got = ops.windows2d(v, kernel=(2, 3))
    np.testing.assert_array_equal(got.data, _windows_by_loop(x, (2, 3), (1, 1), (0, 0), (1, 1), 0.0))
    np.testing.assert_array_equal(ops.windows2d(x, kernel=(2, 3), padding=(1, 2)),
                                  _windows_by_loop(x, (2, 3), (1, 1), (1, 2), (1, 1), 0.0))
    c = RNG.normal(size=got.shape)
    (got * c).sum().backward()
    np.testing.assert_allclose(v.grad, ops.scatter_windows2d(c, shape=x.shape, kernel=(2, 3), stride=(1, 1),
                                                             padding=(0, 0), dilation=(1, 1)), rtol=1e-13)
    cols = mg.Value(c.copy())
    back = ops.scatter_windows2d(cols, shape=x.shape, kernel=(2, 3))
    (back * x).sum().backward()
    np.testing.assert_array_equal(cols.grad, _windows_by_loop(x, (2, 3), (1, 1), (0, 0), (1, 1), 0.0))


def test_windows2d_of_a_list_is_a_read_only_view():
    rows = [[float(3 * i + j) for j in range(3)] for i in range(3)]
    got = ops.windows2d(rows, kernel=(2, 2))
    np.testing.assert_array_equal(got, _windows_by_loop(np.array(rows), (2, 2), (1, 1), (0, 0), (1, 1), 0.0))
    x = RNG.normal(size=(3, 4))
    with pytest.raises(ValueError, match="read-only"):
        ops.windows2d(x, kernel=(2, 2))[0, 0, 0, 0] = 1.0     # the windows overlap: a write would show twice


def test_scatter_windows2d_refuses_windows_from_another_shape():
    cols = np.zeros(ops.windows2d(np.zeros((4, 5)), kernel=(2, 2)).shape)
    with pytest.raises(mg.ShapeError, match="do not come from an input of shape"):
        ops.scatter_windows2d(cols, shape=(4, 6), kernel=(2, 2))


def test_matmul_refuses_a_scalar_on_either_side_with_the_hint():
    v = mg.Value(np.ones(2))
    for a, b in ((mg.Value(2.0), v), (v, mg.Value(2.0)), (2.0, v), (v, 2.0)):
        with pytest.raises(mg.ShapeError, match=r"not scalars \(use \* for a scalar\)"):
            ops.matmul(a, b)


def test_int_of_a_one_element_value():
    assert int(mg.Value(3.7)) == 3 and int(mg.Value([[-2.5]])) == -2
    assert isinstance(int(mg.Value(3.7)), int)


def test_a_list_index_is_read_when_indexing_not_when_differentiating():
    # The index is kept for backward: a list the caller changes afterwards must not move the gradient.
    v = mg.Value(np.arange(4.0))
    where = [0, 2]
    y = v[where]
    where[0] = 3
    (y * np.array([10.0, 20.0])).sum().backward()
    np.testing.assert_array_equal(v.grad, [10.0, 0.0, 20.0, 0.0])


def test_zero_to_the_zero_differentiates_twice_without_a_warning():
    # a ** b at a == b == 0 next to an ordinary element: d/da is 0 there by convention, and the masked
    # branch must stay finite, or the second derivative (where's rule times 0) turns into NaN.
    a, b = mg.Value(np.array([0.0, 2.0])), mg.Value(np.array([0.0, 0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (a ** b).sum().backward(create_graph=True)
        da = a.grad
        np.testing.assert_array_equal(da.data, [0.0, 0.0])
        np.testing.assert_allclose(b.grad.data, [0.0, math.log(2.0)])
        a.zero_grad()
        b.zero_grad()
        da.sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])
    np.testing.assert_allclose(b.grad, [0.0, 0.5])


def test_an_axis_out_of_range_of_a_zero_d_value_says_dimension_0():
    with pytest.raises(mg.AxisError, match="axis 1 is out of bounds for array of dimension 0"):
        mg.Value(1.0).sum(axis=1)


@pytest.mark.parametrize("bad", [dict(kernel=(2, 2, 2)), dict(kernel=(2, 2), stride=(1, 1, 1)),
                                 dict(kernel=(2, 2), padding=(1, 1, 1)), dict(kernel=(2, 2), dilation=(1,))])
def test_windows2d_refuses_a_geometry_that_is_not_one_pair_each(bad):
    with pytest.raises(mg.ShapeError, match="longer|shorter"):
        ops.windows2d(mg.Value(np.ones((4, 5))), **bad)


@pytest.mark.parametrize("bad", [dict(kernel=(0, 2)), dict(kernel=(2, 2), stride=(1, 0)),
                                 dict(kernel=(2, 2), dilation=(0, 1)), dict(kernel=(2, 2), padding=(0, -1))])
def test_windows2d_refuses_sizes_below_their_minimum(bad):
    with pytest.raises(mg.ArgumentError, match="must be >= 1 and padding >= 0"):
        ops.windows2d(mg.Value(np.ones((4, 5))), **bad)


@pytest.mark.parametrize("e", [-2.5, -1, 0, 1, 2, 0.5])
def test_power_with_a_python_number_exponent(e):
    x0 = np.array([0.5, 1.5, 3.0])
    x = mg.Value(x0.copy())
    (x ** e).sum().backward()
    np.testing.assert_allclose(x.grad, e * x0 ** (e - 1), rtol=1e-14)


def test_the_derivative_of_x_to_the_zero_is_zero_wherever_x_is():
    x = mg.Value(np.array([0.0, np.inf, np.nan, -2.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0, 0.0])


def test_einsum_s_gradient_multiplies_only_what_the_subscripts_pair():
    # An infinity in one operand reaches the gradient of the other as inf, not as inf * 0 = NaN (from
    # contracting with an identity where no letter repeats).
    a, b = mg.Value(np.array([[1.0, 2.0]])), mg.Value(np.array([[np.inf], [1.0]]))
    ops.einsum("ij,jk->ik", a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [[np.inf, 1.0]])
    np.testing.assert_array_equal(b.grad, [[1.0], [2.0]])


def test_astype_of_a_zero_d_value_holds_a_numpy_scalar():
    out = mg.Value(2.0).astype(np.float32)
    assert isinstance(out.data, np.float32) and out.data == 2.0
    assert isinstance(mg.Value([1.0, 2.0]).astype(np.float32).data, np.ndarray)


def test_a_primitive_made_directly_has_the_documented_defaults():
    def double(x):
        return 2 * x
    op = engine.Primitive(double, [lambda g, ans, x: 2 * g])
    assert (op.expects, op.variadic, op.method, op.operators, op.symbol, op.symmetric, op.numpy) == \
        ("", False, None, (), None, False, None)


def test_requires_grad_false_on_an_interior_node_is_refused_with_the_fix():
    y = mg.Value(2.0) * 3
    with pytest.raises(mg.GradientError, match=r"use \.detach\(\)"):
        y.requires_grad_(False)
    assert y.requires_grad


@pytest.mark.parametrize("f", [lambda x: x + 1, lambda x: x.prod()], ids=["add", "prod"])
def test_create_graph_leaves_a_value_in_grad_even_for_a_constant_gradient(f):
    x = mg.Value(3.0)
    f(x).backward(create_graph=True)
    assert isinstance(x.grad, mg.Value) and x.grad.data == 1.0
    f(x).backward(create_graph=True)          # accumulates, still a Value
    assert isinstance(x.grad, mg.Value) and x.grad.data == 2.0


def test_a_list_of_values_beside_a_plain_number_in_one_op():
    x = mg.Value(2.0)
    y = ops.multiply([x, 3 * x], 2)
    np.testing.assert_array_equal(y.data, [4.0, 12.0])
    y.sum().backward()
    assert x.grad == 8.0


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2), (2, 0), None], ids=str)
def test_prod_s_gradient_along_any_axes_is_the_product_of_the_others(axis):
    x0 = RNG.uniform(0.5, 1.5, size=(2, 3, 4))
    x = mg.Value(x0.copy())
    x.prod(axis=axis).sum().backward()
    np.testing.assert_allclose(x.grad, np.prod(x0, axis=axis, keepdims=True) / x0, rtol=1e-12)


def test_a_compiled_value_and_grad_differentiates_through_the_trace():
    # mg.grad's reverse pass, run while mg.compile traces, goes through the tracer's hook in backprop.
    f = mg.compile(mg.value_and_grad(lambda x: (x * x).sum()))
    for x in (np.array([1.0, 2.0]), np.array([3.0, 4.0])):     # a trace, then its replay
        value, grad = f(x)
        assert value == np.sum(x * x)
        np.testing.assert_array_equal(grad, 2 * x)


def test_numpy_ufunc_methods_on_values_that_need_no_gradient_answer_from_the_data():
    c = mg.Value(np.array([1.0, 2.0, 3.0]), requires_grad=False)
    np.testing.assert_array_equal(np.add.accumulate(c), [1.0, 3.0, 6.0])
    np.testing.assert_array_equal(np.multiply.outer(c, c), np.outer(c.data, c.data))


def test_a_stacked_list_of_values_keeps_its_label_and_a_plain_value_has_none():
    x = mg.Value(1.0)
    assert mg.Value([x, x], label="pair").label == "pair"
    assert mg.Value(1.0).label is None and mg.Value([x, x]).label is None


def test_as_value_wraps_a_constant_and_passes_a_value_through():
    x = mg.Value(1.0)
    assert mg.as_value(x) is x
    c = mg.as_value(np.array([1.0, 2.0]))
    assert isinstance(c, mg.Value) and not c.requires_grad


def test_a_value_changed_in_place_then_pickled_differentiates_in_another_process():
    # Version stamps are this process's numbers; a fresh process counts from 0 again, so an unpickled
    # Value must not keep its stamp from here, or its first backward there would see an in-place change.
    import pickle
    import subprocess
    import sys
    v = mg.Value(np.array([1.0, 2.0]))
    for _ in range(50):
        mg.Value(0.0)                       # numbers drawn here that the other process will not draw
    v.data = v.data * 3                     # stamped with a number above 50
    script = ("import pickle, sys; import numpy as np; v = pickle.loads(sys.stdin.buffer.read()); "
              "(v * 2).sum().backward(); print(v.grad.tolist())")
    run = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(v), capture_output=True,
                         timeout=60, check=False)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.decode().strip() == "[2.0, 2.0]"


def test_numpy_s_axis_error_in_a_forward_is_ours_with_numpy_s_reason_and_no_index_talk():
    a = mg.Value(np.ones((2, 3)))
    with pytest.raises(mg.AxisError, match=r"axis=3: axis 3 is out of bounds for array of dimension 2$"):
        mg.concatenate([a, a], axis=3)


def test_windows2d_refuses_an_input_smaller_than_its_kernel_even_padded():
    with pytest.raises(mg.ShapeError, match="smaller than the kernel"):
        ops.windows2d(mg.Value(np.ones((1, 5))), kernel=(4, 2), padding=(1, 0))   # 1 + 2 * 1 < 4
    assert ops.windows2d(np.ones((2, 5)), kernel=(4, 2), padding=(1, 0)).shape == (4, 2, 1, 4)


def test_a_value_of_an_ndarray_subclass_holds_a_plain_array():
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    v = mg.Value(m)
    assert type(v.data) is np.ndarray and v.sum(axis=0).shape == (2,)
    w = mg.Value(np.ones((2, 2)))
    y = w * m                                   # elementwise, as for arrays: not a matrix product
    assert type(y.data) is np.ndarray
    np.testing.assert_array_equal(y.data, [[1.0, 2.0], [3.0, 4.0]])
    y.sum().backward()
    np.testing.assert_array_equal(w.grad, [[1.0, 2.0], [3.0, 4.0]])


def test_a_masked_array_is_refused_rather_than_read_with_its_masked_entries():
    masked = np.ma.masked_array([1.0, 99.0], mask=[False, True])
    with pytest.raises(mg.DTypeError, match="masked array.*filled"):
        mg.Value(masked)
    with pytest.raises(mg.DTypeError, match="masked array"):
        mg.Value(np.ones(2)) * masked


@pytest.mark.parametrize("axes", [(0, 0), (1, -1), (0, -2)], ids=str)
def test_rot90_refuses_the_same_axis_twice_however_it_is_written(axes):
    # numpy refuses these too: a quarter turn needs a plane, two different axes.
    with pytest.raises(mg.AxisError, match="two different axes"):
        F.rot90(mg.Value(np.ones((2, 3))), 1, axes)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_the_rules_expand_dims_helper_is_numpys_for_every_axis(axis):
    # The rules call it with -1 and -2; it is importable from ops, so every axis must mean numpy's.
    x = RNG.normal(size=(2, 3))
    got = ops.expand_dims(mg.Value(x), axis)
    np.testing.assert_array_equal(got.data, np.expand_dims(x, axis))
    assert ops.expand_dims(np.float64(2.0), 0).shape == (1,)
    assert ops.expand_dims(np.zeros((0, 3)), -1).shape == (0, 3, 1)     # no size to infer a -1 from


def test_concatenate_s_gradient_with_the_default_axis_goes_along_the_first():
    a, b = mg.Value(np.ones((2, 3))), mg.Value(np.ones((1, 3)))
    w = np.arange(9.0).reshape(3, 3)
    (mg.concatenate([a, b]) * w).sum().backward()    # no axis given: the rule's own default is used
    np.testing.assert_array_equal(a.grad, w[:2])
    np.testing.assert_array_equal(b.grad, w[2:])


@pytest.mark.parametrize("axes", [-1, -2, 3])
def test_tensordot_refuses_a_count_of_axes_outside_zero_to_the_smaller_rank(axes):
    a, b = mg.Value(np.ones((2, 3))), mg.Value(np.ones((3, 2)))
    with pytest.raises(mg.AxisError, match=f"axes={axes} for operands of 2 and 2 dimensions"):
        F.tensordot(a, b, axes)
    assert F.tensordot(a, b, 0).shape == (2, 3, 3, 2) and F.tensordot(a, a, 2).shape == ()


def test_erf_of_plain_numbers_and_lists():
    # With no Value among the inputs the forward runs on them as given: a Python float, a list.
    assert ops.erf(0.5) == pytest.approx(math.erf(0.5), rel=1e-14)
    np.testing.assert_allclose(ops.erf([0.5, 3.0]), [math.erf(0.5), math.erf(3.0)], rtol=1e-14)


def test_a_shallow_copy_of_a_node_is_a_node_of_its_own_in_backward():
    # The copy shares the original's inputs; both feed one result, so the reverse pass holds both at once
    # and must order them (each copy takes a number of its own).
    import copy
    x = mg.Value(np.ones(3))
    y = x * 2
    z = copy.copy(y)
    (y + z * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [8.0, 8.0, 8.0])


def test_only_max_and_min_with_one_number_for_an_axis_get_the_elementwise_hint():
    x = mg.Value(np.ones((2, 3)))
    with pytest.raises(mg.AxisError, match=r"use mg\.maximum\(x, 0\) or x\.relu\(\)"):
        x.max(0.0)
    with pytest.raises(mg.AxisError, match=r"use mg\.minimum\(x, 0\) \(the argument of min"):
        x.min(0.0)
    # Another reduction, or a tuple (which names axes, not a number), gets the plain message.
    for bad in (lambda: x.sum(axis=0.5), lambda: x.mean(axis=0.0), lambda: x.max(axis=(0.5, 1))):
        with pytest.raises(mg.AxisError, match=r"is not an axis \(an int or a tuple of ints\)$"):
            bad()


def test_an_empty_part_of_array_split_is_drawn_as_the_empty_slice_at_the_start():
    # 5 parts of 3 rows: the last two are empty, and the drawing shows the index each part was taken with.
    from microgradx.viz import draw_graph
    parts = F.array_split(mg.Value(np.arange(6.0).reshape(3, 2)), 5)
    assert [p.shape for p in parts] == [(1, 2), (1, 2), (1, 2), (0, 2), (0, 2)]
    assert "getitem\\n[1:2]" in draw_graph(parts[1]).source
    assert "getitem\\n[0:0]" in draw_graph(parts[4]).source


def test_repr_shows_up_to_eight_elements_and_the_shape_beyond():
    assert repr(mg.Value(np.arange(8.0))) == "Value([0., 1., 2., 3., 4., 5., 6., 7.])"
    assert repr(mg.Value(np.arange(9.0))) == "Value(<shape (9,)>)"
    assert repr(mg.Value(np.ones((3, 3)))) == "Value(<shape (3, 3)>)"


def test_an_input_of_size_one_broadcast_against_an_empty_array_gets_a_zero_gradient():
    # Broadcasting 1 -> 0 is still a broadcast: the empty gradient sums to 0 over the stretched axis.
    x = mg.Value(np.ones(1))
    (x * np.ones(0)).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0])
    y = mg.Value(np.ones((2, 1)))
    (y * np.ones((2, 0))).sum().backward()
    np.testing.assert_array_equal(y.grad, [[0.0], [0.0]])


@pytest.mark.parametrize("fn", [mg.max, mg.min])
def test_max_and_min_called_as_functions_with_no_axis_reduce_every_axis_in_backward_too(fn):
    # Called with no axis, the rule runs on its own default (every axis), not on the method's.
    x = mg.Value(np.array([[1.0, 5.0], [3.0, -2.0]]))
    out = fn(x)
    assert out.data == (5.0 if fn is mg.max else -2.0)
    out.backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0], [0.0, 0.0]] if fn is mg.max else [[0, 0], [0, 1.0]])


def test_a_leaf_s_grad_is_not_an_array_that_a_user_s_rule_keeps():
    from microgradx import user_ops
    kept = np.full(3, 2.0)

    def twice_the_sum(x):
        """2 * sum(x);  d/dx = 2 (an array the rule keeps: right, since g is 1 here)"""
        return 2.0 * np.sum(x)

    op = mg.primitive(lambda g, ans, x: kept)(twice_the_sum)
    try:
        x = mg.Value(np.ones(3))
        op(x).backward()
        x.grad[0] = 99.0                 # the user's own array: editing it must touch nothing else
        np.testing.assert_array_equal(kept, [2.0, 2.0, 2.0])
    finally:
        user_ops.unregister(op)


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_and_std_of_nothing_are_nan_as_numpy_s(name):
    # ddof=0 is the mean of the squared deviations: of no elements it is NaN (numpy warns), while a ddof
    # that leaves no degrees of freedom is refused.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = getattr(F, name)(mg.Value(np.zeros(0)))
        assert np.isnan(got.data) and np.isnan(getattr(np, name)(np.zeros(0)))
    with pytest.raises(mg.ArgumentError, match="no degrees of freedom"):
        getattr(F, name)(mg.Value(np.zeros(2)), ddof=2)


def test_numpy_s_linalg_on_a_gradient_gives_a_plain_array_of_its_own():
    # numpy's linalg wraps its answer with the input's __array_wrap__ (one argument, no return_scalar):
    # the gradient's hands back the array itself, not a view of it.
    x = mg.Value(np.array([[2.0, 1.0], [1.0, 3.0]]))
    (x * np.array([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    inverse = np.linalg.inv(x.grad)
    assert type(inverse) is np.ndarray and inverse.base is None and inverse.flags.owndata
    np.testing.assert_allclose(inverse, np.linalg.inv([[1.0, 2.0], [3.0, 4.0]]), rtol=1e-12)


def test_scatter_add_at_a_basic_index_puts_each_value_as_it_is():
    # A basic index names each element once: the values land as they are, a -0.0 included (adding it to
    # the zeros would make it +0.0); repeated positions of an advanced index add up.
    out = ops.scatter_add(np.array([-0.0, 2.0]), index=slice(1, 3), shape=(4,))
    np.testing.assert_array_equal(out, [0.0, -0.0, 2.0, 0.0])
    assert list(np.signbit(out)) == [False, True, False, False]
    np.testing.assert_array_equal(ops.scatter_add(np.array([1.0, 2.0]), index=[1, 1], shape=(3,)), [0, 3, 0])
    x = mg.Value(np.ones(3))
    (x[1:] * np.array([-0.0, 1.0])).sum().backward()
    assert list(np.signbit(x.grad)) == [False, True, False]


@pytest.mark.parametrize("axis", [-1, -2, 1])
def test_roll_along_a_negative_axis_is_numpys_and_a_bad_axis_is_refused(axis):
    x = RNG.normal(size=(3, 4))
    np.testing.assert_array_equal(F.roll(mg.Value(x), 1, axis).data, np.roll(x, 1, axis))
    with pytest.raises(mg.AxisError, match="roll"):
        F.roll(mg.Value(x), 1, 2)


def test_cumprod_s_gradient_is_finite_where_only_a_later_element_overflowed():
    x = mg.Value(np.array([1e200, 1e200]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = x.cumprod(axis=0)                    # [1e200, inf]
        y[0].backward()                          # d y0 / dx = [1, 0]
    np.testing.assert_array_equal(x.grad, [1.0, 0.0])


def test_numpy_s_functions_with_dtype_or_out_left_at_none_still_record():
    # dtype=None and out=None are numpy's defaults written out: they ask for nothing our op lacks.
    v = mg.Value(np.arange(6.0).reshape(2, 3))
    for out in (np.sum(v, dtype=None), np.mean(v, axis=0, out=None), np.cumsum(v, axis=1, dtype=None)):
        assert isinstance(out, mg.Value) and out.requires_grad
    np.testing.assert_array_equal(np.cumsum(v, axis=1, dtype=None).data, np.cumsum(v.data, axis=1))


@pytest.mark.parametrize("axis", [-1, -2, 0, 1])
def test_sort_along_any_axis_is_numpys_and_a_bad_axis_is_our_error(axis):
    x = RNG.normal(size=(3, 4))
    np.testing.assert_array_equal(F.sort(mg.Value(x), axis).data, np.sort(x, axis))
    with pytest.raises(mg.AxisError, match="sort: input of shape"):
        F.sort(mg.Value(x), 2)


def test_a_built_in_op_registered_without_a_symbol_has_none():
    assert ops.exp.symbol is None and ops.tanh.symbol is None and ops.add.symbol == "+"
    assert (ops.exp.symmetric, ops.exp.variadic, ops.exp.operators) == (False, False, ())


def test_a_float_array_of_the_dtype_asked_for_is_kept_as_it_is():
    a = np.ones(3, dtype=np.float32)
    assert mg.Value(a, dtype=np.float32).data is a and mg.Value(a).data is a
    assert mg.Value(a, dtype=np.float64).dtype == np.float64


def test_relu_of_a_negative_zero_is_zero_on_the_scalar_path_as_on_arrays():
    for x in (np.float64(-0.0), np.float32(-0.0), np.float64(0.0)):
        out = mg.Value(x).relu().data
        assert out == 0.0 and not np.signbit(out) and type(out) is type(x)
    assert not np.signbit(mg.Value(np.array([-0.0])).relu().data).any()


@pytest.mark.parametrize("spec, shapes", [("ij->i", [(2, 3)]), ("ij,jk->i", [(2, 3), (3, 4)]),
                                          ("i,jk->i", [(2,), (3, 4)])])
def test_einsum_s_gradient_through_a_letter_only_one_operand_sums_away(spec, shapes):
    arrays = [RNG.normal(size=s) for s in shapes]
    values = [mg.Value(a.copy()) for a in arrays]
    w = RNG.normal(size=np.einsum(spec, *arrays).shape)
    (ops.einsum(spec, *values) * w).sum().backward()
    # Linear in each operand: the gradient is the einsum of w with the others, every letter kept.
    for k, (a, v) in enumerate(zip(arrays, values, strict=True)):
        eye = np.eye(a.size).reshape(a.size, *a.shape)
        expected = [np.sum(w * np.einsum(spec, *[e if j == k else arrays[j] for j in range(len(arrays))]))
                    for e in eye]
        np.testing.assert_allclose(v.grad, np.reshape(expected, a.shape), rtol=1e-12, atol=1e-12)


def test_relu_on_the_scalar_path_keeps_every_positive_number():
    for x in (np.float64(0.5), np.float64(1.0), np.float32(1e-30), np.float64(3.0)):
        v = mg.Value(x)
        out = v.relu()
        assert out.data == x and type(out.data) is type(x)
        out.backward()
        assert v.grad == 1.0


def test_the_implied_seed_has_the_root_s_shape():
    # A single-element output of any shape is seeded with ones of that shape, a 0-d one with a number.
    x = mg.Value(np.ones((1, 1)))
    (x * 2).backward()
    np.testing.assert_array_equal(x.grad, [[2.0]])
    x.zero_grad()
    x.backward()
    assert np.shape(x.grad) == (1, 1)
    s = mg.Value(3.0)
    s.backward()
    assert np.shape(s.grad) == () and s.grad == 1.0


@pytest.mark.parametrize("axis", [-1, -2, 1])
def test_array_split_along_a_negative_axis_is_numpys_and_a_bad_axis_is_refused(axis):
    x = RNG.normal(size=(3, 4))
    parts = F.array_split(mg.Value(x), 3, axis=axis)
    for part, expected in zip(parts, np.array_split(x, 3, axis=axis), strict=True):
        np.testing.assert_array_equal(part.data, expected)
    with pytest.raises(mg.AxisError, match="array_split"):
        F.array_split(mg.Value(x), 2, axis=2)


def test_atleast_2d_of_a_number_is_drawn_as_a_reshape_to_one_by_one():
    from microgradx.viz import draw_graph
    out = F.atleast_2d(mg.Value(2.0))
    assert out.shape == (1, 1)
    assert "reshape\\nshape=(1, 1)" in draw_graph(out).source


def test_an_anomaly_site_with_no_frame_outside_the_package_is_unknown(monkeypatch):
    import os
    import traceback
    inside = os.path.join(os.path.dirname(os.path.abspath(engine.__file__)), "engine.py")
    monkeypatch.setattr(traceback, "extract_stack", lambda: [traceback.FrameSummary(inside, 1, "f")])
    site = engine._user_site()
    monkeypatch.undo()
    assert site == "<unknown>"
    assert engine._user_site().startswith(__file__)


def test_prod_s_gradient_is_the_product_of_the_others_where_the_whole_product_overflowed():
    x = mg.Value(np.array([1e200, 1e200, 0.5]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x.prod().backward()                      # the product is inf; each derivative is finite or inf
    np.testing.assert_array_equal(x.grad, [1e200 * 0.5, 1e200 * 0.5, np.inf])


def test_cumprod_s_gradient_divides_and_takes_linear_memory_where_it_can():
    # The rule divides by x where no element of x or of the running product is zero, subnormal or an
    # overflow; the smallest normal number still qualifies. Elsewhere it builds (n, n) tables: for n = 2000
    # about 32 MB each, against a few arrays of n numbers (16 kB each) for the division.
    n = 2000
    tiny = np.finfo(np.float64).tiny
    x0 = np.ones(n)
    x0[0] = tiny                                  # the running product is tiny all along
    x = mg.Value(x0)
    loss = x.cumprod().sum()
    tracemalloc.start()
    try:
        loss.backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    # d/dx_i of sum_j prod_{k <= j} x_k: n for the first element, (n - i) * tiny for the others.
    expected = np.concatenate([[float(n)], (n - np.arange(1, n)) * tiny])
    np.testing.assert_allclose(x.grad, expected, rtol=1e-12)
