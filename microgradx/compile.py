"""``compile``: trace a step once, forward and backward, then replay it as one flat program of numpy calls.

The first call with given argument shapes and dtypes runs ``fn`` eagerly with a tracer switched on. Each
primitive the forward pass records, and each derivative rule that ``backward()`` or a ``value_and_grad``
pass calls (in the order the reverse pass calls them), is run once more on arrays the tracer follows
(:class:`_Tracked`), and every numpy call made on them is written as one line of Python (``t7 = t3 *
t5``). The lines are compiled into one function that later calls with the same shapes run instead of
``fn``: no Value is built, no graph is walked.

The rules compute their masks from their inputs (relu's ``x > 0``, abs's sign, max's ties); since those
inputs are followed, the masks are lines too, computed again at every replay. A call the tracer cannot
follow (it makes an array the tracer does not see, branches on data, sets its own ``np.errstate``, or is a
user's op) is written as one step calling the function itself, which recomputes its masks just the same.
Masks computed in user code from a Value's data (``where(x > 0, ...)``, mnist_loss's ``targets == 1``)
are followed too: comparisons of Values and the library's ``data_of`` hand out followed arrays.

What cannot be replayed is refused while tracing, with the user's line: Python control flow on a value
(``float(v)``, ``bool(v)``, ``v.item()``, ``v.data`` or ``v.grad`` read), random draws from numpy's or
Python's global generator, a Value's data changed in place inside ``fn`` (an optimizer step). The
library's own checks on data go through :func:`guard`, which makes them steps checked at every replay.

See docs/compile.md for the recorded program of the chapter's step and the limits.
"""

from __future__ import annotations

import collections
import functools
import heapq
import operator
import os
import random
import sys
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from . import engine
from .engine import _NO_INPUT, Value, _new_value
from .errors import MicrogradxError

__all__ = ["compile", "TraceError"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_CACHE_SIZE = 8          # traces kept per compiled function (one per argument signature), newest kept
_LOCK = threading.Lock()  # one trace at a time: a trace switches process-wide hooks on


class TraceError(MicrogradxError, RuntimeError):
    """``fn`` did something ``compile`` cannot replay faithfully (control flow on a value, a random draw,
    an in-place change of a Value's data); the message names the line."""


def compile(fn: Callable[..., Any] | None = None, *, cache_size: int = _CACHE_SIZE) -> Any:  # noqa: A001
    """Return a function that does what ``fn`` does, replaying a trace of it after the first call.

    ``fn`` may call ``loss.backward()`` (the leaves' ``.grad`` are then filled on every call, as eagerly)
    or be a function made by :func:`~microgradx.value_and_grad`. Arguments may be numpy arrays, numbers
    or Values; a new shape, dtype or number traces again (the ``cache_size`` latest traces are kept).
    Values that ``fn`` reads but is not given (a model's parameters) are read afresh on every call, so an
    optimizer may rebind or edit their data between calls. Returned Values are constants (no graph).
    Also works as a decorator, ``@mg.compile`` or ``@mg.compile(cache_size=...)``.
    """
    if fn is None:
        return functools.partial(compile, cache_size=cache_size)
    return _Compiled(fn, cache_size)


class _Compiled:
    """The compiled function: a bounded cache of traces, keyed by the arguments' shapes and dtypes."""

    def __init__(self, fn: Callable[..., Any], cache_size: int) -> None:
        self.fn = fn
        self.cache_size = cache_size
        self.traces: collections.OrderedDict[Any, _Trace] = collections.OrderedDict()
        functools.update_wrapper(self, fn)   # type: ignore[arg-type]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if engine._mode.anomaly or engine._tracer is not None:
            return self.fn(*args, **kwargs)    # anomaly checks and a trace inside a trace: run eagerly
        key = (tuple(map(_signature, args)),
               tuple((k, _signature(v)) for k, v in sorted(kwargs.items())) if kwargs else (),
               engine._mode.grad_enabled)
        trace = self.traces.get(key)
        if trace is not None:
            leaves = trace.live_leaves()
            if leaves is not None:
                if len(self.traces) > 1:
                    self.traces.move_to_end(key)
                return trace.run(args, kwargs, leaves)
        trace, result = _trace(self.fn, args, kwargs)
        self.traces[key] = trace
        if len(self.traces) > self.cache_size:
            self.traces.popitem(last=False)
        return result

    @property
    def program(self) -> str:
        """The newest trace's program, as Python source (for reading; see docs/compile.md)."""
        if not self.traces:
            raise TraceError("program: the function has not been called yet, so nothing was traced")
        return next(reversed(self.traces.values())).source


def guard(test: Callable[..., None], *arrays: Any) -> None:
    """Run ``test(*arrays)``, a check that raises our error on bad data (a class label out of range).

    Library code calls its checks on data through this, so that they hold under ``compile`` too: while a
    trace runs, the check is also written as a step of the program, so that every replay checks its own
    data (a guard) and raises the same error, where an ``if`` on the data would be refused.
    """
    tracer = _TRACER
    if isinstance(tracer, _Tracer) and tracer.follows(arrays):
        tracer.program.step(test, test.__name__, tuple(tracer.ref(a) for a in arrays), {}, out=False)
        arrays = tracer.plain(arrays)
    test(*arrays)


def _signature(x: Any) -> Any:
    """What a trace is specialised on: shapes and dtypes of arrays, the values of other arguments."""
    if type(x) is np.ndarray:          # the common case first: a batch
        return ("array", x.shape, x.dtype)
    if isinstance(x, Value):
        return ("Value", x.shape, x.dtype, x.requires_grad)
    if isinstance(x, np.ndarray | np.generic):
        return ("array", x.shape, x.dtype)
    if isinstance(x, list | tuple):
        return (type(x).__name__, *map(_signature, x))
    try:
        hash(x)
    except TypeError:
        raise TraceError(f"compile: cannot key a trace on an argument of type {type(x).__name__}; pass "
                         "arrays, numbers or Values") from None
    return (type(x).__name__, x)


# --------------------------------------------------------------------------------------------------
# The program: slots and steps, run as generated code or by a loop
# --------------------------------------------------------------------------------------------------

_CODE_LIMIT = 3000   # steps up to which a trace becomes generated Python; beyond, compiling the source
#                      would cost more than a loop over the steps loses (a scalar-mode model has 10^5)


class _Nested:
    """A tuple, list or dict of operands inside a step's arguments (an index, stack's list)."""

    __slots__ = ("kind", "items")

    def __init__(self, kind: type, items: Any) -> None:
        self.kind, self.items = kind, items


class _Program:
    """A flat program. Every value lives in a numbered slot: constants (filled once), the arguments and
    the outside Values' data (filled at the start of each run) and the steps' results. A step is a
    function, the slots of its operands, its constant keyword arguments and the slot of its result."""

    def __init__(self) -> None:
        self.size = 0
        self.constants: dict[int, Any] = {}
        self.inputs: list[tuple[str, Any, int]] = []  # ("arg", path, slot) / ("leaf", k, slot) / "leafdata"
        self.steps: list[tuple[Any, str, tuple, dict, int | None]] = []
        self.notes: dict[int, str] = {}   # step index -> the op or rule whose numpy calls start there
        self.result: Any = None

    def slot(self) -> int:
        self.size += 1
        return self.size - 1

    def constant(self, value: Any) -> int:
        s = self.slot()
        self.constants[s] = value
        return s

    def step(self, func: Any, name: str, args: tuple, kwargs: dict, out: bool = True) -> int | None:
        slot = self.slot() if out else None
        self.steps.append((func, name, args, kwargs, slot))
        return slot

    def template(self, mark: int, refs: tuple, krefs: dict, result: int) -> Any:
        """The steps from ``mark`` on, their operands named relative to the call (its i-th operand,
        the j-th step's result, a constant slot), to be written again by :meth:`replayed`."""
        names: dict[int, Any] = {}
        for i, r in enumerate(refs):
            if r not in self.constants:
                names.setdefault(r, ("in", i))
        for k, r in krefs.items():
            if r not in self.constants:
                names.setdefault(r, ("kin", k))
        steps = []
        for j, (func, hint, args, kwargs, out) in enumerate(self.steps[mark:]):
            if any(r not in names and r not in self.constants for r in _flat_of((args, kwargs))):
                return None     # a slot from outside the call: not the same lines for other operands
            steps.append((func, hint, _renamed(args, names), _renamed(kwargs, names), out is not None))
            if out is not None:
                names[out] = ("new", j)
        if result not in names and result not in self.constants:
            return None
        return tuple(steps), _renamed(result, names), self.notes.get(mark)

    def replayed(self, template: Any, refs: tuple, krefs: dict) -> Any:
        """Write a template's steps for a call with operands ``refs`` and ``krefs``; its result's slot."""
        steps, result, note = template
        outs: list[int | None] = []
        if note is not None and steps:
            self.notes[len(self.steps)] = note

        def absolute(r: Any) -> Any:
            if isinstance(r, tuple) and len(r) == 2 and r[0] in ("in", "kin", "new"):
                return refs[r[1]] if r[0] == "in" else krefs[r[1]] if r[0] == "kin" else outs[r[1]]
            if isinstance(r, _Nested):
                return _Nested(r.kind, {k: absolute(v) for k, v in r.items.items()} if r.kind is dict
                               else [absolute(v) for v in r.items])
            if isinstance(r, tuple):
                return tuple(absolute(i) for i in r)
            if isinstance(r, dict):
                return {k: absolute(v) for k, v in r.items()}
            return r
        for func, hint, args, kwargs, has_out in steps:
            # Most operands are names or constant slots: those are looked up without the recursion.
            args = tuple(r if type(r) is int else absolute(r) for r in args)
            kwargs = {k: r if type(r) is int else absolute(r) for k, r in kwargs.items()} if kwargs else {}
            outs.append(self.step(func, hint, args, kwargs, has_out))
        return absolute(result)

    def drop_notes(self, mark: int) -> None:
        """Forget the notes of steps ``mark`` on (notes are made in the order of their steps)."""
        notes = self.notes
        while notes and next(reversed(notes)) >= mark:
            notes.popitem()

    def share_common_steps(self) -> None:
        """Compute each ufunc call once: a later call of the same ufunc on the same operands (sigmoid's
        rule computes the loss's ``1 - p`` again) reads the earlier result. A ufunc has no state, so the
        two give the same array every run. Not done when a call writes into an operand (``out=``),
        after which the same operands may hold other numbers."""
        if len(self.steps) > _CODE_LIMIT:
            return      # scalar mode: each number is its own slot, so repeats are rare and the pass long
        ufuncs = [isinstance(func, np.ufunc) or func in _INFIX for func, _, _, _, _ in self.steps]
        if ufuncs.count(True) < 2 or any("out" in kwargs for _, _, _, kwargs, _ in self.steps):
            return
        known: dict[Any, int] = {}
        renamed: dict[int, int] = {}
        steps, notes = [], {}
        for k, (func, hint, args, kwargs, out) in enumerate(self.steps):
            args, kwargs = _renamed(args, renamed), _renamed(kwargs, renamed)
            if k in self.notes:
                notes.setdefault(len(steps), self.notes[k])
            key = self.operand_key((func, args, tuple(kwargs.items()))) if (
                ufuncs[k] and hint != "accumulate" and "out" not in kwargs and out is not None) else None
            if key is not None and key in known:
                renamed[out] = known[key]   # type: ignore[index]
                continue
            if key is not None:
                known[key] = out            # type: ignore[assignment]
            steps.append((func, hint, args, kwargs, out))
        self.steps, self.notes = steps, notes
        self.result = _renamed(self.result, renamed)

    def operand_key(self, r: Any) -> Any:
        """Operands as a dict key: a slot by its number, a constant number by its value and type."""
        if isinstance(r, _Nested):
            return None
        if isinstance(r, tuple):
            keys = tuple(self.operand_key(i) for i in r)
            return None if None in keys else keys
        if type(r) is int and r in self.constants:
            c = self.constants[r]
            return ("constant", type(c), c) if type(c) in (bool, int, float) else ("slot", r)
        return ("slot", r) if type(r) is int else r

    def adopt_fresh_gradients(self) -> None:
        """Let a leaf take its gradient without a copy when it is an array nothing else can see: made by
        a ufunc (a new array every run; np.matmul is one), by adding two, or by a sum (``add.reduce``,
        as unbroadcast writes it), for this leaf alone.
        backward() adopts such arrays too; the others are copied, so that editing one ``.grad`` cannot
        change another's."""
        made_by = {out: (func, kwargs) for func, _, _, kwargs, out in self.steps if out is not None}
        stores = [args[1] for func, _, args, _, _ in self.steps if func is _store_leaf]
        seen = collections.Counter(stores) + collections.Counter(_flat_of(self.result))
        for k, (func, _, args, kwargs, out) in enumerate(self.steps):
            if func is not _store_leaf or seen[args[1]] != 1 or args[1] not in made_by:
                continue
            maker, maker_kwargs = made_by[args[1]]
            fresh = isinstance(maker, np.ufunc) or maker in _INFIX or maker is _add_reduce
            if fresh and "out" not in maker_kwargs:
                self.steps[k] = (_adopt_leaf, "_adopt_leaf", args, kwargs, out)

    # ---- as Python source ---------------------------------------------------------------------

    def source(self) -> tuple[str, dict[str, Any]]:
        names: dict[int, str] = {}
        namespace: dict[str, Any] = {}
        functions: dict[int, str] = {}

        def name_of(func: Any, hint: str) -> str:
            if id(func) in functions:
                return functions[id(func)]
            base = "".join(c if c.isalnum() or c == "_" else "_" for c in hint) or "f"
            name, n = base, 1
            while name in namespace:
                n += 1
                name = f"{base}_{n}"
            namespace[name] = func
            functions[id(func)] = name
            return name

        for s, value in self.constants.items():
            if value is None or type(value) in (bool, int, str) or (
                    type(value) is float and np.isfinite(value)):
                names[s] = repr(value)
            else:
                names[s] = f"c{s}"
                namespace[names[s]] = value
        lines = []
        for kind, where, s in self.inputs:
            if kind == "leaf":
                names[s] = f"leaves[{where}]"
            elif kind == "leafdata":
                lines.append(f"t{s} = leaves[{where}]._data")
            else:
                expr = f"kwargs[{where[1]!r}]" if where[0] == "kw" else f"args[{where[0]}]"
                rest = where[2:] if where[0] == "kw" else where[1:]
                expr += "".join("._data" if p == "_data" else f"[{p!r}]" for p in rest)
                if kind == "argobj":
                    names[s] = expr
                else:
                    lines.append(f"t{s} = {expr}")
        def text(r: Any) -> str:
            return _text(r, names)

        for k, (func, hint, args, kwargs, out) in enumerate(self.steps):
            if k in self.notes:
                lines.append(f"# {self.notes[k]}")
            if func in _INFIX and not kwargs and hint != "accumulate":
                symbol = _INFIX[func]
                operands = [text(a) for a in args]
                call = f"{symbol}{operands[0]}" if len(args) == 1 else f" {symbol} ".join(operands)
            else:
                call = name_of(func, hint) + "(" + ", ".join(
                    [text(a) for a in args] + [f"{k}={text(v)}" for k, v in kwargs.items()]) + ")"
            lines.append(call if out is None else f"t{out} = {call}")
        lines.append(f"return {text(self.result)}")
        return "def replay(args, kwargs, leaves):\n" + "".join(f"    {line}\n" for line in lines), namespace

    # ---- as a loop over steps -----------------------------------------------------------------

    def runner(self) -> Callable[..., Any]:
        template: list[Any] = [None] * self.size
        for s, value in self.constants.items():
            template[s] = value
        steps = []
        for func, _, args, kwargs, out in self.steps:
            if all(type(a) is int for a in args) and all(type(v) is int for v in kwargs.values()):
                if kwargs:
                    func = _with_keywords(func, tuple(kwargs), len(args))
                ins = (*args, *kwargs.values())
            else:
                flat: list[int] = []
                shape = _flatten((args, kwargs), flat)
                func, ins = _rebuilding(func, shape), tuple(flat)
            # itemgetter fetches the operands in C; a slice keeps a single one in a sequence too.
            if len(ins) > 1:
                fetch = operator.itemgetter(*ins)
            else:
                fetch = operator.itemgetter(slice(ins[0], ins[0] + 1) if ins else slice(0, 0))
            steps.append((func, fetch, out))
        inputs, result = self.inputs, self.result

        def replay(args: tuple, kwargs: dict, leaves: list[Value]) -> Any:
            env = template.copy()
            for kind, where, s in inputs:
                if kind == "arg" or kind == "argobj":
                    env[s] = _lookup(args, kwargs, where)
                elif kind == "leaf":
                    env[s] = leaves[where]
                else:
                    env[s] = leaves[where]._data
            for func, fetch, out in steps:
                r = func(*fetch(env))
                if out is not None:
                    env[out] = r
            return _rebuild(result, iter([env[i] for i in _flat_of(result)]))
        return replay


def _text(r: Any, names: dict[int, str]) -> str:
    """An operand as source: a slot's variable or literal, or a nesting of them."""
    if isinstance(r, _Nested):
        if r.kind is dict:
            return "{" + ", ".join(f"{k!r}: {_text(v, names)}" for k, v in r.items.items()) + "}"
        inner = ", ".join(_text(i, names) for i in r.items)
        return f"[{inner}]" if r.kind is list else f"({inner}{',' if len(r.items) == 1 else ''})"
    return names.get(r, f"t{r}")


def _renamed(r: Any, renamed: dict[int, Any]) -> Any:
    """Operands ``r`` with the slots in ``renamed`` replaced (by other slots, or by the names of
    _Program.template)."""
    if not renamed:
        return r
    if isinstance(r, _Nested):
        items = ({k: _renamed(v, renamed) for k, v in r.items.items()} if r.kind is dict
                 else [_renamed(v, renamed) for v in r.items])
        return _Nested(r.kind, items)
    if isinstance(r, tuple):
        return tuple(_renamed(i, renamed) for i in r)
    if isinstance(r, dict):
        return {k: _renamed(v, renamed) for k, v in r.items()}
    return renamed.get(r, r) if type(r) is int else r


def _with_keywords(func: Any, keys: tuple[str, ...], n: int) -> Any:
    def call(*values: Any) -> Any:
        return func(*values[:n], **dict(zip(keys, values[n:], strict=True)))
    return call


def _flatten(r: Any, flat: list[int]) -> Any:
    """The nesting of refs ``r``, its slots appended to ``flat`` in order."""
    if isinstance(r, _Nested):
        items = r.items.items() if r.kind is dict else enumerate(r.items)
        return _Nested(r.kind, {k: _flatten(v, flat) for k, v in items} if r.kind is dict
                       else [_flatten(v, flat) for _, v in items])
    if isinstance(r, tuple):            # (args, kwargs) of a step
        return tuple(_flatten(i, flat) for i in r)
    if isinstance(r, dict):
        return {k: _flatten(v, flat) for k, v in r.items()}
    flat.append(r)
    return None


def _flat_of(r: Any) -> list[int]:
    flat: list[int] = []
    _flatten(r, flat)
    return flat


def _rebuild(shape: Any, values: Any) -> Any:
    if shape is None or type(shape) is int:
        return next(values)
    if isinstance(shape, _Nested):
        if shape.kind is dict:
            return {k: _rebuild(v, values) for k, v in shape.items.items()}
        return shape.kind(_rebuild(v, values) for v in shape.items)
    if isinstance(shape, tuple):
        return tuple(_rebuild(i, values) for i in shape)
    return {k: _rebuild(v, values) for k, v in shape.items()}


def _rebuilding(func: Any, shape: Any) -> Any:
    def call(*flat: Any) -> Any:
        args, kwargs = _rebuild(shape, iter(flat))
        return func(*args, **kwargs)
    return call


def _lookup(args: tuple, kwargs: dict, where: tuple) -> Any:
    if where[0] == "kw":
        x, rest = kwargs[where[1]], where[2:]
    else:
        x, rest = args[where[0]], where[1:]
    for p in rest:
        x = x._data if p == "_data" else x[p]
    return x


class _Trace:
    """One recorded program. It holds weak references to the outside Values it reads (parameters), the
    constants it needs, and the program's runner; no array of the traced call."""

    def __init__(self, program: _Program, leaves: list[Value]) -> None:
        self.source, namespace = program.source()
        if len(program.steps) <= _CODE_LIMIT:
            exec(self.source, namespace)      # noqa: S102 - our own generated code, from the trace's steps
            self.run = namespace.pop("replay")
        else:
            self.run = program.runner()
        self.leaves = [weakref.ref(v) for v in leaves]
        self.guards = list(map(_shape_and_dtype, leaves))

    def live_leaves(self) -> list[Value] | None:
        """The outside Values, if all still exist with the traced shapes and dtypes; else None.

        One comparison of lists of (shape, dtype) pairs, read in C by an attrgetter: it runs at every
        call, and a tuple compares its dtypes by identity first."""
        leaves: list[Any] = [ref() for ref in self.leaves]     # None for a leaf gone: caught below
        try:
            same = list(map(_shape_and_dtype, leaves)) == self.guards
        except AttributeError:      # a leaf no longer exists: its reference gave None
            return None
        return leaves if same else None


_shape_and_dtype = operator.attrgetter("_data.shape", "_data.dtype")


def _store_leaf(leaf: Value, g: Any) -> None:
    """What ``backward()`` does to a leaf's gradient: set it (a copy of its own) or add to it."""
    if leaf._grad is None:
        leaf._grad = np.array(g, dtype=leaf._data.dtype)
    elif isinstance(leaf._grad, Value):
        leaf._grad = leaf._grad + g
    else:
        leaf._grad = (leaf._grad + g).astype(leaf._data.dtype, copy=False)


def _adopt_leaf(leaf: Value, g: Any) -> None:
    """_store_leaf for a gradient array that no one else holds: taken as it is when the leaf has none."""
    if leaf._grad is None and getattr(g, "dtype", None) == leaf._data.dtype:
        leaf._grad = g
    else:
        _store_leaf(leaf, g)


def _constant(a: Any) -> Value:
    """What ``fn`` returned, as ``Value(a, requires_grad=False)`` makes it. Made by ``object.__new__`` and
    ``Value.__init__`` without the class call: ``Value.__new__`` is there to stack a list of Values, and
    a replay's result is an array or a number, made once per call."""
    v = _new_value(Value)
    Value.__init__(v, a, False)
    return v


def _trace(fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[_Trace, Any]:
    with _LOCK:
        tracer = _Tracer()
        return tracer.run(fn, args, kwargs)


class _Tracked(np.ndarray):
    """An array the tracer follows through numpy: its ufuncs and numpy functions become lines.

    Handed out during a trace for masks and for data read by the library (``data_of``, comparisons of
    Values, array arguments of ``fn``). ``_slot`` is where the program holds it.
    """

    _slot: int | None = None

    def __array_finalize__(self, obj: Any) -> None:
        self._slot = None      # a view made by a numpy path the tracer did not see: refused if used

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        call = ufunc if method == "__call__" else getattr(ufunc, method)
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}_{method}"
        return _TRACER.numpy_line(call, name, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _TRACER.numpy_line(func, func.__name__, args, kwargs)

    def reshape(self, *shape: Any, **kw: Any) -> Any:
        return _TRACER.numpy_line(np.reshape, "reshape", (self, shape[0] if len(shape) == 1 else shape), kw)

    def astype(self, dtype: Any, **kw: Any) -> Any:
        return _TRACER.numpy_line(_astype, "astype", (self, dtype), kw)

    def copy(self, order: str = "C") -> Any:
        return _TRACER.numpy_line(np.copy, "copy", (self,), {})

    def __getitem__(self, index: Any) -> Any:
        return _TRACER.numpy_line(_getitem, "getitem", (self, index), {})

    def ravel(self, order: str = "C") -> Any:
        return _TRACER.numpy_line(np.ravel, "ravel", (self,), {})

    def flatten(self, order: str = "C") -> Any:
        return _TRACER.numpy_line(np.ravel, "ravel", (self,), {})

    def swapaxes(self, a: int, b: int) -> Any:
        return _TRACER.numpy_line(np.swapaxes, "swapaxes", (self, a, b), {})

    def transpose(self, *axes: Any) -> Any:
        return _TRACER.numpy_line(np.transpose, "transpose", (self, axes or None), {})

    @property
    def T(self) -> Any:  # noqa: N802 - numpy's name
        return _TRACER.numpy_line(np.transpose, "transpose", (self,), {})

    def __bool__(self) -> bool:
        raise _refused("bool() of an array computed from a Value's data (an `if` on it)")

    def item(self, *args: Any) -> Any:
        raise _refused("item() of an array computed from a Value's data")

    def tolist(self) -> Any:
        raise _refused("tolist() of an array computed from a Value's data")

    def __float__(self) -> float:
        raise _refused("float() of an array computed from a Value's data")

    def __int__(self) -> int:
        raise _refused("int() of an array computed from a Value's data")


def _astype(a: Any, dtype: Any, **kw: Any) -> Any:
    return a.astype(dtype, **kw)      # a method of numpy scalars too, which np.ndarray.astype is not


def _getitem(a: Any, index: Any) -> Any:
    return a[index]


def _plain(a: Any) -> Any:
    return a.view(np.ndarray) if isinstance(a, _Tracked) else a


def _refused(what: str) -> TraceError:
    return TraceError(f"{engine._user_site()}: {what} inside a compiled function: the trace would replay "
                      "the branch taken now even when the data changes. Compute it outside the function "
                      "(return the Value and read it after the call), or do not compile this function")


class _NoTracer:
    """Stands for the tracer when none runs: a _Tracked array left over behaves as a plain array."""

    def numpy_line(self, func: Any, name: str, args: Any, kwargs: dict) -> Any:
        return func(*_unwrap(args), **_unwrap(kwargs))


def _unwrap(x: Any) -> Any:
    if isinstance(x, _Tracked):
        return x.view(np.ndarray)
    if isinstance(x, list | tuple):
        return type(x)(_unwrap(i) for i in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


_TRACER: Any = _NoTracer()


class _NumpyProxy:
    """numpy as seen by the library's modules during a trace: ``asarray``/``array`` keep a _Tracked
    array followed (numpy's own would turn it into a plain array the tracer loses)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def asarray(a: Any, dtype: Any = None, **kw: Any) -> Any:
        if isinstance(a, _Tracked):
            return a if dtype is None else a.astype(dtype)
        return np.asarray(a, dtype, **kw)

    @staticmethod
    def array(a: Any, dtype: Any = None, **kw: Any) -> Any:
        if isinstance(a, _Tracked):
            return a.copy() if dtype is None else a.astype(dtype)
        return np.array(a, dtype, **kw)


def _library_modules() -> list[Any]:
    from . import autodiff, functional, losses, nn_functional
    return [functional, nn_functional, losses, autodiff]


class _Tracer:
    """Writes the program while ``fn`` runs eagerly. Switched on by :meth:`run`, which also patches the
    methods of Value that read data into Python (so they raise) or make masks (so they are followed)."""

    def __init__(self) -> None:
        self.program = _Program()
        self.slots: dict[int, int] = {}     # id of a Value or array of the trace -> its slot
        self.alive: list[Any] = []          # keeps those objects alive while tracing, so ids stay theirs
        self.leaves: list[Value] = []       # Values from outside fn, read at every replay
        self.leaf_slots: dict[int, int] = {}   # id of such a Value -> the slot holding the Value itself
        self.inputs: dict[int, int] = {}    # id of a Value argument -> the slot holding the Value itself
        self.start = 0
        self.inlining = False               # inside inline(): arrays made unseen are refused
        self.numbers_only = False           # inside inline() on numbers: operators alone are written
        self.templates: dict[Any, Any] = {}  # call_key -> the steps an inlined call wrote (see inline)
        self.outside: list[int] = []        # steps of numpy calls made outside any op (named once a run)
        self.errstate: dict[str, str] = {}

    # ---- slots ----------------------------------------------------------------------------------

    def name(self, obj: Any, slot: int) -> int:
        self.slots[id(obj)] = slot
        self.alive.append(obj)
        return slot

    def ref(self, x: Any) -> Any:
        """The operand ``x`` in a step: a slot (of a traced value or of a constant), or a nesting of them."""
        if isinstance(x, Value):
            return self.value_slot(x)
        if isinstance(x, _Tracked):
            if x._slot is None:
                raise _refused("an array made from a Value's data by a numpy call the trace cannot follow")
            return x._slot
        slot = self.slots.get(id(x))
        if slot is not None:
            return slot
        if isinstance(x, tuple | list):
            items = [self.ref(i) for i in x]
            if all(i in self.program.constants for i in items):
                return self.program.constant(x)     # constant throughout: one slot
            return _Nested(type(x), items)
        if isinstance(x, dict):
            return _Nested(dict, {k: self.ref(v) for k, v in x.items()})
        if self.inlining and isinstance(x, np.ndarray | np.generic):
            # An array an inlined call made without the tracer seeing it (np.empty filled in place,
            # np.asarray of a followed one): as a constant it could be stale at a replay.
            raise _Escaped
        return self.program.constant(x)

    def value_slot(self, v: Value) -> int:
        slot = self.slots.get(id(v))
        if slot is not None:
            return slot
        data = v._data
        slot = data._slot if isinstance(data, _Tracked) else self.slots.get(id(data))
        if slot is not None:                          # Value(a) of an array the trace follows
            v._data = _plain(data)                    # the engine's ops then see plain arrays
            return self.name(v, slot)
        if v._seq > self.start:                       # made inside fn from constants: a constant
            return self.name(v, self.program.constant(np.array(data)[()] if np.ndim(data) == 0
                                                     else np.array(data)))
        # A Value from outside fn (a parameter): read afresh at every replay.
        k = len(self.leaves)
        self.leaves.append(v)
        self.leaf_slots[id(v)] = self.program.slot()
        self.program.inputs.append(("leaf", k, self.leaf_slots[id(v)]))
        slot = self.program.slot()
        self.program.inputs.append(("leafdata", k, slot))
        return self.name(v, slot)

    def step(self, func: Any, hint: str, args: Any, kwargs: dict, out: bool = True) -> int | None:
        return self.program.step(func, hint, tuple(self.ref(a) for a in args),
                                 {k: self.ref(v) for k, v in kwargs.items()}, out)

    def plain(self, x: Any) -> Any:
        """``x`` with followed arrays as plain ones, which keep their slots: what the engine is given."""
        if isinstance(x, _Tracked):
            p = x.view(np.ndarray)
            if x._slot is not None:
                self.name(p, x._slot)
            return p
        if isinstance(x, list | tuple):
            return type(x)(self.plain(i) for i in x)
        if isinstance(x, dict):
            return {k: self.plain(v) for k, v in x.items()}
        return x

    def follows(self, x: Any) -> bool:
        if isinstance(x, _Tracked):
            return True
        if isinstance(x, Value | np.ndarray | np.generic) and id(x) in self.slots:
            return True
        return isinstance(x, list | tuple) and any(self.follows(i) for i in x)

    def tracked(self, out: Any, slot: int | None) -> _Tracked:
        t = np.asarray(out).view(_Tracked)
        t._slot = slot
        return t

    # ---- the forward pass -------------------------------------------------------------------------

    def numpy_line(self, func: Any, name: str, args: Any, kwargs: dict) -> Any:
        """A numpy call on followed arrays: computed on plain arrays, written as a step, result followed."""
        if self.inlining and np.geterr() != self.errstate:
            raise _Escaped      # a call under its own np.errstate: a line would lose that setting
        out = func(*self.plain(args), **self.plain(kwargs))
        if not isinstance(out, np.ndarray | np.generic):
            if isinstance(out, bool | float):
                raise _refused(f"np.{name} of an array computed from a Value's data, to a Python value")
            return out        # shapes, dtypes, Values (recorded by the hook): nothing more to write
        refs = tuple(self.ref(a) for a in args), {k: self.ref(v) for k, v in kwargs.items()}
        if all(r in self.program.constants for r in _flat_of(refs)):
            return self.tracked(out, self.program.constant(out))  # constants only: computed once, now
        if not self.inlining and self.outside[-1:] != [len(self.program.steps) - 1]:
            self.program.notes[len(self.program.steps)] = "numpy, called on followed data"
        if not self.inlining:
            self.outside.append(len(self.program.steps))
        if func is np.mean and _plain_mean(args, kwargs, out):
            # np.mean is numpy's sum then a division, behind Python-level checks: the two calls give
            # the same numbers for float32 and float64 (float16 is summed in float32: left as it is).
            total = self.program.step(_add_reduce, "sum", refs[0], refs[1])
            n = self.program.constant(np.size(args[0]) // np.size(out))
            return self.tracked(out, self.program.step(operator.truediv, "divide", (total, n), {}))
        if func in _OPERATOR and not kwargs and len(args) == func.nin:
            # numpy's arithmetic as Python's operators: the same ufunc for arrays, and numpy's fast path
            # for numbers (a scalar-mode program is all numbers); the program reads as arithmetic too.
            func = _OPERATOR[func]
        elif self.numbers_only:
            raise _Escaped       # on numbers, any other numpy call is slower than the op's own code
        return self.tracked(out, self.program.step(func, name, *refs))

    def record(self, op: Any, args: Any, params: dict, converted: bool) -> Any:
        """The hook in engine.record: run the op unhooked, then write its step."""
        if not converted and any(isinstance(a, list | tuple) and engine._holds_values(a) for a in args):
            args = tuple(engine._stacked(a) if isinstance(a, list | tuple) and engine._holds_values(a)
                         else a for a in args)       # the stacking writes its own steps
        if not any(isinstance(a, Value) for a in args) and not self.follows((args, tuple(params.values()))):
            engine._tracer = None        # constants only: nothing to write
            try:
                return engine.record(op, args, params, converted)
            finally:
                engine._tracer = self
        for a in args:
            if isinstance(a, Value):
                self.value_slot(a)
        plain = tuple(self.plain(a) for a in args)
        if not converted and any(isinstance(a, Value) for a in plain):
            conv = op._converted(plain)
            for a, c in zip(plain, conv, strict=True):
                if c is not a and isinstance(a, np.ndarray | np.generic) and id(a) in self.slots:
                    # An integer or boolean array argument becomes floats once: a step too.
                    self.name(c, self.step(np.asarray, "asarray", (a, c.dtype), {}))
            plain, converted = conv, True
        params = self.plain(params)
        engine._tracer = None
        try:
            out = engine.record(op, plain, params, converted)
        finally:
            engine._tracer = self
        call_args: Any = (list(plain),) if op.variadic else plain
        slot = self.inline(op.forward, op.name, call_args, params, _plain(out._data) if isinstance(out, Value)
                           else out)
        if isinstance(out, Value):
            self.name(out, slot)
            return out
        return self.tracked(out, slot)                # plain numpy on followed arrays

    def inline(self, func: Any, hint: str, args: tuple, kwargs: dict, result: Any,
               refs: tuple | None = None, krefs: dict | None = None) -> int | None:
        """Write ``func(*args, **kwargs)`` as steps: when ``func`` is one of the library's forwards or
        rules on arrays, the numpy calls it makes, one line each (its masks become lines too, so they are
        recomputed); else, or when the call does something the tracer cannot follow, one step calling
        ``func``. Either way the caller has already computed the eager result (``result``); ``refs``
        and ``krefs`` are the operands' slots, when the caller has them."""
        if refs is None:
            refs = tuple(self.ref(a) for a in args)
        if krefs is None:
            krefs = {k: self.ref(v) for k, v in kwargs.items()}
        if not _inlinable(func):
            return self.program.step(func, hint, refs, krefs)
        constants = self.program.constants
        if all(type(r) is int and r in constants for r in (*refs, *krefs.values())):
            return self.program.constant(result)    # constants only (a seed scaled): computed once, now
        # The same function on operands of the same kinds writes the same lines (control flow on data
        # is refused): a scalar-mode program makes 10^5 such calls, so the lines are written once.
        key = self.call_key(func, args, refs, kwargs, krefs)
        template = self.templates.get(key) if key is not None else None
        if template is not None:
            return self.program.replayed(template, refs, krefs)
        # On numbers alone (scalar mode) a call is inlined only into Python's operators, which beat
        # a call of the op's function; anything else keeps the op's own fast path for numbers.
        numbers_only = not (_has_array(args) or _has_array(tuple(kwargs.values())))
        mark = len(self.program.steps)
        targs = tuple(self.as_tracked(a, r) for a, r in zip(args, refs, strict=True))
        tkwargs = {k: self.as_tracked(v, krefs[k]) for k, v in kwargs.items()}
        # An op that ``func`` calls is inlined in turn (or, if it cannot be, is one step of its own).
        previous = engine._tracer, self.inlining, self.errstate, self.numbers_only
        engine._tracer, self.inlining, self.numbers_only = _Inliner(self), True, numbers_only
        try:
            self.errstate = np.geterr()
            with warnings.catch_warnings():               # the eager call has warned already
                warnings.simplefilter("ignore")
                out = func(*targs, **tkwargs)
            if isinstance(out, _Tracked) and out._slot is not None:
                self.program.drop_notes(mark)           # the ops it called: not named again
                if len(self.program.steps) > mark and not numbers_only:
                    self.program.notes[mark] = hint     # a comment above its lines
                if key is not None:
                    self.templates[key] = self.program.template(mark, refs, krefs, out._slot)
                return out._slot
        except Exception:  # noqa: BLE001, S110 - anything it cannot follow: it stays one step
            pass
        finally:
            engine._tracer, self.inlining, self.errstate, self.numbers_only = previous
        del self.program.steps[mark:]
        self.program.drop_notes(mark)
        if key is not None:
            self.templates[key] = (((func, hint, tuple(("in", i) for i in range(len(refs))),
                                     {k: ("kin", k) for k in krefs}, True),), ("new", 0), None)
        return self.program.step(func, hint, refs, krefs)

    def call_key(self, func: Any, args: tuple, refs: tuple, kwargs: dict, krefs: dict) -> Any:
        """What the lines an inlined call writes depend on: the function, and for each operand its type,
        dtype and shape (and which other operand it is) when the program computes it, or its value when
        it is a constant number.
        None when an operand has no such key (a nesting of them, an array constant)."""
        kinds = []
        first: dict[int, int] = {}      # which operands are the same slot: part of the key too
        for n, (a, r) in enumerate((*zip(args, refs, strict=True), *((kwargs[k], krefs[k]) for k in krefs))):
            if type(r) is not int:
                return None
            if r in self.program.constants:
                c = self.program.constants[r]
                if type(c) not in (bool, int, float, str, type(None)):
                    return None
                kinds.append(("c", type(c), c))
            else:
                d = a._data if isinstance(a, Value) else a
                if not isinstance(d, np.ndarray | np.generic):
                    return None
                kinds.append(("s", type(d), d.dtype, d.shape, first.setdefault(r, n)))
        return (func, tuple(kinds), tuple(krefs))

    def as_tracked(self, a: Any, r: Any) -> Any:
        """An operand of an inlined call, its arrays followed from their slots ``r``."""
        if isinstance(r, _Nested) and r.kind is not dict and isinstance(a, list | tuple):
            return type(a)(self.as_tracked(x, y) for x, y in zip(a, r.items, strict=True))
        if type(r) is int:
            data = a._data if isinstance(a, Value) else a
            if isinstance(data, np.ndarray | np.generic):
                return self.tracked(_plain(data), r)
        return a

    def unbroadcast(self, slot: int, gi: Any, shape: tuple[int, ...]) -> int:
        """engine._unbroadcast as steps: the axes to sum, and whether a reshape follows, are fixed once
        the shapes are."""
        gshape = np.shape(gi)
        extra = len(gshape) - len(shape)
        stretched = tuple(extra + i for i, n in enumerate(shape) if n == 1 and gshape[extra + i] != 1)
        axes = tuple(range(extra)) + stretched
        self.program.notes[len(self.program.steps)] = "unbroadcast"
        if axes:
            slot = self.program.step(_add_reduce, "sum", (slot,), {"axis": self.program.constant(axes)})
        if tuple(n for i, n in enumerate(gshape) if i not in axes) != shape:
            slot = self.program.step(np.reshape, "reshape", (slot, self.program.constant(shape)), {})
        return slot  # type: ignore[return-value]

    # ---- the reverse pass -----------------------------------------------------------------------

    def backprop(self, root: Value, seed: Any, create_graph: bool = False,
                 targets: tuple[Value, ...] | None = None) -> dict[Value, Any]:
        """The hook in engine.backprop: the same pass as the engine's, each rule call run eagerly on plain
        arrays and written as its numpy calls (or as one step calling the rule; see :meth:`inline`)."""
        if create_graph:
            raise _refused("a differentiable backward pass (create_graph=True, or a gradient of a "
                           "gradient)")
        engine._tracer = None
        try:
            return self._backprop(root, seed, targets)
        finally:
            engine._tracer = self

    def _backprop(self, root: Value, seed: Any, targets: tuple[Value, ...] | None) -> dict[Value, Any]:
        relevant = engine._leading_to(targets, engine._reachable(root)) if targets is not None else None
        seed = self.plain(seed)
        self.value_slot(root)
        grads: dict[Value, Any] = {root: seed}
        gslot: dict[Value, int] = {root: self.ref(seed)}
        newest_first = [(-root._seq, root)] if root._op is not None else []
        while newest_first:
            node = heapq.heappop(newest_first)[1]
            if node._seq < self.start:
                raise TraceError(f"compile: a gradient reaches {node!r}, which was computed before the "
                                 "compiled function was called; compute it inside the function, or pass "
                                 "it in detached")
            g, op = grads[node], node._op
            x, y, params = node._x, node._y, node._params
            args = (x,) if y is _NO_INPUT else (x, y) + node._more
            engine._check_unchanged(node, args)     # as backward() refuses: output and every Value input
            inputs = tuple(_plain(a._data) if isinstance(a, Value) else _plain(a) for a in args)
            ans = _plain(node._data)
            refs = (gslot[node], self.slots[id(node)], *(self.ref(a) for a in args))
            param_refs = {k: self.ref(v) for k, v in params.items()}
            for i, arg in enumerate(args):
                if not isinstance(arg, Value) or not arg.requires_grad:
                    continue
                rule = op.vjps[i]
                if rule is None or (relevant is not None and arg not in relevant):
                    continue
                gi = rule(g, ans, *inputs, **params)
                slot = self.inline(rule, f"{op.name}_d{i}", (g, ans, *args), params, gi, refs, param_refs)
                shape = arg._data.shape
                if np.shape(gi) != shape:
                    slot = self.unbroadcast(slot, gi, shape)
                    gi = engine._unbroadcast(gi, shape, node, i)
                previous = grads.get(arg)
                if previous is not None:
                    grads[arg] = previous + gi
                    gslot[arg] = self.program.step(operator.add, "accumulate", (gslot[arg], slot), {})
                else:
                    grads[arg] = gi
                    gslot[arg] = slot
                    if arg._op is not None:
                        heapq.heappush(newest_first, (-arg._seq, arg))
        return {node: self.tracked(g, gslot[node]) for node, g in grads.items()}

    # ---- the run --------------------------------------------------------------------------------

    def run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[_Trace, Any]:
        global _TRACER
        self.start = next(engine._made)
        traced_args = [self.argument(a, (i,)) for i, a in enumerate(args)]
        traced_kwargs = {k: self.argument(v, ("kw", k)) for k, v in kwargs.items()}
        np_state, py_state = np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002
        patches = self.patches()
        _TRACER, engine._tracer = self, self
        try:
            for owner, name, new in patches:
                setattr(owner, name, new)
            result = fn(*traced_args, **traced_kwargs)
            self.check_outside(np_state, py_state)
            self.program.result = self.result_ref(result)
            self.program.share_common_steps()
            self.program.adopt_fresh_gradients()
        finally:
            _TRACER, engine._tracer = _NoTracer(), None
            for owner, name, old in self.originals:
                setattr(owner, name, old)
        trace = _Trace(self.program, self.leaves)
        return trace, _unwrap_result(result)

    def argument(self, a: Any, where: tuple) -> Any:
        """An argument as ``fn`` sees it during the trace, its slot filled from ``where`` at a replay."""
        if isinstance(a, Value):
            self.inputs[id(a)] = self.program.slot()
            self.program.inputs.append(("argobj", where, self.inputs[id(a)]))
            slot = self.program.slot()
            self.program.inputs.append(("arg", (*where, "_data"), slot))
            self.name(a, slot)
            return a
        if isinstance(a, np.ndarray | np.generic):   # a numpy scalar is followed as a 0-d array
            slot = self.program.slot()
            self.program.inputs.append(("arg", where, slot))
            self.name(a, slot)
            return self.tracked(a, slot)
        if isinstance(a, list | tuple):
            return type(a)(self.argument(x, (*where, i)) for i, x in enumerate(a))
        return a        # a number or other constant: part of the trace's key

    def check_outside(self, np_state: Any, py_state: Any) -> None:
        drawn = not np.array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002 - the global one
        if drawn or random.getstate() != py_state:
            raise TraceError("compile: the function drew random numbers from numpy's or Python's global "
                             "generator; a replay would reuse the same draws. Draw them outside and pass "
                             "them in as an argument")
        for leaf in self.leaves:
            if engine._changed_since(leaf, self.start):
                raise TraceError(f"compile: the function changed the data of {leaf!r} in place (an "
                                 "optimizer step?), which a replay would not repeat; call the optimizer "
                                 "after the compiled function, outside it")

    def result_ref(self, x: Any) -> Any:
        if isinstance(x, Value):
            return self.step(_constant, "_constant", (x,), {})
        if isinstance(x, _Tracked | np.ndarray | np.generic | list | tuple | dict):
            return self.ref(x)
        if x is None or isinstance(x, bool | int | float | str):
            return self.ref(x)
        raise TraceError(f"compile: the function returned a {type(x).__name__}; return Values, arrays, "
                         "numbers, or tuples, lists and dicts of them")

    # ---- the patches on Value while tracing -----------------------------------------------------

    def patches(self) -> list[tuple[Any, str, Any]]:
        tracer = self
        self.originals: list[tuple[Any, str, Any]] = []
        patches = []

        def patch(owner: Any, name: str, new: Any) -> None:
            self.originals.append((owner, name, owner.__dict__[name]))
            patches.append((owner, name, new))

        def refuse(what: str) -> Any:
            def method(self: Value, *args: Any, **kwargs: Any) -> Any:
                raise _refused(f"{what} of a Value")
            return method

        for name, what in (("__float__", "float()"), ("__int__", "int()"), ("__bool__", "bool()"),
                           ("item", ".item()"), ("numpy", ".numpy()")):
            patch(Value, name, refuse(what))

        original_array = Value.__dict__["__array__"]

        def array(self: Value, dtype: Any = None, copy: Any = None) -> Any:
            if not _called_from_package():
                raise _refused("np.asarray() of a Value")
            return original_array(self, dtype, copy)
        patch(Value, "__array__", array)

        def data(self: Value) -> Any:
            if not _called_from_package():
                raise _refused("reading .data of a Value")
            return tracer.followed(self)
        patch(Value, "data", property(data, Value.__dict__["data"].fset))

        grad_property = Value.__dict__["grad"]

        def grad(self: Value) -> Any:
            if not _called_from_package():
                raise _refused("reading .grad of a Value")
            return grad_property.fget(self)
        patch(Value, "grad", property(grad, grad_property.fset))

        def compare(ufunc: Any) -> Any:
            def method(self: Value, other: Any) -> Any:
                return tracer.numpy_line(ufunc, ufunc.__name__, (tracer.followed(self),
                                                                 tracer.followed(other)), {})
            return method
        for name, ufunc in (("__lt__", np.less), ("__le__", np.less_equal), ("__gt__", np.greater),
                            ("__ge__", np.greater_equal), ("__eq__", np.equal), ("__ne__", np.not_equal)):
            patch(Value, name, compare(ufunc))

        original_detach = Value.__dict__["detach"]

        def detach(self: Value) -> Value:
            out = original_detach(self)
            tracer.name(out, tracer.value_slot(self))
            return out
        patch(Value, "detach", detach)

        def zero_grad(self: Value) -> None:
            self._grad = None
            obj = tracer.object_slot(self)
            if obj is not None:
                tracer.program.step(_zero_grad, "_zero_grad", (obj,), {}, out=False)
        patch(Value, "zero_grad", zero_grad)

        original_backward = Value.__dict__["backward"]

        def backward(self: Value, gradient: Any = None, create_graph: bool = False) -> None:
            if not self.requires_grad:
                return original_backward(self, gradient, create_graph)   # raises the engine's error
            seed = engine._seed(self, gradient)
            if isinstance(seed, Value):
                seed = seed._data
            grads = tracer.backprop(self, seed, create_graph)
            for node, g in grads.items():
                if node._op is None:
                    tracer.store(node, g)
                else:
                    node._grad = _plain(g)
            return None
        patch(Value, "backward", backward)

        for module in _library_modules():
            patch(module, "np", _NumpyProxy())
            if "data_of" in module.__dict__:
                patch(module, "data_of", self.followed)
        return patches

    def followed(self, x: Any) -> Any:
        """A Value's data (or an array argument) as an array the tracer follows; anything else as it is."""
        if isinstance(x, Value):
            slot, data = self.value_slot(x), x._data
        elif isinstance(x, np.ndarray | np.generic) and id(x) in self.slots:
            slot, data = self.slots[id(x)], x
        else:
            return x
        return data if isinstance(data, _Tracked) else self.tracked(data, slot)

    def object_slot(self, v: Value) -> int | None:
        """The slot holding the Value ``v`` itself at a replay (an argument or an outside Value), or None
        for a Value made inside fn, which no replay makes."""
        if id(v) in self.inputs:
            return self.inputs[id(v)]
        if v._seq < self.start:
            self.value_slot(v)
            return self.leaf_slots[id(v)]
        return None

    def store(self, leaf: Value, g: Any) -> None:
        """A leaf's gradient written as backward() writes it, now and at every replay."""
        _store_leaf(leaf, _plain(g))
        obj = self.object_slot(leaf)
        if obj is not None:
            self.program.step(_store_leaf, "_store_leaf", (obj, g._slot), {}, out=False)


def _plain_mean(args: Any, kwargs: dict, out: Any) -> bool:
    """Whether a call np.mean(x, axis=..., keepdims=...) may be written as a sum and a division."""
    return (len(args) == 1 and isinstance(args[0], _Tracked) and args[0].dtype in (np.float32, np.float64)
            and args[0].size > 0 and set(kwargs) <= {"axis", "keepdims"})


_add_reduce = np.add.reduce   # one object, so the program names it once

_OPERATOR = {np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
             np.true_divide: operator.truediv, np.matmul: operator.matmul, np.negative: operator.neg,
             np.greater: operator.gt, np.greater_equal: operator.ge, np.less: operator.lt,
             np.less_equal: operator.le, np.equal: operator.eq, np.not_equal: operator.ne}
_INFIX = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
          operator.matmul: "@", operator.neg: "-", operator.gt: ">", operator.ge: ">=", operator.lt: "<",
          operator.le: "<=", operator.eq: "==", operator.ne: "!="}


class _Inliner:
    """Stands for the tracer in engine.record while a call is inlined: an op that the call makes on
    followed arrays is inlined too, or written as one step when it cannot be."""

    def __init__(self, tracer: _Tracer) -> None:
        self.tracer = tracer

    def record(self, op: Any, args: Any, params: dict, converted: bool) -> Any:
        if engine._holds_values(args):
            raise _Escaped      # a Value inside a rule: a differentiable pass, which is refused
        tracer = self.tracer
        call_args = (list(args),) if op.variadic else tuple(args)
        out = op.forward(*tracer.plain(call_args), **tracer.plain(params))
        slot = tracer.inline(op.forward, op.name, call_args, params, out)
        return tracer.tracked(out, slot)

    def backprop(self, *args: Any) -> Any:
        raise _Escaped


class _Escaped(Exception):  # noqa: N818 - a signal inside the tracer, never raised to the user
    """An inlined call did something the tracer cannot write as lines; it is kept as one step."""


_INLINED_MODULES = frozenset({"microgradx.ops", "microgradx.linalg"})


def _inlinable(func: Any) -> bool:
    """Whether ``func`` is the library's own forward or rule, whose numpy calls may be written as lines
    (a user's op may reach numpy in ways the tracer cannot see, so it stays one step)."""
    while isinstance(func, functools.partial):
        func = func.func
    return getattr(func, "__module__", None) in _INLINED_MODULES


def _has_array(x: tuple | list) -> bool:
    """Whether an array with at least one dimension is among the operands ``x``. A call on numbers alone
    stays one step: the ops' fast paths for numpy scalars beat a line per ufunc."""
    for a in x:
        if isinstance(a, Value):
            a = a._data
        if isinstance(a, np.ndarray):
            if a.ndim:
                return True
        elif isinstance(a, list | tuple) and _has_array(a):
            return True
    return False


def _zero_grad(v: Value) -> None:
    v._grad = None


def _called_from_package() -> bool:
    """Whether the code reading a Value's data is the library's own (two frames up: past the property)."""
    return sys._getframe(2).f_code.co_filename.startswith(_PACKAGE)


def _unwrap_result(x: Any) -> Any:
    if isinstance(x, _Tracked):
        return x.view(np.ndarray) if x.ndim else x.view(np.ndarray)[()]
    if isinstance(x, list | tuple):
        return type(x)(_unwrap_result(i) for i in x)
    if isinstance(x, dict):
        return {k: _unwrap_result(v) for k, v in x.items()}
    if isinstance(x, Value) and isinstance(x._data, _Tracked):
        x._data = _unwrap_result(x._data)
    return x
