"""Ops defined outside microgradx with ``mg.primitive``: they record, differentiate to second order, pass
the checks of ``microgradx.testing``, and bad definitions or bad rules fail with errors of ours."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import microgradx as mg
from microgradx import ops, user_ops
from microgradx.engine import data_of
from microgradx.errors import ArgumentError, DTypeError, GradientError
from microgradx.testing import GradcheckError, check_op, gradcheck, gradgradcheck

# ---- ops as a user writes them: at module level, rules written with microgradx's ops and operators ----


@mg.primitive(lambda g, ans, x: g / (1 + abs(x)) ** 2, symbol="ss")
def softsign(x):
    """x / (1 + |x|);  d/dx = g / (1 + |x|)**2"""
    return x / (1 + np.abs(x))


@mg.primitive(lambda g, ans, a, b: g * (b + 1),
              lambda g, ans, a, b: g * a)
def mul_add(a, b):
    """a * b + a;  d/da = g * (b + 1),  d/db = g * a"""
    return a * b + a


@mg.primitive(lambda g, ans, x, factor=2.0: g * factor * mg.cos(x))
def scaled_sin(x, factor=2.0):
    """factor * sin(x);  d/dx = g * factor * cos(x)"""
    return factor * np.sin(x)


@mg.primitive(lambda g, ans, x: g / (1 + abs(x)))     # BUG on purpose: the square is missing
def softsign_wrong(x):
    """x / (1 + |x|), with a wrong rule"""
    return x / (1 + np.abs(x))


@mg.primitive(lambda g, ans, x: g * np.cos(data_of(x)))   # numpy on raw data: first derivatives only
def sin_first_order(x):
    """sin(x);  d/dx = g * cos(x), computed from raw data"""
    return np.sin(x)


X = np.array([-2.0, 0.5, 3.0])


def softsign_grad(x):
    return 1 / (1 + np.abs(x)) ** 2


# ---- recording like a built-in ----------------------------------------------------------------------

def test_a_user_op_records_and_backward_uses_its_rule():
    x = mg.Value(X)
    y = softsign(x)
    assert isinstance(y, mg.Value) and y.op == "softsign" and y.parents == (x,)
    np.testing.assert_allclose(y.data, X / (1 + np.abs(X)))
    (y * 2).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * softsign_grad(X))


def test_on_plain_arrays_it_is_numpy_and_under_no_grad_a_constant():
    assert isinstance(softsign(X), np.ndarray)
    with mg.no_grad():
        assert not softsign(mg.Value(X)).requires_grad


def test_binary_user_op_broadcasts_and_mixes_with_operators_and_constants():
    a, b = mg.Value(np.array([1.0, 2.0, 3.0])), mg.Value(np.array([[1.0], [-1.0]]))
    out = mul_add(a, b) + 3 * mul_add(a, 2.0)
    assert out.shape == (2, 3)
    out.sum().backward()
    np.testing.assert_allclose(a.grad, (b.data + 1).sum() + 2 * 3 * 3)
    np.testing.assert_allclose(b.grad, np.full((2, 1), a.data.sum()))


def test_parameters_reach_the_rule():
    x = mg.Value(X)
    scaled_sin(x, factor=3.0).sum().backward()
    np.testing.assert_allclose(x.grad, 3 * np.cos(X))


def test_under_grad_hessian_hvp_and_create_graph():
    f = lambda x: softsign(x).sum()                       # noqa: E731
    np.testing.assert_allclose(mg.grad(f)(X), softsign_grad(X))
    second = -2 * np.sign(X) / (1 + np.abs(X)) ** 3     # d/dx of 1 / (1 + |x|)**2
    np.testing.assert_allclose(mg.hessian(f)(X), np.diag(second))
    v = np.array([1.0, -1.0, 0.5])
    np.testing.assert_allclose(mg.hvp(f)(X, v), second * v)
    x = mg.Value(X)
    f(x).backward(create_graph=True)
    assert isinstance(x.grad, mg.Value)
    g = x.grad
    x.zero_grad()
    g.sum().backward()
    np.testing.assert_allclose(x.grad, second)


def test_gradcheck_and_gradgradcheck_pass_a_right_rule_and_catch_a_wrong_one():
    assert gradcheck(softsign, X) and gradgradcheck(softsign, X)
    assert gradcheck(mul_add, X, X[::-1]) and gradgradcheck(mul_add, X, X[::-1])
    with pytest.raises(GradcheckError, match="softsign_wrong: input #0"):
        gradcheck(softsign_wrong, X)


def test_the_drawing_shows_the_op_by_its_symbol_and_name():
    source = softsign(mg.Value(X)).draw().source
    assert 'label="ss"' in source and "softsign" not in source
    assert 'label="mul_add"' in mul_add(mg.Value(X), X).draw().source


def test_a_graph_with_a_user_op_pickles_and_differentiates_again():
    x = mg.Value(X)
    twin = pickle.loads(pickle.dumps(softsign(x).sum()))
    assert twin._x._op is softsign
    twin.backward()
    np.testing.assert_allclose(twin._x._x.grad, softsign_grad(X))


def test_unpickling_in_a_new_process_imports_the_module_that_defines_the_op(tmp_path):
    x = mg.Value(X)
    stored = tmp_path / "graph.pkl"
    stored.write_bytes(pickle.dumps(softsign(x).sum()))
    code = ("import json, pickle, sys; out = pickle.loads(open(sys.argv[1], 'rb').read()); out.backward(); "
            "print(out._x.op, json.dumps(out._x._x.grad.tolist()))")
    done = subprocess.run([sys.executable, "-c", code, str(stored)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, timeout=120)
    assert done.returncode == 0, done.stderr
    op, grad = done.stdout.split(" ", 1)
    assert op == "softsign" and softsign.defined_in == "test_user_ops"
    np.testing.assert_allclose(json.loads(grad), softsign_grad(X))


def test_user_ops_stay_out_of_the_table_of_built_ins():
    assert "softsign" not in ops.PRIMITIVES and user_ops.USER_OPS["softsign"] is softsign
    assert repr(softsign) == "<user primitive softsign>"


# ---- the one-line property test ---------------------------------------------------------------------

def test_check_op_passes_right_rules():
    check_op(softsign, avoid=(0.0,))        # |x| has a kink at 0: its second derivative jumps there
    check_op(mul_add, max_examples=10)
    check_op(scaled_sin, shapes=[(2, 3)], params={"factor": 0.5}, max_examples=5)


def test_check_op_catches_a_wrong_rule():
    with pytest.raises(GradcheckError, match="softsign_wrong"):
        check_op(softsign_wrong, avoid=(0.0,), max_examples=10)


def test_check_op_catches_a_rule_without_second_derivatives_unless_told_first_order():
    with pytest.raises(GradcheckError, match="gradient of sin_first_order"):
        check_op(sin_first_order, max_examples=10)
    check_op(sin_first_order, order=1, max_examples=5)


def test_check_op_refuses_what_it_cannot_draw_for():
    with pytest.raises(ArgumentError, match="shapes="):
        check_op(lambda x: x * 2)
    with pytest.raises(ArgumentError, match="one input of shape"):
        check_op(softsign, shapes=[3])
    with pytest.raises(ArgumentError, match="order"):
        check_op(softsign, order=3)
    masked = mg.primitive(None, lambda g, ans, m, x: g * m, name="masked")(lambda m, x: m * x)
    try:
        with pytest.raises(ArgumentError, match="input #0 of masked takes no gradient"):
            check_op(masked)
        assert gradcheck(lambda x: masked(np.array([1.0, 0.0]), x), np.array([2.0, 3.0]))
    finally:
        user_ops.unregister(masked)


def test_microgradx_testing_imports_hypothesis_only_when_asked():
    code = "import sys, microgradx.testing; assert 'hypothesis' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


# ---- definitions that are refused ---------------------------------------------------------------------

@pytest.fixture
def scratch():
    """Names of ops a test defines, unregistered after it."""
    names: list[str] = []
    yield names
    for name in names:
        if name in user_ops.USER_OPS:
            user_ops.unregister(name)


@pytest.mark.parametrize("name", ["exp", "multiply", "softplus", "logsumexp"])
def test_a_built_in_name_is_refused(name):
    with pytest.raises(ArgumentError, match=f"'{name}' is a built-in op"):
        mg.primitive(lambda g, ans, x: g, name=name)(lambda x: x)
    assert name not in user_ops.USER_OPS


def test_a_taken_user_name_is_refused_but_the_same_definition_again_replaces(scratch):
    def define(rule):
        @mg.primitive(rule, name="twice")
        def forward(x):
            return 2 * x
        return forward

    scratch.append("twice")
    first = define(lambda g, ans, x: g * 2)
    second = define(lambda g, ans, x: g * 2)      # the same code run again, as a notebook cell
    assert user_ops.USER_OPS["twice"] is second is not first
    with pytest.raises(ArgumentError, match="'twice' is already defined"):
        mg.primitive(lambda g, ans, x: g, name="twice")(lambda x: x)


def test_a_numpy_function_a_built_in_stands_for_is_refused(scratch):
    with pytest.raises(ArgumentError, match="already records 'exp'"):
        mg.primitive(lambda g, ans, x: g * ans, name="my_exp", numpy=np.exp)(lambda x: np.exp(x))
    scratch.append("degrees_to_radians")

    @mg.primitive(lambda g, ans, x: g * (np.pi / 180), name="degrees_to_radians", numpy=np.deg2rad)
    def to_radians(x):
        return np.deg2rad(x)

    x = mg.Value(np.array([90.0, 180.0]))
    y = np.deg2rad(x)                    # numpy's own function on a Value records the user op
    assert y.op == "degrees_to_radians"
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, np.pi / 180))
    user_ops.unregister(to_radians)
    with pytest.raises(ArgumentError, match="would not record a gradient"):
        np.deg2rad(mg.Value(np.array([1.0])))


@pytest.mark.parametrize("define, match", [
    (lambda: mg.primitive(), "one derivative rule per input"),
    (lambda: mg.primitive(lambda g, ans, a, b: g, lambda g, ans, a, b: g)(lambda x: x), "2 rules"),
    (lambda: mg.primitive(lambda g, x: g)(lambda x: x), r"must take \(g, ans, x\)"),
    (lambda: mg.primitive(lambda g, ans, x: g)(lambda x, axis=0: x), r"axis=\.\.\."),
    (lambda: mg.primitive("g * 2")(lambda x: x), "not a function"),
])
def test_a_malformed_definition_is_refused_when_made(define, match):
    with pytest.raises(ArgumentError, match=match):
        define()


def test_unregistering_an_unknown_op_says_so():
    with pytest.raises(ArgumentError, match="no user op 'nothing'"):
        user_ops.unregister("nothing")


def test_pickling_needs_the_op_registered(scratch):
    scratch.append("cube")

    @mg.primitive(lambda g, ans, x: 3 * g * x ** 2, name="cube")
    def cube(x):
        return x ** 3

    out = cube(mg.Value(2.0))
    stored = pickle.dumps(out)
    user_ops.unregister(cube)
    with pytest.raises(pickle.PicklingError, match="'cube' is not the one registered"):
        pickle.dumps(out)
    with pytest.raises(pickle.UnpicklingError, match="user op 'cube'.*not registered in this process"):
        pickle.loads(stored)
    out.backward()                     # a recorded graph keeps its op
    assert out._x.grad == 12.0


# ---- rules and forwards that go wrong ---------------------------------------------------------------

def bad_op(rule, name):
    return mg.primitive(rule, name=name)(lambda x: x * 2)


@pytest.mark.parametrize("rule, match", [
    (lambda g, ans, x: 1.0, "returned a Python float, not an array"),
    (lambda g, ans, x: None, "returned None; put None in place of the rule"),
    (lambda g, ans, x: [1.0, 2.0, 3.0], "returned a list"),
    (lambda g, ans, x: (g > 0), "returned dtype bool"),
    (lambda g, ans, x: g.sum(), r"returned shape \(\) for an input of shape \(3,\)"),
    (lambda g, ans, x: np.ones((2, 3)), r"axis 0 is neither the input's nor one of the output's"),
    (lambda g, ans, x: np.ones(4), r"shape \(4,\), which does not broadcast"),
    (lambda g, ans, x: g @ g, r"returned shape \(\)"),
])
def test_a_wrong_gradient_names_the_op_and_the_input(rule, match, scratch):
    scratch.append("bad")
    op = bad_op(rule, "bad")
    with pytest.raises(GradientError, match="user op 'bad', the rule for input #0 \\('x'\\)") as e:
        op(mg.Value(X)).sum().backward()
    assert e.match(match)


def test_a_rule_that_raises_names_the_op_and_keeps_the_cause(scratch):
    scratch.append("bad")
    op = bad_op(lambda g, ans, x: g @ np.ones((5, 5)), "bad")
    with pytest.raises(GradientError, match="user op 'bad', the rule for input #0 .* raised ValueError") as e:
        op(mg.Value(X)).sum().backward()
    assert e.value.__cause__ is not None


def test_a_rule_that_drops_the_graph_under_create_graph_is_refused(scratch):
    scratch.append("bad")
    op = bad_op(lambda g, ans, x: np.asarray(data_of(g)) * 2, "bad")
    x = mg.Value(X)
    (op(x) ** 2).sum().backward()            # an ordinary backward is fine
    np.testing.assert_allclose(x.grad, 8 * X)
    with pytest.raises(GradientError, match="cannot be differentiated again"):
        mg.hessian(lambda x: (op(x) ** 2).sum())(X)


def test_a_gradient_that_keeps_the_outputs_broadcast_axes_is_summed_back(scratch):
    scratch.append("spread")

    @mg.primitive(lambda g, ans, x: g, name="spread")     # g has the output's shape, (2, 3)
    def spread(x):
        return np.broadcast_to(x, (2, 3)) * 1.0

    x = mg.Value(np.array([[1.0, 2.0, 3.0]]))
    spread(x).sum().backward()
    np.testing.assert_allclose(x.grad, np.full((1, 3), 2.0))


@pytest.mark.parametrize("forward, match", [
    (lambda x: [1.0], "returned a list"),
    (lambda x: 1.5, "returned a float"),
    (lambda x: np.arange(3), "returned an array of dtype int64"),
])
def test_a_forward_that_returns_no_float_array_names_the_op(forward, match, scratch):
    scratch.append("bad_forward")
    op = mg.primitive(lambda g, ans, x: g, name="bad_forward")(forward)
    with pytest.raises(DTypeError, match=f"user op 'bad_forward': its forward {match}"):
        op(mg.Value(X))


def test_a_0d_result_is_a_numpy_scalar_as_numpy_s_own(scratch):
    scratch.append("total")
    total = mg.primitive(lambda g, ans, x: g * np.ones_like(x), name="total")(lambda x: np.asarray(np.sum(x)))
    out = total(mg.Value(X))
    assert isinstance(out.data, np.generic) and out.item() == pytest.approx(X.sum())
    out.backward()
