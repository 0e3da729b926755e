"""Every op's derivative against finite differences, first and second order, on random shapes."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import microgradx as mg
from microgradx import functional, linalg, nn_functional, ops
from microgradx.testing import gradcheck, gradgradcheck

from op_cases import CASES


def test_every_op_has_a_case():
    covered = {case.name for case in CASES} | {name for case in CASES for name in case.covers}
    # nn.functional's own functions (not the losses it re-exports) go by "nn.<name>".
    nn_ops = {f"nn.{name}" for name in nn_functional.__all__
              if getattr(nn_functional, name).__module__ == nn_functional.__name__}
    # mg.linalg's primitives are in PRIMITIVES; its composites go by "linalg.<name>".
    linalg_ops = {f"linalg.{name}" for name in linalg.__all__ if name not in ops.PRIMITIVES}
    # argmax, any... return integers or booleans: nothing to differentiate (tested in test_numpy_ops.py).
    every = set(ops.PRIMITIVES) | set(functional.__all__) | nn_ops | linalg_ops
    missing = every - covered - set(functional.NO_GRADIENT)
    assert not missing, f"ops without a property-test case in tests/op_cases.py: {sorted(missing)}"


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data())
def test_derivative_matches_finite_differences(case, data):
    f, inputs = case.draw(data)
    gradcheck(f, *inputs, name=case.name)


@pytest.mark.parametrize("case", CASES, ids=str)
@settings(max_examples=10)
@given(data=st.data())
def test_second_derivative_matches_finite_differences(case, data):
    f, inputs = case.draw(data)
    gradgradcheck(f, *inputs, name=case.name)


@pytest.mark.parametrize("case", CASES, ids=str)
@settings(max_examples=5)
@given(data=st.data())
def test_float32_stays_float32(case, data):
    f, inputs = case.draw(data)
    values = [mg.Value(np.asarray(x, dtype=np.float32)) for x in inputs]
    out = f(*values)
    assert out.dtype == np.float32, f"{case.name} turned float32 into {out.dtype}"
    (out * 1.0).sum().backward()
    for v in values:
        assert v.grad.dtype == np.float32
        assert v.grad.shape == v.shape


@pytest.mark.parametrize("case", CASES, ids=str)
@settings(max_examples=5)
@given(data=st.data())
def test_forward_matches_plain_numpy(case, data):
    # The same function on plain arrays takes the no-graph path: both must agree exactly.
    f, inputs = case.draw(data)
    with_values = f(*[mg.Value(x) for x in inputs])
    with_constants = f(*[mg.Value(x, requires_grad=False) for x in inputs])
    np.testing.assert_array_equal(with_values.data, with_constants.data)
    assert not with_constants.requires_grad
