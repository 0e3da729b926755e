"""Tools to check derivatives: ours, and the ones you write on top of microgradx.

``gradcheck(f, *inputs)`` compares the gradient that ``backward()`` computes with central finite
differences in float64, element by element, and says which input and which element disagree.
``gradgradcheck`` does the same for second derivatives (the gradient of the gradient).

The hypothesis strategies draw the kind of inputs a derivative test wants: small shapes, pairs of shapes
that broadcast, and arrays kept away from kinks and domain edges (where finite differences are
meaningless)::

    from hypothesis import given
    from microgradx.testing import arrays, gradcheck, shapes

    @given(arrays(shapes(), low=-3, high=3, avoid=(0.0,)))
    def test_my_op(x):
        gradcheck(my_op, x)

For an op of your own (``mg.primitive``), :func:`check_op` is that whole test in one line::

    def test_my_op():
        check_op(my_op, low=-3, high=3, avoid=(0.0,))

hypothesis is needed only for the strategies and ``check_op`` (``pip install hypothesis``; it is imported
when first used); ``gradcheck`` needs numpy alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .engine import Primitive, Value, backprop, data_of, enable_grad
from .errors import ArgumentError, MicrogradxError

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck", "numerical_gradient", "check_op", "shapes",
           "broadcastable_shapes", "arrays", "positive_arrays"]


class GradcheckError(MicrogradxError, AssertionError):
    """The analytic gradient disagrees with finite differences (an AssertionError, so pytest shows it)."""


def _as_float64(x: Any) -> np.ndarray:
    # A C-ordered copy: numerical_gradient perturbs elements through a flat view, which a transposed
    # or Fortran-ordered array cannot give.
    return np.array(data_of(x), dtype=np.float64, order="C")


def _scalar_output(f: Callable[..., Any], inputs: Sequence[Any], weights: list) -> Any:
    """f's output reduced to one number by a fixed random projection, so every element is checked."""
    out = f(*inputs)
    if not weights:
        rng = np.random.default_rng(0)
        weights.append(rng.uniform(0.5, 1.5, size=np.shape(data_of(out))))
    return (out * weights[0]).sum()


def numerical_gradient(f: Callable[..., Any], inputs: Sequence[np.ndarray], index: int,
                       eps: float = 1e-6) -> np.ndarray:
    """Central differences of scalar ``f(*inputs)`` with respect to ``inputs[index]``, in float64.

    ``f`` is called with the inputs as given, except ``inputs[index]``, which it receives as a float64
    copy that is moved by ``eps`` one element at a time.
    """
    inputs = list(inputs)
    x = inputs[index] = _as_float64(inputs[index])
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)    # views: writing flat[i] moves x
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        up = float(data_of(f(*inputs)))
        flat[i] = saved - eps
        down = float(data_of(f(*inputs)))
        flat[i] = saved
        gflat[i] = (up - down) / (2 * eps)
    return grad


def gradcheck(f: Callable[..., Any], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-4, name: str | None = None) -> bool:
    """Check ``backward()``'s gradient of ``f`` against central finite differences.

    ``f`` takes one Value per input and returns a Value of any shape (a non-scalar output is reduced with
    fixed random weights, so every output element takes part). Inputs are copied to float64 first.
    Returns True, or raises :class:`GradcheckError` naming the input, the worst element, and both values.
    """
    arrays_ = [_as_float64(x) for x in inputs]
    weights: list = []
    values = [Value(a.copy()) for a in arrays_]
    out = _scalar_output(f, values, weights)
    if not isinstance(out, Value) or not out.requires_grad:
        raise GradcheckError(f"gradcheck: {name or 'f'} does not depend on its inputs through Values")
    out.backward()

    def plain(*xs: Any) -> Any:
        return _scalar_output(f, [Value(x, requires_grad=False) for x in xs], weights)

    label = name or getattr(f, "__name__", "f")
    for i, (v, a) in enumerate(zip(values, arrays_, strict=True)):
        analytic = np.asarray(v.grad, dtype=np.float64)
        numeric = numerical_gradient(plain, arrays_, i, eps)
        _compare(label, i, a, analytic, numeric, atol, rtol)
    return True


def gradgradcheck(f: Callable[..., Any], *inputs: Any, eps: float = 1e-6, atol: float = 1e-4,
                  rtol: float = 1e-3, name: str | None = None) -> bool:
    """Check second derivatives: the gradient of (f's gradient . fixed random directions).

    The gradient is computed with ``create_graph=True``, so this exercises every rule's own derivative.
    """
    label = name or getattr(f, "__name__", "f")
    directions: list = []
    weights: list = []

    def first_derivative_projected(*xs: Any) -> Any:
        # gradcheck's finite differences pass constants: they still need a graph for the inner gradient.
        xs = tuple(x if x.requires_grad else Value(x.data) for x in xs)
        with enable_grad():
            out = _scalar_output(f, xs, weights)
            grads = backprop(out, np.ones_like(out.data), create_graph=True, targets=tuple(xs))
        if not directions:
            rng = np.random.default_rng(1)
            directions.extend(rng.uniform(0.5, 1.5, size=np.shape(x.data)) for x in xs)
        total: Any = 0.0
        for x, d in zip(xs, directions, strict=True):
            g = grads.get(x)
            if g is not None:
                total = total + (g * d).sum()
        if not isinstance(total, Value):
            # No gradient was recorded as a graph: either the first derivative really is constant, or a
            # rule ran numpy directly. The analytic second derivative is then zero; keep the value, so
            # the finite differences show whether it truly is.
            total = Value(total) + xs[0].sum() * 0
        return total

    return gradcheck(first_derivative_projected, *inputs, eps=eps, atol=atol, rtol=rtol,
                     name=f"gradient of {label}")


def _compare(label: str, i: int, x: np.ndarray, analytic: np.ndarray, numeric: np.ndarray,
             atol: float, rtol: float) -> None:
    if analytic.shape != x.shape:
        raise GradcheckError(f"gradcheck of {label}: gradient of input #{i} has shape {analytic.shape}, "
                             f"expected the input's shape {x.shape}")
    error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if np.all(error <= 0):
        return
    bad = np.where(np.isnan(error), np.inf, error)
    worst = tuple(int(k) for k in np.unravel_index(int(np.argmax(bad)), x.shape)) if x.ndim else ()
    raise GradcheckError(
        f"gradcheck of {label}: input #{i} (shape {x.shape}) disagrees with finite differences "
        f"at element {worst}: analytic {float(analytic[worst]):.6g}, numeric {float(numeric[worst]):.6g} "
        f"(input value {float(x[worst]):.6g}; {int(np.sum(~(error <= 0)))} of {x.size} elements off; "
        f"atol={atol}, rtol={rtol})"
    )


# --------------------------------------------------------------------------------------------------
# hypothesis strategies
# --------------------------------------------------------------------------------------------------

def _hypothesis() -> Any:
    try:
        import hypothesis.extra.numpy as hnp
        import hypothesis.strategies as st
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("microgradx.testing's strategies need hypothesis: pip install hypothesis") from None
    return st, hnp


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> Any:
    """Strategy for small array shapes (tuples), 0-d included by default."""
    _, hnp = _hypothesis()
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3, max_side: int = 4) -> Any:
    """Strategy for a tuple of ``num_shapes`` shapes that broadcast together (sizes of 1, missing axes)."""
    st, hnp = _hypothesis()
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims,
                                             max_side=max_side).map(lambda bs: bs.input_shapes)


def arrays(shape: Any, low: float = -3.0, high: float = 3.0, avoid: Sequence[float] = (),
           margin: float = 0.1, dtype: Any = np.float64) -> Any:
    """Strategy for float arrays in [low, high] whose elements stay ``margin`` away from each of ``avoid``.

    Use ``avoid`` for kinks (``relu`` and ``abs`` at 0, ``clip`` at its bounds): finite differences across
    a kink measure neither side's derivative. ``shape`` may be a tuple or a strategy of tuples.
    """
    st, hnp = _hypothesis()
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)
    if avoid:
        elements = elements.filter(lambda v: all(abs(v - k) > margin for k in avoid))
    if isinstance(shape, tuple):
        shape = st.just(shape)
    return shape.flatmap(lambda s: hnp.arrays(np.float64, s, elements=elements)).map(
        lambda a: a.astype(dtype))


def positive_arrays(shape: Any, low: float = 0.5, high: float = 3.0, dtype: Any = np.float64) -> Any:
    """Strategy for arrays in [low, high] with low > 0: inputs for log, sqrt, fractional powers."""
    if low <= 0:
        raise ArgumentError("positive_arrays: low must be > 0")
    return arrays(shape, low=low, high=high, dtype=dtype)


# --------------------------------------------------------------------------------------------------
# A property test in one line
# --------------------------------------------------------------------------------------------------

def check_op(op: Callable[..., Any], shapes: Any = None, low: float = -3.0, high: float = 3.0,
             avoid: Sequence[float] = (), order: int = 2, max_examples: int | None = None,
             params: dict[str, Any] | None = None) -> None:
    """Property-test an op: on random inputs drawn by hypothesis, its derivatives match finite differences.

    Each example draws one array per input of ``op`` and checks that the op computes the same numbers on
    arrays and on Values, then ``gradcheck`` and (for ``order=2``) ``gradgradcheck``. Call it inside a
    test; a failure raises :class:`GradcheckError` (an AssertionError) for the smallest input hypothesis
    finds, which it adds as a note.

    Args:
        op: a primitive (``mg.primitive``) or any function of arrays or Values.
        shapes: the inputs' shapes: one entry per input, each a shape tuple or a strategy of shapes, or
            a strategy drawing a tuple of shapes. By default small shapes that broadcast together
            (0-d included), one per input of a primitive.
        low: the smallest element value.
        high: the largest element value.
        avoid: points the elements stay 0.1 away from: kinks and poles, where finite differences
            measure neither side's derivative.
        order: 1 to check first derivatives only (rules written with numpy on raw data), 2 for second.
        max_examples: how many examples to try; the loaded hypothesis profile's number when None.
        params: keyword parameters passed to every call of ``op`` (``{"axis": 0}``).
    """
    st, _ = _hypothesis()
    from hypothesis import HealthCheck, given, settings

    label = getattr(op, "__name__", "op")
    draw_shapes = _input_shapes(op, shapes, label)
    if order not in (1, 2):
        raise ArgumentError(f"check_op: order must be 1 or 2, got {order!r}")

    def f(*xs: Any) -> Any:
        return op(*xs, **(params or {}))

    @settings(settings.default, deadline=None, suppress_health_check=[HealthCheck.too_slow],
              **({"max_examples": max_examples} if max_examples else {}))
    @given(st.data())
    def derivatives_match(data: Any) -> None:
        inputs = [data.draw(arrays(shape, low=low, high=high, avoid=avoid), label=f"input #{i}")
                  for i, shape in enumerate(data.draw(draw_shapes, label="shapes"))]
        _same_forward(f, inputs, label)
        gradcheck(f, *inputs, name=label)
        if order == 2:
            gradgradcheck(f, *inputs, name=label)

    derivatives_match()


def _input_shapes(op: Callable[..., Any], shapes_: Any, label: str) -> Any:
    """A strategy drawing one shape per input of ``op``."""
    st, _ = _hypothesis()
    if shapes_ is None:
        if not isinstance(op, Primitive) or op.variadic:
            raise ArgumentError(f"check_op: {label} is not a primitive with a fixed number of inputs; "
                                "say how many inputs it takes with shapes=[...], one shape per input")
        n = len(op.vjps)
        if None in op.vjps:
            raise ArgumentError(f"check_op: input #{op.vjps.index(None)} of {label} takes no gradient (its "
                                "rule is None), and check_op draws every input as floats to differentiate; "
                                "check the others with gradcheck(lambda a, b: op(mask, a, b), a, b)")
        return shapes().map(lambda s: (s,)) if n == 1 else broadcastable_shapes(n)
    if hasattr(shapes_, "example"):             # already a strategy of tuples of shapes
        return shapes_
    if not isinstance(shapes_, list | tuple) or not shapes_:
        raise ArgumentError(f"check_op: shapes= is one shape (or strategy of shapes) per input of {label}, "
                            f"e.g. [(3,), (2, 3)]; got {shapes_!r}")
    parts = [st.just(s) if isinstance(s, tuple) else s for s in shapes_]
    if not all(hasattr(p, "example") for p in parts):
        raise ArgumentError(f"check_op: each entry of shapes= is a shape tuple or a hypothesis strategy of "
                            f"shapes, got {shapes_!r} (for one input of shape (3,) write [(3,)])")
    return st.tuples(*parts)


def _same_forward(f: Callable[..., Any], inputs: list, label: str) -> None:
    plain = np.asarray(data_of(f(*inputs)))
    recorded = np.asarray(data_of(f(*[Value(x) for x in inputs])))
    if plain.shape != recorded.shape or not np.allclose(plain, recorded, rtol=1e-12, atol=0, equal_nan=True):
        raise GradcheckError(f"check_op of {label}: the op gives different results on arrays "
                             f"(shape {plain.shape}) and on Values (shape {recorded.shape})")
