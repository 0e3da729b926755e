"""The second edition's engine: one Value with its whole API in its class, in-place operators and the
version counter, lists of Values, numpy's functions on Values, and the spellings users bring."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import microgradx as mg
from microgradx import engine, ops
from microgradx.errors import ArgumentError, AxisError, GradientError, ShapeError

# --------------------------------------------------------------------------------------------------
# The table is data: exports, methods and drawings are read from it
# --------------------------------------------------------------------------------------------------


def test_every_primitive_is_exported_at_the_package_level():
    linalg = getattr(mg, "linalg", None)
    missing = [name for name, op in ops.PRIMITIVES.items()
               if getattr(mg, name, None) is not op and getattr(linalg, name, None) is not op]
    assert not missing, f"primitives missing from microgradx's exports: {missing}"


def test_every_method_and_operator_an_entry_names_is_in_value_s_class_body():
    for name, op in ops.PRIMITIVES.items():
        for attr in (op.method, *op.operators):
            if attr is None:
                continue
            assert attr in vars(mg.Value), f"{name} names Value.{attr}, which the class does not define"
            assert vars(mg.Value)[attr].__doc__, f"Value.{attr} has no docstring"


@pytest.mark.parametrize("name", sorted(n for n, op in ops.PRIMITIVES.items() if op.method))
def test_each_method_records_its_own_entry(name):
    op = ops.PRIMITIVES[name]
    x = mg.Value(np.full((2, 2), 0.5))
    params = {"astype": (np.float32,), "clip": (0.0, 1.0), "reshape": (4,)}.get(name, ())
    out = getattr(x, op.method)(*params)
    assert out.op == name


def test_every_primitive_has_a_drawing_label():
    from microgradx import viz
    for name, op in ops.PRIMITIVES.items():
        assert viz.op_label(name), name
        if op.symbol:
            assert viz.op_label(name) == op.symbol


def test_the_engine_module_imports_nothing_from_the_op_table():
    source = inspect.getsource(engine)
    assert "from .ops" not in source and "from . import ops" not in source
    assert "import microgradx.ops" not in source


def test_public_methods_of_value_have_docstrings_that_help_shows():
    public = [n for n, v in vars(mg.Value).items()
              if callable(v) and not n.startswith("_") or isinstance(v, property) and not n.startswith("_")]
    undocumented = [n for n in public if not getattr(vars(mg.Value)[n], "__doc__", None)]
    assert len(public) > 35
    assert not undocumented, undocumented
    text = pydoc_text(mg.Value)
    for name in ("exp", "sum", "reshape", "softmax", "__mul__", "backward", "__isub__"):
        assert name in text


def pydoc_text(obj):
    import pydoc
    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


# --------------------------------------------------------------------------------------------------
# In-place operators
# --------------------------------------------------------------------------------------------------


def test_pytorch_s_update_under_no_grad_trains_the_same_object():
    w = mg.Value(np.zeros(3))
    x = np.array([1.0, 2.0, 3.0])
    target = 2.0
    original = w
    for _ in range(50):
        loss = ((x * w).sum() - target) ** 2
        loss.backward()
        with mg.no_grad():
            w -= 0.01 * w.grad
        w.zero_grad()
    assert w is original
    assert w.dtype == np.float64
    assert float(((x * w.data).sum() - target) ** 2) < 1e-6


def test_in_place_keeps_the_array_and_its_dtype():
    data = np.ones(3, dtype=np.float32)
    w = mg.Value(data)
    with mg.no_grad():
        w *= 2.0
        w += np.ones(3)              # a float64 operand: the Value stays float32
        w /= 3
    assert w.data is data and w.dtype == np.float32
    np.testing.assert_allclose(w.data, 1.0)


def test_in_place_on_a_scalar_leaf_under_no_grad():
    w = mg.Value(np.float32(2.0))
    with mg.no_grad():
        w -= 0.5
    assert w.dtype == np.float32 and w.item() == 1.5


def test_in_place_on_a_leaf_that_requires_grad_is_refused_with_the_fix():
    w = mg.Value(np.ones(2))
    with pytest.raises(GradientError, match="no_grad") as info:
        w -= 1.0
    assert "p.data -=" in str(info.value)
    np.testing.assert_array_equal(w.data, 1.0)     # nothing changed


def test_in_place_that_would_change_the_shape_is_refused():
    w = mg.Value(np.ones(2), requires_grad=False)
    with pytest.raises(ShapeError):
        w += np.ones((3, 2))


def test_in_place_accumulation_into_a_constant_keeps_the_graph():
    x = mg.Value(2.0)
    total = mg.Value(0.0, requires_grad=False)
    for k in (1.0, 2.0, 3.0):
        total += k * x
    total.backward()
    assert x.grad == 6.0
    assert total.requires_grad and total.op == "add"


def test_in_place_on_an_interior_node_is_recorded_like_the_operator():
    x = mg.Value(3.0)
    h = x * 2
    h *= x
    h.backward()
    assert x.grad == 12.0          # d(2x^2)/dx at 3


def test_backward_after_an_in_place_change_of_an_input_names_the_op():
    x = mg.Value(np.array([1.0, 2.0]))
    y = (x * x).sum()
    with mg.no_grad():
        x -= 1.0
    with pytest.raises(GradientError, match="multiply.*changed in place"):
        y.backward()


def test_backward_after_an_optimizer_step_is_refused():
    w = mg.Value(np.array([1.0, 2.0]))
    loss = (w * w).sum()
    loss.backward()
    mg.optim.SGD([w], lr=0.1).step()
    with pytest.raises(GradientError, match="changed in place"):
        loss.backward()


def test_assigning_data_counts_as_a_change_and_a_new_forward_is_fine():
    w = mg.Value(np.array([1.0, 2.0]))
    loss = (w.exp()).sum()
    w.data = np.array([0.0, 0.0])
    with pytest.raises(GradientError):
        loss.backward()
    (w.exp()).sum().backward()
    np.testing.assert_allclose(w.grad, 1.0)


def test_a_changed_output_is_refused_too():
    x = mg.Value(np.array([0.0, 1.0]))
    y = x.exp()
    with mg.no_grad():
        y += 1.0                    # exp's rule reads its output
    with pytest.raises(GradientError, match="its output"):
        y.sum().backward()


def test_a_changed_constant_input_is_refused_too():
    # The constant takes no gradient, but the other input's rule reads it: d(x*c)/dx is c.
    x = mg.Value(np.array([1.0, 2.0]))
    c = mg.Value(np.array([3.0, 4.0]), requires_grad=False)
    y = (x * c).sum()
    c.data = np.array([30.0, 40.0])
    with pytest.raises(GradientError, match="multiply.*its input.*changed in place"):
        y.backward()
    np.testing.assert_array_equal(x.grad, 0.0)     # nothing was written before the refusal


def test_a_constant_changed_before_the_op_gives_the_derivative_at_its_new_data():
    x = mg.Value(np.array([1.0, 2.0]))
    c = mg.Value(np.array([3.0, 4.0]), requires_grad=False)
    c.data = np.array([30.0, 40.0])
    (x * c).sum().backward()
    np.testing.assert_array_equal(x.grad, [30.0, 40.0])


def test_a_change_before_the_op_is_not_a_change_after_it():
    x = mg.Value(np.array([1.0, 2.0]))
    with mg.no_grad():
        x *= 2.0
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])


# --------------------------------------------------------------------------------------------------
# Lists and tuples of Values keep the graph
# --------------------------------------------------------------------------------------------------


def test_mean_of_a_list_of_values_is_differentiated():
    assert mg.grad(lambda x: mg.mean([x, 3 * x]))(1.0) == 2.0


def test_value_of_a_list_of_values_is_stacked_not_cut_off():
    x = mg.Value(2.0)
    v = mg.Value([x, 3 * x, [1.0][0]])
    assert v.op == "stack" and v.shape == (3,)
    v.sum().backward()
    assert x.grad == 4.0


def test_nested_lists_of_values_and_numbers():
    x = mg.Value(1.0)
    v = mg.Value([[x, 2.0], (0.5, x * x)])
    assert v.shape == (2, 2)
    (v * np.array([[1.0, 0.0], [0.0, 1.0]])).sum().backward()
    assert x.grad == 3.0          # d(x + x^2)/dx at 1


def test_a_list_of_values_in_an_op_with_other_arguments():
    x, y = mg.Value(1.0), mg.Value(2.0)
    out = mg.multiply([x, y], np.array([3.0, 4.0]))
    out.sum().backward()
    assert (x.grad, y.grad) == (3.0, 4.0)


def test_value_of_a_list_of_values_without_grad_is_a_constant():
    x = mg.Value(1.0)
    assert not mg.Value([x, x], requires_grad=False).requires_grad


# --------------------------------------------------------------------------------------------------
# numpy's own functions on Values
# --------------------------------------------------------------------------------------------------


def test_numpy_functions_with_a_table_entry_record():
    x = mg.Value(np.array([1.0, 2.0, 3.0]))
    for out in (np.mean(x), np.sum(x), np.exp(x).sum(), np.ones(3) @ x, (np.ones(3) * x).sum()):
        assert isinstance(out, mg.Value) and out.requires_grad
    np.mean(x).backward()
    np.testing.assert_allclose(x.grad, 1 / 3)


def test_numpy_functions_without_an_entry_raise_ours_when_a_gradient_is_wanted():
    x = mg.Value(np.array([1.0, 2.0]))
    with pytest.raises(ArgumentError, match="would not record"):
        np.median(x)


def test_numpy_functions_on_constants_or_for_inspection_answer_from_the_data():
    x = mg.Value(np.array([1.0, 2.0]))
    assert np.shape(x) == (2,)
    assert np.allclose(x, [1.0, 2.0])
    assert np.median(x.detach()) == 1.5


def test_numpy_only_arguments_raise_ours():
    x = mg.Value(np.array([1.0, 2.0]))
    with pytest.raises(ArgumentError):
        np.mean(x, dtype=np.float32)
    with pytest.raises(ArgumentError):
        np.exp(x, out=np.empty(2))


# --------------------------------------------------------------------------------------------------
# Spelling hints, and the habits users bring from PyTorch
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [mg.Value(0.0), 0.0, 1.5])
def test_a_number_that_is_not_an_axis_where_an_axis_belongs_suggests_maximum(axis):
    x = mg.Value(np.array([-1.0, 2.0]))
    with pytest.raises(AxisError, match=r"mg\.maximum\(x, 0\).*relu"):
        x.max(axis)


@pytest.mark.parametrize("name, ours", [("clamp", "clip"), ("cat", "concatenate"), ("t", ".T"),
                                        ("pow", "**"), ("sort", "mg.sort"), ("tolist", "tolist")])
def test_pytorch_attribute_names_say_our_spelling(name, ours):
    x = mg.Value(np.ones(2))
    with pytest.raises(AttributeError, match=re.escape(ours)):
        getattr(x, name)
    assert not hasattr(x, name)


def test_size_is_numpy_s_and_calling_it_says_shape():
    x = mg.Value(np.ones((2, 3)))
    assert x.size == 6
    with pytest.raises(TypeError, match="shape"):
        x.size()


def test_pytorch_aliases():
    x = mg.Value(np.arange(6.0))
    assert x.view(2, 3).shape == (2, 3)
    assert x.unsqueeze(0).shape == (1, 6)
    y = x.float()
    assert y.dtype == np.float32
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, 2.0)


def test_grad_zero_and_grad_data_say_what_to_type():
    w = mg.Value(np.ones(2))
    (w * 2).sum().backward()
    with pytest.raises(GradientError, match="zero_grad"):
        w.grad.zero_()
    with pytest.raises(GradientError, match="p.grad"):
        w.grad.data -= 1
    assert type(w.grad * 2) is np.ndarray          # arithmetic gives plain arrays
    np.testing.assert_array_equal(w.grad, 2.0)


# --------------------------------------------------------------------------------------------------
# The edge cases other projects' tests found
# --------------------------------------------------------------------------------------------------


def test_exponent_derivative_of_zero_to_a_negative_power_is_minus_infinity_as_pytorch():
    b = mg.Value(np.array([-1.0, 2.0]))
    with np.errstate(divide="ignore"):
        (mg.Value(0.0, requires_grad=False) ** b).sum().backward()
    assert b.grad[0] == -np.inf and b.grad[1] == 0.0


def test_power_at_a_zero_base_next_to_a_non_zero_one():
    a = mg.Value(np.array([0.0, 2.0]))
    (a ** 3.0).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 12.0])
    b = mg.Value(np.array([2.0, 2.0]))
    (mg.Value(np.array([0.0, 3.0]), requires_grad=False) ** b).sum().backward()
    np.testing.assert_allclose(b.grad, [0.0, 9.0 * np.log(3.0)])


@pytest.mark.parametrize("fn", [lambda x: mg.squeeze(x, axis=0), lambda x: mg.softmax(x, axis=0),
                                lambda x: mg.log_softmax(x, axis=0), lambda x: mg.logsumexp(x, axis=0),
                                lambda x: x.sum(axis=0), lambda x: x.max(axis=-1), lambda x: x.mean(axis=0)],
                         ids=["squeeze", "softmax", "log_softmax", "logsumexp", "sum", "max", "mean"])
def test_axis_zero_of_a_zero_d_value_is_accepted_as_numpy_does(fn):
    x = mg.Value(1.5)
    out = fn(x)
    assert out.shape == ()
    out.backward()
    assert np.isfinite(x.grad)


def test_axis_one_of_a_zero_d_value_is_still_refused():
    with pytest.raises(AxisError):
        mg.Value(1.5).sum(axis=1)


def test_an_argument_error_inside_a_forward_comes_out_as_itself():
    with pytest.raises(ArgumentError, match="clip needs"):
        mg.Value(np.ones(3)).clip(None, None)


def test_float16_mean_over_more_elements_than_float16_can_count():
    x = mg.Value(np.ones(70_000, dtype=np.float16))
    m = x.mean()
    assert m.dtype == np.float16 and m.item() == 1.0
    m.backward()
    assert x.grad.dtype == np.float16
    np.testing.assert_allclose(x.grad.astype(np.float64), 1 / 70_000, rtol=1e-2)


def test_len_iteration_and_op():
    x = mg.Value(np.arange(3.0))
    assert len(x) == 3
    parts = list(x)
    assert [p.item() for p in parts] == [0.0, 1.0, 2.0] and parts[1].op == "getitem"
    assert x.op is None and (x * 2).op == "multiply"
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d Value"):
        len(mg.Value(1.0))


def test_requires_grad_without_an_argument_turns_it_on():
    x = mg.Value(1.0, requires_grad=False)
    assert x.requires_grad_() is x and x.requires_grad


def test_a_rule_returning_a_shape_that_does_not_broadcast_back_is_named():
    def twice(x):
        return x * 2
    bad = engine.Primitive(twice, [lambda g, ans, x: np.ones(7)])   # not registered: a stray entry
    x = mg.Value(np.ones(3))
    with pytest.raises(GradientError, match=r"'twice'.*rule for input #0 returned shape \(7,\)"):
        engine.record(bad, (x,)).sum().backward()


# --------------------------------------------------------------------------------------------------
# Methods that ndarray has too take ndarray's arguments, with its defaults
# --------------------------------------------------------------------------------------------------

M = np.random.default_rng(3).uniform(0.1, 0.9, size=(3, 4))     # no ties: argmax and argsort have one answer

# Each Value method that np.ndarray also has, with the fewest arguments that call it: what it returns must
# be what the array's method returns, so a default that differs from numpy's shows.
NDARRAY_CALLS = {
    "item": (M[:1, :1],), "round": (M * 10,), "clip": (M, 0.3, 0.6), "astype": (M, np.float32),
    "sum": (M,), "mean": (M,), "var": (M,), "std": (M,), "prod": (M,), "cumsum": (M,), "cumprod": (M,),
    "argmax": (M,), "argmin": (M,), "any": (M - 0.5,), "all": (M - 0.5,), "argsort": (M,), "max": (M,),
    "min": (M,), "reshape": (M, 2, 6), "view": (M, 6, 2), "transpose": (M,), "flatten": (M,),
    "squeeze": (M[:1],), "ravel": (M,), "swapaxes": (M, 0, 1), "repeat": (M, 2), "take": (M, [5, 0, 11]),
    "diagonal": (M,), "trace": (M,), "dot": (M, M.T),
}


def test_every_method_ndarray_also_has_is_compared_with_it():
    shared = {n for n, v in vars(mg.Value).items() if not n.startswith("_") and callable(v)
              and hasattr(np.ndarray, n)}
    assert shared == set(NDARRAY_CALLS)


@pytest.mark.parametrize("name", sorted(NDARRAY_CALLS))
def test_a_method_with_its_defaults_is_ndarray_s(name):
    data, *args = NDARRAY_CALLS[name]
    got = getattr(mg.Value(data.copy()), name)(*args)
    # Value.view is PyTorch's, reshape's alias (ndarray.view reinterprets the bytes).
    expected = getattr(np.asarray(data), "reshape" if name == "view" else name)(*args)
    got = got.data if isinstance(got, mg.Value) else got
    assert np.shape(got) == np.shape(expected)
    assert np.asarray(got).dtype == np.asarray(expected).dtype
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_a_method_s_defaults_are_those_of_its_table_entry():
    compared = 0
    for name, method in vars(mg.Value).items():
        entry = getattr(engine.TABLE, name, None) if not name.startswith("_") else None
        if not callable(entry) or not callable(method):     # (TABLE.numpy is the table's numpy index)
            continue
        theirs = inspect.signature(getattr(entry, "__wrapped__", entry)).parameters
        for p in inspect.signature(method).parameters.values():
            if p.default is not p.empty and p.name in theirs:
                assert p.default == theirs[p.name].default, f"Value.{name}({p.name}=...)"
                compared += 1
    assert compared > 30


def test_a_star_import_of_the_engine_gives_its_api_and_nothing_it_imported():
    names: dict = {}
    exec("from microgradx.engine import *", names)      # the statement under test
    names.pop("__builtins__")
    assert set(names) == {"Value", "Primitive", "TABLE", "no_grad", "enable_grad", "is_grad_enabled",
                          "detect_anomaly", "as_value", "data_of", "backprop"}
    assert all(getattr(obj, "__module__", engine.__name__) == engine.__name__ for obj in names.values())
