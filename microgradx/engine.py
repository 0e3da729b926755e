"""The graph engine: the ``Value`` node, grad mode, and the reverse pass.

A ``Value`` wraps a numpy array (or numpy scalar). Every op on Values records a new node that holds its
inputs and the name of the rule that differentiates it; ``backward()`` walks those nodes from the output
back to the leaves, children before parents, and hands each node's gradient to its rule.

Three design choices carry the rest (see docs/concepts.md):

* The derivative rules live in a table in ``ops.py``; they are plain functions of ``(g, ans, *inputs)``,
  not closures. A node therefore never refers to itself, the graph has no reference cycles, and dropping
  the output frees it by reference counting alone.
* The rules are written with the library's own ops, which accept plain arrays as well as Values. An
  ordinary backward feeds them arrays (pure numpy, no graph); ``create_graph=True`` feeds them Values,
  so the backward pass is itself recorded and can be differentiated again.
* Every Value is numbered as it is made, and an op's inputs are always made before its result. The
  reverse pass takes the nodes holding a gradient newest first (a heap, no recursion): each node's rule
  then runs exactly once per call, after every node that uses it, and graph depth is unlimited.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import inspect
import itertools
import operator
import os
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import AnomalyError, DTypeError, GradientError, ShapeError

if TYPE_CHECKING:
    from .ops import Primitive

__all__ = ["Value", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly", "as_value", "data_of",
           "grad",
           "value_and_grad"]


class _Mode:
    """Process-wide switches. Plain class attributes: read on every op, so they must be cheap."""

    grad_enabled = True
    anomaly = False
    grads_running = 0     # functions made by grad() evaluating their f right now, nested in each other


class _GradMode:
    """Set grad mode for a ``with`` block, or, as a decorator (``@no_grad()`` or ``@no_grad``), for every
    call of a function: for a generator function, for every step of the generator it returns."""

    enabled: bool

    def __new__(cls, func: Any = None) -> Any:
        mode = super().__new__(cls)
        mode._previous = []         # a stack: the same object may be entered again inside its own block
        return mode if func is None else mode(func)     # @no_grad without parentheses

    def __enter__(self) -> None:
        self._previous.append(_Mode.grad_enabled)
        _Mode.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        _Mode.grad_enabled = self._previous.pop()

    def __call__(self, func: Any) -> Any:
        mode = type(self)
        if inspect.isgeneratorfunction(func):
            @functools.wraps(func)
            def steps(*args: Any, **kwargs: Any) -> Any:
                # Each step of the generator runs in the mode; between steps the caller's mode holds.
                gen = func(*args, **kwargs)
                resume, value = gen.send, None
                while True:
                    try:
                        with mode():
                            item = resume(value)
                    except StopIteration as stop:
                        return stop.value
                    try:
                        resume, value = gen.send, (yield item)
                    except GeneratorExit:
                        with mode():        # its finally blocks run in the mode too
                            gen.close()
                        raise
                    except BaseException as e:      # thrown in by the caller: pass it on, in the mode
                        resume, value = gen.throw, e
            return steps

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):  # noqa: N801 - used like a function, as in PyTorch
    """Inside this block, ops record no graph: results are constants (``requires_grad=False``).

    Use it for evaluation and for parameter updates. Also works as a decorator.
    """

    enabled = False


class enable_grad(_GradMode):  # noqa: N801
    """Turn graph recording back on inside a ``no_grad`` block. Also works as a decorator."""

    enabled = True


def is_grad_enabled() -> bool:
    """Whether ops currently record a graph."""
    return _Mode.grad_enabled


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise :class:`AnomalyError` at the first NaN or infinity, forward or backward.

    Every op made inside the block remembers the line of user code that made it, so the error can say
    where the bad number came from. It costs a stack walk and a finiteness check per op: a debugging aid.
    """
    previous, _Mode.anomaly = _Mode.anomaly, True
    try:
        yield
    finally:
        _Mode.anomaly = previous


# --------------------------------------------------------------------------------------------------
# Converting inputs
# --------------------------------------------------------------------------------------------------

def to_array(x: Any, where: str = "Value") -> np.ndarray | np.generic:
    """Turn user data into a float array: float dtypes are kept, everything else becomes float64.

    Raises DTypeError for data that is not real numbers (strings, objects, complex, ragged lists).
    """
    if isinstance(x, np.ndarray | np.generic) and x.dtype.kind == "f":
        return x
    try:
        arr = np.asarray(x)
    except ValueError as e:  # ragged nested lists
        raise DTypeError(f"{where}: cannot make a numeric array from {type(x).__name__}: {e}") from None
    if arr.dtype.kind == "f":
        return arr
    if arr.dtype.kind in "biu":
        return arr.astype(np.float64)
    raise DTypeError(
        f"{where}: expected real numbers (float, int, bool or an array of them), "
        f"got {type(x).__name__} with dtype {arr.dtype}"
    )


def data_of(x: Any) -> Any:
    """The data of a Value; anything else (a number, an array) as it is. For masks and shapes."""
    return x.data if isinstance(x, Value) else x


def as_value(x: Any) -> Value:
    """Return ``x`` if it is a Value, else wrap it as a constant (``requires_grad=False``)."""
    return x if isinstance(x, Value) else Value(x, requires_grad=False)


def _user_site() -> str:
    """The innermost stack frame outside this package, as 'file:line in function'."""
    package_dir = os.path.dirname(os.path.abspath(__file__)) + os.sep   # not microgradx_examples/
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(package_dir):
            return f"{frame.filename}:{frame.lineno} in {frame.name}"
    return "<unknown>"


def _describe(node: Value) -> str:
    site = f", made at {node._site}" if node._site else ""
    return f"'{node._op.name}' (output shape {node.shape}{site})"


# --------------------------------------------------------------------------------------------------
# The node
# --------------------------------------------------------------------------------------------------

class _NoInput:
    """Marks an input slot a node does not use (a leaf has no inputs, a unary op has no second)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no input>"

    def __reduce__(self) -> str:
        return "_NO_INPUT"    # copies and unpickled graphs keep the one marker that `is` compares with


_NO_INPUT = _NoInput()
_made = itertools.count()   # numbers every Value as it is made (see backprop)
_NO_PARAMS: dict = {}   # shared by every node made without parameters; never written to


class Value:
    """A scalar or array in a computation graph.

    ``Value(data, requires_grad=True, label=None, dtype=None)``: ``data`` is a number, a (nested) list or
    a numpy array. Float dtypes are kept (float32 stays float32); ints, bools and lists become float64.

    Ops (``+ - * / ** @``, ``exp``, ``sum``, indexing, ...) record new Values; ``backward()`` fills
    ``.grad`` of every Value that led to this one and has ``requires_grad``. Plain numbers and arrays mix
    with Values on either side of every op and are treated as constants.
    """

    # NOTE: an op's inputs are kept in slots (_x, _y, then a tuple _more for the rare third and later
    # ones), not in one tuple per node. A tuple would be a second object per node for CPython's cyclic
    # garbage collector to track, and in scalar code (a Value per number) the collector's repeated walks
    # over a growing graph cost about as much as building it (benchmarks/README.md, "Where the time goes").
    __slots__ = ("data", "_grad", "requires_grad", "label", "_op", "_x", "_y", "_more", "_params", "_site",
                 "_seq", "__weakref__")

    # Make numpy hand ``array @ value``, ``array * value``... over to our reflected methods instead of
    # treating the Value as an opaque object and looping over it.
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data: Any, requires_grad: bool = True, label: str | None = None,
                 dtype: Any = None) -> None:
        if isinstance(data, Value):
            data = data.data
        arr = to_array(data)
        if dtype is not None:
            try:
                dtype = np.dtype(dtype)
            except TypeError as e:
                raise DTypeError(f"Value: dtype={dtype!r} is not a dtype numpy knows ({e})") from None
            if dtype.kind != "f":
                raise DTypeError(f"Value: dtype must be a float dtype, got {dtype}")
            arr = arr.astype(dtype, copy=False)
        # A 0-d array becomes a numpy scalar, as numpy's own reductions return.
        self.data = arr[()] if arr.ndim == 0 else arr
        self._grad: Any = None
        self.requires_grad = bool(requires_grad)
        self.label = label
        self._op: Primitive | None = None    # the rule that made this node; None for a leaf
        self._x: Any = _NO_INPUT             # the op's first input (a Value or a constant)
        self._y: Any = _NO_INPUT             # its second input
        self._more: tuple = ()               # its inputs after the second (where, concatenate, stack)
        self._params: dict = _NO_PARAMS      # the op's keyword arguments (axis, shape, ...)
        self._site: str | None = None        # where user code made it (anomaly mode only)
        self._seq = next(_made)              # when it was made: inputs are always older than results

    @classmethod
    def _constant(cls, data: Any) -> Value:
        """A result that needs no gradient (no Value input requires one, or grad mode is off)."""
        node = cls._from_op(data, None, _NO_INPUT)    # no op and no inputs: a leaf
        node.requires_grad = False
        return node

    @classmethod
    def _from_op(cls, data: Any, op: Primitive | None, x: Any, y: Any = _NO_INPUT, more: tuple = (),
                 params: dict = _NO_PARAMS) -> Value:
        """A node made by an op from inputs ``x``, ``y``, ``*more``: skips __init__'s validation."""
        node = object.__new__(cls)
        node.data = data
        node._grad = None
        node.requires_grad = True
        node.label = None
        node._op = op
        node._x = x
        node._y = y
        node._more = more
        node._params = params
        node._site = None    # set by the caller in anomaly mode
        node._seq = next(_made)
        return node

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        # A copy (copy.copy, copy.deepcopy, pickle) is a new node, so it takes a new number (see
        # backprop). deepcopy and pickle restore a node's inputs before the node itself, so copied
        # inputs stay older than the copies that use them.
        for name, value in state[1].items():
            setattr(self, name, value)
        self._seq = next(_made)

    @property
    def _args(self) -> tuple:
        """The op's inputs in order, Values and constants; empty for a leaf."""
        if self._y is _NO_INPUT:
            return () if self._x is _NO_INPUT else (self._x,)
        return (self._x, self._y, *self._more)

    # ---- the array it holds --------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def item(self) -> float:
        """The value as a Python float (the Value must hold exactly one element)."""
        self._check_one_element("item()")
        return self.data.item()

    def _check_one_element(self, what: str) -> None:
        if self.data.size != 1:
            raise ShapeError(f"{what} of a Value of shape {self.shape}: only a single element converts to "
                             "one number (reduce it first, e.g. with .sum() or .any())")

    def numpy(self) -> np.ndarray:
        """The data as a numpy array (a 0-d array for a scalar). Not a copy: do not write into it."""
        return np.asarray(self.data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        # np.asarray(v), np.array(v), matplotlib: the data, as an array. Without this numpy would iterate
        # the Value, one indexing node per element, into an array of objects. What numpy computes from
        # that array records nothing; the library's own ops record. (np.sum, np.mean and the like call
        # the Value's method of that name instead, and fail on the numpy-only arguments they pass.)
        return np.array(self.data, dtype=dtype, copy=copy)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d Value")
        return len(self.data)

    def __iter__(self) -> Iterator[Value]:
        for i in range(len(self)):
            yield self[i]

    def __float__(self) -> float:
        self._check_one_element("float()")
        return float(self.data.item())     # as PyTorch: any single element, whatever the shape

    def __bool__(self) -> bool:
        self._check_one_element("bool()")
        return bool(self.data)

    __hash__ = object.__hash__  # Values are graph nodes: identity, not contents, makes them equal keys

    def __repr__(self) -> str:
        name = f", label={self.label!r}" if self.label else ""
        op = f", op={self._op.name}" if self._op is not None else ""
        if self.ndim == 0:
            body = f"{self.data.item():.6g}"
        elif self.size <= 8:
            body = np.array2string(self.data, precision=4, separator=", ").replace("\n", "")
        else:  # whole arrays do not belong in a repr: say what it is
            body = f"<shape {self.shape}>"
        if self.ndim and self.dtype != np.float64:
            body += f", dtype={self.dtype}"
        return f"Value({body}{name}{op})"

    # ---- graph ----------------------------------------------------------------------------------

    @property
    def op(self) -> str | None:
        """Name of the op that made this Value, or None for a leaf (made by the user)."""
        return None if self._op is None else self._op.name

    @property
    def parents(self) -> tuple[Value, ...]:
        """The Values this one was computed from and that gradients flow into."""
        return tuple(a for a in self._args if isinstance(a, Value) and a.requires_grad)

    @property
    def is_leaf(self) -> bool:
        return self._op is None

    @property
    def grad(self) -> Any:
        """d(output)/d(self) from the latest ``backward()``: zeros of the data's shape before any.

        Leaves accumulate across ``backward()`` calls (as in PyTorch); call ``zero_grad()`` between steps.
        Interior nodes hold the gradient of the most recent call only.
        """
        if self._grad is None:
            return np.zeros_like(self.data)
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        self._grad = value

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` reads as zeros again)."""
        self._grad = None

    def detach(self) -> Value:
        """The same data as a constant: no gradient flows back through the result."""
        return Value(self.data, requires_grad=False)

    def requires_grad_(self, flag: bool = True) -> Value:
        """Set ``requires_grad`` in place (only on leaves) and return self."""
        if self._op is not None and not flag:
            raise GradientError("requires_grad_(False) on a Value made by an op: use .detach()")
        self.requires_grad = bool(flag)
        return self

    def backward(self, gradient: Any = None, create_graph: bool = False) -> None:
        """Fill ``.grad`` of every Value that led to this one.

        ``gradient`` seeds the pass (d(final)/d(self)); it may be left out only when self holds a single
        element, where it defaults to 1. With ``create_graph=True`` the gradients are Values whose own
        graph can be differentiated again.
        """
        if not self.requires_grad:
            raise GradientError(
                "backward() on a Value that does not require grad: nothing it came from has "
                "requires_grad=True (or it was made under no_grad())"
            )
        seed = _seed(self, gradient)
        if isinstance(seed, Value) and not create_graph:
            seed = seed.data
        grads = backprop(self, seed, create_graph)
        leaves = []
        for node, g in grads.items():
            if node._op is None:
                leaves.append((node, g))
            else:
                # An interior node keeps its gradient for inspection only, as data: under create_graph
                # the Value's graph leads back to this node (rules read `ans`), which would be a cycle.
                node._grad = g.data if isinstance(g, Value) else g
        taken: set[int] | None = None
        for node, g in leaves:
            if create_graph or isinstance(node._grad, Value):    # a Value from an earlier create_graph
                node._grad = g if node._grad is None else node._grad + g
            elif node._grad is not None:
                node._grad = (node._grad + g).astype(node.data.dtype, copy=False)
            else:
                if taken is None and isinstance(g, np.ndarray):
                    # Arrays already handed out (the seed, interior gradients): a leaf must not share
                    # one, or an in-place edit of its .grad would show up elsewhere. Numpy scalars
                    # cannot be edited in place, so scalar code skips this walk over the graph.
                    taken = {id(seed)} | {id(g) for n, g in grads.items() if n._op is not None}
                node._grad = _own(g, node.data.dtype, taken)
                if taken is not None:
                    taken.add(id(node._grad))


def _own(g: Any, dtype: np.dtype, taken: set[int] | None) -> Any:
    """``g`` as a leaf's own gradient: adopted as it is when nothing else can see it, else copied.

    NOTE: adopting saves a full copy of every parameter's gradient per step (8 MB for a 1000x1000
    weight). A view (``g.base``), a read-only array or one already handed out must be copied.
    """
    if (isinstance(g, np.ndarray) and g.dtype == dtype and g.base is None and g.flags.writeable
            and id(g) not in taken):
        return g
    return g.astype(dtype)


def _seed(root: Value, gradient: Any) -> Any:
    if gradient is None:
        if root.size != 1:
            raise GradientError(
                f"backward() on a Value of shape {root.shape} needs gradient=...: only a single-element "
                "output has an implied seed of 1 (reduce it first, e.g. with .sum() or .mean())"
            )
        data = root.data
        return data.dtype.type(1) if data.ndim == 0 else np.ones(data.shape, data.dtype)
    if isinstance(gradient, Value):
        seed = gradient
    else:
        seed = np.asarray(to_array(gradient, "backward(gradient=...)"), dtype=root.dtype)
    if seed.shape != root.shape:
        raise ShapeError(f"backward(): gradient has shape {seed.shape}, expected {root.shape} "
                         "(the shape of the Value it seeds)")
    return seed


# --------------------------------------------------------------------------------------------------
# The reverse pass
# --------------------------------------------------------------------------------------------------

def backprop(root: Value, seed: Any, create_graph: bool = False,
             targets: tuple[Value, ...] | None = None) -> dict[Value, Any]:
    """Gradients of ``root`` (seeded with ``seed``) with respect to the nodes that led to it.

    Returns ``{node: gradient}`` for every node a gradient reached; nothing is written on the nodes. With
    ``targets``, only the paths that reach a target are followed. With ``create_graph``, rules run on
    Values, so the result is differentiable; otherwise on plain arrays.
    """
    # Every Value is numbered as it is made, and an op's inputs exist before its result, so the nodes
    # can be taken newest first: by the time a node is taken, every node that uses it is newer and has
    # already sent it its share of the gradient. A heap of the nodes holding a gradient gives that order;
    # no pass is needed beforehand to sort or count the graph, and nothing recurses.
    relevant = _leading_to(targets, _reachable(root)) if targets is not None else None
    grads: dict[Value, Any] = {root: seed}
    waiting = {root._seq: root}          # nodes holding a gradient, by number
    newest_first = [-root._seq]          # their numbers, negated: a min-heap gives the newest first
    anomaly = _Mode.anomaly
    previous_mode, _Mode.grad_enabled = _Mode.grad_enabled, create_graph
    try:
        while newest_first:
            node = waiting.pop(-heapq.heappop(newest_first))
            if node._op is None:
                continue          # a leaf: its gradient is complete, and it has no inputs to pass on to
            g = grads[node]
            x, y, more = node._x, node._y, node._more
            vjps, params = node._op.vjps, node._params
            if create_graph:
                ans, inputs = node, node._args
            else:
                # NOTE: the inputs' data spelled out for the usual one or two inputs, and the rules
                # called with positional arguments when they can be: together about a sixth of
                # scalar-mode backward, against a comprehension and f(*inputs).
                ans = node.data
                xd = x.data if isinstance(x, Value) else x
                if y is _NO_INPUT:
                    inputs = (xd,)
                else:
                    yd = y.data if isinstance(y, Value) else y
                    inputs = (xd, yd)
                    if more:
                        inputs += tuple(a.data if isinstance(a, Value) else a for a in more)
            positional = not (create_graph or params or more)
            for i, arg in enumerate((x, y) + more):
                if not isinstance(arg, Value) or not arg.requires_grad or vjps[i] is None:
                    continue      # a constant, a Value that needs no gradient, or a mask
                if relevant is not None and arg not in relevant:
                    continue
                if positional:
                    gi = vjps[i](g, ans, xd) if y is _NO_INPUT else vjps[i](g, ans, xd, yd)
                else:
                    try:
                        gi = vjps[i](g, ans, *inputs, **params)
                    except AnomalyError as e:    # under create_graph the rule's own ops check themselves
                        raise AnomalyError(f"backward of {_describe(node)}, input #{i}: {e}") from None
                if gi.shape != arg.data.shape:
                    gi = _ops.unbroadcast(gi, arg.data.shape)
                if anomaly:
                    _check_backward(gi, node, i)
                previous = grads.get(arg)
                if previous is None:
                    grads[arg] = gi
                    waiting[arg._seq] = arg
                    heapq.heappush(newest_first, -arg._seq)
                else:
                    grads[arg] = previous + gi
    finally:
        _Mode.grad_enabled = previous_mode
    return grads


def _reachable(root: Value) -> set[Value]:
    """The nodes that led to ``root`` and need a gradient (root included)."""
    seen = {root}
    stack = [root]
    while stack:
        node = stack.pop()
        for arg in node._args:
            if isinstance(arg, Value) and arg.requires_grad and arg not in seen:
                seen.add(arg)
                stack.append(arg)
    return seen


def _leading_to(targets: tuple[Value, ...], nodes: set[Value]) -> set[Value]:
    """The nodes among ``nodes`` from which some target can be reached (targets included)."""
    relevant = {t for t in targets if t in nodes}
    # Oldest first, so that a node's inputs are settled before it: it leads to a target if one does.
    for node in sorted(nodes, key=operator.attrgetter("_seq")):
        if node not in relevant and any(isinstance(a, Value) and a in relevant for a in node._args):
            relevant.add(node)
    return relevant


def _check_backward(g: Any, node: Value, argnum: int) -> None:
    data = g.data if isinstance(g, Value) else g
    if not np.all(np.isfinite(data)):
        raise AnomalyError(
            f"backward of {_describe(node)} produced {_nonfinite_kind(data)} in the gradient of its "
            f"input #{argnum}"
        )


def check_forward(out: Any, node_op: Primitive, site: str | None) -> None:
    """Anomaly mode: raise if an op's output holds NaN or inf."""
    if not np.all(np.isfinite(out)):
        where = f", made at {site}" if site else ""
        raise AnomalyError(f"forward of '{node_op.name}' produced {_nonfinite_kind(out)} "
                           f"(output shape {np.shape(out)}{where})")


def _nonfinite_kind(a: Any) -> str:
    a = np.asarray(a)
    kinds = [k for k, present in (("NaN", np.isnan(a).any()), ("inf", np.isinf(a).any())) if present]
    return " and ".join(kinds) or "non-finite values"


# --------------------------------------------------------------------------------------------------
# Functional API: gradients of functions, to any order
# --------------------------------------------------------------------------------------------------

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
        nested = _Mode.grads_running > 0 or any(
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
                args_list[n] = targets[n] = _ops.identity(a) if traced else Value(a)
            _Mode.grads_running += 1
            try:
                out = f(*args_list, **kwargs)
            finally:
                _Mode.grads_running -= 1
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


# The reverse pass sums gradients back to their inputs' shapes with ops.unbroadcast. ops.py imports this
# module (for Value), so this module takes ops as a module object, read when backward runs.
from . import ops as _ops  # noqa: E402
