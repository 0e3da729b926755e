"""Ops that users define: ``mg.primitive``, the op table's own decorator, guarded for code outside it.

A user's op is a numpy forward function and one derivative rule per input, in the table's form
``rule(g, ans, *inputs, **params)``::

    import microgradx as mg

    @mg.primitive(lambda g, ans, x: g / (1 + abs(x)) ** 2)
    def softsign(x):
        \"\"\"x / (1 + |x|);  d/dx = g / (1 + |x|)**2\"\"\"
        return x / (1 + np.abs(x))

It records like a built-in: ``softsign(v)`` is a graph node, ``backward``, ``grad``, ``hessian`` and
drawings see it, and its rules, written with microgradx's ops and operators, run on Values under
``create_graph`` so that it has derivatives of every order.

What differs from a built-in is that the user's code is checked where the table's own is trusted:

* Names. User ops live in a registry of their own (:data:`USER_OPS`), not in the table of built-ins, so
  the library's own guards (every op has a test case, a docs entry) do not see them. A name that is
  already a built-in, or a numpy function that a built-in already stands for, is an error: a silent
  replacement would change what ``+`` or ``np.exp`` records. Running the same definition again (a
  notebook cell, a reloaded module) replaces the op; another definition under a taken name is an error.
  ``name="mylib.softsign"`` gives an op a name of its own choosing.
* Rules. Each rule is wrapped so that a rule which raises, returns ``None``, a Python number, a non-float
  array, or a gradient of the wrong shape fails with a :class:`GradientError` that names the op and the
  input, instead of an AttributeError deep in the engine or a gradient summed silently into shape.
* Forwards. The forward must return a float numpy array or numpy scalar; anything else is a
  :class:`DTypeError` naming the op.

A graph holding a user op pickles by the op's name, as built-ins do; unpickling imports the module that
defined the op if it is not registered yet. :func:`unregister` removes an op (for tests).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pickle
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .engine import TABLE, Primitive, Rule, Value, data_of
from .errors import AnomalyError, ArgumentError, DTypeError, GradientError

__all__ = ["primitive", "unregister", "USER_OPS", "UserPrimitive"]

_registry: dict[str, UserPrimitive] = {}
#: The user ops of this process, by name (read-only; :func:`primitive` and :func:`unregister` change it).
USER_OPS: Mapping[str, UserPrimitive] = types.MappingProxyType(_registry)


class UserPrimitive(Primitive):
    """A :class:`~microgradx.engine.Primitive` defined outside microgradx, registered in :data:`USER_OPS`."""

    definition: Callable[..., Any]      # the user's forward function, as written (``forward`` wraps it)

    def __repr__(self) -> str:
        return f"<user primitive {self.name}>"

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # By name, as built-ins: rules are often lambdas, which pickle cannot store.
        if _registry.get(self.name) is not self:
            raise pickle.PicklingError(f"user op {self.name!r} is not the one registered under that name "
                                       "(unregistered or defined again since), so a pickle could not find it")
        return _user_op_named, (self.name, self.defined_in)

    @property
    def defined_in(self) -> str:
        """The module whose code defined the forward function."""
        return getattr(self.definition, "__module__", None) or "__main__"


def primitive(*vjps: Rule | None, name: str | None = None, expects: str = "", symbol: str | None = None,
              symmetric: bool = False, numpy: Any = None) -> Callable[[Callable[..., Any]], UserPrimitive]:
    """Define an op: decorate its numpy forward function with one derivative rule per input.

    Each rule is ``rule(g, ans, *inputs, **params)`` and returns the gradient of its input: ``g`` is the
    gradient of the output, ``ans`` the output, ``inputs`` all of the op's inputs and ``params`` its
    keyword parameters (the forward's arguments after the inputs). A rule may keep broadcast axes of the
    output; the engine sums them back. ``None`` in place of a rule marks an input with no gradient.

    Args:
        *vjps: one rule (or None) per positional input of the forward function, in order.
        name: the op's name in graphs, drawings and pickles; the forward's ``__name__`` when None.
        expects: what inputs the op needs, quoted when numpy refuses them.
        symbol: how drawings label the op (``"⊙"``); its name when None.
        symmetric: whether its inputs can be swapped (drawings number the inputs when not).
        numpy: a numpy function that, called on a Value, records this op (``np.sinc``).

    Raises:
        ArgumentError: no rules, a rule that is not callable or does not take ``(g, ans, *inputs)`` and
            the parameters, a forward with fewer inputs than rules, or a name or numpy function that
            another op has.
    """
    if not vjps:
        raise ArgumentError("mg.primitive(...) takes one derivative rule per input of the op (None for an "
                            "input without a gradient), e.g. @mg.primitive(lambda g, ans, x: g * 2)")

    def register(forward: Callable[..., Any]) -> UserPrimitive:
        if not callable(forward) or not (name or getattr(forward, "__name__", None)):
            raise ArgumentError(f"mg.primitive decorates a named function (or takes name=...), got "
                                f"{type(forward).__name__}")
        op_name = name or forward.__name__
        op = UserPrimitive(_checked_forward(forward, op_name), list(vjps), expects, symbol=symbol,
                           symmetric=symmetric, numpy=numpy)
        op.name = op.__name__ = op_name
        op.definition = forward
        inputs = _input_names(forward, len(vjps), op_name)
        op.vjps = tuple(None if rule is None else _guarded(rule, op_name, i, inputs, op.param_names)
                        for i, rule in enumerate(vjps))
        _claim(op, forward)
        return op
    return register


def unregister(op: UserPrimitive | str) -> None:
    """Remove a user op (or the op of that name) from the registry; graphs already recorded keep it."""
    op_name = op if isinstance(op, str) else op.name
    found = _registry.get(op_name)
    if found is None or (not isinstance(op, str) and found is not op):
        raise ArgumentError(f"unregister: no user op {op_name!r} is registered"
                            + (f" (user ops: {', '.join(sorted(_registry))})" if _registry else ""))
    del _registry[op_name]
    if found.numpy is not None and TABLE.numpy.get(found.numpy) is found:
        del TABLE.numpy[found.numpy]


# --------------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------------

def _claim(op: UserPrimitive, forward: Callable[..., Any]) -> None:
    """Register ``op`` under its name (and its numpy function), refusing what another op holds."""
    if op.name in TABLE.primitives or op.name in TABLE.composites:
        raise ArgumentError(f"mg.primitive: {op.name!r} is a built-in op of microgradx; a user op cannot "
                            f"replace it. Give yours another name: @mg.primitive(..., name='my_{op.name}')")
    previous = _registry.get(op.name)
    if previous is not None and not _same_definition(previous, forward):
        raise ArgumentError(f"mg.primitive: a user op named {op.name!r} is already defined (in "
                            f"{previous.defined_in}); pass name=... to tell them apart, or "
                            "microgradx.user_ops.unregister it first")
    if op.numpy is not None:
        holder = TABLE.numpy.get(op.numpy)
        if holder is not None and holder is not previous:
            raise ArgumentError(f"mg.primitive: {getattr(op.numpy, '__name__', op.numpy)} on a Value already "
                                f"records {holder.__name__!r}; numpy= can name a numpy function only one op "
                                "stands for")
    if previous is not None:
        unregister(previous)
    _registry[op.name] = op
    if op.numpy is not None:
        TABLE.numpy[op.numpy] = op


def _same_definition(op: UserPrimitive, forward: Callable[..., Any]) -> bool:
    # The same code run again (a notebook cell, importlib.reload): same module, same qualified name.
    def place(f: Any) -> tuple[Any, Any]:
        return getattr(f, "__module__", None), getattr(f, "__qualname__", None)
    return place(op.definition) == place(forward)


def _user_op_named(name: str, module: str) -> UserPrimitive:
    if name not in _registry and module != "__main__":
        try:
            importlib.import_module(module)      # as pickle does for the functions it stores
        except ImportError:
            pass
    if name not in _registry:
        raise pickle.UnpicklingError(f"the graph uses the user op {name!r} (defined in {module}), which is "
                                     "not registered in this process: run or import its definition first")
    return _registry[name]


def _input_names(forward: Callable[..., Any], n_rules: int, op_name: str) -> list[str]:
    params = list(inspect.signature(forward).parameters.values())
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < n_rules:
        raise ArgumentError(f"mg.primitive: {op_name} was given {n_rules} rules, one per input, but its "
                            f"forward takes {len(positional)} positional inputs ({', '.join(positional)})")
    return positional[:n_rules]


# --------------------------------------------------------------------------------------------------
# Guards around the user's code
# --------------------------------------------------------------------------------------------------

def _checked_forward(forward: Callable[..., Any], op_name: str) -> Callable[..., Any]:
    @functools.wraps(forward)
    def checked(*args: Any, **params: Any) -> Any:
        out = forward(*args, **params)
        if not isinstance(out, np.ndarray | np.generic) or out.dtype.kind != "f":
            what = f"an array of dtype {out.dtype}" if isinstance(out, np.ndarray | np.generic) else \
                f"a {type(out).__name__}"
            raise DTypeError(f"user op {op_name!r}: its forward returned {what}; an op's forward returns a "
                             "float numpy array or numpy scalar (e.g. np.float64(...) for one number)")
        return out[()] if out.ndim == 0 else out    # a 0-d result as a numpy scalar, as numpy's own
    return checked


def _guarded(rule: Rule, op_name: str, argnum: int, inputs: list[str], param_names: tuple[str, ...]) -> Rule:
    """``rule``, checked: what it raises or returns wrong becomes an error naming the op and the input."""
    where = f"user op {op_name!r}, the rule for input #{argnum} ({inputs[argnum]!r})"
    if not callable(rule):
        raise ArgumentError(f"mg.primitive: {where} is a {type(rule).__name__}, not a function (or None)")
    try:
        inspect.signature(rule).bind("g", "ans", *inputs, **{p: None for p in param_names})
    except TypeError as e:
        wanted = ", ".join(["g", "ans", *inputs, *(f"{p}=..." for p in param_names)])
        raise ArgumentError(f"mg.primitive: {where} must take ({wanted}) ({e})") from None
    except ValueError:      # a builtin with no signature: trust it
        pass

    @functools.wraps(rule)
    def checked(g: Any, ans: Any, *inputs: Any, **params: Any) -> Any:
        try:
            result = rule(g, ans, *inputs, **params)
        except AnomalyError:
            raise           # the engine says which node, as it does for built-ins
        except Exception as e:
            raise GradientError(f"backward of {where} raised {type(e).__name__}: {e}") from e
        return _checked_gradient(result, g, ans, inputs[argnum], where)
    return checked


def _checked_gradient(result: Any, g: Any, ans: Any, x: Any, where: str) -> Any:
    if result is None:
        raise GradientError(f"backward of {where} returned None; put None in place of the rule itself for "
                            "an input that takes no gradient")
    if isinstance(result, bool | int | float | complex) and not isinstance(result, np.generic):
        raise GradientError(f"backward of {where} returned a Python {type(result).__name__}, not an array; "
                            "build it from g (g * 0.0 for a zero gradient) so it has a shape and dtype")
    if not isinstance(result, Value | np.ndarray | np.generic):
        raise GradientError(f"backward of {where} returned a {type(result).__name__}; a rule returns a numpy "
                            "array or a Value")
    if result.dtype.kind != "f":
        raise GradientError(f"backward of {where} returned dtype {result.dtype}; gradients are float arrays")
    if isinstance(ans, Value):
        # create_graph: the rules run on Values, and a gradient must stay in the graph (it is linear in g;
        # a plain array here has lost g's own dependence on the inputs, so higher derivatives would be wrong).
        if isinstance(g, Value) and g.requires_grad and not isinstance(result, Value):
            raise GradientError(f"backward of {where} returned a plain array where g is a Value, so the "
                                "gradient cannot be differentiated again; write the rule with microgradx's "
                                "ops and operators rather than numpy on raw data (g * 0.0 for a zero "
                                "gradient)")
    elif isinstance(result, Value):
        result = result.data        # Values made inside a rule in an ordinary backward: their data
    _check_shape(np.shape(result), np.shape(data_of(x)), np.shape(data_of(ans)), where)
    if isinstance(result, np.ndarray):
        # The rule may return an array it keeps (a cached constant, one of its inputs). Handed on as a
        # view, it is copied, never adopted, when it becomes a leaf's .grad (engine._own), so editing
        # that .grad in place cannot change the rule's later answers.
        result = result.view()
    return result


def _check_shape(shape: tuple[int, ...], input_shape: tuple[int, ...], out_shape: tuple[int, ...],
                 where: str) -> None:
    """A gradient is the input's shape, or that shape broadcast along axes of the output (the engine sums
    those back). Any other axis would be summed away silently, so it is refused here."""
    if shape == input_shape:
        return
    extra = len(shape) - len(input_shape)
    if extra < 0:
        raise GradientError(f"backward of {where} returned shape {shape} for an input of shape "
                            f"{input_shape}: a gradient has at least the input's axes")
    for k, n in enumerate(shape):
        stretched = k < extra or (input_shape[k - extra] == 1 and n != 1)
        from_right = k - len(shape)
        if stretched and (-from_right > len(out_shape) or out_shape[from_right] != n):
            raise GradientError(f"backward of {where} returned shape {shape} for an input of shape "
                                f"{input_shape}: axis {k} is neither the input's nor one of the output's "
                                f"(shape {out_shape}) that the input broadcasts along")
        if not stretched and n != input_shape[k - extra]:
            raise GradientError(f"backward of {where} returned shape {shape}, which does not broadcast "
                                f"from the input's shape {input_shape}")
