"""Scale: million-node graphs, memory that comes back, and scalar mode on a real batch.

The million-node tests are marked ``slow`` and run once each (no hypothesis). Memory is measured with
the cyclic garbage collector switched off: the graph must then be freed by reference counting alone,
which is only possible if it holds no reference cycles. ``gc.collect()`` is never called, on purpose.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import textwrap
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import microgradx as mg
from microgradx.data import load_mnist_3_7, to_features, to_targets

MILLION = 1_000_000
REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Switch the cyclic collector off for the block, and back to what it was afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def interior_nodes(root: mg.Value) -> list[mg.Value]:
    """Every Value made by an op that ``root`` depends on (walked with a stack: graphs may be deep)."""
    seen: dict[int, mg.Value] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(a for a in node._args if isinstance(a, mg.Value))
    return [n for n in seen.values() if not n.is_leaf]


def alive(refs: list[weakref.ref]) -> int:
    return sum(r() is not None for r in refs)


# --------------------------------------------------------------------------------------------------
# A million nodes deep, a million uses wide
# --------------------------------------------------------------------------------------------------

def build_chain(x: mg.Value, cycles: int) -> tuple[mg.Value, list[weakref.ref]]:
    """4 ops per cycle: y -> ((2y + 1) * -0.5) - 0.5 = -y - 1, so each cycle has derivative -1.

    Every intermediate is a small integer or half-integer: exact in float64, so value and gradient
    have exact closed forms. Weak references to every 10,000th node let the caller check they die.
    """
    y = x
    samples = []
    for i in range(cycles):
        y = y * 2.0
        y = y + 1.0
        y = y * -0.5
        y = y - 0.5
        if i % 2500 == 0:
            samples.append(weakref.ref(y))
    return y, samples


def sum_of_uses(x: mg.Value, uses: int) -> tuple[mg.Value, list[weakref.ref]]:
    """``uses`` uses of one leaf summed (the first add uses it twice), every 10,000th node sampled."""
    total = x
    samples = []
    for i in range(uses - 1):
        total = total + x
        if i % 10_000 == 0:
            samples.append(weakref.ref(total))
    return total, samples


def check_exact_and_frees_everything(leaf: float, build: Callable[[mg.Value], tuple[mg.Value, list]],
                                     value: float, grad: float) -> None:
    """``build(x)`` gives a graph's root and weak references to some of its nodes: the root's value and
    x's gradient must be exact, and once the root is dropped every node must die and every allocator
    block come back."""
    with gc_paused():
        blocks_before = sys.getallocatedblocks()
        x = mg.Value(leaf)
        y, samples = build(x)
        assert y.item() == value
        y.backward()
        assert x.grad == grad
        del y                                         # the whole graph deallocated here
        assert alive(samples) == 0
        x.zero_grad()
        del x
        # A million-node graph takes about three million allocator blocks; every one must be back.
        assert sys.getallocatedblocks() - blocks_before < 20_000


@pytest.mark.slow
def test_million_op_chain_backward_is_exact_and_frees_everything():
    cycles = 250_001                                  # 1,000,004 ops, an odd number of sign flips
    # (-x - 1) after an odd number of cycles, and a derivative of (-1) ** cycles
    check_exact_and_frees_everything(3.0, lambda x: build_chain(x, cycles), value=-3.0 - 1.0, grad=-1.0)


@pytest.mark.slow
def test_million_uses_of_one_value_backward_is_exact_and_frees_everything():
    # a million contributions to one gradient, summed exactly
    check_exact_and_frees_everything(0.75, lambda x: sum_of_uses(x, MILLION), value=0.75 * MILLION,
                                     grad=MILLION)


@pytest.mark.slow
def test_deallocating_a_million_deep_chain_does_not_crash():
    # Dropping the last reference frees the chain node by node inside C code; without CPython's
    # "trashcan" on our objects that nests a million deallocations and overflows the C stack.
    # Run it in a child process so a crash is reported as a failure, not the end of the test run.
    script = textwrap.dedent("""
        import gc
        import microgradx as mg
        gc.disable()
        x = mg.Value(1.0)
        y = x
        for _ in range(1_000_000):
            y = -y
        print(y.item())
        del y
        print("freed")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=_env_with_repo())
    assert done.returncode == 0, f"child died with {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["1.0", "freed"]


def _env_with_repo() -> dict[str, str]:
    """The environment for a child Python that imports this checkout's microgradx."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# --------------------------------------------------------------------------------------------------
# Memory comes back, measured with tracemalloc
# --------------------------------------------------------------------------------------------------

def mlp_loss(W1: mg.Value, b1: mg.Value, W2: mg.Value, x: np.ndarray, y: np.ndarray) -> mg.Value:
    h = (x @ W1 + b1).relu()
    return ((h @ W2 - y) ** 2).mean()


def train_and_drop(params: list[mg.Value], x: np.ndarray, y: np.ndarray) -> None:
    """A few steps of array training plus a 20,000-op scalar chain; everything built here is dropped."""
    for _ in range(3):
        loss = mlp_loss(*params, x, y)
        loss.backward()
        for p in params:
            p.data -= 0.01 * p.grad
            p.zero_grad()
    s = mg.Value(0.5)
    t = s
    for _ in range(20_000):
        t = (t * 0.5).tanh() + s
    t.backward()


def test_memory_returns_to_its_starting_level_after_the_graphs_are_dropped():
    rng = np.random.default_rng(0)
    params = [mg.Value(rng.normal(size=(64, 32))), mg.Value(np.zeros(32)), mg.Value(rng.normal(size=(32, 1)))]
    x, y = rng.normal(size=(128, 64)), rng.normal(size=(128, 1))
    train_and_drop(params, x, y)                        # warm caches (imports, numpy internals)
    with gc_paused():
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            train_and_drop(params, x, y)
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    grown = peak - before
    assert grown > 5_000_000, "the graphs were not built (the measurement would prove nothing)"
    # Generous: CPython keeps up to 2,000 freed tuples of each length for reuse (our nodes' input
    # tuples among them), a few hundred kB at most; the graphs themselves take over 15 MB.
    assert after - before < 1_000_000, (
        f"{after - before} bytes still held after dropping graphs that peaked at {grown} bytes"
    )


# --------------------------------------------------------------------------------------------------
# Every node is freed the moment the loss is dropped
# --------------------------------------------------------------------------------------------------

@pytest.fixture
def mlp():
    rng = np.random.default_rng(1)
    params = [mg.Value(rng.normal(size=(4, 8))), mg.Value(np.zeros(8)), mg.Value(rng.normal(size=(8, 1)))]
    return params, rng.normal(size=(5, 4)), rng.normal(size=(5, 1))


def test_dropping_the_loss_frees_every_node_before_backward(mlp):
    params, x, y = mlp
    with gc_paused():
        loss = mlp_loss(*params, x, y)
        refs = [weakref.ref(n) for n in interior_nodes(loss)]
        assert len(refs) >= 7
        del loss
        assert alive(refs) == 0


def test_dropping_the_loss_frees_every_node_after_backward(mlp):
    params, x, y = mlp
    with gc_paused():
        loss = mlp_loss(*params, x, y)
        refs = [weakref.ref(n) for n in interior_nodes(loss)]
        loss.backward()
        assert all(np.any(p.grad != 0) for p in params)
        del loss
        assert alive(refs) == 0
        # .grad of the leaves are plain arrays: they hold nothing of the graph.
        assert all(isinstance(p.grad, np.ndarray) for p in params)


def test_graph_of_a_create_graph_gradient_is_freed_when_dropped(mlp):
    params, x, y = mlp
    W1 = mg.Value(params[0].data.copy())
    with gc_paused():
        g = mg.grad(lambda w: mlp_loss(w, *params[1:], x, y))(W1)   # W1 requires grad: create_graph
        assert isinstance(g, mg.Value) and g.requires_grad
        refs = [weakref.ref(n) for n in interior_nodes(g)]
        assert len(refs) > 10                          # forward and backward graph together
        assert not np.any(W1.grad) and not any(np.any(p.grad) for p in params)  # mg.grad sets no .grad
        del g
        assert alive(refs) == 0


def test_backward_with_create_graph_frees_the_graph_once_leaf_gradients_are_reset(mlp):
    # As in PyTorch, a leaf's .grad made with create_graph=True holds the graph (and the leaf) until
    # the gradient is reset. After zero_grad() on every leaf nothing should hold it any more.
    params, x, y = mlp
    with gc_paused():
        loss = mlp_loss(*params, x, y)
        refs = [weakref.ref(n) for n in interior_nodes(loss)]
        loss.backward(create_graph=True)
        grad_refs = [weakref.ref(n) for p in params for n in interior_nodes(p.grad)]
        del loss
        for p in params:
            p.zero_grad()
        assert alive(refs) == 0 and alive(grad_refs) == 0


# --------------------------------------------------------------------------------------------------
# Scalar mode: every pixel of a 256-image batch is its own Value
# --------------------------------------------------------------------------------------------------

class GcTally:
    """What the cyclic garbage collector did, from ``gc.callbacks``: collections run, objects it freed."""

    def __init__(self) -> None:
        self.collections = 0
        self.collected = 0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "stop":
            self.collections += 1
            self.collected += info["collected"]


def batch_of_threes_and_sevens() -> tuple[np.ndarray, np.ndarray]:
    """128 threes and 128 sevens from the bundled sample, as float64 pixels in [0, 1] and 0/1 targets."""
    data = load_mnist_3_7()
    rows = np.r_[np.flatnonzero(data.train_labels == 3)[:128], np.flatnonzero(data.train_labels == 7)[:128]]
    pixels = to_features(data.train_images[rows], dtype=np.float64)
    return pixels, to_targets(data.train_labels[rows], dtype=np.float64).ravel()


def scalar_loss(weights: list[mg.Value], bias: mg.Value, pixels: list[list[mg.Value]],
                targets: np.ndarray) -> mg.Value:
    """fastbook's mnist_loss for a linear model, one scalar op at a time (about 400,000 nodes).

    Each image's logit is a chain of 784 multiply-adds and the losses are summed in one more chain,
    so the graph is about 1,800 levels deep: beyond Python's default recursion limit of 1,000.
    """
    total: mg.Value | float = 0.0
    for row, target in zip(pixels, targets, strict=True):
        z = bias
        for w, p in zip(weights, row, strict=True):
            z = z + w * p
        prob = z.sigmoid()
        total = total + ((1.0 - prob) if target == 1 else prob)
    return total / len(pixels)


def array_loss(w: mg.Value, b: mg.Value, x: np.ndarray, targets: np.ndarray) -> mg.Value:
    prob = (x @ w + b).sigmoid()
    return mg.where(targets == 1, 1.0 - prob, prob).mean()


@pytest.fixture(scope="module")
def scalar_run():
    """Three SGD steps in scalar mode, with what the garbage collector did meanwhile."""
    x, targets = batch_of_threes_and_sevens()
    rng = np.random.default_rng(0)
    w0 = rng.normal(0.0, 0.01, size=784)
    gc.collect()                        # earlier tests' garbage is not this run's
    tally = GcTally()
    gc.callbacks.append(tally)
    try:
        pixels = [[mg.Value(p, requires_grad=False) for p in row] for row in x]
        weights = [mg.Value(v) for v in w0]
        bias = mg.Value(0.0)
        losses, first_grads = [], None
        for _ in range(3):
            loss = scalar_loss(weights, bias, pixels, targets)
            loss.backward()
            losses.append(loss.item())
            if first_grads is None:
                first_grads = (np.array([w.grad for w in weights]), float(bias.grad))
            for p in (*weights, bias):
                p.data = p.data - 1.0 * p.grad
                p.zero_grad()
            del loss
    finally:
        gc.callbacks.remove(tally)
    return {"losses": losses, "first_grads": first_grads, "x": x, "targets": targets, "w0": w0,
            "gc_collected": tally.collected, "gc_collections": tally.collections}


@pytest.mark.slow
def test_scalar_mode_trains_on_a_real_batch(scalar_run):
    losses = scalar_run["losses"]
    assert all(np.isfinite(losses))
    assert losses[0] > losses[1] > losses[2], f"loss did not decrease: {losses}"


@pytest.mark.slow
def test_scalar_mode_gradients_equal_array_mode_gradients(scalar_run):
    w, b = mg.Value(scalar_run["w0"]), mg.Value(0.0)
    array_loss(w, b, scalar_run["x"], scalar_run["targets"]).backward()
    grad_w, grad_b = scalar_run["first_grads"]
    np.testing.assert_allclose(grad_w, w.grad, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(grad_b, b.grad, rtol=1e-9)


@pytest.mark.slow
def test_scalar_mode_leaves_the_garbage_collector_nothing_to_free(scalar_run):
    # micrograd's nodes sit in reference cycles, so its collector must free every graph: about 75% of
    # its time. Ours has no cycles: the collector may look at nodes while a graph grows (its cost is
    # measured in benchmarks/, not here; test_engine checks there is one tracked object per node), but
    # it never frees one. Timing is not a test.
    assert scalar_run["gc_collected"] == 0, f"the collector freed {scalar_run['gc_collected']} objects"

