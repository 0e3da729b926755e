"""``mg.linalg``: numpy.linalg's differentiable core: inv, det, slogdet, solve, cholesky, norm.

The primitives here are entries of the same op table as ``ops.py`` (``ops.PRIMITIVES``), written the
same way: a numpy forward and one rule per input, the rules made of differentiable ops so that higher
derivatives work. Every function takes stacks of matrices (``(..., n, n)``), as numpy does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ops
from .engine import data_of
from .errors import ArgumentError, ShapeError
from .ops import composite, primitive, swapaxes

__all__ = ["inv", "det", "slogdet", "logabsdet", "solve", "cholesky", "norm"]

SQUARE = "stacks of square matrices, shape (..., n, n), that are not singular"


def _columns(x: Any) -> Any:
    """A stack of numbers as a stack of 1x1 matrices, to scale matrices with."""
    return ops.reshape(x, shape=np.shape(data_of(x)) + (1, 1))


@primitive(lambda g, ans, a: -(swapaxes(ans) @ g @ swapaxes(ans)), expects=SQUARE, numpy=np.linalg.inv)
def inv(a):
    """the inverse matrix;  d/da = -inv(a).T @ g @ inv(a).T"""
    return np.linalg.inv(a)


@primitive(lambda g, ans, a: _columns(g * ans) * swapaxes(inv(a)), expects=SQUARE, numpy=np.linalg.det)
def det(a):
    """the determinant;  d/da = g * det(a) * inv(a).T"""
    return np.linalg.det(a)


@primitive(lambda g, ans, a: _columns(g) * swapaxes(inv(a)), expects=SQUARE)
def logabsdet(a):
    """log |det(a)|;  d/da = g * inv(a).T"""
    return np.linalg.slogdet(a)[1]


@composite(np.linalg.slogdet)
def slogdet(a: Any) -> tuple[np.ndarray, Any]:
    """``np.linalg.slogdet``: ``(sign, log |det|)``, the sign (+-1, or 0 when singular) as a numpy array.

    The sign is piecewise constant, so it takes no gradient; ``log |det|`` is ``logabsdet(a)``.
    """
    return np.linalg.slogdet(data_of(a))[0], logabsdet(a)


def _solve_vjp_a(g, ans, a, b):
    gb = _solve_vjp_b(g, ans, a, b)
    if np.ndim(b) == 1:                                 # a vector right-hand side: an outer product
        return -ops.expand_dims(gb, -1) * ops.expand_dims(ans, -2)
    return -(gb @ swapaxes(ans))


def _solve_vjp_b(g, ans, a, b):
    return solve(swapaxes(a), g)


@primitive(_solve_vjp_a, _solve_vjp_b,
           expects="a of shape (..., n, n), not singular, and b of shape (n,) or (..., n, k)",
           numpy=np.linalg.solve)
def solve(a, b):
    """x with a @ x = b;  d/db = solve(a.T, g),  d/da = -solve(a.T, g) @ x.T"""
    return np.linalg.solve(a, b)


def _cholesky_vjp(g, ans, a):
    # With a = L L^T: phi(L^T g), the lower triangle with its diagonal halved, carried back through L on
    # both sides, then symmetrized (a is symmetric, so only its symmetric part has a derivative; this is
    # the convention of PyTorch and JAX, and what a perturbation of a symmetric a sees).
    n = np.shape(ans)[-1]
    lower = np.tri(n, dtype=bool)
    half = np.where(np.eye(n, dtype=bool), 0.5, 1.0)
    phi = ops.where(lower, swapaxes(ans) @ g, 0.0) * half
    l_inv = inv(ans)
    s = swapaxes(l_inv) @ phi @ l_inv
    return 0.5 * (s + swapaxes(s))


@primitive(_cholesky_vjp, expects="stacks of symmetric positive-definite matrices, shape (..., n, n)",
           numpy=np.linalg.cholesky)
def cholesky(a):
    """lower-triangular L, L @ L.T = a;  d/da = sym(inv(L).T @ phi(L.T @ g) @ inv(L)), phi: tril, diag/2"""
    return np.linalg.cholesky(a)


@composite(np.linalg.norm)
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A002
    """``np.linalg.norm`` for vector norms (any ``ord``) and the Frobenius norm of matrices.

    Matrix norms other than ``"fro"``, 1 and inf (2 and ``"nuc"`` need singular values) are refused.
    The derivative of a norm does not exist where it is 0 (the 2-norm of a zero vector gives NaN).
    """
    shape = np.shape(data_of(x))
    if axis is None:
        matrix = len(shape) == 2 and ord is not None
        axis = tuple(range(len(shape)))
        if ord is not None and len(shape) > 2:
            raise ShapeError(f"norm: ord={ord!r} needs a 1-d or 2-d input or an axis, got shape {shape}")
    else:
        matrix = isinstance(axis, tuple) and len(axis) == 2
    if matrix:
        if ord == "fro" or ord is None:
            return ops.sqrt(ops.sum(x * x, axis=axis, keepdims=keepdims))
        if ord in (1, -1, np.inf, -np.inf):
            # 1: the largest column sum of |x|; inf: the largest row sum (the smallest for -1, -inf).
            rows, cols = axis
            summed, over = (rows, cols) if ord in (1, -1) else (cols, rows)
            sums = ops.sum(ops.abs(x), axis=summed, keepdims=True)
            pick = ops.max if ord > 0 else ops.min
            out = pick(sums, axis=over, keepdims=True)
            return out if keepdims else ops.reshape(out, shape=tuple(
                n for i, n in enumerate(shape) if i not in ops._normalize_axes(axis, len(shape))))
        raise ArgumentError(f"norm: matrix ord={ord!r} is not supported (only 'fro', 1, -1, inf, -inf)")
    if ord is None or ord == 2:
        return ops.sqrt(ops.sum(x * x, axis=axis, keepdims=keepdims))
    if ord == np.inf:
        return ops.max(ops.abs(x), axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return ops.min(ops.abs(x), axis=axis, keepdims=keepdims)
    if ord == 1:
        return ops.sum(ops.abs(x), axis=axis, keepdims=keepdims)
    if isinstance(ord, str) or ord == 0:
        raise ArgumentError(f"norm: vector ord={ord!r} is not supported (0 counts elements: no derivative)")
    return ops.sum(ops.abs(x) ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)
