"""Numerics at the edges of floating point, and anomaly mode, which says where a NaN or inf was born.

The conventions are IEEE 754's, as numpy computes them; PyTorch documents and returns the same values
(torch is not installed for the tests, so the expected values are written down here):

==================  ===========  ===========================================  ==========================
expression          value        derivative                                   PyTorch's rule
==================  ===========  ===========================================  ==========================
exp(1000)           inf          inf                                          grad * result
exp(-1000)          0            0                                            grad * result
log(0)              -inf         inf                                          grad / self
log(-1)             nan          -1                                           grad / self
1 / 0               inf          d/da = inf, d/db = -inf                      grad / other,
0 / 0               nan          d/da = inf, d/db = nan                         -grad * self / other**2
sqrt(0)             0            inf                                          grad / (2 * result)
sqrt(-1)            nan          nan                                          grad / (2 * result)
0 ** 0              1            d/dbase = 0, d/dexponent = 0                 masked where exponent == 0
                                                                              (base) and where base == 0
                                                                              and exponent >= 0 (exponent)
0 ** 2, 0 ** 0.5    0            d/dbase = 0 and inf; d/dexponent = 0         as above
tanh(+-1000)        +-1          0                                            grad * (1 - result**2)
sigmoid(1000)       1            0                                            grad * s * (1 - s)
sigmoid(-1000)      0            0
softplus(1000)      1000         1                                            softplus returns x above
softplus(-1000)     0            0                                            its threshold (20)
==================  ===========  ===========================================  ==========================

Floating-point warnings: microgradx neither hides nor adds any. An op that overflows, divides by zero or
leaves the domain (exp(1000), log(0), 1 / 0) emits numpy's own ``RuntimeWarning``, governed like any
numpy code by ``np.errstate`` / ``np.seterr`` (silenced with ``all="ignore"``, a ``FloatingPointError``
with ``all="raise"``); the stable ops (tanh, sigmoid, softplus, logsumexp, softmax, log_softmax) emit none
for any finite input. Division by a zero Python number never raises ``ZeroDivisionError``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import microgradx as mg
from microgradx import AnomalyError, MicrogradxError

HERE = Path(__file__).name
FLOATS = [np.float32, np.float64]


def value_and_grad(f, *inputs, dtype=np.float64):
    """f's value and its gradient w.r.t. each input, computed with backward(), warnings silenced."""
    xs = [mg.Value(np.asarray(x, dtype=dtype)) for x in inputs]
    with np.errstate(all="ignore"):
        out = f(*xs)
        out.sum().backward()
    return out.data, [x.grad for x in xs]


def same(actual, expected) -> bool:
    """Equal, with NaN equal to NaN and inf's sign respected."""
    return bool(np.array_equal(np.asarray(actual), np.asarray(expected), equal_nan=True))


# --------------------------------------------------------------------------------------------------
# Values and derivatives at the edges
# --------------------------------------------------------------------------------------------------

EDGES = [
    # name, f on Values, the same on numpy scalars, inputs, value, derivatives
    ("exp(1000)", lambda x: x.exp(), np.exp, [1000.0], np.inf, [np.inf]),
    ("exp(-1000)", lambda x: x.exp(), np.exp, [-1000.0], 0.0, [0.0]),
    ("log(0)", lambda x: x.log(), np.log, [0.0], -np.inf, [np.inf]),
    ("log(-1)", lambda x: x.log(), np.log, [-1.0], np.nan, [-1.0]),
    ("1/0", lambda a, b: a / b, np.divide, [1.0, 0.0], np.inf, [np.inf, -np.inf]),
    ("-1/0", lambda a, b: a / b, np.divide, [-1.0, 0.0], -np.inf, [np.inf, np.inf]),
    ("0/0", lambda a, b: a / b, np.divide, [0.0, 0.0], np.nan, [np.inf, np.nan]),
    ("sqrt(0)", lambda x: x.sqrt(), np.sqrt, [0.0], 0.0, [np.inf]),
    ("sqrt(-1)", lambda x: x.sqrt(), np.sqrt, [-1.0], np.nan, [np.nan]),
    ("0**0 (int)", lambda x: x ** 0, lambda x: np.power(x, 0), [0.0], 1.0, [0.0]),
    ("0**0.0", lambda x: x ** 0.0, lambda x: np.power(x, 0.0), [0.0], 1.0, [0.0]),
    ("0**y, y=0", lambda x, y: x ** y, np.power, [0.0, 0.0], 1.0, [0.0, 0.0]),
    ("0**2", lambda x: x ** 2, np.square, [0.0], 0.0, [0.0]),
    ("0**y, y=2", lambda x, y: x ** y, np.power, [0.0, 2.0], 0.0, [0.0, 0.0]),
    ("0**0.5", lambda x: x ** 0.5, np.sqrt, [0.0], 0.0, [np.inf]),
    ("tanh(1000)", lambda x: x.tanh(), np.tanh, [1000.0], 1.0, [0.0]),
    ("tanh(-1000)", lambda x: x.tanh(), np.tanh, [-1000.0], -1.0, [0.0]),
    ("sigmoid(1000)", lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), [1000.0], 1.0, [0.0]),
    ("sigmoid(-1000)", lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), [-1000.0], 0.0, [0.0]),
    ("softplus(1000)", mg.softplus, lambda x: np.logaddexp(0.0, x), [1000.0], 1000.0, [1.0]),
    ("softplus(-1000)", mg.softplus, lambda x: np.logaddexp(0.0, x), [-1000.0], 0.0, [0.0]),
]
IDS = [e[0] for e in EDGES]


@pytest.mark.parametrize("dtype", FLOATS, ids=["float32", "float64"])
@pytest.mark.parametrize("name, f, reference, inputs, value, derivatives", EDGES, ids=IDS)
def test_value_and_derivative_at_the_edge(name, f, reference, inputs, value, derivatives, dtype):
    out, grads = value_and_grad(f, *inputs, dtype=dtype)
    assert same(out, value), f"{name} = {out!r}, expected {value!r}"
    assert out.dtype == dtype
    for i, (g, expected) in enumerate(zip(grads, derivatives, strict=True)):
        assert same(g, expected), f"d({name})/d(input {i}) = {g!r}, expected {expected!r}"


@pytest.mark.parametrize("name, f, reference, inputs, value, derivatives", EDGES, ids=IDS)
def test_the_expected_values_are_numpys(name, f, reference, inputs, value, derivatives):
    # The table above is not ours to choose: it is what numpy computes (the naive sigmoid and softplus
    # included, where numpy warns about an overflow but still lands on the same value).
    with np.errstate(all="ignore"):
        assert same(reference(*[np.float64(x) for x in inputs]), value)


def test_division_by_a_zero_python_number_follows_ieee_not_python():
    # Python's 1.0 / 0 raises ZeroDivisionError; numpy and PyTorch return inf. So do we, on either side.
    with np.errstate(all="ignore"):
        assert mg.Value(1.0) / 0 == np.inf
        assert 1 / mg.Value(0.0) == np.inf
        assert mg.Value(0.0) ** -1 == np.inf
        assert 0.0 ** mg.Value(-1.0) == np.inf
        assert 0 ** mg.Value(-1.0) == np.inf
        assert np.isnan((mg.Value(0.0) / 0).data)


@pytest.mark.parametrize("exponent", [np.array([0.0, 0.0]), np.array([0.0, 2.0]), "value"],
                         ids=["array-zeros", "array-mixed", "value-exponent"])
def test_derivative_of_zero_to_an_array_exponent_holding_zero_is_zero(exponent):
    x = mg.Value([0.0, 0.0])
    e = mg.Value([0.0, 0.0]) if isinstance(exponent, str) else exponent
    with np.errstate(all="ignore"):
        (x ** e).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_derivative_of_zero_to_the_zero_is_zero_in_nested_grad():
    # Inputs that require grad make grad() record its backward pass (create_graph), as in grad(grad(f)).
    with np.errstate(all="ignore"):
        g = mg.grad(lambda x, y: x ** y)(mg.Value(0.0), mg.Value(0.0))
    assert g.item() == 0.0


# --------------------------------------------------------------------------------------------------
# The stable ops stay finite and quiet for large inputs
# --------------------------------------------------------------------------------------------------

STABLE = [
    # name, f, input, value, gradient of the sum
    ("logsumexp(+1000)", mg.logsumexp, [1000.0, 1000.0], 1000.0 + np.log(2.0), [0.5, 0.5]),
    ("logsumexp(-1000)", mg.logsumexp, [-1000.0, -1000.0], -1000.0 + np.log(2.0), [0.5, 0.5]),
    ("logsumexp(+-1000)", mg.logsumexp, [1000.0, -1000.0], 1000.0, [1.0, 0.0]),
    ("log_softmax(+-1000)", mg.log_softmax, [1000.0, -1000.0], [0.0, -2000.0], [-1.0, 1.0]),
    ("softmax(+-1000)", mg.softmax, [1000.0, -1000.0], [1.0, 0.0], [0.0, 0.0]),
    ("sigmoid(+-1000)", lambda x: x.sigmoid(), [1000.0, -1000.0], [1.0, 0.0], [0.0, 0.0]),
    ("tanh(+-1000)", lambda x: x.tanh(), [1000.0, -1000.0], [1.0, -1.0], [0.0, 0.0]),
    ("softplus(+-1000)", mg.softplus, [1000.0, -1000.0], [1000.0, 0.0], [1.0, 0.0]),
]


@pytest.mark.parametrize("dtype", FLOATS, ids=["float32", "float64"])
@pytest.mark.parametrize("name, f, x, value, gradient", STABLE, ids=[s[0] for s in STABLE])
def test_stable_ops_are_finite_exact_and_warn_nothing_at_1000(name, f, x, value, gradient, dtype):
    v = mg.Value(np.array(x, dtype=dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # any RuntimeWarning (overflow, 0 * inf) fails the test
        out = f(v)
        out.sum().backward()
    assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(v.grad))
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, value, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(v.grad, gradient, atol=tolerance)
    assert out.dtype == dtype and v.grad.dtype == dtype


# --------------------------------------------------------------------------------------------------
# Floating-point warnings: numpy's own, governed by np.errstate
# --------------------------------------------------------------------------------------------------

WARNS = [
    ("exp", lambda x: x.exp(), 1000.0, "overflow"),
    ("log", lambda x: x.log(), 0.0, "divide by zero"),
    ("log", lambda x: x.log(), -1.0, "invalid value"),
    ("divide", lambda x: 1.0 / x, 0.0, "divide by zero"),
    ("divide", lambda x: x / x, 0.0, "invalid value"),
    ("sqrt", lambda x: x.sqrt(), -1.0, "invalid value"),
]


@pytest.mark.parametrize("op, f, x, kind", WARNS, ids=[f"{w[0]}({w[2]})" for w in WARNS])
def test_forward_warns_as_numpy_does(op, f, x, kind):
    with pytest.warns(RuntimeWarning, match=kind):
        f(mg.Value(np.array([x])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="ignore"):
            f(mg.Value(np.array([x])))             # silenced like any numpy code
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        f(mg.Value(np.array([x])))


def test_backward_follows_np_errstate_too():
    x = mg.Value(np.array([0.0, 4.0]))
    y = x.sqrt().sum()                              # finite forward; d sqrt/dx at 0 is 1 / 0
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        y.backward()
    assert np.isposinf(x.grad[0]) and x.grad[1] == 0.25
    x.zero_grad()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("error")
        y.backward()
    assert np.isposinf(x.grad[0])


# --------------------------------------------------------------------------------------------------
# Anomaly mode
# --------------------------------------------------------------------------------------------------

# Each lambda is on a line of its own: the error must name that line, where the user made the op.
FORWARD_ANOMALIES = [
    ("log", "inf", 0.0, lambda x: x.log()),
    ("log", "NaN", -1.0, lambda x: x.log()),
    ("divide", "inf", 0.0, lambda x: 1.0 / x),
    ("divide", "NaN", 0.0, lambda x: x / x),
    ("exp", "inf", 1000.0, lambda x: x.exp()),
    ("sqrt", "NaN", -1.0, lambda x: x.sqrt()),
    ("power", "inf", 0.0, lambda x: x ** -1.0),
    ("multiply", "inf", 1e300, lambda x: x * x),
    ("subtract", "NaN", np.inf, lambda x: x - x),
]


def site(f) -> str:
    return f"{HERE}:{f.__code__.co_firstlineno}"


@pytest.mark.parametrize("op, kind, x, f", FORWARD_ANOMALIES,
                         ids=[f"{a[0]}-{a[1]}" for a in FORWARD_ANOMALIES])
def test_anomaly_mode_names_the_forward_op_and_the_users_line(op, kind, x, f):
    v = mg.Value(np.array([1.0, x]))
    with np.errstate(all="ignore"), pytest.raises(AnomalyError) as info, mg.detect_anomaly():
        f(v)
    message = str(info.value)
    assert f"forward of '{op}'" in message and kind in message and site(f) in message, message
    assert isinstance(info.value, FloatingPointError) and isinstance(info.value, MicrogradxError)


BACKWARD_ANOMALIES = [
    # op, kind, inputs, f: the forward pass is finite everywhere; only a derivative is not
    ("sqrt", "inf", [0.0, 4.0], lambda x: x.sqrt()),
    ("sqrt", "inf", [-1.0, 4.0], lambda x: x.relu().sqrt()),     # relu's 0 * inf would be the NaN
    ("power", "inf", [0.0, 4.0], lambda x: x ** 0.5),
    ("log", "inf", [1e-320, 1.0], lambda x: x.log()),          # a subnormal: 1 / x overflows
    ("divide", "inf", [1e-160, 1.0], lambda x: 1e-10 / x),     # d/dx = -1e-10 / x**2 overflows
]


@pytest.mark.parametrize("op, kind, inputs, f", BACKWARD_ANOMALIES,
                         ids=[f"{a[0]}-{i}" for i, a in enumerate(BACKWARD_ANOMALIES)])
def test_anomaly_mode_names_the_op_whose_derivative_is_not_finite(op, kind, inputs, f):
    x = mg.Value(np.array(inputs))
    with np.errstate(all="ignore"), mg.detect_anomaly():
        y = f(x)
        assert np.all(np.isfinite(y.data))
        loss = y.sum()
        with pytest.raises(AnomalyError) as info:
            loss.backward()
    message = str(info.value)
    assert f"backward of '{op}'" in message and kind in message and site(f) in message, message


def test_anomaly_mode_in_backward_names_the_op_of_a_graph_built_outside_it():
    x = mg.Value(np.array([0.0, 4.0]))
    y = x.sqrt().sum()                              # built without anomaly mode: no line recorded
    with np.errstate(all="ignore"), mg.detect_anomaly():
        with pytest.raises(AnomalyError, match="backward of 'sqrt'"):
            y.backward()


def test_without_anomaly_mode_the_nan_passes_silently_as_in_pytorch():
    x = mg.Value(np.array([-1.0, 4.0]))
    with np.errstate(all="ignore"):
        x.relu().sqrt().sum().backward()           # relu's derivative 0 times sqrt's inf
    assert np.isnan(x.grad[0]) and x.grad[1] == 0.25


def test_anomaly_mode_leaves_healthy_computations_alone_and_switches_off_after_an_error():
    def f(x):
        return (mg.log_softmax(x * 3.0) ** 2).sum() + x.exp().mean()

    expected = mg.grad(f)(np.array([0.5, -1.0, 2.0]))
    with mg.detect_anomaly():
        got = mg.grad(f)(np.array([0.5, -1.0, 2.0]))
    np.testing.assert_array_equal(got, expected)
    with np.errstate(all="ignore"), pytest.raises(AnomalyError), mg.detect_anomaly():
        mg.Value(0.0).log()
    with np.errstate(all="ignore"):
        assert mg.Value(0.0).log().data == -np.inf  # anomaly mode is off again


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x", [-2.5, -0.0, 0.0, 3.0, np.inf, -np.inf, np.nan])
def test_relu_of_a_numpy_scalar_matches_np_maximum(x, dtype):
    # Scalar code takes a shortcut around np.maximum: same value, same type, NaN kept.
    x = dtype(x)
    got, expected = mg.ops.relu(x), np.maximum(x, 0)
    assert type(got) is type(expected)
    np.testing.assert_array_equal(got, expected)


def test_softplus_is_accurate_to_a_few_ulp_around_zero():
    # Each branch is used where it is accurate: log(1 + exp(x)) for x <= 0, x + log(1 + exp(-x)) above.
    # (The second one on (-1, 0) is off by up to 4 ulp.) The reference is computed in extended precision.
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("no extended precision on this platform")
    x = np.linspace(-1.0, 1.0, 20001)
    got = mg.softplus(x).data
    reference = np.log1p(np.exp(x.astype(np.longdouble)))
    assert np.max(np.abs(got - reference) / np.spacing(got)) < 3
