"""The benchmark suite compares like with like: its hand-written floors and peer adapters compute the same
losses and gradients as microgradx. (A floor that skipped work would make microgradx look slow; one that
computed something else would make any comparison meaningless.) Nothing here is timed.

Peers (torch, autograd, micrograd) are optional: their checks skip when they are not installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


w = _load("workloads")
harness = _load("harness")


def _batch(n: int = 32, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xb = rng.random((n, 784), dtype=np.float32)
    yb = (rng.random((n, 1)) < 0.5).astype(np.float32)
    return xb, yb


def _assert_same(a: tuple[float, list], b: tuple[float, list], rtol: float, atol: float) -> None:
    (loss_a, grads_a), (loss_b, grads_b) = a, b
    np.testing.assert_allclose(loss_a, loss_b, rtol=rtol, atol=atol)
    assert len(grads_a) == len(grads_b)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        ga, gb = np.asarray(ga), np.asarray(gb)
        assert ga.shape == gb.shape
        np.testing.assert_allclose(ga, gb, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------------
# 1, 2: the chapter's models
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_mnist_floor_matches_microgradx(model):
    params = w.mnist_init(model)
    xb, yb = _batch()
    floor, mgx = w.FloorTrainer(model, params), w.MicrogradxTrainer(model, params)
    got_floor, got_mgx = floor.loss_and_grads(xb, yb), mgx.loss_and_grads(xb, yb)
    _assert_same(got_floor, got_mgx, rtol=1e-4, atol=1e-6)
    # Like for like: both stay in float32, and the gradients are not all zero (a dead test otherwise).
    assert all(g.dtype == np.float32 for g in got_floor[1] + got_mgx[1])
    assert all(np.abs(g).max() > 0 for g in got_floor[1])


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_mnist_nn_and_optim_loop_matches_floor(model):
    pytest.importorskip("microgradx.nn")
    pytest.importorskip("microgradx.optim")
    params = w.mnist_init(model)
    xb, yb = _batch()
    _assert_same(w.FloorTrainer(model, params).loss_and_grads(xb, yb),
                 w.NnTrainer(model, params).loss_and_grads(xb, yb), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_mnist_sgd_steps_agree(model):
    params = w.mnist_init(model)
    trainers = [w.FloorTrainer, w.MicrogradxTrainer, w.CompiledTrainer, w.NnTrainer]
    trainers += [cls for cls, peer in w.TRAINER_PEER.items() if w.have(peer)]
    weights = []
    for cls in trainers:
        trainer = cls(model, params)
        for seed in range(3):
            trainer.step(*_batch(seed=seed), lr=0.5)
        weights.append(trainer.weights())
    for cls, got in zip(trainers[1:], weights[1:], strict=True):
        for p, q in zip(weights[0], got, strict=True):
            np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-6, err_msg=cls.name)
    assert not np.array_equal(weights[0][0], params[0])  # the steps did move the weights


def test_batches_visit_every_row_once_per_epoch():
    x, y = _batch(n=600)
    loader = w.batches(x, y, 256, seed=0)
    for _ in range(2):
        batches = list(loader())
        assert [len(xb) for xb, _ in batches] == [256, 256, 88]
        np.testing.assert_array_equal(np.sort(np.concatenate([xb[:, 0] for xb, _ in batches])),
                                      np.sort(x[:, 0]))


def test_every_timed_epoch_starts_from_the_same_weights():
    params = w.mnist_init("linear")
    x, y = _batch(n=600)
    trainer = w.FloorTrainer("linear", params)
    run = w.epoch(trainer, params, lambda: iter([(x[:300], y[:300]), (x[300:], y[300:])]), lr=1.0)
    run()
    once = [p.copy() for p in trainer.params]
    run()
    for p, q in zip(trainer.params, once, strict=True):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(once[0], params[0])


@pytest.mark.parametrize("model", ["linear", "mlp"])
@pytest.mark.parametrize("peer", ["torch", "autograd"])
def test_mnist_peers_match_floor(model, peer):
    pytest.importorskip(peer)
    cls = w.TorchTrainer if peer == "torch" else w.AutogradTrainer
    params = w.mnist_init(model)
    xb, yb = _batch()
    _assert_same(w.FloorTrainer(model, params).loss_and_grads(xb, yb),
                 cls(model, params).loss_and_grads(xb, yb), rtol=1e-4, atol=1e-6)


def test_synthetic_data_when_the_files_are_absent(tmp_path):
    x, y, note = w.mnist_train(tmp_path / "absent")
    assert x.shape == (w.N_TRAIN, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (w.N_TRAIN, 1) and set(np.unique(y)) == {0.0, 1.0}
    assert "SYNTHETIC" in note


# --------------------------------------------------------------------------------------------------
# 3: micrograd's demo
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def moons():
    X, y = w.two_moons(100, noise=0.1, seed=0)
    return w.moons_init(seed=0), X[::10], y[::10]  # 10 points: enough to compare, quick in scalar mode


def test_two_moons_shape_and_labels():
    X, y = w.two_moons(100, noise=0.1, seed=0)
    assert X.shape == (100, 2) and y.shape == (100,)
    assert (y == -1).sum() == 50 and (y == 1).sum() == 50


def test_moons_floor_and_scalar_mode_match_tensor_mode(moons):
    params, X, y = moons
    tensor = w.MoonsMicrogradxTensor(params, X, y).loss_and_grads()
    _assert_same(w.MoonsFloor(params, X, y).loss_and_grads(), tensor, rtol=1e-10, atol=1e-12)
    _assert_same(w.MoonsMicrogradxScalar(params, X, y).loss_and_grads(), tensor, rtol=1e-10, atol=1e-12)
    assert tensor[0] > w.ALPHA  # the margin term is active, so the data part of the gradient is tested


def test_moons_steps_agree(moons):
    params, X, y = moons
    floor, scalar = w.MoonsFloor(params, X, y), w.MoonsMicrogradxScalar(params, X, y)
    floor.step(0.1)
    scalar.step(0.1)
    after = w.MoonsMicrogradxScalar(floor.params, X, y)
    np.testing.assert_allclose(after.loss_and_grads()[0], scalar.loss_and_grads()[0], rtol=1e-12)


@pytest.mark.parametrize("peer", ["torch", "autograd", "micrograd"])
def test_moons_peers_match_floor(moons, peer):
    pytest.importorskip(peer)
    params, X, y = moons
    cls = {"torch": w.MoonsTorch, "autograd": w.MoonsAutograd, "micrograd": w.MoonsMicrograd}[peer]
    _assert_same(w.MoonsFloor(params, X, y).loss_and_grads(), cls(params, X, y).loss_and_grads(),
                 rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# 4: single ops
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(8,), (5, 5)], ids=str)
@pytest.mark.parametrize("op", list(w.OPS))
def test_op_floor_matches_microgradx(op, shape):
    inputs, g = w.op_inputs(op, shape)
    g = g * np.random.default_rng(2).uniform(0.5, 2, g.shape)  # not all ones: tests where g goes
    _, floor_grads = w.op_floor(op, inputs, g)()
    mgx_grads = w.op_microgradx(op, inputs, g)()
    assert len(floor_grads) == len(mgx_grads) == len(inputs)
    for a, b in zip(floor_grads, mgx_grads, strict=True):
        np.testing.assert_allclose(np.broadcast_to(a, np.shape(b)), b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("peer", ["torch", "autograd"])
@pytest.mark.parametrize("op", list(w.OPS))
def test_op_peers_match_floor(op, peer):
    pytest.importorskip(peer)
    make = w.op_torch if peer == "torch" else w.op_autograd
    inputs, g = w.op_inputs(op, (5, 5))
    _, floor_grads = w.op_floor(op, inputs, g)()
    peer_grads = make(op, inputs, g)()
    for a, b in zip(floor_grads, peer_grads, strict=True):
        b = b.numpy() if hasattr(b, "numpy") else b
        np.testing.assert_allclose(np.broadcast_to(a, np.shape(b)), b, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# 5: the scalar chain
# --------------------------------------------------------------------------------------------------

def test_chain_versions_agree():
    n = 1001  # 501 multiplications by 0.999
    expected = 0.999 ** 501
    assert w.chain_floor(n) == pytest.approx(expected, rel=1e-12)
    assert w.chain_microgradx(n) == pytest.approx(expected, rel=1e-12)
    for peer, fn in (("torch", w.chain_torch), ("autograd", w.chain_autograd)):
        if w.have(peer):
            assert fn(n) == pytest.approx(expected, rel=1e-12)


def test_micrograd_chain_works_shallow_and_dies_deep():
    pytest.importorskip("micrograd")
    assert w.chain_micrograd(101) == pytest.approx(0.999 ** 51, rel=1e-12)
    with pytest.raises(RecursionError):
        w.chain_micrograd(5000)


# --------------------------------------------------------------------------------------------------
# 6: function transforms
# --------------------------------------------------------------------------------------------------

def _available(versions: dict) -> dict:
    return {name: make for name, (make, peer) in versions.items() if not peer or w.have(peer)}


def _numpy(a):
    return a.detach().numpy(force=True) if hasattr(a, "detach") else np.asarray(a)


def test_hvp_versions_agree_with_a_finite_difference_of_the_gradient():
    params, X, onehot, vs = w.hvp_problem()
    assert sum(p.size for p in params) == 10_000
    results = {name: make()() for name, make in _available(w.HVP_VERSIONS).items()}
    # The hvp is the derivative of the gradient along v: central differences of microgradx's gradient.
    loss = w.hvp_loss(X, onehot, lambda z: w.mg.log_softmax(z, axis=-1), w.mg.tanh)
    gradient = w.mg.grad(loss, argnums=(0, 1, 2, 3))
    eps = 1e-5
    up, down = (gradient(*(p + sign * eps * v for p, v in zip(params, vs, strict=True))) for sign in (1, -1))
    expected = [(a - b) / (2 * eps) for a, b in zip(up, down, strict=True)]
    for name, got in results.items():
        reference = expected if "hvp" in name else gradient(*params)
        for a, b in zip(got, reference, strict=True):
            np.testing.assert_allclose(_numpy(a), b, rtol=1e-5, atol=1e-7, err_msg=name)
    assert all(np.abs(e).max() > 1e-3 for e in expected)     # a curved loss: the test is not of zeros


def test_jacobian_versions_agree_with_the_hand_derived_jacobian():
    versions = _available(w.JACOBIAN_VERSIONS)
    expected = versions.pop("numpy floor")()()
    assert expected.shape == (100, 100)
    for name, make in versions.items():
        np.testing.assert_allclose(_numpy(make()()), expected, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("outputs", ["many", "one"])
def test_jvp_versions_agree_with_the_hand_derived_product(outputs):
    versions = _available(w.jvp_versions(outputs))
    expected = versions.pop("numpy floor")()()
    assert np.shape(expected) == ((w.JVP_INPUTS,) if outputs == "many" else ())
    for name, make in versions.items():
        np.testing.assert_allclose(_numpy(make()()), expected, rtol=1e-10, atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------------------

def test_measure_pairs_rounds_and_reports_failures():
    calls = []

    def broken():
        raise RecursionError("too deep")

    cases = [harness.Case("ref", lambda: calls.append("ref")),
             harness.Case("other", lambda: calls.append("other")),
             harness.Case("broken", broken),
             harness.Case("absent", None, note="skipped: not installed")]
    rows = {r.impl: r for r in harness.measure("w", "op", cases, "ref", repeat=4, min_time=0.0)}
    assert len(rows["ref"].times) == len(rows["other"].times) == 4
    assert rows["ref"].ratio == 1.0 and rows["ref"].is_reference
    other, ref = rows["other"], rows["ref"]
    assert other.ratios == [a / b for a, b in zip(other.times, ref.times, strict=True)]
    assert rows["broken"].times == [] and "RecursionError" in rows["broken"].note
    assert rows["absent"].times == [] and rows["absent"].note == "skipped: not installed"
    # Interleaved: the order within a round rotates, so "other" goes first in some rounds.
    timed = calls[-8:]
    assert timed[0::2] != ["ref"] * 4


# --------------------------------------------------------------------------------------------------
# 6: LeNet
# --------------------------------------------------------------------------------------------------

def test_lenet_torch_matches_microgradx():
    pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.random((8, 784), dtype=np.float32)
    y = (rng.random((8, 1)) < 0.5).astype(np.float32)
    xb, yb = w.lenet_batch(x, y)
    assert xb.shape == (8, 1, 28, 28) and yb.dtype == np.int64
    params = w.lenet_init()
    assert [p.shape for p in params][:4] == [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,)]
    got = w.LenetMicrogradx(params, xb, yb).loss_and_grads()
    _assert_same(got, w.LenetTorch(params, xb, yb).loss_and_grads(), rtol=1e-4, atol=1e-6)
    assert all(np.any(g != 0) for g in got[1])
