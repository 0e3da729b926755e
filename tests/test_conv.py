"""Convolution, pooling, the classification losses and the CNN layers: against PyTorch, and on their own.

The PyTorch parity tests are skipped where torch is not installed (``pip install torch``); the suite does
not need it. Their derivatives against finite differences are in test_ops.py, like every op's.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import microgradx as mg
from microgradx import nn
from microgradx import nn_functional as F
from microgradx.errors import ArgumentError, DataError, ShapeError

CONV_SETTINGS = [
    # (N, C, H, W), (O, kh, kw), stride, padding, dilation, groups
    ((2, 3, 7, 8), (4, 3, 3), 1, 0, 1, 1),
    ((2, 3, 7, 8), (4, 3, 2), 2, 1, 1, 1),
    ((1, 4, 9, 9), (6, 3, 3), (2, 1), (1, 2), (2, 1), 2),
    ((3, 6, 6, 5), (6, 1, 1), 1, 0, 1, 6),           # depthwise 1x1
    ((2, 2, 10, 10), (3, 5, 5), 3, 2, 2, 1),
    ((1, 1, 5, 5), (1, 5, 5), 1, 0, 1, 1),           # one output pixel
]
POOL_SETTINGS = [
    # kernel, stride, padding, dilation (max only)
    (2, None, 0, 1),
    (3, 2, 1, 1),
    ((2, 3), (1, 2), (1, 0), (2, 1)),
    (3, 1, 0, 2),
]


def _torch():
    return pytest.importorskip("torch")


def _grads(f, *arrays):
    values = [mg.Value(a) for a in arrays]
    out = f(*values)
    weights = np.random.default_rng(0).uniform(0.5, 1.5, out.shape)
    (out * weights).sum().backward()
    return out.data, [v.grad for v in values], weights


def _torch_grads(f, *arrays, weights):
    torch = _torch()
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = f(*tensors)
    (out * torch.tensor(weights)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, groups", CONV_SETTINGS)
def test_conv2d_matches_pytorch_values_and_gradients(shape, kernel, stride, padding, dilation, groups):
    torch = _torch()
    rng = np.random.default_rng(1)
    o, kh, kw = kernel
    x = rng.standard_normal(shape)
    w = rng.standard_normal((o, shape[1] // groups, kh, kw))
    b = rng.standard_normal(o)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out, grads, weights = _grads(lambda x, w, b: F.conv2d(x, w, b, **kwargs), x, w, b)
    expected, expected_grads = _torch_grads(lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **kwargs),
                                            x, w, b, weights=weights)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    for g, e in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel, stride, padding, dilation", POOL_SETTINGS)
def test_max_pool2d_matches_pytorch(kernel, stride, padding, dilation):
    torch = _torch()
    x = np.random.default_rng(2).standard_normal((2, 3, 9, 8))     # continuous: no ties
    f = lambda x: F.max_pool2d(x, kernel, stride, padding, dilation)
    out, grads, weights = _grads(f, x)
    expected, expected_grads = _torch_grads(
        lambda x: torch.nn.functional.max_pool2d(x, kernel, stride, padding, dilation), x, weights=weights)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_allclose(grads[0], expected_grads[0], rtol=1e-12)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("kernel, stride, padding, dilation", POOL_SETTINGS)
def test_avg_pool2d_matches_pytorch(kernel, stride, padding, dilation, count_include_pad):
    torch = _torch()
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 8))
    f = lambda x: F.avg_pool2d(x, kernel, stride, padding, count_include_pad=count_include_pad)
    out, grads, weights = _grads(f, x)
    expected, expected_grads = _torch_grads(
        lambda x: torch.nn.functional.avg_pool2d(x, kernel, stride, padding,
                                                 count_include_pad=count_include_pad), x, weights=weights)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(grads[0], expected_grads[0], rtol=1e-12)


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2, 2), (4,)])
def test_cross_entropy_and_nll_loss_match_pytorch(shape, reduction, loss):
    torch = _torch()
    rng = np.random.default_rng(4)
    logits = rng.standard_normal(shape) * 3
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = rng.integers(0, shape[0 if len(shape) == 1 else 1], size=target_shape)
    if target.ndim:
        target.flat[0] = -100            # ignored, in both
    ours, theirs = getattr(F, loss), getattr(torch.nn.functional, loss)
    out, grads, weights = _grads(lambda x: ours(x, target, reduction=reduction), logits)
    expected, expected_grads = _torch_grads(
        lambda x: theirs(x, torch.tensor(target), reduction=reduction), logits, weights=weights)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[0], expected_grads[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, kwargs", [
    ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("elu", {"alpha": 0.7}),
    ("leaky_relu", {"negative_slope": 0.2}), ("softplus", {"beta": 2.0}),
], ids=str)
def test_activations_match_pytorch(name, kwargs):
    torch = _torch()
    x = np.linspace(-6, 6, 49)
    out, grads, weights = _grads(lambda x: getattr(F, name)(x, **kwargs), x)
    expected, expected_grads = _torch_grads(lambda x: getattr(torch.nn.functional, name)(x, **kwargs), x,
                                            weights=weights)
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads[0], expected_grads[0], rtol=1e-9, atol=1e-12)


def test_erf_is_accurate_across_its_range():
    import math
    x = np.concatenate([np.linspace(-7, 7, 2001), [0.0, 2.5, -2.5, 2.5000001, 30.0, -30.0]])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(mg.ops.erf(x), expected, rtol=0, atol=2e-14)


# --------------------------------------------------------------------------------------------------
# Without PyTorch: definitions, errors, layers
# --------------------------------------------------------------------------------------------------

def test_conv2d_is_the_sum_over_windows_it_is_defined_as():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 2, 3))
    out = F.conv2d(x, w, stride=(2, 1), padding=1, groups=2).data
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros(out.shape)
    for n, o, i, j in itertools.product(*map(range, out.shape)):
        g = o // 3
        window = xp[n, 2 * g:2 * g + 2, 2 * i:2 * i + 2, j:j + 3]
        expected[n, o, i, j] = np.sum(window * w[o])
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_conv2d_second_derivative_flows_through_the_backward_pass():
    # A gradient penalty: d/dw of |d(loss)/dx|^2 needs the derivative of conv2d's own backward pass.
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 5, 5))
    w = mg.Value(rng.standard_normal((3, 2, 3, 3)))

    def penalty(w):
        gx = mg.grad(lambda x: (F.conv2d(x, w, padding=1) ** 2).sum())(mg.Value(x))
        return (gx * gx).sum()

    from microgradx.testing import gradcheck
    gradcheck(penalty, w.data)


def test_unbatched_images_keep_their_shape():
    x = np.random.default_rng(7).standard_normal((3, 6, 6))
    assert F.conv2d(x, np.ones((2, 3, 3, 3))).shape == (2, 4, 4)
    assert F.max_pool2d(x, 2).shape == (3, 3, 3)
    assert F.avg_pool2d(x, 3).shape == (3, 2, 2)


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 2, 3, 3))), ShapeError, "groups"),
    (lambda: F.conv2d(np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3)), groups=2), ShapeError, "divisible"),
    (lambda: F.conv2d(np.ones((5, 5)), np.ones((1, 1, 3, 3))), ShapeError, "(N, C, H, W)"),
    (lambda: F.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))), ShapeError, "smaller than the kernel"),
    (lambda: F.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=0), ArgumentError, "stride"),
    (lambda: F.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), bias=np.ones(2)), ShapeError, "bias"),
    (lambda: F.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=1.5), ArgumentError, "padding"),
    (lambda: F.max_pool2d(np.ones((1, 1, 5, 5)), 2, padding=2), ArgumentError, "half the kernel"),
    (lambda: F.cross_entropy(np.ones((3, 2)), np.array([0, 2, 1])), DataError, "not a class index"),
    (lambda: F.cross_entropy(np.ones((3, 2)), np.array([0.0, 1, 1])), DataError, "integer"),
    (lambda: F.cross_entropy(np.ones((3, 2)), np.array([0, 1])), ShapeError, "target of shape (3,)"),
    (lambda: F.dropout(np.ones(3), p=1.5), ArgumentError, "p must"),
])
def test_bad_arguments_get_our_errors(call, error, words):
    with pytest.raises(error, match=None) as info:
        call()
    assert words in str(info.value)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = mg.Value(np.array([[1000.0, -1000.0], [-1000.0, 1000.0]]))
    loss = F.cross_entropy(logits, np.array([0, 0]))
    loss.backward()
    assert loss.item() == pytest.approx(1000.0)
    np.testing.assert_allclose(logits.grad, [[0.0, 0.0], [-0.5, 0.5]])


def test_dropout_is_seeded_scaled_and_off_in_eval():
    x = np.ones((200, 50))
    a, b = F.dropout(x, 0.3, rng=1).data, F.dropout(x, 0.3, rng=1).data
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1 / 0.7}
    assert abs((a == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(F.dropout(x, 0.3, training=False).data, x)
    layer = nn.Dropout(0.5, rng=0)
    assert (layer(x).data == 0).any()
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x)


def test_lenet_layers_train_end_to_end():
    rng = np.random.default_rng(8)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 2, rng=0))
    assert [n for n, _ in model.named_parameters()] == ["layers.0.weight", "layers.0.bias",
                                                       "layers.4.weight", "layers.4.bias"]
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].sum(axis=(1, 2)) > 0).astype(np.int64)
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model(x).dtype == np.float32
    assert losses[-1] < 0.5 * losses[0]


def test_conv2d_layer_shapes_and_init_bound():
    layer = nn.Conv2d(6, 16, 5, groups=2, rng=0)
    assert layer.weight.shape == (16, 3, 5, 5) and layer.bias.shape == (16,)
    assert np.abs(layer.weight.data).max() <= 1 / np.sqrt(3 * 25)
    assert nn.Conv2d(6, 16, (5, 3), bias=False, rng=0).bias is None
    with pytest.raises(ArgumentError):
        nn.Conv2d(6, 16, 5, groups=4)
    assert "Conv2d(6, 16" in repr(layer)
