"""Optimizers on problems with known minima, their exact update formulas, dtypes, validation and state."""

from __future__ import annotations

import numpy as np
import pytest

import microgradx as mg
from microgradx import nn
from microgradx.optim import SGD, Adam

# f(x) = 0.5 * sum(a * (x - c)**2): minimum at x = c; with L2 weight decay wd the gradient is
# a * (x - c) + wd * x, which vanishes at x = a * c / (a + wd).
A = np.array([1.0, 2.0, 0.5])
C = np.array([3.0, -1.0, 2.0])


def _quadratic(x: mg.Value) -> mg.Value:
    d = x - C
    return 0.5 * (A * d * d).sum()


def _minimise(opt_factory, steps: int, dtype=np.float64) -> np.ndarray:
    x = mg.Value(np.zeros(3, dtype=dtype))
    opt = opt_factory([x])
    for _ in range(steps):
        opt.zero_grad()
        _quadratic(x).backward()
        opt.step()
    return x.data


@pytest.mark.parametrize("factory, steps", [
    (lambda p: SGD(p, lr=0.5), 200),
    (lambda p: SGD(p, lr=0.1, momentum=0.9), 500),
    (lambda p: Adam(p, lr=0.05), 2000),
], ids=["sgd", "sgd-momentum", "adam"])
def test_converges_to_the_known_minimum(factory, steps):
    np.testing.assert_allclose(_minimise(factory, steps), C, atol=1e-4)


@pytest.mark.parametrize("factory", [
    lambda p: SGD(p, lr=0.5, weight_decay=0.3),
    lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.3),
    lambda p: Adam(p, lr=0.05, weight_decay=0.3),
], ids=["sgd", "sgd-momentum", "adam"])
def test_weight_decay_shifts_the_minimum_by_the_known_amount(factory):
    np.testing.assert_allclose(_minimise(factory, 3000), A * C / (A + 0.3), atol=1e-4)


def test_sgd_step_is_exactly_p_minus_lr_g():
    x = mg.Value(np.array([1.0, -2.0]))
    (x * np.array([3.0, 4.0])).sum().backward()     # grad = [3, 4]
    SGD([x], lr=0.1).step()
    np.testing.assert_array_equal(x.data, np.array([1.0, -2.0]) - 0.1 * np.array([3.0, 4.0]))


def test_momentum_follows_pytorchs_formula():
    # b = mu * b + g; p -= lr * b; with a constant gradient g = 1: b = 1, 1.9, 2.71.
    x = mg.Value(np.array([0.0]))
    opt = SGD([x], lr=1.0, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        x.sum().backward()
        opt.step()
    np.testing.assert_allclose(x.data, [-(1 + 1.9 + 2.71)])


def test_adam_first_step_moves_each_weight_by_lr():
    # With bias correction, Adam's first step is lr * g / (|g| + eps): lr in the direction of -g.
    x = mg.Value(np.array([1.0, 1.0, 1.0]))
    (x * np.array([100.0, -0.01, 3.0])).sum().backward()
    Adam([x], lr=0.1).step()
    np.testing.assert_allclose(x.data, [0.9, 1.1, 0.9], rtol=1e-6)


@pytest.mark.parametrize("factory", [lambda p: SGD(p, lr=0.1, momentum=0.5, weight_decay=0.1),
                                     lambda p: Adam(p, lr=0.01, weight_decay=0.1)], ids=["sgd", "adam"])
def test_float32_stays_float32_and_arrays_are_updated_in_place(factory):
    model = nn.MLP(4, [3, 1], rng=0)
    arrays = [p.data for p in model.parameters()]
    opt = factory(model.parameters())
    for _ in range(3):
        opt.zero_grad()
        model(np.ones((2, 4), dtype=np.float32)).sum().backward()
        opt.step()
    for p, arr in zip(model.parameters(), arrays, strict=True):
        assert p.data is arr and p.dtype == np.float32
    for buffers in opt.state_dict()["slots"].values():
        assert all(b.dtype == np.float32 for b in buffers)


def test_a_zero_dimensional_parameter_is_updated_too():
    x = mg.Value(np.float32(2.0))
    (x * x).backward()
    SGD([x], lr=0.25).step()
    assert x.item() == 1.0 and x.dtype == np.float32


@pytest.mark.parametrize("factory", [lambda p: SGD(p, lr=0.1), lambda p: Adam(p, lr=0.1)],
                         ids=["sgd", "adam"])
@pytest.mark.parametrize("shape", [(3,), ()], ids=["array", "0-d"])
def test_a_step_is_an_in_place_change_that_older_graphs_refuse(factory, shape):
    # The step edits the parameter's own array; a graph recorded from the data before it must not
    # differentiate with the new data (x * x's rule reads x), and one recorded after it still does.
    x = mg.Value(np.full(shape, 2.0))
    opt = factory([x])
    (x * x).sum().backward()
    stale = (x * x).sum()
    opt.step()
    assert not np.array_equal(x.data, np.full(shape, 2.0))
    with pytest.raises(mg.errors.GradientError, match="changed in place"):
        stale.backward()
    opt.zero_grad()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_zero_grad_and_shared_parameters_are_stepped_once():
    x = mg.Value(np.array([1.0]))
    opt = SGD([x, x], lr=1.0)           # the same Value twice: one parameter
    assert len(opt.params) == 1
    x.sum().backward()
    opt.step()
    assert x.data[0] == 0.0
    opt.zero_grad()
    assert x.grad[0] == 0.0


@pytest.mark.parametrize("factory", [lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
                                     lambda p: Adam(p, lr=0.1, weight_decay=0.1)], ids=["sgd", "adam"])
def test_a_parameter_without_a_gradient_is_left_alone(factory):
    # As in PyTorch: neither weight decay nor momentum moves a frozen parameter, nor one the loss of
    # this step did not use (its gradient was cleared by zero_grad and nothing refilled it).
    used, unused = mg.Value(np.array([1.0, -2.0])), mg.Value(np.array([3.0]))
    frozen = mg.Value(np.array([4.0]), requires_grad=False)
    opt = factory([used, unused, frozen])
    (used * unused).sum().backward()      # step 1 uses both
    opt.step()
    after_first = unused.data.copy()
    assert not np.array_equal(after_first, [3.0])
    for _ in range(3):                    # later steps use only `used`
        opt.zero_grad()
        (used * used).sum().backward()
        opt.step()
    np.testing.assert_array_equal(unused.data, after_first)
    np.testing.assert_array_equal(frozen.data, [4.0])


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr=0), "lr must be a positive"),
    (lambda p: SGD(p, lr=-0.1), "lr must be a positive"),
    (lambda p: SGD(p, lr=float("nan")), "lr must be a positive"),
    (lambda p: SGD(p, lr="0.1"), "lr must be a positive"),
    (lambda p: SGD(p, lr=0.1, momentum=1.0), r"momentum must be in \[0.0, 1.0\)"),
    (lambda p: SGD(p, lr=0.1, weight_decay=-1), "weight_decay must be a non-negative"),
    (lambda p: Adam(p, betas=(0.9, 1.0)), r"betas\[1\] must be in"),
    (lambda p: Adam(p, betas=0.9), "betas must be a pair"),
    (lambda p: Adam(p, eps=0), "eps must be a positive"),
    (lambda p: SGD([], lr=0.1), "empty parameter list"),
])
def test_bad_arguments_are_refused_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make([mg.Value(np.zeros(2))])


def test_non_parameters_are_refused():
    with pytest.raises(TypeError, match="every parameter must be a Value"):
        SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="single Value"):
        SGD(mg.Value(np.zeros(2)), lr=0.1)
    x = mg.Value(np.zeros(2))
    with pytest.raises(ValueError, match="made by an op"):
        SGD([x * 2], lr=0.1)


@pytest.mark.parametrize("factory", [lambda p: SGD(p, lr=0.05, momentum=0.9),
                                     lambda p: Adam(p, lr=0.05)], ids=["sgd-momentum", "adam"])
def test_state_dict_resumes_exactly(factory):
    # 10 steps straight through == 4 steps, save, fresh optimizer and copy of x, load, 6 more steps.
    straight = _minimise(factory, 10)

    x = mg.Value(np.zeros(3))
    opt = factory([x])
    for _ in range(4):
        opt.zero_grad()
        _quadratic(x).backward()
        opt.step()
    saved, saved_x = opt.state_dict(), x.data.copy()
    # The saved state is a copy: further steps do not change it.
    _quadratic(x).backward()
    opt.step()

    y = mg.Value(saved_x)
    opt2 = factory([y])
    opt2.load_state_dict(saved)
    assert opt2.steps == 4
    for _ in range(6):
        opt2.zero_grad()
        _quadratic(y).backward()
        opt2.step()
    np.testing.assert_array_equal(y.data, straight)


def test_load_state_dict_refuses_a_state_that_does_not_fit():
    x = mg.Value(np.zeros(3))
    with pytest.raises(ValueError, match="for 'SGD', not Adam"):
        Adam([x]).load_state_dict(SGD([x], lr=0.1).state_dict())
    with pytest.raises(ValueError, match="buffers"):
        SGD([x], lr=0.1).load_state_dict(SGD([x], lr=0.1, momentum=0.9).state_dict())
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(2,\)"):
        Adam([mg.Value(np.zeros(2))]).load_state_dict(Adam([x]).state_dict())
    state = SGD([x], lr=0.1).state_dict()
    state["hyper"]["momentum"] = 0.9      # settings that need a momentum buffer the state lacks
    with pytest.raises(ValueError, match=r"need \['momentum'\]"):
        SGD([x], lr=0.1).load_state_dict(state)
    state = Adam([x]).state_dict()
    state["hyper"]["lr"] = -1.0
    with pytest.raises(ValueError, match="lr must be a positive"):
        Adam([x]).load_state_dict(state)
