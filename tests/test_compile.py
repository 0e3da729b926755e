"""mg.compile: a traced step replays what eager mode computes, recomputes its masks, and refuses what it
cannot replay (control flow on values, random draws, in-place changes inside the function)."""

from __future__ import annotations

import gc
import re
import sys
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

import microgradx as mg

from fuzz_programs import programs

compile_module = sys.modules["microgradx.compile"]   # mg.compile is the function, not the module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

THIS_FILE = Path(__file__).name


def eager_and_compiled(fn):
    return fn, mg.compile(fn)


def assert_same(a, b):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12,
                               atol=1e-12, equal_nan=True)


def leaf_step(program, leaves):
    def step():
        out = program(*leaves).sum()
        out.backward()
        return out
    return step


# --------------------------------------------------------------------------------------------------
# Random programs: compiled against eager, on the traced data and on new data
# --------------------------------------------------------------------------------------------------

@settings(max_examples=25)
@given(programs())
def test_random_program_backward_compiled_matches_eager(program):
    leaves = [mg.Value(a) for a in program.inputs]
    step = leaf_step(program, leaves)
    compiled = mg.compile(step)
    # The same data (the trace), then other data of the same shapes (replays): signs flipped and
    # stretched, so relu's, abs's, clip's and max's masks differ from the traced ones.
    with np.errstate(all="ignore"):
        for scale in (1.0, -1.0, 1.7, -0.3):
            for leaf, a in zip(leaves, program.inputs, strict=True):
                leaf.data = a * scale
                leaf.zero_grad()
            try:
                expected = step()
            except ValueError:      # eager refuses this data (math.log of a negative scalar base)
                with pytest.raises(ValueError):
                    compiled()
                continue
            eager_grads = [leaf.grad.copy() for leaf in leaves]
            for leaf in leaves:
                leaf.zero_grad()
            got = compiled()
            assert_same(got.data, expected.data)
            for leaf, g in zip(leaves, eager_grads, strict=True):
                assert_same(leaf.grad, g)
    assert len(compiled.traces) == 1


@settings(max_examples=25)
@given(programs())
def test_random_program_value_and_grad_compiled_matches_eager(program):
    argnums = tuple(range(len(program.inputs)))
    eager = mg.value_and_grad(lambda *xs: program(*xs).sum(), argnums=argnums)
    compiled = mg.compile(eager)
    with np.errstate(all="ignore"):
        for scale in (1.0, -1.0, 2.0):
            inputs = [a * scale for a in program.inputs]
            value, grads = eager(*inputs)
            got_value, got_grads = compiled(*inputs)
            assert_same(got_value, value)
            for g, h in zip(got_grads, grads, strict=True):
                assert_same(g, h)
                assert isinstance(g, np.ndarray | np.generic)


# --------------------------------------------------------------------------------------------------
# Masks are recomputed on replay
# --------------------------------------------------------------------------------------------------

MASKED = {
    "relu": lambda x: x.relu().sum(),
    "abs": lambda x: abs(x).sum(),
    "clip": lambda x: x.clip(-0.5, 0.5).sum(),
    "max ties": lambda x: x.max() * 2,
    "maximum": lambda x: mg.maximum(x, 0.2).sum(),
    "where from a comparison": lambda x: mg.where(x > 0, x * 3, -x).sum(),
    "leaky_relu": lambda x: mg.nn.functional.leaky_relu(x, 0.1).sum(),
    "softplus": lambda x: mg.softplus(x).sum(),
    "mnist_loss": lambda x: mg.losses.mnist_loss(x, np.array([1.0, 0.0, 1.0, 0.0])),
}


@pytest.mark.parametrize("name", MASKED)
def test_masks_are_recomputed_on_replay(name):
    f = mg.value_and_grad(MASKED[name])
    compiled = mg.compile(f)
    for x in ([1.0, -2.0, 0.3, -0.1], [-1.0, 2.0, -0.3, 0.1], [0.7, 0.7, -3.0, 0.7]):
        x = np.array(x)
        value, grad = f(x)
        got_value, got_grad = compiled(x)
        assert_same(got_value, value)
        assert_same(got_grad, grad)
    assert len(compiled.traces) == 1


def test_where_condition_from_an_input_array_is_recomputed():
    # numpy on an array argument is followed (np.asarray(t), which makes a plain array, is not: docs)
    f = mg.value_and_grad(lambda x, t: mg.where((t == 1) & ~(t > 1), x, 2 * x).sum())
    compiled = mg.compile(f)
    x = np.arange(4.0)
    for t in ([1, 0, 1, 0], [0, 0, 1, 1]):
        t = np.array(t, dtype=float)
        assert_same(compiled(x, t)[1], f(x, t)[1])


def _new_data_replays_as_eager(f, shape, seed=0):
    compiled = mg.compile(f)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        x = rng.normal(size=shape)
        value, grad = f(x)
        got_value, got_grad = compiled(x)
        assert_same(got_value, value)
        assert_same(got_grad, grad)
    assert len(compiled.traces) == 1
    return compiled


def test_rules_the_tracer_cannot_follow_stay_one_step_and_recompute_their_masks():
    # clip's rule starts from np.ones (an array the tracer does not see made); power's rule for the
    # exponent runs under its own np.errstate: each is one call of the rule, run again at every replay.
    compiled = _new_data_replays_as_eager(mg.value_and_grad(lambda x: x.clip(-0.5, 0.5).sum()), (6,))
    assert "clip_d0(" in compiled.program
    compiled = _new_data_replays_as_eager(mg.value_and_grad(lambda x: (abs(x) ** x).sum()), (6,))
    assert "power_d1(" in compiled.program
    # relu's rule, which it can follow, is written as its numpy calls: its mask is a line.
    compiled = _new_data_replays_as_eager(mg.value_and_grad(lambda x: x.relu().sum()), (6,))
    assert "relu_d0(" not in compiled.program and " > 0\n" in compiled.program


@mg.primitive(lambda g, ans, x: g * (np.asarray(x) > 0))
def _users_relu(x):
    return np.maximum(np.asarray(x), 0)


def test_a_users_op_stays_one_step_and_an_unseen_array_is_never_baked_in(monkeypatch):
    f = mg.value_and_grad(lambda x: _users_relu(x * 1.0).sum())
    compiled = _new_data_replays_as_eager(f, (6,))
    assert "_users_relu_d0(" in compiled.program        # a user's rule: one call, not followed
    # Even if the tracer tried to follow it, the mask made by np.asarray (a plain array it cannot see)
    # would make it fall back to one call rather than bake the first call's mask in.
    monkeypatch.setattr(compile_module, "_INLINED_MODULES", {__name__})
    compiled = _new_data_replays_as_eager(f, (6,), seed=1)
    assert "_users_relu_d0(" in compiled.program


def test_steps_of_constants_alone_are_computed_once():
    w = mg.Value(np.ones((3, 1)))
    compiled = mg.compile(linear_step(w, mg.Value(np.zeros(1))))
    compiled(np.ones((2, 3)), np.ones((2, 1)))
    # Every call line takes something computed at the replay (a slot t.., or a Value from outside).
    body = compiled.program.splitlines()[1:-1]
    lines = [line.split("=", 1)[-1] for line in body if not line.lstrip().startswith("#")]
    assert lines and all(re.search(r"\b(t\d+|leaves\[\d+\]|args\[\d+\])", line) for line in lines), body


def test_leaves_never_share_a_gradient_array():
    rng = np.random.default_rng(0)
    a, b, w = mg.Value(rng.normal(size=3)), mg.Value(rng.normal(size=3)), mg.Value(rng.normal(size=(3, 2)))

    def step(x):
        loss = ((a + b) @ w).sum() + (x @ w).sum()      # a and b get the same gradient
        loss.backward()
        return loss

    compiled = mg.compile(step)
    for _ in range(3):
        x = rng.normal(size=(4, 3))
        for p in (a, b, w):
            p.zero_grad()
        step(x)
        expected = [p.grad.copy() for p in (a, b, w)]
        for p in (a, b, w):
            p.zero_grad()
        compiled(x)
        for p, g in zip((a, b, w), expected, strict=True):
            assert_same(p.grad, g)
        grads = [a._grad, b._grad, w._grad]
        assert not any(np.shares_memory(g, h) for i, g in enumerate(grads) for h in grads[i + 1:])
        assert not np.shares_memory(w._grad, x) and not np.shares_memory(w._grad, w.data)
    assert "_adopt_leaf(" in compiled.program       # w's gradient, a fresh matmul: no copy needed


@pytest.mark.parametrize("shape", [(), (3,)])
def test_calls_alike_reuse_written_lines_only_when_their_operands_are_alike(shape):
    # x * x and then x * y: the same function on operands of the same kind, but the first uses one
    # operand twice; the lines written for it must not be reused for the second.
    f = mg.value_and_grad(lambda x, y: (x * x).sum() + (x * y).sum() + (y * x * 2.0).sum() + (x * 3.0).sum(),
                          argnums=(0, 1))
    compiled = mg.compile(f)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.normal(size=shape), rng.normal(size=shape)
        (value, grads), (got_value, got_grads) = f(x, y), compiled(x, y)
        assert_same(got_value, value)
        for g, h in zip(got_grads, grads, strict=True):
            assert_same(g, h)


def test_a_ufunc_on_the_same_operands_is_computed_once():
    w = mg.Value(np.ones((3, 1)))
    compiled = mg.compile(linear_step(w, mg.Value(np.zeros(1))))
    compiled(np.ones((2, 3)), np.ones((2, 1)))
    # mnist_loss's 1 - p and sigmoid's rule's 1 - ans: one line, read twice.
    assert len(re.findall(r"= 1 - t\d+\n", compiled.program)) == 1


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_mean_replays_bit_for_bit_in_every_float_dtype(dtype):
    f = mg.value_and_grad(lambda x: (x * x).mean(axis=0).sum() + x.mean())
    compiled = mg.compile(f)
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.normal(size=(7, 3)).astype(dtype)
        (value, grad), (got_value, got_grad) = f(x), compiled(x)
        np.testing.assert_array_equal(got_value, value)
        np.testing.assert_array_equal(got_grad, grad)
        assert np.asarray(got_value).dtype == np.asarray(value).dtype == dtype


# --------------------------------------------------------------------------------------------------
# Leaves, shapes, the cache, the decorator
# --------------------------------------------------------------------------------------------------

def linear_step(w, b):
    def step(x, y):
        loss = mg.losses.mnist_loss(x @ w + b, y)
        loss.backward()
        return loss
    return step


def test_leaves_are_read_afresh_whether_rebound_or_edited_in_place():
    rng = np.random.default_rng(0)
    w, b = mg.Value(rng.normal(size=(5, 1))), mg.Value(np.zeros(1))
    step = linear_step(w, b)
    compiled = mg.compile(step)
    x, y = rng.normal(size=(8, 5)), (rng.random((8, 1)) > 0.5).astype(float)
    for i in range(4):
        for p in (w, b):
            p.zero_grad()
        expected = float(step(x, y).data)
        grads = [w.grad.copy(), b.grad.copy()]
        for p in (w, b):
            p.zero_grad()
        assert float(compiled(x, y).data) == pytest.approx(expected, rel=1e-12)
        assert_same(w.grad, grads[0])
        assert_same(b.grad, grads[1])
        with mg.no_grad():
            if i % 2:
                w.data = w.data - 0.5 * w.grad         # rebound
            else:
                w.data[...] -= 0.5 * w.grad            # edited in place
            b.data = b.data - 0.5 * b.grad


def test_a_leaf_rebound_to_another_shape_or_dtype_traces_again():
    w = mg.Value(np.ones(3))
    calls = []

    def f(x):
        calls.append(1)
        return (w * x).sum()

    compiled = mg.compile(f)
    x = np.arange(3.0)
    compiled(x)
    compiled(x)
    assert len(calls) == 1
    w.data = np.full(3, 2.0, dtype=np.float32)      # another dtype: the float64 trace must not replay
    assert float(compiled(x).data) == 6.0 and len(calls) == 2
    w.data = np.ones((2, 3))                        # another shape: broadcasts to a (2, 3) product
    assert float(compiled(x).data) == 6.0 and len(calls) == 3
    compiled(x)
    assert len(calls) == 3


def test_backward_accumulates_into_leaf_gradients_as_eager():
    w = mg.Value(np.array([1.0, -2.0]))
    compiled = mg.compile(lambda x: (w * x).relu().sum().backward())
    compiled(np.array([1.0, 1.0]))
    compiled(np.array([1.0, 1.0]))
    assert_same(w.grad, [2.0, 0.0])


def test_a_new_shape_or_dtype_traces_again_and_the_cache_is_bounded():
    calls = []

    def f(x):
        calls.append(1)
        return (mg.Value(x) * 2).sum()

    compiled = mg.compile(cache_size=2)(f)
    compiled(np.ones(3))
    compiled(np.ones(3))
    assert len(calls) == 1
    assert float(compiled(np.ones(4)).data) == 8.0
    compiled(np.ones(4, dtype=np.float32))
    assert len(calls) == 3
    assert len(compiled.traces) == 2
    compiled(np.ones(3))                        # pushed out of the cache: traced again
    assert len(calls) == 4


def test_decorator_forms():
    @mg.compile
    def f(x):
        return (mg.Value(x) ** 2).sum()

    @mg.compile()
    def g(x):
        return (mg.Value(x) ** 2).sum()

    assert float(f(np.arange(3.0)).data) == float(g(np.arange(3.0)).data) == 5.0
    assert f.__name__ == "f"


def test_program_is_readable():
    w = mg.Value(np.ones((3, 1)))
    compiled = mg.compile(linear_step(w, mg.Value(np.zeros(1))))
    with pytest.raises(mg.TraceError, match="not been called"):
        _ = compiled.program
    compiled(np.ones((2, 3)), np.ones((2, 1)))
    program = compiled.program
    assert program.startswith("def replay(args, kwargs, leaves):")
    # The library's forwards and rules are written as their numpy calls, under a comment naming them.
    for line in ("# matmul\n", "# sigmoid\n", "exp(", "# sigmoid_d0\n", "# matmul_d1\n", "swapaxes(",
                 "_leaf(leaves[0]"):
        assert line in program
    assert "sigmoid_d0(" not in program


def test_large_programs_run_through_the_loop_and_agree(monkeypatch):
    monkeypatch.setattr(compile_module, "_CODE_LIMIT", 0)
    f = mg.value_and_grad(lambda x: mg.where(x > 0, x, x * x).sum() + mg.stack([x[0], x[1]]).sum())
    compiled = mg.compile(f)
    for x in (np.array([1.0, -2.0, 3.0]), np.array([-1.0, 2.0, -3.0])):
        assert_same(compiled(x)[1], f(x)[1])


# --------------------------------------------------------------------------------------------------
# Guards: what cannot be replayed is refused, naming the user's line
# --------------------------------------------------------------------------------------------------

REFUSED = {
    "float": lambda v: float(v.sum()),
    "bool": lambda v: v.sum() if v.sum() else v,
    "item": lambda v: v.sum().item(),
    "data": lambda v: v.data * 2,
    "numpy": lambda v: v.numpy(),
    "asarray": lambda v: np.asarray(v),
    "if on a mask": lambda v: v if (v > 0).any() else -v,
}


@pytest.mark.parametrize("name", REFUSED)
def test_control_flow_on_values_is_refused_with_the_users_line(name):
    compiled = mg.compile(lambda x: REFUSED[name](mg.Value(x) * 1.0))
    with pytest.raises(mg.TraceError, match=THIS_FILE):
        compiled(np.arange(3.0))
    # The patches are undone: eager code works again.
    assert float(mg.Value(2.0)) == 2.0


def test_reading_grad_inside_the_function_is_refused():
    w = mg.Value(np.ones(2))

    def step(x):
        (w * x).sum().backward()
        return w.grad * 2

    with pytest.raises(mg.TraceError, match=r"\.grad"):
        mg.compile(step)(np.ones(2))


def test_random_draws_inside_are_refused():
    compiled = mg.compile(lambda x: (mg.Value(x) * np.random.rand()).sum())  # noqa: NPY002
    with pytest.raises(mg.TraceError, match="random"):
        compiled(np.ones(2))


def test_an_optimizer_step_inside_is_refused():
    w = mg.Value(np.ones(2))
    opt = mg.optim.SGD([w], lr=0.1)

    def step(x):
        (w * x).sum().backward()
        opt.step()

    with pytest.raises(mg.TraceError, match="in place"):
        mg.compile(step)(np.ones(2))


def test_a_differentiable_backward_is_refused():
    w = mg.Value(np.ones(2))

    def step(x):
        (w * x).sum().backward(create_graph=True)

    with pytest.raises(mg.TraceError, match="create_graph"):
        mg.compile(step)(np.ones(2))


def test_anomaly_mode_runs_eagerly():
    compiled = mg.compile(lambda x: mg.Value(x).log().sum())
    with mg.detect_anomaly(), pytest.raises(mg.AnomalyError):
        compiled(np.array([-1.0]))
    assert not compiled.traces


# --------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------

def test_no_reference_cycles_and_the_trace_does_not_keep_parameters_alive():
    model = {"w": mg.Value(np.ones((3, 1))), "b": mg.Value(np.zeros(1))}

    def step(x, y):
        loss = mg.losses.mnist_loss(x @ model["w"] + model["b"], y)
        loss.backward()
        return loss

    compiled = mg.compile(step)
    x, y = np.ones((4, 3)), np.ones((4, 1))
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            compiled(x, y)
        assert gc.collect() == 0
    finally:
        gc.enable()
    ref = weakref.ref(model["w"])
    model["w"] = mg.Value(np.ones((3, 1)))       # a new parameter: the trace must not replay the old one
    assert ref() is None
    trace = compiled.traces[next(iter(compiled.traces))]
    assert trace.live_leaves() is None
    compiled(x, y)
    assert model["w"].grad.any()


def test_memory_stays_flat_over_ten_thousand_replays():
    w = mg.Value(np.ones((3, 1)))
    compiled = mg.compile(linear_step(w, mg.Value(np.zeros(1))))
    x, y = np.ones((4, 3)), np.ones((4, 1))
    for _ in range(100):
        compiled(x, y)
    tracemalloc.start()
    try:
        for _ in range(1_000):                   # numpy's and tracemalloc's own first allocations
            compiled(x, y)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            compiled(x, y)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 200_000    # numpy's caches come and go; one object leaked per call is 560 KB


def test_the_trace_holds_no_array_of_the_traced_call():
    big = np.ones((500, 500))
    w = mg.Value(np.ones(500))
    compiled = mg.compile(lambda x: (x @ w).sum().backward())
    ref = weakref.ref(big)
    compiled(big)
    del big
    gc.collect()
    assert ref() is None


# --------------------------------------------------------------------------------------------------
# Loss curves: the chapter's loop, an MLP, micrograd's scalar demo
# --------------------------------------------------------------------------------------------------

def _curve(model, loss_fn, batches, lr, compiled):
    opt = mg.optim.SGD(model.parameters(), lr=lr)

    def step(xb, yb):
        loss = loss_fn(model(xb), yb)
        loss.backward()
        return loss

    run = mg.compile(step) if compiled else step
    losses = []
    for xb, yb in batches:
        opt.zero_grad()
        losses.append(float(run(xb, yb).data))
        opt.step()
    return losses


@pytest.mark.parametrize("make", [lambda: mg.nn.Linear(20, 1, rng=0), lambda: mg.nn.MLP(20, [8, 1], rng=0)],
                         ids=["chapter's linear model", "mlp"])
def test_training_curves_match_eager(make):
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(16, 20)).astype(np.float32) for _ in range(30)]
    batches = [(x, (x[:, :1] + x[:, 1:2] > 0).astype(np.float32)) for x in xs]    # learnable
    eager = _curve(make(), mg.losses.mnist_loss, batches, 1.0, compiled=False)
    compiled = _curve(make(), mg.losses.mnist_loss, batches, 1.0, compiled=True)
    np.testing.assert_allclose(compiled, eager, rtol=1e-6)
    assert eager[-1] < eager[0]


def test_micrograds_scalar_demo_matches_eager():
    import workloads as w
    X, y = w.two_moons(20, noise=0.1, seed=0)
    curves = []
    for compiled in (False, True):
        demo = w.MoonsMicrogradxScalar(w.moons_init(0), X, y)
        params = demo.model.parameters()

        def step(demo=demo):
            loss = demo._loss()
            loss.backward()
            return loss

        run = mg.compile(step) if compiled else step
        losses = []
        for _ in range(5):
            for p in params:
                p.zero_grad()
            losses.append(float(run().data))
            with mg.no_grad():
                for p in params:
                    p.data -= 0.1 * p.grad
        curves.append(losses)
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-12)


def test_a_constant_changed_between_its_op_and_backward_is_refused_while_tracing_as_eagerly():
    c = mg.Value(np.array([3.0, 4.0]), requires_grad=False)
    w = mg.Value(np.array([1.0, 2.0]))

    def step():
        loss = (w * c).sum()
        c.data = np.array([0.0, 0.0])     # the rule for w reads c
        loss.backward()
        return loss

    with pytest.raises(mg.GradientError, match="multiply.*its input.*changed in place"):
        step()
    c.data = np.array([3.0, 4.0])
    with pytest.raises(mg.GradientError, match="multiply.*its input.*changed in place"):
        mg.compile(step)()
