"""Optimizers: turn the gradients in ``p.grad`` into updates of ``p.data``, in place.

Usage, as in PyTorch::

    opt = SGD(model.parameters(), lr=0.1)
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()

Updates are made on the parameters' own arrays with numpy in-place operators and Python-float
hyperparameters, so a float32 model stays float32 and no step allocates a new parameter array.
``state_dict()`` / ``load_state_dict()`` save and restore everything a step depends on (hyperparameters,
the step count, momentum and moment buffers), so a resumed run takes exactly the steps an uninterrupted
one would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .engine import Value, _stamp_changed, data_of
from .errors import ArgumentError

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer:
    """Base class: holds the parameters, their per-parameter buffers ("slots") and the step count.

    Subclasses pass their hyperparameters to ``__init__``, say in :meth:`_slot_names` which buffers those
    settings need, and implement :meth:`_update`. Every slot is an array shaped like its parameter,
    created as zeros up front so the state has the same structure before and after the first step.
    """

    def __init__(self, params: Iterable[Value], **hyper: float) -> None:
        self.params = _unique_params(params, type(self).__name__)
        self.hyper = hyper
        self.steps = 0
        self.slots: dict[str, list[np.ndarray]] = {
            name: [np.zeros_like(np.asarray(p.data)) for p in self.params]
            for name in self._slot_names(**hyper)
        }

    def zero_grad(self) -> None:
        """Forget every parameter's accumulated gradient."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Update every parameter from its current ``.grad``.

        A parameter that has received no gradient since the last ``zero_grad()`` (a frozen one, with
        ``requires_grad=False``, or one the loss did not use) is left alone, buffers included: as in
        PyTorch, weight decay and momentum do not move it.
        """
        self.steps += 1
        for i, p in enumerate(self.params):
            # The update works on the parameter's own array (``p._data``), not through the ``data`` and
            # ``grad`` properties: it is the same in-place change, stamped as one (see below).
            data, g = p._data, p._grad
            if g is None:
                continue
            if type(g) is not np.ndarray or g.dtype != data.dtype:     # a Value, a number, another dtype
                g = np.asarray(data_of(g), dtype=data.dtype)
            if isinstance(data, np.ndarray):
                self._update(i, data, g)
                _stamp_changed(p)   # an in-place change: graphs recorded from the old data refuse backward()
            else:
                # A 0-d parameter holds a numpy scalar, which is immutable: update a 0-d copy and put it back.
                data = np.array(data)
                self._update(i, data, g)
                p.data = data[()]

    def _update(self, i: int, data: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    # ---- saving and restoring ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """All a step depends on: ``{"name", "hyper", "steps", "slots": {slot: [arrays]}}`` (copies)."""
        return {
            "name": type(self).__name__,
            "hyper": dict(self.hyper),
            "steps": self.steps,
            "slots": {name: [a.copy() for a in arrays] for name, arrays in self.slots.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` of the same optimizer type over the same shapes.

        Raises:
            ValueError: the state is from another optimizer, or its buffers do not fit the parameters.
        """
        name = type(self).__name__
        if state.get("name") != name:
            raise ArgumentError(f"optimizer state is for {state.get('name')!r}, not {name}")
        hyper = dict(state.get("hyper", {}))
        if set(hyper) != set(self.hyper):
            raise ArgumentError(f"{name} state has hyperparameters {sorted(hyper)}, "
                             f"expected {sorted(self.hyper)}")
        slots = state.get("slots", {})
        if set(slots) != set(self.slots):
            raise ArgumentError(f"{name} state has buffers {sorted(slots)}, expected {sorted(self.slots)} "
                             "(was it saved with other settings, such as momentum?)")
        for slot, arrays in slots.items():
            if len(arrays) != len(self.params):
                raise ArgumentError(f"{name} state has {len(arrays)} {slot} buffers for {len(self.params)} "
                                 "parameters")
            for j, (a, p) in enumerate(zip(arrays, self.params, strict=True)):
                if np.shape(a) != p.shape:
                    raise ArgumentError(f"{name} {slot} buffer {j} has shape {np.shape(a)}, "
                                        f"expected {p.shape}")
        steps = state.get("steps")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ArgumentError(f"{name} state has step count {steps!r}, expected a non-negative integer")
        # Re-run the constructor's checks on the saved hyperparameters before taking any of them.
        type(self)._validate(**hyper)
        expected = self._slot_names(**hyper)
        if set(slots) != set(expected):
            raise ArgumentError(f"{name} state has buffers {sorted(slots)} but its settings {hyper} need "
                             f"{sorted(expected)}")
        self.hyper = {k: float(v) for k, v in hyper.items()}
        self.steps = steps
        dtypes = [np.asarray(p.data).dtype for p in self.params]
        self.slots = {
            slot: [np.array(a, dtype=dt) for a, dt in zip(arrays, dtypes, strict=True)]
            for slot, arrays in slots.items()
        }

    @staticmethod
    def _validate(**hyper: Any) -> None:
        pass

    @staticmethod
    def _slot_names(**hyper: Any) -> tuple[str, ...]:
        """The per-parameter buffers a step with these settings reads and writes."""
        return ()

    @property
    def lr(self) -> float:
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        _check_positive("lr", value)
        self.hyper["lr"] = float(value)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum and L2 weight decay (PyTorch's formulas).

    With ``g = grad + weight_decay * p``: plain SGD steps ``p -= lr * g``; with momentum ``mu`` a buffer
    ``b = mu * b + g`` (starting from 0) and ``p -= lr * b``.
    """

    def __init__(self, params: Iterable[Value], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        self._validate(lr=lr, momentum=momentum, weight_decay=weight_decay)
        super().__init__(params, lr=float(lr), momentum=float(momentum), weight_decay=float(weight_decay))

    @staticmethod
    def _validate(lr: Any = None, momentum: Any = 0.0, weight_decay: Any = 0.0, **_: Any) -> None:
        _check_positive("lr", lr)
        _check_range("momentum", momentum, 0.0, 1.0, inclusive_high=False)
        _check_non_negative("weight_decay", weight_decay)

    @staticmethod
    def _slot_names(momentum: Any = 0.0, **_: Any) -> tuple[str, ...]:
        return ("momentum",) if momentum else ()    # plain SGD keeps no state

    def _update(self, i: int, data: np.ndarray, grad: np.ndarray) -> None:
        lr, mu, wd = self.hyper["lr"], self.hyper["momentum"], self.hyper["weight_decay"]
        if wd:
            grad = grad + wd * data
        if mu:
            buf = self.slots["momentum"][i]
            buf *= mu
            buf += grad
            grad = buf
        data -= lr * grad


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with bias correction; ``weight_decay`` adds ``wd * p`` to the gradient
    (L2, as PyTorch's ``Adam``, not the decoupled ``AdamW``).

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``, and
    ``p -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``, where ``t`` counts the optimizer's
    steps. (PyTorch counts steps per parameter; the two differ only for a parameter that was skipped on
    some steps for want of a gradient.)
    """

    def __init__(self, params: Iterable[Value], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ArgumentError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        hyper = dict(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay)
        self._validate(**hyper)
        super().__init__(params, **{k: float(v) for k, v in hyper.items()})

    @staticmethod
    def _validate(lr: Any = None, beta1: Any = 0.9, beta2: Any = 0.999, eps: Any = 1e-8,
                  weight_decay: Any = 0.0, **_: Any) -> None:
        _check_positive("lr", lr)
        _check_range("betas[0]", beta1, 0.0, 1.0, inclusive_high=False)
        _check_range("betas[1]", beta2, 0.0, 1.0, inclusive_high=False)
        _check_positive("eps", eps)
        _check_non_negative("weight_decay", weight_decay)

    @staticmethod
    def _slot_names(**hyper: Any) -> tuple[str, ...]:
        return ("m", "v")

    def _update(self, i: int, data: np.ndarray, grad: np.ndarray) -> None:
        h = self.hyper
        b1, b2, t = h["beta1"], h["beta2"], self.steps
        if h["weight_decay"]:
            grad = grad + h["weight_decay"] * data
        m, v = self.slots["m"][i], self.slots["v"][i]
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * (grad * grad)
        # Bias corrections folded into the step size (Python floats, so float32 stays float32).
        step = h["lr"] / (1 - b1**t)
        denom = np.sqrt(v) / math.sqrt(1 - b2**t)
        denom += h["eps"]
        data -= step * (m / denom)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

def _unique_params(params: Iterable[Value], who: str) -> list[Value]:
    if isinstance(params, Value):
        raise ArgumentError(f"{who}: params must be an iterable of Values (e.g. model.parameters()), "
                        "got a single Value; wrap it in a list")
    out: list[Value] = []
    seen: set[int] = set()
    for p in params:
        if not isinstance(p, Value):
            raise ArgumentError(f"{who}: every parameter must be a Value, got {type(p).__name__}")
        if not p.is_leaf:
            raise ArgumentError(f"{who}: parameter {p!r} was made by an op; optimise leaves only")
        if np.asarray(p.data).dtype.kind != "f":
            raise ArgumentError(f"{who}: parameter {p!r} holds {p.dtype} data; expected floats")
        if id(p) not in seen:      # by identity: == on Values compares elementwise
            seen.add(id(p))
            out.append(p)
    if not out:
        raise ArgumentError(f"{who}: got an empty parameter list")
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _check_positive(name: str, x: Any) -> None:
    if not _is_number(x) or not math.isfinite(x) or x <= 0:
        raise ArgumentError(f"{name} must be a positive finite number, got {x!r}")


def _check_non_negative(name: str, x: Any) -> None:
    if not _is_number(x) or not math.isfinite(x) or x < 0:
        raise ArgumentError(f"{name} must be a non-negative finite number, got {x!r}")


def _check_range(name: str, x: Any, lo: float, hi: float, inclusive_high: bool) -> None:
    ok = _is_number(x) and lo <= x and (x <= hi if inclusive_high else x < hi)
    if not ok:
        bracket = "]" if inclusive_high else ")"
        raise ArgumentError(f"{name} must be in [{lo}, {hi}{bracket}, got {x!r}")
