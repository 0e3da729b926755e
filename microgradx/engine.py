"""The graph engine: the ``Value`` node, the one recording path, the reverse pass, and grad mode.

A ``Value`` wraps a numpy array (or numpy scalar). Every op on Values records a new node that holds its
inputs and the table entry (a :class:`Primitive`) that made it; ``backward()`` walks those nodes from the
output back to the leaves, children before parents, and hands each node's gradient to its rules.

The engine knows nodes, recording and the reverse pass; it knows no op. The op table (``ops.py``) fills
the registry :data:`TABLE` as it is imported, and every method of ``Value`` is a one-line delegation to
an entry of it. Four design choices carry the rest (see docs/concepts.md):

* Derivative rules are plain functions of ``(g, ans, *inputs, **params)`` stored in the table, not
  closures over the node. A node therefore never refers to itself, the graph has no reference cycles,
  and dropping the output frees it by reference counting alone.
* The rules are written with the library's own ops, which accept plain arrays as well as Values. An
  ordinary backward feeds them arrays (pure numpy, no graph); ``create_graph=True`` feeds them Values,
  so the backward pass is itself recorded and can be differentiated again.
* Every Value is numbered as it is made, and an op's inputs are always made before its result. The
  reverse pass collects the nodes that lead to the output (an explicit stack, no recursion) and visits
  them newest first: each node's rules then run once, after every node that uses it, at any depth.
* Data changed in place after an op recorded it is caught, not differentiated wrongly: a change stamps
  the Value with the current number, and the reverse pass refuses a node whose inputs (or output) were
  stamped after the node was made.
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
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from .errors import AnomalyError, ArgumentError, AxisError, DTypeError, GradientError, ShapeError

__all__ = ["Value", "Primitive", "TABLE", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly",
           "as_value", "data_of", "backprop"]

#: What an op accepts as an operand: a Value, or data that becomes a constant.
Operand: TypeAlias = "Value | np.ndarray | np.generic | float | int | bool | Sequence[Any]"
#: An ``axis`` argument: one axis, several, or all of them (None).
Axis: TypeAlias = "int | tuple[int, ...] | None"
Rule = Callable[..., Any]


class _Switches:
    """The process-wide switches, as slots of one object: every op reads them, and a slot of an instance
    is quicker to read than an attribute of a class."""

    __slots__ = ("grad_enabled", "anomaly", "grads_running")

    def __init__(self) -> None:
        self.grad_enabled = True
        self.anomaly = False
        self.grads_running = 0     # functions made by grad() evaluating their f right now, nested


_mode = _Switches()


class _GradMode:
    """Set grad mode for a ``with`` block, or, as a decorator (``@no_grad()`` or ``@no_grad``), for every
    call of a function: for a generator function, for every step of the generator it returns."""

    enabled: bool

    def __new__(cls, func: Any = None) -> Any:
        mode = super().__new__(cls)
        mode._previous = []         # a stack: the same object may be entered again inside its own block
        return mode if func is None else mode(func)     # @no_grad without parentheses

    def __enter__(self) -> None:
        self._previous.append(_mode.grad_enabled)
        _mode.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        _mode.grad_enabled = self._previous.pop()

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
    return _mode.grad_enabled


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise :class:`AnomalyError` at the first NaN or infinity, forward or backward.

    Every op made inside the block remembers the line of user code that made it, so the error can say
    where the bad number came from. It costs a stack walk and a finiteness check per op: a debugging aid.
    """
    previous, _mode.anomaly = _mode.anomaly, True
    try:
        yield
    finally:
        _mode.anomaly = previous


# --------------------------------------------------------------------------------------------------
# Converting inputs
# --------------------------------------------------------------------------------------------------

def to_array(x: Any, where: str = "Value") -> np.ndarray | np.generic:
    """Turn user data into a float array: float dtypes are kept, everything else becomes float64.

    Raises DTypeError for data that is not real numbers (strings, objects, complex, ragged lists) and for
    masked arrays. An np.matrix becomes a plain array: the ops and their rules are written for ndarray's
    semantics, and a matrix's ``*`` is a matrix product. Other float subclasses are kept.
    """
    if isinstance(x, _ARRAYS) and x.dtype.kind == "f" and not isinstance(x, _REDEFINED):
        return x
    if isinstance(x, np.ma.MaskedArray):
        raise DTypeError(f"{where}: a masked array would be used with its masked entries as numbers; "
                         "fill them first (a.filled(0.0)) or pass a.compressed()")
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
    return x._data if isinstance(x, Value) else x


def as_value(x: Any) -> Value:
    """Return ``x`` if it is a Value, else wrap it as a constant (``requires_grad=False``)."""
    return x if isinstance(x, Value) else Value(x, requires_grad=False)


def _holds_values(x: Any) -> bool:
    """Whether a (nested) list or tuple has a Value anywhere inside."""
    stack = [x]
    while stack:
        for item in stack.pop():
            if isinstance(item, Value):
                return True
            if isinstance(item, list | tuple):
                stack.append(item)
    return False


def _stacked(items: Sequence[Any]) -> Any:
    """A (nested) list or tuple of Values and numbers as one recorded Value: the rows stacked."""
    rows = [_stacked(i) if isinstance(i, list | tuple) else i for i in items]
    return TABLE.stack(rows)


def _user_site() -> str:
    """The innermost stack frame outside this package, as 'file:line in function'."""
    package_dir = os.path.dirname(os.path.abspath(__file__)) + os.sep   # not microgradx_examples/
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(package_dir):
            return f"{frame.filename}:{frame.lineno} in {frame.name}"
    return "<unknown>"


# --------------------------------------------------------------------------------------------------
# The op table's entries and the one recording path
# --------------------------------------------------------------------------------------------------

class _Table:
    """The registry of ops by name, filled by ``ops.py`` (primitives) and ``functional.py``
    (composites) as they are imported; ``Value``'s methods call ops through it."""

    def __init__(self) -> None:
        self.primitives: dict[str, Primitive] = {}
        self.composites: dict[str, Callable[..., Any]] = {}
        self.numpy: dict[Any, Callable[..., Any]] = {}    # numpy's function -> the op standing for it

    def register(self, op: Any) -> Any:
        """Register a primitive or a composite under its ``__name__``; returns it, so it decorates."""
        name = op.__name__
        if isinstance(op, Primitive):
            self.primitives[name] = op
        else:
            self.composites[name] = op
        if getattr(op, "numpy", None) is not None:
            self.numpy[op.numpy] = op
        setattr(self, name, op)
        return op



#: Every op by name: ``TABLE.multiply``, ``TABLE.primitives``, ``TABLE.composites``.
TABLE = _Table()


class _NoInput:
    """Marks an input slot a node does not use (a leaf has no inputs, a unary op has no second)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no input>"

    def __reduce__(self) -> str:
        return "_NO_INPUT"    # copies and unpickled graphs keep the one marker that `is` compares with


_NO_INPUT = _NoInput()
_made = itertools.count()   # numbers every Value as it is made, and every in-place change of one
_latest_change = -1         # the number of the latest in-place change of any Value (-1: none yet)
_NO_PARAMS: dict = {}       # shared by every node made without parameters; never written to
#: The tracer of mg.compile while it records a call (compile.py), else None: record() and backprop() hand
#: their work to it. One global check per op when no trace runs.
_tracer: Any = None


class Primitive:
    """One differentiable op: a numpy forward function, a derivative rule per input, and metadata.

    Calling it is the one way a node gets recorded: operators, methods and module functions all come
    here. With no Value among the inputs it is plain numpy (the path rules take in an ordinary backward).
    """

    def __init__(self, forward: Callable[..., Any], vjps: Sequence[Rule | None], expects: str = "",
                 variadic: bool = False, method: str | None = None, operators: tuple[str, ...] = (),
                 symbol: str | None = None, symmetric: bool = False, numpy: Any = None) -> None:
        self.name = self.__name__ = forward.__name__
        self.forward = forward
        # A variadic op (any number of inputs) has one rule, told which input it is for.
        self.vjps = _ForEveryInput(vjps[0]) if variadic else tuple(vjps)
        self.expects = expects          # what inputs the op needs, quoted when numpy refuses them
        self.variadic = variadic
        self.method = method            # the Value method that calls it, if any (``"exp"``)
        self.operators = operators      # the Value operators that call it (``("__mul__", "__rmul__")``)
        self.symbol = symbol            # how a drawing labels it (``"*"``); the name when None
        self.symmetric = symmetric      # whether its inputs can be swapped (drawings number them if not)
        self.numpy = numpy              # the numpy function it stands for, if any (``np.multiply``)
        # Inputs are the positional arguments that have a rule (for a variadic op, the one sequence of
        # them); the rest are parameters (axis, shape...).
        self.n_inputs = 1 if variadic else len(self.vjps)
        self.param_names = tuple(list(inspect.signature(forward).parameters)[self.n_inputs:])
        self.__doc__ = forward.__doc__
        self.__wrapped__ = forward

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickled by name: a recorded node refers to its op, and the op's forward function and rules
        # (lambdas among them) cannot be pickled themselves. Unpickling finds the same op in the table,
        # so only an op that the table holds under its name can be pickled.
        import pickle
        if TABLE.primitives.get(self.name) is not self:
            raise pickle.PicklingError(f"op {self.name!r} is not the one registered under that name, so a "
                                       "pickle could not find it again")
        return _primitive_named, (self.name,)

    def __deepcopy__(self, memo: dict) -> Primitive:
        return self     # an op is a function: copies of a graph share it

    def __call__(self, *args: Any, **params: Any) -> Any:
        if self.variadic or len(args) > self.n_inputs:
            args, params = self._normalized(args, params)
        return record(self, args, params or _NO_PARAMS)

    def _normalized(self, args: tuple, params: dict) -> tuple[tuple, dict]:
        """The inputs as a tuple and the parameters by name, from numpy's forms: ``reshape(x, (2, 3))``
        and, for a variadic op, ``stack([a, b], 0)``."""
        if not self.variadic:
            return self._positional_params(args, params)
        if not args or not isinstance(args[0], list | tuple):
            raise ArgumentError(f"{self.name}() takes a list or tuple of arrays first, as numpy's does")
        (sequence,), params = self._positional_params(args, params)
        return tuple(sequence), params

    def _call_converted(self, args: tuple, params: dict) -> Any:
        """Inputs that are not Values or float data: Values inside lists are stacked into one input, so
        their graph is kept; lists, boolean and integer arrays that take a gradient become floats once,
        so the rules see the same arrays later."""
        if any(isinstance(a, list | tuple) and _holds_values(a) for a in args):
            args = tuple(_stacked(a) if isinstance(a, list | tuple) and _holds_values(a) else a for a in args)
            return record(self, args, params)
        return record(self, self._converted(args), params, converted=True)

    def _converted(self, args: tuple) -> tuple:
        """The inputs, with those that take a gradient as float arrays: of the Values' precision when
        that is lower than float64, so that a float32 x times a boolean mask stays float32 (as PyTorch)."""
        inputs = list(args)
        for i, a in enumerate(args):
            if self.vjps[i] is not None and not isinstance(a, Value | float | int) and not (
                    isinstance(a, _ARRAYS) and a.dtype.kind == "f" and not isinstance(a, _REDEFINED)):
                c = to_array(a, self.name)
                if c.dtype != (values_dtype := _values_dtype(args)):
                    c = c.astype(values_dtype)
                inputs[i] = c
        return tuple(inputs)

    def _positional_params(self, args: tuple, params: dict) -> tuple[tuple, dict]:
        """numpy-style positional parameters, as in ``reshape(x, (2, 3))``: pass them by name."""
        n_inputs = self.n_inputs
        extra = args[n_inputs:]
        if len(extra) > len(self.param_names):
            raise ArgumentError(f"{self.name}() takes {n_inputs + len(self.param_names)} "
                                f"positional arguments but {len(args)} were given")
        positional = dict(zip(self.param_names, extra, strict=False))
        if twice := sorted(positional.keys() & params.keys()):
            raise ArgumentError(f"{self.name}() got multiple values for {', '.join(twice)}")
        return args[:n_inputs], {**params, **positional}


def record(op: Primitive, args: Sequence[Any], params: dict = _NO_PARAMS, converted: bool = False) -> Any:
    """The one recording path: run ``op`` on ``args`` and, when a Value among them needs a gradient and
    grad mode is on, return the result as a new graph node. Every operator, method and module function
    comes here; with no Value among the inputs it is plain numpy (the path rules take in backward)."""
    if _tracer is not None:    # mg.compile is tracing (compile.py): it runs the op and writes it down
        return _tracer.record(op, args, params, converted)
    raw = []
    needs_grad = None        # None until a Value is seen among the inputs
    to_convert = False       # a list, or a boolean or integer array: made float if the op records
    for a in args:
        if isinstance(a, Value):
            raw.append(a._data)
            needs_grad = needs_grad or a.requires_grad
        elif isinstance(a, _NUMBERS) or converted or (
                isinstance(a, _ARRAYS) and a.dtype.kind == "f" and not isinstance(a, _REDEFINED)):
            raw.append(a)
        elif isinstance(a, list | tuple) and _holds_values(a):
            return op._call_converted(args, params)    # Values inside a list: stacked
        else:
            to_convert = True
            raw.append(a)
    if to_convert and needs_grad is not None:
        return op._call_converted(args, params)
    forward = op.forward
    if needs_grad is None:
        # No Value among the inputs: plain numpy, no graph. This is the path rules take in backward().
        if op.variadic:
            return forward(raw, **params)
        return forward(*raw, **params) if params else forward(*raw)
    try:
        if op.variadic:
            out = forward(raw, **params)
        else:
            out = forward(*raw, **params) if params else forward(*raw)
    except Exception as e:  # numpy's own errors, re-raised as ours with the op and the shapes
        raise _explain(op, raw, params, e) from e
    # The new node, its slots set here rather than in a helper: this runs once per op of every forward.
    # _site and _changed are left unset until there is something to say (see Value.__init__).
    node = _new_value(Value)
    node._data = out
    node._grad = None
    node.label = None
    node._seq = next(_made)
    if _mode.anomaly:
        node._site = _user_site()
        check_forward(out, op, node._site)
    if needs_grad and _mode.grad_enabled:
        node.requires_grad = True
        node._op = op
        n = len(args)
        node._x = args[0]
        node._y = args[1] if n > 1 else _NO_INPUT
        node._more = args[2:] if n > 2 else ()
        node._params = params
    else:                 # nothing to differentiate: a constant, a leaf
        node.requires_grad = False
        node._op = None
        node._x = node._y = _NO_INPUT
        node._more = ()
        node._params = _NO_PARAMS
    return node


class _ForEveryInput:
    """The rules of a variadic op: one rule ``rule(argnum, g, ans, *inputs, **params)``."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def __getitem__(self, argnum: int) -> Rule:
        return functools.partial(self.rule, argnum)


def _stamp_changed(v: Value) -> None:
    """Number an in-place change of ``v``'s data, for the version checks in :func:`backprop`."""
    global _latest_change
    v._changed = _latest_change = next(_made)


def _changed_since(v: Value, seq: int) -> bool:
    """Whether ``v``'s data was changed in place after the Value numbered ``seq`` was made."""
    return getattr(v, "_changed", -1) > seq


def _primitive_named(name: str) -> Primitive:
    return TABLE.primitives[name]


# Inputs used as they are: Python numbers (numpy treats them as weak), float arrays and numpy scalars.
# (Tuples, not unions: isinstance reads them faster, and this runs for every input of every op.)
_NUMBERS = (float, int)
_ARRAYS = (np.ndarray, np.generic)
# Array subclasses whose numpy semantics differ from ndarray's, so never used as they are (to_array).
_REDEFINED = (np.matrix, np.ma.MaskedArray)
_SEQUENCES = (list, tuple)


def _values_dtype(args: Sequence[Any]) -> np.dtype:
    """The float dtype the Values among ``args`` hold together (float64 when they disagree upward)."""
    return np.result_type(*(a._data for a in args if isinstance(a, Value)))


def _axis_problem(name: str, params: dict) -> str | None:
    """What is wrong with an ``axis`` that is not whole numbers, with the likely intent; None if fine."""
    axis = params.get("axis")
    parts = axis if isinstance(axis, tuple) else (axis,)
    if axis is None or all(isinstance(a, int | np.integer) and not isinstance(a, bool) for a in parts):
        return None
    hint = ""
    if name in ("max", "min") and not isinstance(axis, tuple):
        pick = "maximum" if name == "max" else "minimum"
        hint = (f"; to compare elementwise with a number use mg.{pick}(x, 0)"
                + (" or x.relu()" if name == "max" else "")
                + f" (the argument of {name} is an axis, as in numpy)")
    return f"axis={axis!r} is not an axis (an int or a tuple of ints){hint}"


def _explain(op: Primitive, raw: Sequence[Any], params: dict, e: Exception) -> Exception:
    from .errors import MicrogradxError
    if isinstance(e, MicrogradxError):
        return e                 # already ours, saying what is wrong
    shapes = ", ".join(str(np.shape(a)) if isinstance(a, np.ndarray | np.generic | float | int)
                       else type(a).__name__ for a in raw)
    extra = "".join(f", {k}={v!r}" for k, v in params.items() if k != "index")
    where = f"{op.name}: inputs of shape {shapes}{extra}"
    if problem := _axis_problem(op.name, params):
        return AxisError(f"{where}: {problem}")
    if isinstance(e, np.exceptions.AxisError):
        return AxisError(f"{where}: {e}")
    if isinstance(e, IndexError):
        return AxisError(f"{where}: bad index {params.get('index')!r} ({e})")
    if isinstance(e, TypeError):
        return DTypeError(f"{where}: expected real numbers or arrays, and integers in axes and shapes "
                          f"({e})")
    if isinstance(e, ValueError):
        expected = f"; expected {op.expects}" if op.expects else ""
        return ShapeError(f"{where}{expected} ({e})")
    return e


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
# The node
# --------------------------------------------------------------------------------------------------

# PyTorch spellings a user may type, with ours.
_SPELLINGS = {
    "clamp": "x.clip(lo, hi)", "clamp_min": "mg.maximum(x, lo)", "cat": "mg.concatenate([...], axis=...)",
    "t": "x.T", "pow": "x ** y", "dim": "x.ndim", "numel": "x.size",
    "tolist": "x.numpy().tolist()", "sort": "mg.sort(x) (a new Value: Values are never sorted in place)",
    "permute": "x.transpose(...)", "contiguous": "x (Values need no contiguous copy)",
    "zero_": "x.zero_grad() for the gradient, or x.data[...] = 0 under no_grad()",
    "backward_": "x.backward()", "mul": "x * y", "add": "x + y", "sub": "x - y", "div": "x / y",
    "matmul": "x @ y", "mm": "x @ y", "sigmoid_": "x.sigmoid()", "exp_": "x.exp()",
    "double": "x.astype(np.float64)", "half": "x.astype(np.float16)", "cpu": "x (there is only the CPU)",
    "cuda": "nothing: microgradx runs on the CPU", "to": "x.astype(dtype) (there is only the CPU)",
    "retain_grad": "nothing: every node keeps its gradient of the latest backward()",
    "square": "mg.square(x)", "norm": "mg.linalg.norm(x)", "nelement": "x.size",
}


def _no_attribute(name: str, ours: str) -> Any:
    raise AttributeError(f"'Value' object has no attribute {name!r}; microgradx spells it {ours}")


class Value:
    """A scalar or array in a computation graph.

    ``Value(data, requires_grad=True, label=None, dtype=None)``: ``data`` is a number, a (nested) list or
    a numpy array. Float dtypes are kept (float32 stays float32); ints, bools and lists become float64.
    A list or tuple holding Values is stacked, and keeps their graph.

    Ops (``+ - * / ** @``, ``exp``, ``sum``, indexing, ...) record new Values; ``backward()`` fills
    ``.grad`` of every Value that led to this one and has ``requires_grad``. Plain numbers and arrays mix
    with Values on either side of every op and are treated as constants.
    """

    # NOTE: an op's inputs are kept in slots (_x, _y, then a tuple _more for the rare third and later
    # ones), not in one tuple per node: a tuple would be a second object per node for CPython's cyclic
    # garbage collector to track (benchmarks/README.md, "Where the time goes").
    __slots__ = ("_data", "_grad", "requires_grad", "label", "_op", "_x", "_y", "_more", "_params",
                 "_site", "_seq", "_changed", "__weakref__")
    _site: str        # where user code made the node: set in anomaly mode only
    _changed: int     # when its data was last changed in place: set by the first such change

    # Numpy hands ``array * value``, ``np.exp(value)``, ``np.mean(value)`` to the methods below, so they
    # record (or raise our error) instead of numpy looping over the Value as an opaque object.
    __array_priority__ = 1000

    def __new__(cls, data: Any = None, requires_grad: bool = True, label: str | None = None,
                dtype: Any = None) -> Value:
        if isinstance(data, _SEQUENCES) and _holds_values(data):
            # Stacked, so the graph of the Values inside is kept (a new leaf would cut it off).
            node = _stacked(data)
            if dtype is not None:
                node = node.astype(_float_dtype(dtype))
            if not requires_grad:
                node = node.detach()
            if label is not None:
                node.label = label
            return node  # type: ignore[no-any-return]
        return super().__new__(cls)

    def __init__(self, data: Any, requires_grad: bool = True, label: str | None = None,
                 dtype: Any = None) -> None:
        if isinstance(data, _SEQUENCES) and hasattr(self, "_seq"):
            return      # a list of Values: __new__ returned their stack, a node already made
        if isinstance(data, Value):
            data = data._data
        arr = to_array(data)
        if dtype is not None:
            arr = arr.astype(_float_dtype(dtype), copy=False)
        # A 0-d array becomes a numpy scalar, as numpy's own reductions return (a scalar already is one).
        self._data = arr[()] if arr.ndim == 0 and isinstance(arr, np.ndarray) else arr
        self._grad: Any = None
        self.requires_grad = bool(requires_grad)
        self.label = label
        self._op: Primitive | None = None    # the table entry that made this node; None for a leaf
        self._x: Any = _NO_INPUT             # the op's first input (a Value or a constant)
        self._y: Any = _NO_INPUT             # its second input
        self._more: tuple = ()               # its inputs after the second (where, concatenate, stack)
        self._params: dict = _NO_PARAMS      # the op's keyword arguments (axis, shape, ...)
        self._seq = next(_made)              # when it was made: inputs are always older than results
        # Two slots stay unset until there is something to say: _site, where user code made the node
        # (anomaly mode only), and _changed, when its data was last changed in place.

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        # A copy (copy.copy, copy.deepcopy, pickle) is a new node, so it takes a new number (see
        # backprop). deepcopy and pickle restore a node's inputs before the node itself, so copied
        # inputs stay older than the copies that use them.
        for name, value in state[1].items():
            if name != "_changed":      # a new node: nothing has changed it yet
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
    def data(self) -> Any:
        """The numpy array (a numpy scalar when 0-d) this Value holds.

        Assigning to it (``p.data = new`` or ``p.data -= step``) counts as an in-place change: a graph
        recorded from the old data then refuses ``backward()``. Writing into the array itself
        (``p.data[0] = 1``) is not seen.
        """
        return self._data

    @data.setter
    def data(self, new: Any) -> None:
        arr = new if isinstance(new, np.ndarray | np.generic) and new.dtype.kind == "f" else to_array(new)
        self._data = arr[()] if arr.ndim == 0 else arr
        _stamp_changed(self)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the data, as numpy's."""
        return self._data.shape  # type: ignore[no-any-return]

    @property
    def ndim(self) -> int:
        """The number of dimensions of the data."""
        return self._data.ndim  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        """The number of elements of the data, as numpy's ``.size`` (PyTorch's ``.size()`` is ``.shape``)."""
        return _Count(self._data.size)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the data (always a float dtype)."""
        return self._data.dtype  # type: ignore[no-any-return]

    def item(self) -> float:
        """The value as a Python float (the Value must hold exactly one element)."""
        self._check_one_element("item()")
        return self._data.item()  # type: ignore[no-any-return]

    def _check_one_element(self, what: str) -> None:
        if self._data.size != 1:
            raise ShapeError(f"{what} of a Value of shape {self.shape}: only a single element converts to "
                             "one number (reduce it first, e.g. with .sum() or .any())")

    def numpy(self) -> np.ndarray:
        """The data as a numpy array (a 0-d array for a scalar). Not a copy: do not write into it."""
        return np.asarray(self._data)

    if not TYPE_CHECKING:
        # Hidden from type checkers: numpy's stubs would then take a Value for an array and type
        # ``array @ value`` as an array, where at run time numpy hands it to __rmatmul__ (a Value).

        def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
            # np.asarray(v), np.array(v), matplotlib: the data, as an array (not an array of one-element
            # Values, which numpy would otherwise build by iterating). What numpy computes from that
            # array records nothing; numpy's functions called on the Value come to __array_function__.
            return np.array(self._data, dtype=dtype, copy=copy)

        def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
            return _numpy_call(ufunc, method, inputs, kwargs)

        def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
            return _numpy_call(func, "__call__", args, kwargs)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d Value")
        return len(self._data)

    def __iter__(self) -> Iterator[Value]:
        for i in range(len(self)):
            yield self[i]

    def __float__(self) -> float:
        self._check_one_element("float()")
        return float(self._data.item())     # as PyTorch: any single element, whatever the shape

    def __int__(self) -> int:
        self._check_one_element("int()")
        return int(self._data.item())

    def __bool__(self) -> bool:
        self._check_one_element("bool()")
        return bool(self._data)

    __hash__ = object.__hash__  # Values are graph nodes: identity, not contents, makes them equal keys

    def __repr__(self) -> str:
        name = f", label={self.label!r}" if self.label else ""
        op = f", op={self._op.name}" if self._op is not None else ""
        if self.ndim == 0:
            body = f"{self._data.item():.6g}"
        elif self.size <= 8:
            body = np.array2string(self._data, precision=4, separator=", ").replace("\n", "")
        else:  # whole arrays do not belong in a repr: say what it is
            body = f"<shape {self.shape}>"
        if self.ndim and self.dtype != np.float64:
            body += f", dtype={self.dtype}"
        return f"Value({body}{name}{op})"

    if not TYPE_CHECKING:   # type checkers should still flag these as missing
        # PyTorch's spellings, each a property that raises AttributeError naming ours (hasattr() stays
        # False). Not a __getattr__: that would slow every attribute read of every Value.
        for _name, _ours in _SPELLINGS.items():
            locals()[_name] = property(functools.partial(
                lambda self, name, ours: _no_attribute(name, ours), name=_name, ours=_ours))
        del _name, _ours

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
        """True for a Value made by the user, not by an op."""
        return self._op is None

    @property
    def grad(self) -> Any:
        """d(output)/d(self) from the latest ``backward()``: zeros of the data's shape before any.

        Leaves accumulate across ``backward()`` calls (as in PyTorch); call ``zero_grad()`` between steps.
        Interior nodes hold the gradient of the most recent call only. A numpy array (a Value after
        ``backward(create_graph=True)``); ``p.grad.zero_()`` is spelt ``p.zero_grad()`` here.
        """
        if self._grad is None:
            return _Grad.of(np.zeros_like(self._data))
        return _Grad.of(self._grad)

    @grad.setter
    def grad(self, value: Any) -> None:
        self._grad = value

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` reads as zeros again)."""
        self._grad = None

    def detach(self) -> Value:
        """The same data as a constant: no gradient flows back through the result."""
        return Value(self._data, requires_grad=False)

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
            seed = seed._data
        grads = backprop(self, seed, create_graph)
        _store(grads, seed, create_graph)

    def draw(self, **options: Any) -> Any:
        """The graph that led to this Value, drawn with Graphviz: ``microgradx.draw_graph(self, ...)``."""
        from .viz import draw_graph  # drawing sits above the engine; imported when first used
        return draw_graph(self, **options)

    # ---- in place: ``p -= lr * p.grad`` -----------------------------------------------------------

    def _in_place(self, op_name: str, other: Any) -> Value:
        records = _mode.grad_enabled and (self.requires_grad or (
            isinstance(other, Value) and other.requires_grad))
        if not records:
            # Nothing to differentiate: update the data itself, as PyTorch's in-place ops do.
            result = np.asarray(getattr(TABLE, op_name).forward(self._data, data_of(other)))
            if result.shape != self.shape:
                raise ShapeError(f"in-place operator on a Value of shape {self.shape}: the result has shape "
                                 f"{result.shape}, and an in-place update cannot change the shape")
            if isinstance(self._data, np.ndarray) and self._data.flags.writeable:
                self._data[...] = result            # the same array, its dtype kept
                _stamp_changed(self)
            else:
                self.data = result.astype(self.dtype)   # a numpy scalar or read-only array: replaced
            return self
        if self._op is None and self.requires_grad:
            raise GradientError(
                "an in-place operator (+=, -=, *=, /=) on a leaf that requires grad would lose its "
                "gradient: update parameters inside `with mg.no_grad():`, or write `p.data -= ...`")
        return getattr(TABLE, op_name)(self, other)   # recorded as the plain operator: a new node

    def __iadd__(self, other: Operand) -> Value:
        """``self += other``: in place under no_grad, else recorded as ``+``."""
        return self._in_place("add", other)

    def __isub__(self, other: Operand) -> Value:
        """``self -= other``: in place under no_grad, else recorded as ``-``."""
        return self._in_place("subtract", other)

    def __imul__(self, other: Operand) -> Value:
        """``self *= other``: in place under no_grad, else recorded as ``*``."""
        return self._in_place("multiply", other)

    def __itruediv__(self, other: Operand) -> Value:
        """``self /= other``: in place under no_grad, else recorded as ``/``."""
        return self._in_place("divide", other)

    # ---- operators (each records one table entry) -------------------------------------------------

    def __add__(self, other: Operand) -> Value:
        """``self + other``."""
        return record(TABLE.add, (self, other))  # type: ignore[no-any-return]

    def __radd__(self, other: Operand) -> Value:
        """``other + self``."""
        return record(TABLE.add, (other, self))  # type: ignore[no-any-return]

    def __sub__(self, other: Operand) -> Value:
        """``self - other``."""
        return record(TABLE.subtract, (self, other))  # type: ignore[no-any-return]

    def __rsub__(self, other: Operand) -> Value:
        """``other - self``."""
        return record(TABLE.subtract, (other, self))  # type: ignore[no-any-return]

    def __mul__(self, other: Operand) -> Value:
        """``self * other``."""
        return record(TABLE.multiply, (self, other))  # type: ignore[no-any-return]

    def __rmul__(self, other: Operand) -> Value:
        """``other * self``."""
        return record(TABLE.multiply, (other, self))  # type: ignore[no-any-return]

    def __truediv__(self, other: Operand) -> Value:
        """``self / other``."""
        return record(TABLE.divide, (self, other))  # type: ignore[no-any-return]

    def __rtruediv__(self, other: Operand) -> Value:
        """``other / self``."""
        return record(TABLE.divide, (other, self))  # type: ignore[no-any-return]

    def __pow__(self, other: Operand) -> Value:
        """``self ** other``."""
        return record(TABLE.power, (self, other))  # type: ignore[no-any-return]

    def __rpow__(self, other: Operand) -> Value:
        """``other ** self``."""
        return record(TABLE.power, (other, self))  # type: ignore[no-any-return]

    def __matmul__(self, other: Operand) -> Value:
        """``self @ other``."""
        return record(TABLE.matmul, (self, other))  # type: ignore[no-any-return]

    def __rmatmul__(self, other: Operand) -> Value:
        """``other @ self``."""
        return record(TABLE.matmul, (other, self))  # type: ignore[no-any-return]

    def __neg__(self) -> Value:
        """``-self``."""
        return record(TABLE.negative, (self,))  # type: ignore[no-any-return]

    def __pos__(self) -> Value:
        """``+self``: the Value itself."""
        return self

    def __abs__(self) -> Value:
        """``abs(self)``."""
        return record(TABLE.abs, (self,))  # type: ignore[no-any-return]

    def __getitem__(self, index: Any) -> Value:
        """``self[index]``: basic, advanced and boolean indexing, as numpy (repeated positions add up)."""
        return record(TABLE.getitem, (self,), {"index": _as_index(index)})  # type: ignore[no-any-return]

    # Comparisons look at the data: a numpy bool array, no gradient (a mask for where()).
    def __lt__(self, other: Operand) -> np.ndarray:
        """Elementwise ``<`` of the data: a numpy bool array."""
        return np.less(self._data, data_of(other))  # type: ignore[no-any-return]

    def __le__(self, other: Operand) -> np.ndarray:
        """Elementwise ``<=`` of the data: a numpy bool array."""
        return np.less_equal(self._data, data_of(other))  # type: ignore[no-any-return]

    def __gt__(self, other: Operand) -> np.ndarray:
        """Elementwise ``>`` of the data: a numpy bool array."""
        return np.greater(self._data, data_of(other))  # type: ignore[no-any-return]

    def __ge__(self, other: Operand) -> np.ndarray:
        """Elementwise ``>=`` of the data: a numpy bool array."""
        return np.greater_equal(self._data, data_of(other))  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> Any:  # an array, not a bool: as numpy
        """Elementwise ``==`` of the data: a numpy bool array."""
        return np.equal(self._data, data_of(other))

    def __ne__(self, other: object) -> Any:
        """Elementwise ``!=`` of the data: a numpy bool array."""
        return np.not_equal(self._data, data_of(other))

    # ---- elementwise functions ----------------------------------------------------------------------

    def exp(self) -> Value:
        """e ** self, elementwise."""
        return record(TABLE.exp, (self,))  # type: ignore[no-any-return]

    def log(self) -> Value:
        """Natural logarithm, elementwise."""
        return record(TABLE.log, (self,))  # type: ignore[no-any-return]

    def sqrt(self) -> Value:
        """Square root, elementwise."""
        return record(TABLE.sqrt, (self,))  # type: ignore[no-any-return]

    def abs(self) -> Value:
        """Absolute value, elementwise."""
        return record(TABLE.abs, (self,))  # type: ignore[no-any-return]

    def tanh(self) -> Value:
        """Hyperbolic tangent, elementwise."""
        return record(TABLE.tanh, (self,))  # type: ignore[no-any-return]

    def sigmoid(self) -> Value:
        """1 / (1 + exp(-self)), elementwise, without overflow."""
        return record(TABLE.sigmoid, (self,))  # type: ignore[no-any-return]

    def relu(self) -> Value:
        """max(self, 0), elementwise."""
        return record(TABLE.relu, (self,))  # type: ignore[no-any-return]

    def softplus(self) -> Value:
        """log(1 + exp(self)), elementwise, without overflow."""
        return TABLE.softplus(self)  # type: ignore[no-any-return]

    def round(self, decimals: int = 0) -> Value:
        """Rounded to ``decimals`` places, halves to even, as numpy; its derivative is 0."""
        return record(TABLE.round, (self,), {"decimals": decimals})  # type: ignore[no-any-return]

    def clip(self, lo: Operand | None = None, hi: Operand | None = None) -> Value:
        """Elementwise clipped to [lo, hi], as ``np.clip``."""
        return record(TABLE.clip, (self,), {"lo": lo, "hi": hi})  # type: ignore[no-any-return]

    def astype(self, dtype: Any) -> Value:
        """The data cast to a float dtype; the gradient is cast back."""
        return record(TABLE.astype, (self,), {"dtype": _float_dtype(dtype)})  # type: ignore[no-any-return]

    def float(self) -> Value:
        """Cast to float32, as PyTorch's ``.float()``."""
        return self.astype(np.float32)

    # ---- reductions -------------------------------------------------------------------------------

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Value:
        """Sum over ``axis`` (all axes when None)."""
        return record(TABLE.sum, (self,), {"axis": axis, "keepdims": keepdims})  # type: ignore[no-any-return]

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Value:
        """Arithmetic mean over ``axis`` (all axes when None)."""
        return record(TABLE.mean, (self,), {"axis": axis, "keepdims": keepdims})  # type: ignore[no-any-return]

    def var(self, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Value:
        """Variance over ``axis``, divided by ``N - ddof`` (population variance by default, as numpy)."""
        return TABLE.var(self, axis=axis, keepdims=keepdims, ddof=ddof)  # type: ignore[no-any-return]

    def std(self, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Value:
        """Standard deviation over ``axis``: the square root of :meth:`var`."""
        return TABLE.std(self, axis=axis, keepdims=keepdims, ddof=ddof)  # type: ignore[no-any-return]

    def prod(self, axis: Axis = None, keepdims: bool = False) -> Value:
        """Product over ``axis`` (all axes when None), exact where elements are zero."""
        return record(TABLE.prod, (self,), {"axis": axis, "keepdims": keepdims})  # type: ignore[no-any-return]

    def cumsum(self, axis: int | None = None) -> Value:
        """Running sums along ``axis`` (of the flattened Value when None)."""
        return record(TABLE.cumsum, (self,), {"axis": axis})  # type: ignore[no-any-return]

    def cumprod(self, axis: int | None = None) -> Value:
        """Running products along ``axis`` (of the flattened Value when None)."""
        return record(TABLE.cumprod, (self,), {"axis": axis})  # type: ignore[no-any-return]

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        """Index of the largest element over ``axis``: a numpy integer array, no gradient."""
        return TABLE.argmax(self, axis=axis, keepdims=keepdims)  # type: ignore[no-any-return]

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        """Index of the smallest element over ``axis``: a numpy integer array, no gradient."""
        return TABLE.argmin(self, axis=axis, keepdims=keepdims)  # type: ignore[no-any-return]

    def any(self, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
        """Whether any element over ``axis`` is non-zero: numpy booleans, no gradient."""
        return TABLE.any(self, axis=axis, keepdims=keepdims)  # type: ignore[no-any-return]

    def all(self, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
        """Whether every element over ``axis`` is non-zero: numpy booleans, no gradient."""
        return TABLE.all(self, axis=axis, keepdims=keepdims)  # type: ignore[no-any-return]

    def argsort(self, axis: int | None = -1) -> np.ndarray:
        """The indices that sort the data along ``axis``: a numpy integer array, no gradient."""
        return TABLE.argsort(self, axis=axis)  # type: ignore[no-any-return]

    def max(self, axis: Axis = None, keepdims: bool = False) -> Value:
        """Largest element over ``axis``; ties share the gradient."""
        return record(TABLE.max, (self,), {"axis": axis, "keepdims": keepdims})  # type: ignore[no-any-return]

    def min(self, axis: Axis = None, keepdims: bool = False) -> Value:
        """Smallest element over ``axis``; ties share the gradient."""
        return record(TABLE.min, (self,), {"axis": axis, "keepdims": keepdims})  # type: ignore[no-any-return]

    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Value:
        """log(sum(exp(self))) over ``axis``, without overflow."""
        return TABLE.logsumexp(self, axis=axis, keepdims=keepdims)  # type: ignore[no-any-return]

    def softmax(self, axis: int = -1) -> Value:
        """exp(self) / sum(exp(self)) along ``axis``."""
        return TABLE.softmax(self, axis=axis)  # type: ignore[no-any-return]

    def log_softmax(self, axis: int = -1) -> Value:
        """log(softmax(self)) along ``axis``, computed stably."""
        return TABLE.log_softmax(self, axis=axis)  # type: ignore[no-any-return]

    # ---- shapes -----------------------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Value:
        """The same elements in a new shape: ``v.reshape(2, 3)`` or ``v.reshape((2, 3))``."""
        return record(TABLE.reshape, (self,), {"shape": shape[0] if len(shape) == 1 else shape})  # type: ignore[no-any-return]

    def view(self, *shape: Any) -> Value:
        """PyTorch's name for :meth:`reshape`."""
        return self.reshape(*shape)

    def transpose(self, *axes: Any) -> Value:
        """Axes permuted: reversed by default, or ``v.transpose(1, 0, 2)`` / ``v.transpose((1, 0, 2))``."""
        if len(axes) == 1 and not isinstance(axes[0], int | np.integer):
            axes = tuple(axes[0])
        return record(TABLE.transpose, (self,), {"axes": tuple(axes) if axes else None})  # type: ignore[no-any-return]

    @property
    def T(self) -> Value:  # noqa: N802 - numpy's name
        """The Value with its axes reversed."""
        return record(TABLE.transpose, (self,))  # type: ignore[no-any-return]

    def flatten(self) -> Value:
        """A 1-d Value of the elements, in C order."""
        return TABLE.flatten(self)  # type: ignore[no-any-return]

    def squeeze(self, axis: Axis = None) -> Value:
        """Without the axes of size 1 (only ``axis`` when given)."""
        return TABLE.squeeze(self, axis=axis)  # type: ignore[no-any-return]

    def ravel(self) -> Value:
        """A 1-d Value of the elements, in C order, as numpy's ``ravel``."""
        return TABLE.ravel(self)  # type: ignore[no-any-return]

    def swapaxes(self, axis1: int, axis2: int) -> Value:
        """The Value with two axes exchanged."""
        return TABLE.swapaxes(self, axis1, axis2)  # type: ignore[no-any-return]

    def repeat(self, repeats: Any, axis: int | None = None) -> Value:
        """Each element repeated ``repeats`` times along ``axis`` (of the flattened Value when None)."""
        return TABLE.repeat(self, repeats, axis=axis)  # type: ignore[no-any-return]

    def take(self, indices: Any, axis: int | None = None) -> Value:
        """The elements at integer ``indices`` along ``axis`` (of the flattened Value when None)."""
        return TABLE.take(self, indices, axis=axis)  # type: ignore[no-any-return]

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Value:
        """The diagonal of the (axis1, axis2) planes, ``offset`` above the main one."""
        return TABLE.diagonal(self, offset=offset, axis1=axis1, axis2=axis2)  # type: ignore[no-any-return]

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Value:
        """The sum of :meth:`diagonal`."""
        return TABLE.trace(self, offset=offset, axis1=axis1, axis2=axis2)  # type: ignore[no-any-return]

    def dot(self, other: Operand) -> Value:
        """``np.dot(self, other)``: the matrix product for 2-d operands, the inner product for 1-d."""
        return TABLE.dot(self, other)  # type: ignore[no-any-return]

    def unsqueeze(self, axis: int) -> Value:
        """A new axis of size 1 at ``axis``: PyTorch's name for ``mg.expand_dims``."""
        return TABLE.expand_dims(self, axis=axis)  # type: ignore[no-any-return]


_new_value = object.__new__


class _Count(int):
    """An element count that says what to type when called as PyTorch's ``v.size()``."""

    def __call__(self, *dim: Any) -> Any:
        raise TypeError("v.size is numpy's element count, not a method; PyTorch's v.size() is v.shape "
                        "here (and v.size(d) is v.shape[d])")


class _Grad(np.ndarray):
    """A gradient as handed out by ``Value.grad``: a plain numpy array, except that the two PyTorch
    spellings that would otherwise fail with numpy's confusing message say what to type instead."""

    @staticmethod
    def of(g: Any) -> Any:
        return g.view(_Grad) if type(g) is np.ndarray else g

    def __array_wrap__(self, arr: Any, context: Any = None, return_scalar: bool = False) -> Any:
        # What numpy computes from a gradient is a plain array again.
        out = np.asarray(arr)
        return out[()] if return_scalar else out

    def zero_(self) -> None:
        raise GradientError("p.grad.zero_(): a gradient is a numpy array here; call p.zero_grad() "
                            "(or optimizer.zero_grad()) to forget it")

    @property
    def data(self) -> Any:   # type: ignore[override]
        raise GradientError("p.grad.data: a gradient is already a plain numpy array here; use p.grad "
                            "itself (e.g. `with mg.no_grad(): p -= lr * p.grad`)")


def _float_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise DTypeError(f"Value: dtype={dtype!r} is not a dtype numpy knows ({e})") from None
    if dt.kind != "f":
        raise DTypeError(f"Value: dtype must be a float dtype, got {dt}")
    return dt


def _as_index(index: Any) -> Any:
    """Index parts as numpy takes them (a list becomes an array); a Value is refused."""
    if isinstance(index, tuple):
        return tuple(_as_index(p) for p in index)
    if isinstance(index, Value):
        # A Value holds floats, even one made from a boolean mask, so it cannot say whether [1., 0., 1.]
        # means positions or a mask. Positions or masks are not differentiable anyway: ask for an array.
        raise DTypeError("a Value cannot be an index (Values hold floats, so a mask and positions look "
                         "alike); index with an integer or boolean numpy array instead")
    if isinstance(index, list):
        return np.asarray(index)
    return index


# --------------------------------------------------------------------------------------------------
# numpy's own functions called on Values: np.mean(v), np.exp(v), array * v
# --------------------------------------------------------------------------------------------------

# Functions whose result carries no gradient (shapes, tests, masks): answered from the data.
_NUMPY_INSPECT = {np.shape, np.ndim, np.size, np.allclose, np.isclose, np.array_equal, np.array_equiv,
                  np.argmax, np.argmin, np.argsort, np.nonzero, np.count_nonzero, np.result_type,
                  np.may_share_memory, np.shares_memory, np.isfinite, np.isnan, np.isinf, np.signbit,
                  np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
                  np.logical_and, np.logical_or, np.logical_not, np.logical_xor,
                  np.iscomplexobj, np.isrealobj, np.copyto}


def _numpy_call(func: Any, method: str, args: Any, kwargs: dict) -> Any:
    ours = TABLE.numpy.get(func)
    if method == "__call__" and not kwargs.get("out") and ours is not None:
        kwargs = {k: v for k, v in kwargs.items() if not (k in ("dtype", "out") and v is None)}
        try:
            inspect.signature(ours).bind(*args, **kwargs)
        except TypeError as e:
            raise ArgumentError(f"np.{func.__name__} on a Value records microgradx's {ours.__name__}, "
                                f"which does not take these arguments ({e})") from None
        return ours(*args, **kwargs)
    if func in _NUMPY_INSPECT or not any(isinstance(a, Value) and a.requires_grad
                                         for a in _flat(args, kwargs)):
        # No gradient is asked of the answer: numpy on the data, as for an array.
        plain_args = _unwrapped(args)
        plain_kwargs = {k: _unwrapped(v) for k, v in kwargs.items()}
        if method == "__call__":
            return func(*plain_args, **plain_kwargs)
        return getattr(func, method)(*plain_args, **plain_kwargs)
    name = getattr(func, "__name__", repr(func)) + ("" if method == "__call__" else f".{method}")
    hint = (f"call mg.{ours.__name__} without out= or other numpy-only arguments" if ours is not None
            else "use microgradx's op of that name if it has one (see the ops table), or compute on "
                 "v.data if no gradient is needed")
    raise ArgumentError(f"np.{name} on a Value that requires grad would not record a gradient: {hint}")


def _flat(args: Any, kwargs: dict) -> Iterator[Any]:
    stack = [*args, *kwargs.values()]
    while stack:
        a = stack.pop()
        if isinstance(a, list | tuple):
            stack.extend(a)
        else:
            yield a


def _unwrapped(x: Any) -> Any:
    if isinstance(x, Value):
        return x._data
    if isinstance(x, list | tuple):
        return type(x)(_unwrapped(i) for i in x)
    return x


# --------------------------------------------------------------------------------------------------
# Seeding and storing gradients
# --------------------------------------------------------------------------------------------------

def _seed(root: Value, gradient: Any) -> Any:
    if gradient is None:
        if root.size != 1:
            raise GradientError(
                f"backward() on a Value of shape {root.shape} needs gradient=...: only a single-element "
                "output has an implied seed of 1 (reduce it first, e.g. with .sum() or .mean())"
            )
        data = root._data
        return data.dtype.type(1) if data.ndim == 0 else np.ones(data.shape, data.dtype)
    if isinstance(gradient, Value):
        seed = gradient
    else:
        seed = np.asarray(to_array(gradient, "backward(gradient=...)"), dtype=root.dtype)
    if seed.shape != root.shape:
        raise ShapeError(f"backward(): gradient has shape {seed.shape}, expected {root.shape} "
                         "(the shape of the Value it seeds)")
    return seed


def _store(grads: dict[Value, Any], seed: Any, create_graph: bool) -> None:
    """Write a pass's gradients on the nodes: leaves accumulate, interior nodes keep the latest."""
    leaves = []
    for node, g in grads.items():
        if node._op is None:
            leaves.append((node, g))
        else:
            # An interior node keeps its gradient for inspection only, as data: under create_graph
            # the Value's graph leads back to this node (rules read `ans`), which would be a cycle.
            node._grad = g._data if isinstance(g, Value) else g
    taken: set[int] | None = None
    for node, g in leaves:
        if create_graph or isinstance(node._grad, Value):    # a Value from an earlier create_graph
            # A Value, as .grad promises after create_graph, even when the gradient does not depend
            # on the inputs (x + 1): then a constant one.
            node._grad = as_value(g if node._grad is None else node._grad + g)
        elif node._grad is not None:
            node._grad = (node._grad + g).astype(node._data.dtype, copy=False)
        else:
            if taken is None and isinstance(g, np.ndarray):
                # Arrays already handed out (the seed, interior gradients): a leaf must not share one,
                # or an in-place edit of its .grad would show up elsewhere. Numpy scalars cannot be
                # edited in place, so scalar code skips this walk over the graph.
                taken = {id(seed)} | {id(g) for n, g in grads.items() if n._op is not None}
            node._grad = _own(g, node._data.dtype, taken)
            if taken is not None:
                taken.add(id(node._grad))


def _own(g: Any, dtype: np.dtype, taken: set[int] | None) -> Any:
    """``g`` as a leaf's own gradient: adopted as it is when nothing else can see it, else copied
    (a view, a read-only array or one already handed out). Adopting saves a copy per parameter."""
    if (isinstance(g, np.ndarray) and g.dtype == dtype and g.base is None and g.flags.writeable
            and id(g) not in taken):
        return g
    return g.astype(dtype)


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
    # Every Value is numbered as it is made, and an op's inputs exist before its result, so newest first
    # is a reverse topological order: by the time a node is taken, every node that uses it is newer and
    # has already sent it its share of the gradient. A heap of the interior nodes holding a gradient
    # gives that order, with no pass over the graph beforehand and no recursion.
    if _tracer is not None:    # mg.compile is tracing (compile.py): it runs the pass, writing each rule call
        return _tracer.backprop(root, seed, create_graph, targets)  # type: ignore[no-any-return]
    relevant = _leading_to(targets, _reachable(root)) if targets is not None else None
    grads: dict[Value, Any] = {root: seed}
    # The interior nodes that hold a gradient and wait to be taken, by their numbers negated (heapq's is
    # a min-heap), and those numbers in a heap: plain numbers compare faster than (number, node) pairs.
    waiting = {-root._seq: root}
    newest_first = [-root._seq] if root._op is not None else []
    anomaly = _mode.anomaly
    # Data changed in place after an op used it makes its derivative wrong. Nodes made after the latest
    # change anywhere cannot be affected, so only older ones are checked (in training, none are: the
    # optimizer's step comes before the forward pass).
    latest_change = _latest_change
    push, pop = heapq.heappush, heapq.heappop
    previous_mode, _mode.grad_enabled = _mode.grad_enabled, create_graph
    try:
        while newest_first:
            node = waiting.pop(pop(newest_first))
            g, op = grads[node], node._op
            x, y, params, more = node._x, node._y, node._params, node._more
            args = (x,) if y is _NO_INPUT else ((x, y) + more if more else (x, y))
            if node._seq < latest_change:
                _check_unchanged(node, args)
            # What every rule of the node is called with: g, ans and the inputs (Values under
            # create_graph, else their data as it is now, which is the data the op saw: a change in
            # place since then was refused just above).
            if create_graph:
                operands = (g, node, *args)
            else:
                xd = x._data if isinstance(x, Value) else x
                if y is _NO_INPUT:
                    operands = (g, node._data, xd)
                else:
                    yd = y._data if isinstance(y, Value) else y
                    operands = (g, node._data, xd, yd, *map(data_of, more)) if more else (
                        g, node._data, xd, yd)
            for i, arg in enumerate(args):
                if not isinstance(arg, Value) or not arg.requires_grad:
                    continue      # a constant, or a Value that needs no gradient
                rule = op.vjps[i]
                if rule is None or (relevant is not None and arg not in relevant):
                    continue      # an input with no derivative (a mask), or one leading to no target
                try:
                    gi = rule(*operands, **params) if params else rule(*operands)
                except AnomalyError as e:    # under create_graph the rule's own ops check themselves
                    raise AnomalyError(f"backward of {_describe(node)}, input #{i}: {e}") from None
                if gi.shape != arg._data.shape:
                    gi = _unbroadcast(gi, arg._data.shape, node, i)
                if anomaly:
                    _check_backward(gi, node, i)
                previous = grads.get(arg)
                if previous is not None:
                    grads[arg] = previous + gi
                else:
                    grads[arg] = gi
                    if arg._op is not None:    # a leaf has no inputs to pass its gradient on to
                        key = -arg._seq
                        waiting[key] = arg
                        push(newest_first, key)
    finally:
        _mode.grad_enabled = previous_mode
    return grads


_by_seq = operator.attrgetter("_seq")


def _reachable(root: Value) -> list[Value]:
    """The nodes that led to ``root`` and need a gradient (root included), in no particular order."""
    seen = {root}
    stack = [root]
    while stack:
        node = stack.pop()
        x, y = node._x, node._y
        if isinstance(x, Value) and x.requires_grad and x not in seen:
            seen.add(x)
            stack.append(x)
        if isinstance(y, Value) and y.requires_grad and y not in seen:
            seen.add(y)
            stack.append(y)
        for a in node._more:
            if isinstance(a, Value) and a.requires_grad and a not in seen:
                seen.add(a)
                stack.append(a)
    return list(seen)


def _leading_to(targets: tuple[Value, ...], nodes: list[Value]) -> set[Value]:
    """The nodes among ``nodes`` from which some target can be reached (targets included)."""
    relevant = {t for t in targets if t in set(nodes)}
    # Oldest first, so that a node's inputs are settled before it: it leads to a target if one does.
    for node in sorted(nodes, key=_by_seq):
        if node not in relevant and any(isinstance(a, Value) and a in relevant for a in node._args):
            relevant.add(node)
    return relevant


def _unbroadcast(g: Any, shape: tuple[int, ...], node: Value, argnum: int) -> Any:
    """Sum ``g`` down to ``shape``: the adjoint of numpy broadcasting ``shape`` up to ``g``'s shape.

    Written with ``.sum`` and ``.reshape``, which arrays and Values share, so the engine needs no op.
    """
    gshape = np.shape(g)
    extra = len(gshape) - len(shape)
    if extra < 0 or any(n != 1 and n != m for n, m in zip(shape, gshape[extra:], strict=True)):
        raise GradientError(f"backward of {_describe(node)}: the rule for input #{argnum} returned shape "
                            f"{gshape}, which does not broadcast from the input's shape {shape}")
    stretched = tuple(extra + i for i, n in enumerate(shape) if n == 1 and gshape[extra + i] != 1)
    axes = tuple(range(extra)) + stretched
    if axes:
        g = g.sum(axis=axes)
    return g.reshape(shape) if np.shape(g) != shape else g


def _check_unchanged(node: Value, args: tuple) -> None:
    """Refuse ``node``'s derivative if its output or a Value among its inputs (one that needs no gradient
    included: the other inputs' rules read it) was changed in place after the op ran."""
    for v in (node, *args):
        if isinstance(v, Value) and _changed_since(v, node._seq):
            _refuse_changed(node, v)


def _refuse_changed(node: Value, changed: Value) -> None:
    what = "its output" if changed is node else f"its input {changed!r}"
    raise GradientError(
        f"backward of {_describe(node)}: {what} was changed in place after the op used it (an in-place "
        "operator, an optimizer step or an assignment to .data), so the recorded derivative no longer "
        "holds; recompute the forward pass after changing the data")


def _describe(node: Value) -> str:
    site = getattr(node, "_site", None)
    site = f", made at {site}" if site else ""
    return f"'{node._op.name if node._op else 'leaf'}' (output shape {node.shape}{site})"


def _check_backward(g: Any, node: Value, argnum: int) -> None:
    data = g._data if isinstance(g, Value) else g
    if not np.all(np.isfinite(data)):
        raise AnomalyError(
            f"backward of {_describe(node)} produced {_nonfinite_kind(data)} in the gradient of its "
            f"input #{argnum}"
        )
