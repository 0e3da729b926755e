"""The engine's contract: what a Value is, how backward behaves, grad modes, higher order, errors."""

from __future__ import annotations

import copy
import gc
import os
import pickle

import numpy as np
import pytest

import microgradx as mg
from microgradx import engine, ops
from microgradx.data import DataLoader
from microgradx.engine import data_of
from microgradx.errors import AnomalyError, AxisError, DTypeError, GradientError, ShapeError
from microgradx.testing import numerical_gradient
from microgradx.train import TrainConfig

# --------------------------------------------------------------------------------------------------
# The issue's own example
# --------------------------------------------------------------------------------------------------


def test_slope_of_square_at_three_is_six():
    x = mg.Value(3.0)
    y = x**2
    y.backward()
    assert x.grad == 6.0


def test_linear_layer_example_has_exact_gradients():
    rng = np.random.default_rng(0)
    w = mg.Value(rng.standard_normal((784, 1)))
    b = mg.Value(np.zeros(1))
    xb = rng.random((256, 784))
    loss = (xb @ w + b).sigmoid().mean()
    loss.backward()
    s = 1 / (1 + np.exp(-(xb @ w.data + b.data)))
    ds = s * (1 - s) / 256
    np.testing.assert_allclose(w.grad, xb.T @ ds, rtol=1e-10)
    np.testing.assert_allclose(b.grad, ds.sum(axis=0), rtol=1e-10)
    assert w.grad.shape == (784, 1)


def test_grad_of_cube_to_third_order():
    cube = lambda x: x**3  # noqa: E731
    assert mg.grad(cube)(3.0) == pytest.approx(27.0)
    assert mg.grad(mg.grad(cube))(3.0) == pytest.approx(18.0)
    assert mg.grad(mg.grad(mg.grad(cube)))(3.0) == pytest.approx(6.0)
    assert mg.grad(mg.grad(mg.grad(mg.grad(cube))))(3.0) == pytest.approx(0.0)


# --------------------------------------------------------------------------------------------------
# Value: data, dtypes, constants
# --------------------------------------------------------------------------------------------------


def test_value_exposes_array_attributes():
    v = mg.Value([[1, 2, 3], [4, 5, 6]])
    assert v.shape == (2, 3) and v.ndim == 2 and v.size == 6
    assert v.dtype == np.float64
    assert isinstance(v.numpy(), np.ndarray)
    assert mg.Value(2.5).item() == 2.5 and isinstance(mg.Value(2.5).item(), float)
    np.testing.assert_array_equal(v.grad, np.zeros((2, 3)))


def test_numpy_sees_a_value_as_its_data():
    # Not as a sequence of one-element Values, gathered into an array of objects.
    v = mg.Value(np.array([1.0, 2.0, 3.0], np.float32))
    assert np.asarray(v) is v.data                        # no copy unless asked
    copied = np.array(v)
    assert copied.dtype == np.float32 and copied is not v.data
    np.testing.assert_array_equal(copied, v.data)
    assert np.asarray(mg.Value(2.0)).shape == () and np.asarray(v, dtype=np.float64).dtype == np.float64
    assert isinstance(np.ones(3) * v, mg.Value)           # numpy operators still hand over to the Value


@pytest.mark.parametrize("data, dtype", [
    (3, np.float64), (3.0, np.float64), ([1, 2], np.float64), (np.arange(3), np.float64),
    (np.array([True, False]), np.float64), (np.float32(1.5), np.float32),
    (np.ones(3, np.float32), np.float32), (np.ones(3, np.float16), np.float16),
])
def test_dtype_rules(data, dtype):
    assert mg.Value(data).dtype == dtype


def test_float32_training_step_stays_float32():
    w = mg.Value(np.ones((4, 1), np.float32))
    x = np.ones((3, 4), np.float32)
    loss = ((x @ w).sigmoid() * 2.0 - 1.0).mean()
    loss.backward()
    assert loss.dtype == np.float32 and w.grad.dtype == np.float32
    w.data -= 0.1 * w.grad
    assert w.data.dtype == np.float32


@pytest.mark.parametrize("constant", [np.array([True, False, True]), np.array([1, 2, 3]), [1, 2, 3],
                                      np.array([1, 2, 3], np.int8)], ids=["mask", "int64", "list", "int8"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_a_constant_of_integers_or_booleans_keeps_the_values_precision(constant, dtype):
    # x * mask is common (dropout, hand-made relu): a float32 model must not turn float64 through it.
    x = mg.Value(np.array([1.0, -2.0, 3.0], dtype))
    for out in (x * constant, constant * x, x + constant, mg.ops.where(x.data > 0, x, constant)):
        assert out.dtype == dtype
    (x * constant).sum().backward()
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad, np.asarray(constant, dtype))


@pytest.mark.parametrize("bad", ["abc", None, {"a": 1}, [1, "x"], 1 + 2j, np.array([object()])])
def test_non_numeric_input_is_a_dtype_error(bad):
    with pytest.raises(DTypeError, match="real numbers"):
        mg.Value(bad)


def test_int_dtype_argument_is_refused():
    with pytest.raises(DTypeError, match="float dtype"):
        mg.Value([1.0], dtype=np.int32)


def test_constants_mix_on_either_side():
    v = mg.Value([1.0, 2.0])
    arr = np.array([[1.0, 0.0], [0.0, 1.0]])
    results = {
        "2*v": 2 * v, "v*2": v * 2, "1-v": 1 - v, "v-1": v - 1, "1/v": 1 / v, "v/2": v / 2,
        "2**v": 2 ** v, "v**2": v ** 2, "arr@v": arr @ v, "v@arr": v @ arr, "[1,1]+v": [1, 1] + v,
        "np.float64(2)*v": np.float64(2) * v, "arr+v": arr + v,
    }
    expected = {
        "2*v": [2, 4], "v*2": [2, 4], "1-v": [0, -1], "v-1": [0, 1], "1/v": [1, 0.5], "v/2": [0.5, 1],
        "2**v": [2, 4], "v**2": [1, 4], "arr@v": [1, 2], "v@arr": [1, 2], "[1,1]+v": [2, 3],
        "np.float64(2)*v": [2, 4], "arr+v": [[2, 2], [1, 3]],
    }
    for key, out in results.items():
        assert isinstance(out, mg.Value), f"{key} did not give a Value"
        np.testing.assert_allclose(out.data, expected[key], err_msg=key)


def test_numpy_defers_to_value_for_matmul_and_ufuncs():
    v = mg.Value(np.ones(3))
    out = np.ones((2, 3)) @ v
    assert isinstance(out, mg.Value) and out.shape == (2,)
    out.sum().backward()
    np.testing.assert_array_equal(v.grad, [2.0, 2.0, 2.0])


def test_repr_is_short_and_names_the_op():
    assert repr(mg.Value(2.0, label="x")) == "Value(2, label='x')"
    big = mg.Value(np.zeros((100, 100), np.float32)) * 2.0
    text = repr(big)
    assert "(100, 100)" in text and "float32" in text and "multiply" in text and len(text) < 80


def test_comparisons_give_plain_bool_arrays():
    v = mg.Value([1.0, 2.0, 3.0])
    mask = v > 1.5
    assert isinstance(mask, np.ndarray) and mask.dtype == bool
    np.testing.assert_array_equal(mask, [False, True, True])
    np.testing.assert_array_equal(v == 2.0, [False, True, False])


# --------------------------------------------------------------------------------------------------
# backward
# --------------------------------------------------------------------------------------------------


def test_two_backward_calls_leave_exactly_twice_the_gradient_on_leaves():
    x = mg.Value([1.0, -2.0, 3.0])
    w = mg.Value(0.5)
    h = (x * w).tanh()
    loss = (h * h + h).sum()    # h is used twice: a diamond
    loss.backward()
    first_x, first_w, first_h = x.grad.copy(), np.copy(w.grad), h.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * first_x, rtol=1e-15)
    np.testing.assert_allclose(w.grad, 2 * first_w, rtol=1e-15)
    # interior nodes hold the gradient of the latest call only
    np.testing.assert_allclose(h.grad, first_h, rtol=1e-15)


def test_zero_grad_resets_and_grad_is_not_aliased_between_leaves():
    a = mg.Value([1.0, 2.0])
    b = mg.Value([3.0, 4.0])
    (a + b).sum().backward()          # both get the very same incoming array
    a.grad += 10                      # an in-place edit of one leaf's gradient...
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])   # ...must not show up in the other's
    a.zero_grad()
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])


def test_broadcasting_is_undone_in_gradients():
    a = mg.Value(np.ones((3, 1)))
    b = mg.Value(np.ones(4))
    c = mg.Value(2.0)
    (a * b * c).sum().backward()
    np.testing.assert_array_equal(a.grad, np.full((3, 1), 8.0))
    np.testing.assert_array_equal(b.grad, np.full(4, 6.0))
    assert c.grad == 12.0


def test_repeated_indices_accumulate():
    v = mg.Value([1.0, 2.0, 3.0])
    v[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(v.grad, [3.0, 0.0, 1.0])


def test_boolean_mask_indexing_gradient():
    v = mg.Value([1.0, -2.0, 3.0])
    (v[v.data > 0] * 2).sum().backward()
    np.testing.assert_array_equal(v.grad, [2.0, 0.0, 2.0])


def test_repeated_positions_accumulate_whether_given_as_a_list_or_an_array():
    for index in ([0, 0, 2], np.array([0, 0, 2]), ([0, 0, 2],)):
        x = mg.Value(np.arange(3.0))
        ops.getitem(x, index=index).sum().backward()
        np.testing.assert_array_equal(x.grad, [2.0, 0.0, 1.0])
        np.testing.assert_array_equal(ops.scatter_add(np.ones(3), index=index, shape=(3,)), [2.0, 0.0, 1.0])


def test_a_value_cannot_be_an_index():
    # Values hold floats: a mask made into a Value would otherwise select positions 1, 0, 1.
    x = mg.Value(np.array([10.0, 20.0, 30.0]))
    with pytest.raises(DTypeError, match="cannot be an index"):
        x[mg.Value(np.array([True, False, True]))]
    with pytest.raises(DTypeError, match="cannot be an index"):
        x[mg.Value(1.0)]


@pytest.mark.parametrize("reduce", [lambda v: v.sum(axis=0), lambda v: v.max(axis=-1),
                                    lambda v: v.sum(axis=-1)])
def test_reducing_a_zero_dimensional_value_over_axis_0_differentiates(reduce):
    v = mg.Value(3.0)            # numpy allows axis 0 (or -1) on a 0-d array
    out = reduce(v)
    out.backward()
    assert out.item() == 3.0 and v.grad == 1.0


def test_clip_with_bounds_that_broadcast_the_input_up():
    x = mg.Value(np.array([-1.0, 0.0, 1.0]))
    lo = np.array([[-2.0], [0.5]])                     # (2, 1) bounds: the output is (2, 3)
    x.clip(lo, 0.5).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 0.0])   # inside [-2, .5] once; [.5, .5] never


def test_backward_on_non_scalar_needs_a_gradient():
    v = mg.Value([1.0, 2.0])
    with pytest.raises(GradientError, match=r"shape \(2,\).*gradient="):
        (v * 2).backward()
    (v * 2).backward(gradient=np.array([1.0, 10.0]))
    np.testing.assert_array_equal(v.grad, [2.0, 20.0])


def test_backward_gradient_of_wrong_shape_is_a_shape_error():
    v = mg.Value([1.0, 2.0])
    with pytest.raises(ShapeError, match=r"\(3,\).*expected \(2,\)"):
        (v * 2).backward(gradient=np.ones(3))


def test_backward_on_a_constant_is_an_error():
    with pytest.raises(GradientError, match="does not require grad"):
        mg.Value(1.0, requires_grad=False).exp().backward()


def test_no_rule_runs_for_inputs_that_need_no_gradient(monkeypatch):
    calls = []
    left, right = ops.matmul.vjps
    monkeypatch.setattr(ops.matmul, "vjps", (
        lambda *a, **k: calls.append("left") or left(*a, **k),
        lambda *a, **k: calls.append("right") or right(*a, **k),
    ))
    xb = mg.Value(np.ones((5, 3)), requires_grad=False)
    w = mg.Value(np.ones((3, 1)))
    (xb @ w).sum().backward()
    assert calls == ["right"]
    assert xb._grad is None


def test_branches_leading_only_to_constants_are_not_recorded():
    c = mg.Value(np.ones(3), requires_grad=False)
    out = (c.exp() * 2).sum()
    assert not out.requires_grad and out.parents == ()


def test_no_grad_records_nothing_and_detach_cuts_the_graph():
    x = mg.Value(2.0)
    with mg.no_grad():
        y = x * 3
    assert not y.requires_grad and y.is_leaf
    assert mg.is_grad_enabled()
    z = x * x.detach()          # d/dx = x.detach() only: 2, not 4
    z.backward()
    assert x.grad == 2.0


def test_each_node_gradient_is_computed_once(monkeypatch):
    calls = []
    (rule,) = ops.exp.vjps
    monkeypatch.setattr(ops.exp, "vjps", (lambda *a, **k: calls.append(1) or rule(*a, **k),))
    x = mg.Value(0.5)
    e = x.exp()
    total = e
    for _ in range(50):         # e feeds 51 uses; its own rule must run once, on the summed gradient
        total = total + e
    total.backward()
    assert len(calls) == 1
    assert x.grad == pytest.approx(51 * np.exp(0.5))


def test_no_grad_as_a_bare_decorator_and_entered_twice():
    @mg.no_grad
    def double(x):
        return x * 2

    assert not double(mg.Value(1.0)).requires_grad
    mode = mg.no_grad()
    with mode:
        with mode:                       # the same object, again inside its own block
            pass
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()


def test_no_grad_on_a_generator_function_covers_each_step_and_only_those():
    @mg.no_grad()
    def steps(x):
        try:
            sent = yield x * 2, mg.is_grad_enabled()
            yield sent, mg.is_grad_enabled()
        except ValueError:
            yield "thrown", mg.is_grad_enabled()
        return "done"

    gen = steps(mg.Value(1.0))
    first, recording = next(gen)
    assert not first.requires_grad and not recording
    assert mg.is_grad_enabled()          # between steps, the caller's mode
    assert gen.send("hello") == ("hello", False)
    assert gen.throw(ValueError) == ("thrown", False)
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done" and mg.is_grad_enabled()

    @mg.no_grad()
    def closing():
        try:
            yield 1
        finally:
            seen.append(mg.is_grad_enabled())

    seen: list[bool] = []
    gen = closing()
    next(gen)
    gen.close()                          # its finally block runs in the mode too
    assert seen == [False] and mg.is_grad_enabled()


def test_a_value_that_only_feeds_a_mask_gets_no_gradient():
    x = mg.Value(np.array([0.5, -1.0, 2.0]))
    cond = x - 0.5                      # a Value as where's condition: its rule is None, nothing flows
    a = mg.Value(np.full(3, 3.0))
    mg.where(cond, a, 0.0).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(x.grad, np.zeros(3))
    np.testing.assert_array_equal(cond.grad, np.zeros(3))
    through_mask = mg.grad(lambda x: (mg.where(x - 0.5, a, 0.0) * x).sum())(x.data)
    np.testing.assert_array_equal(through_mask, [0.0, 3.0, 3.0])   # only the product's own path


@pytest.mark.parametrize("left, right", [((4, 3), (3, 2)), ((2, 4, 3), (3, 2)), ((3,), (3, 2)),
                                         ((4, 3), (3,))])
def test_matmul_with_a_plain_array_on_the_left(left, right):
    # The chapter's `xb @ w`: the batch is a plain array, so the rule transposes it without a graph.
    rng = np.random.default_rng(0)
    xb, w0 = rng.standard_normal(left), rng.standard_normal(right)
    w = mg.Value(w0.copy())
    (xb @ w).sum().backward()
    expected = numerical_gradient(lambda v: np.sum(xb @ v), [w0], 0)
    np.testing.assert_allclose(w.grad, expected, rtol=1e-6, atol=1e-8)


def test_backward_takes_newest_nodes_first_even_through_copies():
    # backward orders nodes by when they were made. Copies are new nodes: a deep-copied graph, a copied
    # model's weights or an unpickled leaf must mix with the originals without losing a gradient.
    x = mg.Value(3.0)
    u = x * x
    u_copy = copy.deepcopy(u)                 # copies x too: its own leaf, made before its own product
    (u_copy * 2 + u_copy + u).backward()
    assert u_copy._x is not x
    assert u_copy._x.grad == pytest.approx(18.0)          # 3 * d(x**2)/dx at 3
    assert x.grad == pytest.approx(6.0)
    w = mg.Value(np.array([1.0, 2.0]))
    w_copy, w_back = copy.deepcopy(w), pickle.loads(pickle.dumps(w))
    (w * w_copy * w_back).sum().backward()
    np.testing.assert_array_equal(w.grad, [1.0, 4.0])
    np.testing.assert_array_equal(w_copy.grad, [1.0, 4.0])
    np.testing.assert_array_equal(w_back.grad, [1.0, 4.0])
    shallow = copy.copy(u)                    # shares x with u
    x.zero_grad()
    (shallow + u).backward()
    assert x.grad == pytest.approx(12.0)


def test_a_graph_of_an_op_outside_the_table_deep_copies_but_does_not_pickle():
    # Pickles find ops again by name: an op the table does not hold under its name cannot be found.
    cube = ops.Primitive(lambda x: x**3, (lambda g, ans, x: 3 * g * x**2,), expects="")
    out = cube(mg.Value(2.0))
    twin = copy.deepcopy(out)
    assert twin._op is cube
    twin.backward()
    assert twin._x.grad == 12.0
    with pytest.raises(pickle.PicklingError, match="not the one registered"):
        pickle.dumps(out)


@pytest.mark.parametrize("copy_graph", [copy.deepcopy, lambda v: pickle.loads(pickle.dumps(v))],
                         ids=["deepcopy", "pickle"])
def test_a_copied_graph_differentiates_like_the_original(copy_graph):
    # Interior nodes copy with their whole graph: unary ops (an empty second input slot), ops with
    # parameters, variadic ops, a mask, and a leaf used twice, which must stay one leaf in the copy.
    a = mg.Value(np.array([0.5, -1.0, 2.0]))
    mask = np.array([True, False, True])
    out = (mg.stack([a.exp(), a * 3, a]).sum(axis=0) + mg.where(mask, a, 0).relu()).sum()
    twin = copy_graph(out)
    out.backward()
    twin.backward()
    (twin_leaf,) = [n for n in engine._reachable(twin) if n.is_leaf]
    assert twin_leaf is not a
    assert twin._op is out._op is mg.ops.sum         # ops are the library's own, found by name
    assert twin.item() == out.item()
    np.testing.assert_allclose(twin_leaf.grad, a.grad)
    np.testing.assert_allclose(a.grad, np.exp(a.data) + 4 + mask * (a.data > 0))


def test_each_op_node_is_one_object_for_the_garbage_collector():
    # Scalar code builds a node per number; the cyclic collector's cost grows with the objects it
    # keeps tracking. A node's inputs live in slots, so a node is the Value alone (a tuple of input
    # Values would be a second object tracked for good). The tuple of the inputs' data holds only
    # arrays and numbers, so the collector stops tracking it on its first pass.
    x = mg.Value(1.0)
    nodes = [x]
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(1000):
        nodes.append(nodes[-1] * 1.001 + x)
    gc.collect()
    tracked = len(gc.get_objects()) - before
    assert 1950 <= tracked < 2100, f"{tracked} tracked objects for 2000 op nodes"


# --------------------------------------------------------------------------------------------------
# grad / value_and_grad
# --------------------------------------------------------------------------------------------------


def test_value_and_grad_with_several_arguments():
    f = lambda x, y: (x * y + y**2).sum()  # noqa: E731
    value, (gx, gy) = mg.value_and_grad(f, argnums=(0, 1))(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert value == pytest.approx(1 * 3 + 2 * 4 + 9 + 16)
    np.testing.assert_allclose(gx, [3.0, 4.0])
    np.testing.assert_allclose(gy, [1 + 6.0, 2 + 8.0])
    assert isinstance(gx, np.ndarray)


def test_grad_does_not_touch_dot_grad():
    w = mg.Value([1.0, 2.0])
    g = mg.grad(lambda v: (v * v).sum())(w)
    assert w._grad is None
    np.testing.assert_allclose(g.data, [2.0, 4.0])


def test_hessian_vector_product_of_a_tensor_function():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    f = lambda x: 0.5 * (x @ (a @ x)) + x.exp().sum()  # noqa: E731
    x0 = np.array([0.1, -0.2])
    v = np.array([1.0, 2.0])
    hvp = mg.grad(lambda x: (mg.grad(f)(x) * v).sum())(x0)
    np.testing.assert_allclose(hvp, a @ v + np.exp(x0) * v, rtol=1e-12)


@pytest.mark.parametrize("derivative, expected", [
    # d/dy d/dx of x**2 y**3 = 6 x y**2: the outer variable reaches the inner grad as an argument it
    # does not differentiate.
    (lambda: mg.grad(mg.grad(lambda x, y: x**2 * y**3), argnums=1)(2.0, 3.0), 108.0),
    # ... or through a closure.
    (lambda: mg.grad(lambda x: mg.grad(lambda y: x * y)(2.0))(3.0), 1.0),
    # The inner derivative is with respect to its own argument, even when that is the outer variable.
    (lambda: mg.grad(lambda x: mg.grad(lambda y: y * x)(x))(2.0), 1.0),
    (lambda: mg.grad(lambda x: mg.grad(lambda y: y * x * x)(x))(2.0), 4.0),
], ids=["argument", "closure", "same-value", "same-value-squared"])
def test_nested_grad_matches_the_hand_derivative(derivative, expected):
    assert float(derivative()) == pytest.approx(expected)


def test_grad_tells_apart_two_arguments_that_are_one_value():
    # d/du and d/dw of u * w * w at u = w = 2: 4 and 8, not the derivative with respect to the shared Value.
    v = mg.Value(2.0)
    gu, gw = mg.grad(lambda u, w: u * w * w, argnums=(0, 1))(v, v)
    assert (float(gu), float(gw)) == (4.0, 8.0)
    g1, g2 = mg.grad(lambda x: x * 3, argnums=(0, 0))(1.0)     # a position named twice: the same gradient
    assert g1 == g2 == 3.0


@pytest.mark.parametrize("f", [lambda x: x.max(), lambda x: mg.maximum(x, 2.0).sum(),
                               lambda x: mg.ops.min(x), lambda x: (2.0 ** x).sum()],
                         ids=["max", "maximum", "min", "rpow"])
def test_grad_returns_each_input_its_own_array_in_its_dtype(f):
    x = np.array([1.0, 3.0, 3.0], np.float32)
    g = mg.grad(f)(x)
    assert isinstance(g, np.ndarray) and g.dtype == np.float32 and g.flags.writeable
    interior = mg.Value(x) * 1.0
    f(interior).backward()
    assert interior.grad.dtype == np.float32
    gx, gy = mg.grad(lambda a, b: (a + b).sum(), argnums=(0, 1))(np.ones(3), np.ones(3))
    gx += 1                                    # the sum's rule hands one array to both inputs
    np.testing.assert_array_equal(gy, np.ones(3))


def test_a_plain_backward_after_a_create_graph_backward_adds_up():
    x = mg.Value(np.array([1.0, 2.0]))
    (x * x).sum().backward(create_graph=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(data_of(x.grad), [4.0, 8.0])


def test_grad_of_function_ignoring_its_input_is_zero():
    assert mg.grad(lambda x: mg.Value(3.0) * 2)(1.0) == 0.0


def test_grad_needs_a_scalar_output():
    with pytest.raises(GradientError, match=r"single number.*\(3,\)"):
        mg.grad(lambda x: x * 2)(np.ones(3))


@pytest.mark.parametrize("argnums", [2, -2, (0, 5), True])
def test_grad_argnums_out_of_range(argnums):
    with pytest.raises(GradientError, match="argnums"):
        mg.grad(lambda x, y=0: x, argnums=argnums)(1.0)


def test_the_gradient_of_a_number_is_a_numpy_number_as_numpy_reductions_give():
    g = mg.grad(lambda x: x**3)(3.0)
    assert isinstance(g, np.float64) and g == 27.0     # not a 0-d array


def test_negative_argnums_count_from_the_end():
    assert mg.grad(lambda x, y: x * y**2, argnums=-1)(3.0, 2.0) == 12.0


def test_grad_records_when_any_argument_is_a_value_that_requires_grad():
    # As torch.func.grad: w is not differentiated here, but the result still depends on it.
    w = mg.Value(2.0)
    for call in (lambda f: mg.grad(f)(3.0, w), lambda f: mg.grad(f)(3.0, w=w)):
        g = call(lambda x, w: x * x * w)               # 2 x w = 12
        assert isinstance(g, mg.Value) and float(g) == 12.0
        w.zero_grad()
        g.backward()
        assert w.grad == 6.0                           # d(2 x w)/dw = 2 x


# --------------------------------------------------------------------------------------------------
# Errors name the op, the shapes, and what was expected
# --------------------------------------------------------------------------------------------------


def test_op_parameters_are_taken_by_position_as_numpy_takes_them_but_only_once():
    v = mg.Value(np.arange(6.0))
    assert mg.reshape(v, (2, 3)).shape == (2, 3)
    assert mg.ops.sum(mg.reshape(v, (2, 3)), 0).shape == (3,)
    with pytest.raises(TypeError, match="multiple values for shape"):
        mg.reshape(v, (2, 3), shape=(3, 2))
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3"):
        mg.reshape(v, (2, 3), (3, 2))


@pytest.mark.parametrize("make, error, message", [
    (lambda: mg.Value(1.0, dtype="foo"), DTypeError, "dtype='foo' is not a dtype"),
    (lambda: mg.Value([1.0, 2.0]).item(), ShapeError, r"item\(\) of a Value of shape \(2,\)"),
    (lambda: bool(mg.Value([1.0, 2.0])), ShapeError, r"bool\(\) of a Value of shape \(2,\)"),
    (lambda: float(mg.Value([1.0, 2.0])), ShapeError, r"float\(\) of a Value of shape \(2,\)"),
    (lambda: mg.Value(np.ones((2, 2))).logsumexp(axis=(0, 0)), AxisError, "distinct axes"),
    (lambda: mg.Value(np.ones((2, 2))).softmax(axis=[0, 1]), AxisError, "distinct axes"),
])
def test_conversions_and_axes_fail_with_our_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()
    assert float(mg.Value([[2.0]])) == 2.0       # one element converts, whatever the shape


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")   # log(0), as numpy's
def test_logsumexp_and_softmax_of_empty_axes():
    x = mg.Value(np.zeros((0, 3)))
    out = x.logsumexp(axis=0)                    # the log of an empty sum: -inf, as np.logaddexp.reduce
    np.testing.assert_array_equal(out.data, [-np.inf] * 3)
    out.sum().backward()
    assert x.grad.shape == (0, 3)
    empty_rows = mg.Value(np.zeros((2, 0))).softmax(axis=1)     # each row sums nothing
    assert empty_rows.shape == (2, 0)


def test_matmul_shape_mismatch():
    with pytest.raises(ShapeError, match=r"matmul.*\(2, 3\), \(4, 5\).*last axis of the left"):
        mg.Value(np.ones((2, 3))) @ np.ones((4, 5))


def test_broadcast_mismatch():
    with pytest.raises(ShapeError, match=r"add.*\(3,\), \(4,\).*broadcast"):
        mg.Value(np.ones(3)) + np.ones(4)


def test_unknown_axis():
    with pytest.raises(AxisError, match=r"sum.*\(2, 3\).*axis=5"):
        mg.Value(np.ones((2, 3))).sum(axis=5)


def test_bad_reshape():
    with pytest.raises(ShapeError, match=r"reshape.*\(2, 3\).*same number of elements"):
        mg.Value(np.ones((2, 3))).reshape(4, 2)


def test_index_out_of_range():
    with pytest.raises(AxisError, match=r"getitem.*\(3,\)"):
        mg.Value(np.ones(3))[5]


def test_string_operand():
    with pytest.raises(DTypeError, match="multiply"):
        mg.Value(1.0) * "a"


# --------------------------------------------------------------------------------------------------
# Anomaly mode
# --------------------------------------------------------------------------------------------------


def test_anomaly_mode_names_the_forward_op_and_the_line():
    x = mg.Value([1.0, 0.0])
    with mg.detect_anomaly(), np.errstate(divide="ignore"), \
            pytest.raises(AnomalyError, match=r"forward of 'log'.*test_engine\.py:\d+"):
        x.log()


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
def test_anomaly_mode_names_user_code_in_a_folder_named_like_the_package():
    # Only files inside the package are skipped, not ones in a sibling folder such as microgradx_examples/.
    fake = os.path.dirname(mg.__file__) + "_examples/make_nan.py"
    code = compile("import numpy as np\nbad = mg.Value(np.array([-1.0])).log()\n", fake, "exec")
    with mg.detect_anomaly(), pytest.raises(AnomalyError, match="_examples/make_nan.py:2"):
        exec(code, {"mg": mg})  # noqa: S102 - code compiled above, with a made-up file name


def test_anomaly_mode_catches_a_nan_born_in_backward():
    x = mg.Value([0.0, 4.0])
    with mg.detect_anomaly():
        y = x.sqrt().sum()          # forward is finite: sqrt(0) = 0
        with np.errstate(divide="ignore"), \
                pytest.raises(AnomalyError, match=r"backward of 'sqrt'.*test_engine\.py:\d+"):
            y.backward()            # d sqrt/dx at 0 is inf
        # Under create_graph the rule's own ops find it first: the error still names sqrt's backward.
        with np.errstate(divide="ignore"), \
                pytest.raises(AnomalyError, match=r"backward of 'sqrt'.*input #0: forward of 'divide'"):
            y.backward(create_graph=True)


def test_without_anomaly_mode_nonfinite_values_pass_silently():
    with np.errstate(divide="ignore"):
        out = mg.Value([1.0, 0.0]).log()
    assert np.isneginf(out.data[1])


@pytest.mark.parametrize("mistake", [
    lambda: mg.optim.SGD([mg.Value(1.0)], lr=-1),
    lambda: mg.optim.SGD(mg.Value(1.0), lr=1),
    lambda: mg.optim.Adam([mg.Value(1.0)]).load_state_dict({"name": "SGD"}),
    lambda: mg.nn.Linear(0, 1),
    lambda: mg.nn.MLP(3, []),
    lambda: DataLoader(np.ones(3), np.ones(3), batch_size=0),
    lambda: TrainConfig(epochs=0),
    lambda: TrainConfig(model="resnet"),
    lambda: mg.draw_graph(np.ones(3)),
    lambda: mg.render_graph(mg.Value(1.0) * 2, "graph.jpg"),
    lambda: mg.reshape(mg.Value(np.ones(3)), (3,), 1, 2),
    lambda: mg.ops.matmul(mg.Value(1.0), 2.0),
], ids=["lr", "single-value", "state", "linear", "mlp", "batch-size", "epochs", "model", "draw", "format",
        "positional", "matmul-scalars"])
def test_every_mistake_raises_one_of_our_errors_and_the_builtin_one_expects(mistake):
    # docs/guarantees.md: a mistake raises a class from microgradx.errors, each also the built-in
    # exception (ValueError, TypeError) that code written for plain Python catches.
    with pytest.raises(mg.MicrogradxError) as info:
        mistake()
    assert isinstance(info.value, ValueError | TypeError)


def test_every_error_class_is_in_errors_and_exported_at_the_top():
    defined = {name: cls for name, cls in vars(mg.errors).items()
               if isinstance(cls, type) and issubclass(cls, mg.MicrogradxError)}
    assert {"ShapeError", "DTypeError", "TrainingDivergedError", "CheckpointError"} <= set(defined)
    for name, cls in defined.items():
        assert getattr(mg, name) is cls, f"microgradx.{name} is not microgradx.errors.{name}"
        assert name in mg.__all__
