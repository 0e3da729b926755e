"""Ordinary user code touching every operator and method of Value: `mypy --strict` must find no error here.

tests/test_typing.py runs the type checker on this file, and checks that every public name of Value's
class body appears in it, so a new method is type-checked as soon as it is added.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import microgradx as mg


def every_operator(x: mg.Value, y: mg.Value) -> mg.Value:
    a: mg.Value = x + y + 1 + 2.0
    b: mg.Value = 1 - x - y - np.float64(2.0)
    c: mg.Value = 2 * x * y * 0.5
    d: mg.Value = 1.0 / (x / y)
    e: mg.Value = x ** 2 + 2 ** y + x ** y
    m: mg.Value = mg.Value(np.ones((2, 3))) @ mg.Value(np.ones(3))
    n: mg.Value = np.ones((2, 3)) @ mg.Value(np.ones(3))   # numpy hands the op to the Value
    f: mg.Value = -x + (+y) + abs(x)
    g: mg.Value = m[0] + m[0:1].sum() + n[np.array([0, 1])].sum()
    mask: np.ndarray = (x < y) | (x <= y) | (x > y) | (x >= y) | (x == y) | (x != y)
    return a + b + c + d + e + f + g + x * mask


def every_method(v: mg.Value) -> float:
    t = v.exp() + v.log() + v.sqrt() + v.abs() + v.tanh() + v.sigmoid() + v.relu() + v.softplus()
    t = t + v.clip(0.0, 1.0) + v.astype(np.float64) + v.float()
    r = t.sum() + t.mean() + t.var() + t.max() + t.min() + t.logsumexp()
    r = r + t.sum(axis=0) .sum() + t.mean(axis=(0,), keepdims=True).sum()
    r = r + t.softmax().sum() + t.log_softmax(axis=-1).sum()
    r = r + t.std(ddof=1) + t.var(axis=0, ddof=1).sum() + t.prod() + t.cumsum().sum()
    r = r + t.cumprod(axis=0).sum()
    r = r + t.round(2).sum() + t.dot(t).trace() + t.diagonal().sum() + t.ravel().sum()
    r = r + t.swapaxes(0, 1).sum() + t.repeat(2, axis=0).sum() + t.take(np.array([0, 1])).sum()
    picks: np.ndarray = t.argmax(axis=0) + t.argmin() + t.argsort(axis=0).sum() + t.any() + t.all()
    r = r + float(picks.sum())
    s = t.reshape(-1).sum() + t.reshape(2, 2).sum() + t.view(4).sum() + t.transpose().sum()
    s = s + t.T.sum() + t.flatten().sum() + t.squeeze().sum() + t.unsqueeze(0).sum()
    total = r + s
    total += 1.0
    total -= 1.0
    total *= 1.0
    total /= 1.0
    total.backward()
    grad: np.ndarray = v.grad
    v.grad = None
    v.zero_grad()
    w = v.detach().requires_grad_(True)
    parts = [p.item() for p in w.flatten()]
    info = (v.shape, v.ndim, v.size, v.dtype, v.op, v.parents, v.is_leaf, v.label, v.requires_grad,
            v.data, v.numpy(), len(v), repr(v))
    return float(total) + int(total) + bool(total) + sum(parts) + len(info) + grad.size


def every_draw(v: mg.Value) -> object:
    return v.draw(show_grad=False)


@mg.primitive(lambda g, ans, x: g * mg.cos(x), symbol="sin")
def my_sin(x: np.ndarray) -> Any:
    """sin(x);  d/dx = g * cos(x)"""
    return np.sin(x)


def a_user_op(v: mg.Value) -> mg.Value:
    out: mg.Value = my_sin(v) * 2
    return out


x = mg.Value(np.full((2, 2), 0.5))
print(every_method(x), every_operator(mg.Value(1.5), mg.Value(2.5)), a_user_op(x))
