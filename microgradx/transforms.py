"""Function transforms: Jacobians, Hessians, Hessian-vector products and forward-mode products.

Each is built on the reverse pass (``engine.backprop``) and on ``grad``, so each composes with them and
with the others, to any order: ``hessian(f)`` is ``jacobian(grad(f))``, and ``jacobian(hessian(f))`` gives
third derivatives. The names and argument conventions are JAX's (``jax.jacrev``, ``jax.hessian``,
``jax.jvp``, ``jax.vjp``) and, where JAX has none, HIPS autograd's (``hessian_tensor_product``,
``elementwise_grad``); docs/transforms.md lists where the two differ and which one we follow.

One recorded evaluation of ``f`` (a :class:`_Trace`) serves every backward pass a transform needs: a
Jacobian pulls one basis vector per output element back through the same graph.

As ``grad`` does, every transform returns numpy arrays when called on plain numbers and arrays, and
Values recorded in the graph when it runs inside another transform's function or is given a Value that
requires grad: the result can then be differentiated again.

Forward mode (``jvp``) uses the double-vjp trick rather than a second derivative rule per primitive: the
vector-Jacobian product ``u -> J^T u`` is linear in ``u``, so differentiating ``<J^T u, t>`` with respect
to ``u`` gives ``J t``. It costs a forward pass and two reverse passes, whatever the number of inputs
(docs/transforms.md has the measurements against building the Jacobian).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import ops
from .autodiff import grad
from .engine import Value, _mode, as_value, backprop, data_of, enable_grad, to_array
from .errors import ArgumentError, GradientError, ShapeError

__all__ = ["jacobian", "hessian", "hvp", "jvp", "vjp", "elementwise_grad"]

Argnums = int | tuple[int, ...]


# --------------------------------------------------------------------------------------------------
# The transforms
# --------------------------------------------------------------------------------------------------

def jacobian(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """Return a function computing the Jacobian of ``f`` with respect to argument(s) ``argnums``.

    For ``f`` taking an input of shape ``n...`` to an output of shape ``m...``, the Jacobian has shape
    ``m... + n...``: element ``[i..., j...]`` is d out[i...] / d x[j...] (JAX's convention). With a
    tuple of ``argnums`` the result is a tuple of Jacobians, one per argument; when ``f`` returns a tuple,
    a tuple with one entry per output. Reverse mode: one backward pass per output element, over one
    recorded forward pass.

    >>> import numpy as np
    >>> print(jacobian(lambda x: x * x)(np.array([1.0, 2.0])))
    [[2. 0.]
     [0. 4.]]
    """
    return _jacobian(f, argnums, "jacobian")


def hessian(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """Return a function computing the Hessian of scalar-valued ``f`` w.r.t. argument(s) ``argnums``.

    ``jacobian(grad(f))``: for an input of shape ``n...`` the Hessian has shape ``n... + n...``. With a
    tuple of ``argnums`` it is a tuple of tuples, ``H[i][j]`` the block d2f / d x_i d x_j (as JAX).

    >>> print(hessian(lambda x: x**3)(2.0))      # 6 * 2
    12.0
    """
    _check_argnums("hessian", argnums)
    return _jacobian(grad(_scalar_valued(f, "hessian"), argnums), argnums, "hessian")


def hvp(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """Return a function ``(*args, v) -> H v``: the Hessian of scalar ``f`` times ``v``, never forming H.

    ``v`` is the last positional argument, with the shape of the argument ``argnums`` names (a tuple of
    them for a tuple of ``argnums``), as in HIPS autograd's ``hessian_tensor_product``. Reverse over
    reverse: the gradient of ``<grad f(x), v>``, so it costs a few gradients, not ``n`` of them.

    >>> import numpy as np
    >>> print(hvp(lambda x: (x**3).sum())(np.array([1.0, 2.0]), np.array([1.0, 1.0])))   # 6 x * v
    [ 6. 12.]
    """
    single = isinstance(argnums, int)
    _check_argnums("hvp", argnums)
    scalar_f = _scalar_valued(f, "hvp")

    def product(*args_and_v: Any, **kwargs: Any) -> Any:
        if not args_and_v:
            raise ArgumentError("hvp: expected the function's arguments and then v, got no arguments")
        *args, v = args_and_v
        positions = _positions("hvp", argnums, len(args))
        if not single and not isinstance(v, tuple | list):
            raise ArgumentError(f"hvp: argnums={argnums!r} names {len(positions)} arguments, so v must be a "
                                f"tuple of {len(positions)} vectors; got {_kind(v)}")
        vs = _matching("hvp", "v", "argument", v if not single else (v,), [args[n] for n in positions],
                       several=not single)
        first = grad(scalar_f, argnums)

        def projected(*xs: Any) -> Any:
            gs = first(*xs, **kwargs)
            return _inner_product(gs if not single else (gs,), vs)

        return grad(projected, argnums)(*args)

    product.__name__ = f"hvp_{_name(f)}"
    return product


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """Evaluate ``f(*primals)`` and the Jacobian-vector product ``J tangents``: returns ``(out, J t)``.

    ``primals`` and ``tangents`` are tuples (or lists) of the same length, each tangent of its primal's
    shape (as ``jax.jvp`` and ``torch.func.jvp``); ``J t`` has the output's shape (a tuple when ``f``
    returns one). Computed by the double-vjp trick: no Jacobian is formed.

    >>> out, tangent = jvp(lambda x: x**3, (2.0,), (1.0,))
    >>> print(out, tangent)
    8.0 12.0
    """
    primals, tangents = _primals_and_tangents(primals, tangents)
    tangents = _matching("jvp", "tangent", "primal", tangents, primals)
    trace = _Trace("jvp", f, primals, {}, tuple(range(len(primals))))
    # A stand-in cotangent per output: J^T u, recorded as a function of u, is linear in u, and its
    # derivative in the direction t (the gradient of <J^T u, t> with respect to u) is J t.
    us = tuple(Value(np.zeros(out.shape, out.dtype)) for out in trace.outs)
    with enable_grad():
        pulled = trace.pull(us, create_graph=True)
        projected = _inner_product(pulled, tangents)
    nested = trace.nested or _running() or _any_traced(tangents)
    if isinstance(projected, Value) and projected.requires_grad:
        grads = backprop(projected, np.ones_like(projected.data), nested, us)
    else:
        grads = {}     # f's output does not depend on its inputs: J t is zero
    pushed = tuple(_result(grads.get(u), out, nested) for u, out in zip(us, trace.outs, strict=True))
    return trace.output(nested), trace.structure(pushed)


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]:
    """Evaluate ``f(*primals)``; return ``(out, vjp_fn)``, where ``vjp_fn(cotangent)`` is ``cotangent^T J``.

    ``vjp_fn`` takes a cotangent of the output's shape (a tuple of them when ``f`` returns a tuple) and
    returns a tuple with one gradient per primal, each of its primal's shape, as ``jax.vjp`` and
    ``torch.func.vjp``. ``f`` runs once; ``vjp_fn`` can be called any number of times.

    >>> import numpy as np
    >>> out, pull = vjp(lambda x, y: x * y, np.array([1.0, 2.0]), 3.0)
    >>> gx, gy = pull(np.array([1.0, 1.0]))
    >>> print(out, gx, gy)
    [3. 6.] [3. 3.] 3.0
    """
    if not primals:
        raise ArgumentError("vjp: expected the point to differentiate at, vjp(f, x, ...); got no primals")
    trace = _Trace("vjp", f, primals, {}, tuple(range(len(primals))))

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        cts = trace.cotangents(cotangent)
        nested = trace.nested or _running() or _any_traced(cts)
        pulled = trace.pull(cts, create_graph=nested)
        return tuple(_result(g, x, nested) for g, x in zip(pulled, trace.inputs, strict=True))

    vjp_fn.__name__ = f"vjp_{_name(f)}"
    return trace.output(trace.nested), vjp_fn


def elementwise_grad(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """Return a function computing the gradient of ``f(*args).sum()``, with ``argnums`` as in ``grad``.

    For an ``f`` that works element by element (``out[i]`` depends on ``x[i]`` only) this is the
    derivative at every element at once, in ``x``'s shape: HIPS autograd's ``elementwise_grad`` (JAX
    writes ``vmap(grad(f))``). For any other ``f`` it is the vector-Jacobian product with ones.

    >>> import numpy as np
    >>> print(elementwise_grad(lambda x: x**2)(np.array([1.0, 2.0, 3.0])))
    [2. 4. 6.]
    """
    def summed(*args: Any, **kwargs: Any) -> Any:
        out = f(*args, **kwargs)
        return _inner_product(out if isinstance(out, tuple | list) else (out,), None)

    _check_argnums("elementwise_grad", argnums)
    gradient = grad(summed, argnums)

    def derivative(*args: Any, **kwargs: Any) -> Any:
        _positions("elementwise_grad", argnums, len(args))
        return gradient(*args, **kwargs)

    derivative.__name__ = f"elementwise_grad_{_name(f)}"
    return derivative


# --------------------------------------------------------------------------------------------------
# One recorded evaluation of f
# --------------------------------------------------------------------------------------------------

class _Trace:
    """``f(*args)`` run once with a fresh node for each differentiated argument, its graph kept.

    ``pull`` sends cotangents of the outputs back to those nodes, as often as asked: the reverse pass
    writes nothing on the graph.
    """

    def __init__(self, who: str, f: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any],
                 argnums: Argnums) -> None:
        self.who = who
        positions = _positions(who, argnums, len(args))
        # As in grad: the results must be recorded when someone outside may differentiate them, that is
        # an enclosing transform running its function, or a caller who passed a Value that requires grad.
        self.nested = _running() or _any_traced((*args, *kwargs.values()))
        args = list(args)
        fresh: dict[int, Value] = {}
        with enable_grad():
            for n in dict.fromkeys(positions):
                # A new node per argument, so that the derivative is with respect to this argument only,
                # not to every use of the same Value elsewhere (a closure, another argument).
                a = args[n]
                args[n] = fresh[n] = ops.identity(a) if _is_traced(a) else Value(a)
            with _running_f():
                out = f(*args, **kwargs)
        self.inputs = tuple(fresh[n] for n in positions)
        self.targets = tuple(fresh.values())
        self.several = isinstance(out, tuple | list)
        outs = tuple(out) if self.several else (out,)
        if not outs:
            raise GradientError(f"{who}: the function returned an empty {type(out).__name__}; expected a "
                                "Value, an array or a number (or a tuple of them)")
        self.outs = tuple(as_value(o) for o in outs)

    def pull(self, cotangents: Sequence[Any], create_graph: bool) -> tuple[Any, ...]:
        """The gradients w.r.t. ``self.inputs`` of sum_k <cotangents[k], outs[k]>; None where zero."""
        total: dict[Value, Any] = {}
        for out, ct in zip(self.outs, cotangents, strict=True):
            if ct is None or not out.requires_grad:
                continue
            if isinstance(ct, Value) and not create_graph:
                ct = ct.data
            grads = backprop(out, ct, create_graph, self.targets)
            for t in self.targets:
                g = grads.get(t)
                if g is not None:
                    total[t] = g if t not in total else total[t] + g
        return tuple(total.get(x) for x in self.inputs)

    def cotangents(self, cotangent: Any) -> tuple[Any, ...]:
        """A cotangent per output, checked against the outputs' shapes and cast to their dtypes."""
        given = cotangent if self.several else (cotangent,)
        if self.several and (not isinstance(cotangent, tuple | list) or len(cotangent) != len(self.outs)):
            raise ArgumentError(f"{self.who}: the function returned {len(self.outs)} outputs, so the "
                                f"cotangent must be a tuple of {len(self.outs)}; got {_kind(cotangent)}")
        return _matching(self.who, "cotangent", "output", given, self.outs, several=self.several)

    def output(self, nested: bool) -> Any:
        """What f returned: Values when nested, else their data."""
        return self.structure(tuple(o if nested else o.data for o in self.outs))

    def structure(self, per_output: tuple[Any, ...]) -> Any:
        """One item per output, shaped as f's return value: a tuple if it returned several, else the item."""
        return per_output if self.several else per_output[0]


def _jacobian(f: Callable[..., Any], argnums: Argnums, who: str) -> Callable[..., Any]:
    single = isinstance(argnums, int)
    _check_argnums(who, argnums)

    def jac(*args: Any, **kwargs: Any) -> Any:
        trace = _Trace(who, f, args, kwargs, argnums)
        nested = trace.nested
        per_output = []
        for k, out in enumerate(trace.outs):
            rows: list[list[Any]] = [[] for _ in trace.inputs]
            for i in range(out.size):
                basis = np.zeros(out.shape, out.dtype)
                basis.flat[i] = 1
                cts = [basis if j == k else None for j in range(len(trace.outs))]
                for row, g in zip(rows, trace.pull(cts, create_graph=nested), strict=True):
                    row.append(g)
            blocks = tuple(_assemble(row, out, x, nested) for row, x in zip(rows, trace.inputs, strict=True))
            per_output.append(blocks[0] if single else blocks)
        return trace.structure(tuple(per_output))

    jac.__name__ = f"{who}_{_name(f)}"
    return jac


def _assemble(rows: list[Any], out: Value, x: Value, nested: bool) -> Any:
    """Rows d out.flat[i] / dx (None where zero) as one array of shape out.shape + x.shape."""
    shape = out.shape + x.shape
    if not nested:
        jac = np.zeros((len(rows),) + x.shape, x.dtype)
        for i, g in enumerate(rows):
            if g is not None:
                jac[i] = data_of(g)
        return jac.reshape(shape)[()]       # a numpy number for a 0-d Jacobian, as grad gives
    if not rows:
        return Value(np.zeros(shape, x.dtype), requires_grad=False)
    zeros = np.zeros(x.shape, x.dtype)
    return ops.reshape(ops.stack([zeros if g is None else g for g in rows]), shape)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _running_f() -> Iterator[None]:
    """Mark a transform's function as running, as grad does: a grad inside it records its own pass."""
    _mode.grads_running += 1
    try:
        yield
    finally:
        _mode.grads_running -= 1


def _running() -> bool:
    return _mode.grads_running > 0


def _is_traced(a: Any) -> bool:
    return isinstance(a, Value) and a.requires_grad


def _any_traced(items: Sequence[Any]) -> bool:
    return any(_is_traced(a) for a in items)


def _check_argnums(who: str, argnums: Any, n_args: int | None = None) -> tuple[int, ...]:
    """``argnums`` as a tuple, checked to be an int or a non-empty tuple of ints (in range, given n_args).

    Raises GradientError, as grad does for argnums out of range.
    """
    nums = (argnums,) if isinstance(argnums, int) else argnums
    if isinstance(nums, list):
        nums = tuple(nums)
    well_formed = isinstance(nums, tuple) and nums and all(
        isinstance(n, int) and not isinstance(n, bool) for n in nums)
    if not well_formed:
        raise GradientError(f"{who}: argnums={argnums!r}; expected an int or a non-empty tuple of ints (the "
                            "positions of the arguments to differentiate)")
    if n_args is not None and not all(-n_args <= n < n_args for n in nums):
        raise GradientError(f"{who}: argnums={argnums!r}, but the function was called with {n_args} "
                            f"positional argument(s); expected positions in [{-n_args}, {n_args})")
    return nums


def _positions(who: str, argnums: Any, n_args: int) -> list[int]:
    """``argnums`` as non-negative positions among ``n_args`` arguments."""
    return [n % n_args for n in _check_argnums(who, argnums, n_args)]


def _scalar_valued(f: Callable[..., Any], who: str) -> Callable[..., Any]:
    """``f``, checked to return a single number: a Hessian is defined for scalar functions only."""
    def checked(*args: Any, **kwargs: Any) -> Any:
        out = f(*args, **kwargs)
        shape = np.shape(data_of(out)) if not isinstance(out, tuple | list) else None
        if shape is None or int(np.prod(shape)) != 1:
            got = f"shape {shape}" if shape is not None else _kind(out)
            raise GradientError(f"{who}: the function must return a single number, got {got}; reduce it "
                                "first (e.g. with .sum()), or use jacobian(jacobian(f)) for every output's")
        return out

    checked.__name__ = _name(f)
    return checked


def _primals_and_tangents(primals: Any, tangents: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    for name, given in (("primals", primals), ("tangents", tangents)):
        if not isinstance(given, tuple | list):
            raise ArgumentError(f"jvp: {name} must be a tuple or list (one entry per argument of the "
                                f"function, e.g. jvp(f, (x,), (t,))); got {_kind(given)}")
    if not primals:
        raise ArgumentError("jvp: primals is empty; expected one entry per argument of the function")
    if len(primals) != len(tangents):
        raise ArgumentError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; expected one tangent "
                            "per primal")
    return tuple(primals), tuple(tangents)


def _matching(who: str, what: str, of: str, given: Sequence[Any], like: Sequence[Any],
              several: bool = True) -> tuple[Any, ...]:
    """``given`` (vectors: tangents, cotangents) checked to have the shapes of ``like``, one to one.

    Values are kept (they may be differentiated through); anything else becomes an array of the dtype of
    the one it matches.
    """
    if len(given) != len(like):
        raise ArgumentError(f"{who}: {len(given)} {what}s for {len(like)} {of}s; expected one per {of}")
    out = []
    for i, (v, x) in enumerate(zip(given, like, strict=True)):
        shape = np.shape(data_of(x))
        v = v if isinstance(v, Value) else np.asarray(to_array(v, f"{who}: {what}"), dtype=_dtype(x))
        if v.shape != shape:
            number = f" #{i}" if several else ""
            raise ShapeError(f"{who}: {what}{number} has shape {v.shape}, expected {shape} (the shape of the "
                             f"{of}{number})")
        out.append(v)
    return tuple(out)


def _inner_product(xs: Sequence[Any], vs: Sequence[Any] | None) -> Any:
    """sum_k <xs[k], vs[k]> (each x summed when ``vs`` is None); None entries of ``xs`` count as zero."""
    total: Any = 0.0
    for k, x in enumerate(xs):
        if x is not None:
            total = total + ops.sum(x if vs is None else x * vs[k])
    return total


def _result(g: Any, like: Value, nested: bool) -> Any:
    """A gradient as a transform hands it out: a Value when nested; else its own array in like's dtype."""
    if g is None:
        g = np.zeros(like.shape, like.dtype)
    if nested:
        return as_value(g)
    g = np.array(data_of(g), dtype=like.dtype)      # a copy: the pass may share arrays between inputs
    return g[()] if g.ndim == 0 else g


def _dtype(x: Any) -> np.dtype:
    data = data_of(x)
    floating = isinstance(data, np.ndarray | np.generic) and data.dtype.kind == "f"
    return data.dtype if floating else np.dtype(np.float64)


def _kind(x: Any) -> str:
    return f"a {type(x).__name__} of {len(x)}" if isinstance(x, tuple | list) else f"a {type(x).__name__}"


def _name(f: Any) -> str:
    return getattr(f, "__name__", "f")
