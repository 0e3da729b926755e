"""nn: parameter discovery, Linear and MLP against numpy, state dicts; losses against numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import microgradx as mg
from microgradx import nn
from microgradx.errors import CheckpointError, ShapeError
from microgradx.losses import (
    accuracy,
    binary_cross_entropy_with_logits,
    max_margin_loss,
    mnist_loss,
    mse_loss,
)
from microgradx.testing import gradcheck

# --------------------------------------------------------------------------------------------------
# Module: finding parameters
# --------------------------------------------------------------------------------------------------


class Holder(nn.Module):
    """Parameters hidden in every kind of place a user might put them."""

    def __init__(self, shared: mg.Value) -> None:
        self.a = mg.Value(np.zeros(2), label="a")
        self.items = [mg.Value(np.zeros(3), label="l0"), (mg.Value(np.zeros(4), label="t0"), 5)]
        self.table = {"x": mg.Value(np.zeros(5), label="dx"), "y": shared}
        self.child = nn.Linear(2, 1, rng=0)
        self.same_child = self.child          # one submodule reachable twice
        self.shared_again = shared            # one Value reachable twice
        self.not_a_param = np.ones(3)         # arrays and numbers are not parameters
        self.me = self                        # a cycle must not loop forever


def test_parameters_found_everywhere_in_attribute_order_each_once():
    shared = mg.Value(np.zeros(6), label="shared")
    m = Holder(shared)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["a", "items.0", "items.1.0", "table.x", "table.y", "child.weight", "child.bias"]
    params = m.parameters()
    assert len({id(p) for p in params}) == len(params) == 7
    assert params[4] is shared
    assert m.num_parameters() == 2 + 3 + 4 + 5 + 6 + 2 + 1


def test_parameters_order_is_the_same_for_every_instance():
    a = [n for n, _ in nn.MLP(5, [4, 3, 1], rng=0).named_parameters()]
    b = [n for n, _ in nn.MLP(5, [4, 3, 1], rng=1).named_parameters()]
    assert a == b == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
                      "layers.4.weight", "layers.4.bias"]


def test_deeply_nested_modules_do_not_hit_the_recursion_limit():
    m = nn.Sequential()
    inner = m
    for _ in range(3000):
        nxt = nn.Sequential()
        inner.layers.append(nxt)
        inner = nxt
    inner.layers.append(nn.Linear(1, 1, rng=0))
    assert len(m.parameters()) == 2


def test_zero_grad_clears_every_parameter():
    m = nn.MLP(3, [2, 1], rng=0)
    m(np.ones((4, 3), dtype=np.float32)).sum().backward()
    assert any(np.any(p.grad != 0) for p in m.parameters())
    m.zero_grad()
    assert all(np.all(p.grad == 0) for p in m.parameters())


def test_train_and_eval_set_the_flag_on_every_submodule():
    m = nn.MLP(3, [2, 1], rng=0)
    m.eval()
    assert not any(sub.training for sub in m.modules())
    m.train()
    assert all(sub.training for sub in m.modules())
    assert len(list(m.modules())) == 4     # the MLP, Linear, ReLU, Linear


def test_call_runs_forward_and_a_module_without_forward_says_so():
    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

    assert Double()(3) == 6
    with pytest.raises(NotImplementedError, match="must define forward"):
        nn.Module()(1)


# --------------------------------------------------------------------------------------------------
# Linear and MLP against numpy
# --------------------------------------------------------------------------------------------------


def test_linear_shapes_dtype_and_seeding():
    lin = nn.Linear(5, 3, rng=42)
    assert lin.weight.shape == (5, 3) and lin.bias.shape == (3,)
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
    again = nn.Linear(5, 3, rng=np.random.default_rng(42))
    assert np.array_equal(lin.weight.data, again.weight.data)
    assert not np.array_equal(lin.weight.data, nn.Linear(5, 3, rng=43).weight.data)
    assert nn.Linear(5, 3, bias=False, rng=0).bias is None
    assert len(nn.Linear(5, 3, bias=False, rng=0).parameters()) == 1
    assert nn.Linear(2, 2, rng=0, dtype=np.float64).weight.dtype == np.float64


def test_linear_default_init_is_bounded_by_one_over_sqrt_fan_in():
    lin = nn.Linear(400, 50, rng=0)
    bound = 1 / np.sqrt(400)
    assert np.abs(lin.weight.data).max() <= bound
    assert np.abs(lin.weight.data).max() > 0.9 * bound     # uniform: it does get near the bound
    assert np.abs(lin.bias.data).max() <= bound


def test_linear_init_std_is_the_books_normal_init():
    lin = nn.Linear(784, 100, rng=0, init_std=1.0)
    assert abs(lin.weight.data.std() - 1.0) < 0.01
    assert abs(lin.weight.data.mean()) < 0.01
    assert abs(nn.Linear(784, 100, rng=0, init_std=0.1).weight.data.std() - 0.1) < 0.001


@pytest.mark.parametrize("bad", [dict(n_in=0, n_out=1), dict(n_in=2, n_out=-1), dict(n_in=2.5, n_out=1),
                                 dict(n_in=2, n_out=1, init_std=0.0), dict(n_in=True, n_out=1)])
def test_linear_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        nn.Linear(**bad)


def test_linear_gradients_match_hand_derived_formulas():
    rng = np.random.default_rng(0)
    lin = nn.Linear(4, 3, rng=1, dtype=np.float64)
    x = mg.Value(rng.standard_normal((5, 4)))
    g = rng.standard_normal((5, 3))       # d(loss)/d(output): loss = sum(g * output)
    (lin(x) * g).sum().backward()
    W, b = lin.weight.data, lin.bias.data
    np.testing.assert_allclose(lin(x).data, x.data @ W + b)
    np.testing.assert_allclose(lin.weight.grad, x.data.T @ g)
    np.testing.assert_allclose(lin.bias.grad, g.sum(axis=0))
    np.testing.assert_allclose(x.grad, g @ W.T)


def test_linear_gradient_matches_finite_differences():
    lin = nn.Linear(3, 2, rng=0, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((4, 3))
    assert gradcheck(lambda w, b: (x @ w + b).tanh(), lin.weight.data, lin.bias.data)


def test_mlp_forward_matches_numpy():
    rng = np.random.default_rng(3)
    mlp = nn.MLP(6, [5, 4, 2], rng=7)
    x = rng.random((8, 6), dtype=np.float32)
    (W1, b1), (W2, b2), (W3, b3) = [(lin.weight.data, lin.bias.data) for lin in mlp.layers[::2]]
    expected = np.maximum(np.maximum(x @ W1 + b1, 0) @ W2 + b2, 0) @ W3 + b3
    out = mlp(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)
    assert [type(layer).__name__ for layer in mlp.layers] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]


def test_mlp_one_rng_seeds_the_whole_network():
    a, b = nn.MLP(4, [3, 1], rng=5), nn.MLP(4, [3, 1], rng=5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)
    # The layers draw in turn from one generator: the second layer is not a copy of the first's start.
    assert not np.array_equal(a.layers[0].weight.data[:3, 0], a.layers[2].weight.data[:3, 0])


def test_activations():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(nn.ReLU()(mg.Value(x)).data, [0, 0, 3])
    np.testing.assert_allclose(nn.Sigmoid()(mg.Value(x)).data, 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(nn.Tanh()(mg.Value(x)).data, np.tanh(x))


# --------------------------------------------------------------------------------------------------
# state_dict / load_state_dict
# --------------------------------------------------------------------------------------------------


def test_state_dict_is_a_copy_and_loads_back():
    m = nn.MLP(3, [2, 1], rng=0)
    state = m.state_dict()
    assert list(state) == [n for n, _ in m.named_parameters()]
    before = state["layers.0.weight"].copy()
    m.layers[0].weight.data += 1            # changing the model leaves the saved state alone
    assert np.array_equal(state["layers.0.weight"], before)
    m.load_state_dict(state)
    assert np.array_equal(m.layers[0].weight.data, before)


def test_load_state_dict_writes_in_place_and_keeps_dtype():
    m = nn.Linear(2, 1, rng=0)
    weight_array = m.weight.data
    m.load_state_dict({"weight": np.ones((2, 1), dtype=np.float64), "bias": np.zeros(1)})
    assert m.weight.data is weight_array and m.weight.dtype == np.float32
    assert np.array_equal(m.weight.data, np.ones((2, 1)))


@pytest.mark.parametrize("state, message", [
    ({"weight": np.zeros((2, 1))}, "missing bias"),
    ({"weight": np.zeros((2, 1)), "bias": np.zeros(1), "extra": np.zeros(1)}, "unexpected extra"),
    ({"weight": np.zeros((1, 2)), "bias": np.zeros(1)}, r"weight has shape \(1, 2\), expected \(2, 1\)"),
    ({"weight": np.array([["a"], ["b"]]), "bias": np.zeros(1)}, "expected numbers"),
])
def test_load_state_dict_refuses_a_mismatch_and_changes_nothing(state, message):
    m = nn.Linear(2, 1, rng=0)
    before = m.state_dict()
    with pytest.raises(CheckpointError, match=message):
        m.load_state_dict(state)
    for name, arr in m.state_dict().items():
        assert np.array_equal(arr, before[name])


# --------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_functional_is_the_losses_module():
    assert nn.functional.mnist_loss is mnist_loss


def test_mnist_loss_matches_the_books_formula():
    x = np.array([[2.0], [-1.0], [0.5], [-3.0]], dtype=np.float32)
    t = np.array([[1.0], [0.0], [0.0], [1.0]], dtype=np.float32)
    p = _sigmoid(x.astype(np.float64))
    expected = np.where(t == 1, 1 - p, p).mean()
    loss = mnist_loss(mg.Value(x), t)
    assert loss.dtype == np.float32
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert gradcheck(lambda v: mnist_loss(v, t), x)


def test_bce_with_logits_matches_numpy_and_its_known_gradient():
    x = np.array([[2.0], [-1.0], [0.5], [-3.0]])
    t = np.array([[1.0], [0.0], [0.3], [1.0]])
    p = _sigmoid(x)
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    v = mg.Value(x)
    loss = binary_cross_entropy_with_logits(v, t)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(v.grad, (p - t) / x.size, rtol=1e-12)   # d/dx = (sigmoid(x) - t) / N


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_finite_for_huge_logits(dtype):
    x = mg.Value(np.array([[1000.0], [-1000.0], [1000.0], [-1000.0]], dtype=dtype))
    t = np.array([[1.0], [0.0], [0.0], [1.0]], dtype=dtype)
    loss = binary_cross_entropy_with_logits(x, t)
    # Two right with total confidence (loss 0), two wrong by 1000 (loss 1000 each).
    assert loss.item() == pytest.approx(500.0)
    loss.backward()
    np.testing.assert_allclose(x.grad.ravel(), [0, 0, 0.25, -0.25])


@given(st.lists(st.floats(-30, 30), min_size=1, max_size=6), st.data())
def test_bce_with_logits_gradient_matches_finite_differences(xs, data):
    x = np.array(xs).reshape(-1, 1)
    t = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=len(xs), max_size=len(xs))))
    assert gradcheck(lambda v: binary_cross_entropy_with_logits(v, t.reshape(-1, 1)), x)


def test_mse_loss():
    x = np.array([[1.0, 2.0], [3.0, 5.0]])
    y = np.array([[0.0, 2.0], [1.0, 1.0]])
    assert mse_loss(mg.Value(x), y).item() == pytest.approx(np.mean((x - y) ** 2))
    assert gradcheck(lambda v: mse_loss(v, y), x)


def test_max_margin_loss_matches_micrograds_demo():
    scores = np.array([[2.0], [0.5], [-0.2], [-3.0]])
    labels = np.array([[1.0], [1.0], [-1.0], [1.0]])
    w = mg.Value(np.array([1.0, -2.0]))
    data_loss = np.maximum(0, 1 - labels * scores).mean()       # (0 + 0.5 + 0.8 + 4) / 4
    assert max_margin_loss(mg.Value(scores), labels).item() == pytest.approx(data_loss)
    with_l2 = max_margin_loss(mg.Value(scores), labels, parameters=[w], alpha=1e-2)
    assert with_l2.item() == pytest.approx(data_loss + 1e-2 * 5.0)
    with_l2.backward()
    np.testing.assert_allclose(w.grad, 2e-2 * w.data)


@pytest.mark.parametrize("loss", [mnist_loss, binary_cross_entropy_with_logits, mse_loss, max_margin_loss])
def test_losses_refuse_mismatched_shapes(loss):
    # (N, 1) against (N,) would broadcast to (N, N) and train on nonsense without a word.
    with pytest.raises(ShapeError, match=r"\(4, 1\).*\(4,\)"):
        loss(mg.Value(np.zeros((4, 1))), np.zeros(4))


def test_accuracy_for_01_and_pm1_targets():
    logits = np.array([[2.0], [-1.0], [0.5], [-3.0]])
    assert accuracy(logits, np.array([[1.0], [0.0], [0.0], [0.0]])) == 0.75
    assert accuracy(mg.Value(logits), np.array([[1.0], [-1.0], [1.0], [-1.0]])) == 1.0
    with pytest.raises(ShapeError):
        accuracy(np.zeros((0, 1)), np.zeros((0, 1)))
    # A NaN logit predicts nothing: wrong, whichever the target (not "not above 0", so class 0).
    assert accuracy(np.array([[np.nan], [np.nan]]), np.array([[0.0], [1.0]])) == 0.0
