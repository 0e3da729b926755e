"""Gradients of functions, to any order: ``grad`` and ``value_and_grad``.

They sit above both the engine (the reverse pass) and the op table (``identity``, which gives each
differentiated argument a node of its own).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops
from .engine import Value, _mode, as_value, backprop, data_of, enable_grad
from .errors import GradientError

__all__ = ["grad", "value_and_grad"]


def value_and_grad(f: Any, argnums: int | tuple[int, ...] = 0) -> Any:
    """Return a function computing ``(f(*args), df/dargs[argnums])``.

    ``f`` must return a single number (a Value of one element). Called on plain numbers or arrays, the
    function returns the value and the gradients as numpy arrays (each its own, in its input's dtype).
    Called inside another ``grad``'s function, or with any argument a Value that requires grad, it
    returns Values recorded in the graph, so they can be differentiated again: ``grad(grad(f))`` is the
    second derivative, and so on to any order. ``argnums`` counts from the end when negative, as
    indexing does. Nothing is written to ``.grad``.
    """
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    def wrapped(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        n_args = len(args)
        if any(isinstance(n, bool) or not isinstance(n, int) or not -n_args <= n < n_args for n in nums):
            raise GradientError(f"grad: argnums={argnums!r}, but the function was called with {len(args)} "
                                "positional arguments")
        positions = [n % len(args) for n in nums]
        # The gradient must itself be recorded when someone outside may differentiate it again: an
        # enclosing grad whose function is running, or a caller who passed a Value that requires grad.
        nested = _mode.grads_running > 0 or any(
            isinstance(a, Value) and a.requires_grad for a in (*args, *kwargs.values()))
        args_list = list(args)
        targets: dict[int, Value] = {}
        with enable_grad():
            for n in dict.fromkeys(positions):     # each position once, even if named twice
                a = args[n]
                # A new node for each position: the derivative is then with respect to this argument
                # alone, not to every use of the same Value elsewhere (another argument, a closure),
                # which would mix up the levels of a nested derivative.
                traced = isinstance(a, Value) and a.requires_grad
                args_list[n] = targets[n] = ops.identity(a) if traced else Value(a)
            _mode.grads_running += 1
            try:
                out = f(*args_list, **kwargs)
            finally:
                _mode.grads_running -= 1
        if not isinstance(out, Value):
            out = Value(out, requires_grad=False)   # f ignored its inputs: the gradient is zero
        if out.size != 1:
            raise GradientError(f"grad: the function must return a single number, got shape {out.shape}; "
                                "reduce it first (e.g. .sum()) or use backward(gradient=...)")
        grads = {}
        if out.requires_grad:
            grads = backprop(out, np.ones_like(out.data), nested, tuple(targets.values()))
        results = []
        for n in positions:
            t = targets[n]
            g = grads.get(t)
            if g is None:
                g = np.zeros_like(t.data)
            if nested:
                results.append(as_value(g))
            else:
                # A copy: the pass may hand the same array to several inputs, or a read-only view.
                g = np.array(data_of(g), dtype=t.data.dtype)
                results.append(g[()] if g.ndim == 0 else g)
        value = out if nested else out.data
        return value, (results[0] if single else tuple(results))

    wrapped.__name__ = f"value_and_grad_{getattr(f, '__name__', 'f')}"
    wrapped.__doc__ = f"Value and gradient of {getattr(f, '__name__', 'f')} w.r.t. argument(s) {argnums}."
    return wrapped


def grad(f: Any, argnums: int | tuple[int, ...] = 0) -> Any:
    """Return a function computing the gradient of scalar-valued ``f`` w.r.t. argument(s) ``argnums``.

    >>> print(grad(lambda x: x**3)(3.0))          # 3 * 3**2
    27.0
    >>> print(grad(grad(lambda x: x**3))(3.0))    # 6 * 3
    18.0
    """
    vg = value_and_grad(f, argnums)

    def gradient(*args: Any, **kwargs: Any) -> Any:
        return vg(*args, **kwargs)[1]

    gradient.__name__ = f"grad_{getattr(f, '__name__', 'f')}"
    gradient.__doc__ = f"Gradient of {getattr(f, '__name__', 'f')} w.r.t. argument(s) {argnums}."
    return gradient
