"""The derivative checks we offer users: they must catch wrong rules and stay quiet on right ones."""

from __future__ import annotations

import numpy as np
import pytest

from microgradx.engine import data_of
from microgradx.ops import Primitive
from microgradx.testing import GradcheckError, gradcheck, gradgradcheck, numerical_gradient

X = np.array([0.5, 1.0, 2.0])


def _cube(rule):
    """x**3 with the given derivative rule; made directly, not registered among the library's ops."""
    def cube(x):
        return x**3
    return Primitive(cube, (rule,), expects="")


def test_gradcheck_catches_a_wrong_first_derivative():
    off_by_a_bit = _cube(lambda g, ans, x: g * 3.01 * x**2)
    with pytest.raises(GradcheckError, match=r"input #0 \(shape \(3,\)\) disagrees"):
        gradcheck(off_by_a_bit, X)
    assert gradcheck(_cube(lambda g, ans, x: g * 3 * x**2), X)


def test_gradgradcheck_catches_a_rule_that_only_works_on_plain_arrays():
    # The first derivative is right, but computed with numpy on raw data, it records no graph: the
    # second derivative comes out as zero. docs/defining-an-op.md promises this check catches it.
    numpy_only = _cube(lambda g, ans, x: g * 3 * data_of(x) ** 2)
    assert gradcheck(numpy_only, X)
    with pytest.raises(GradcheckError, match="gradient of cube"):
        gradgradcheck(numpy_only, X)
    assert gradgradcheck(_cube(lambda g, ans, x: g * 3 * x**2), X)
    assert gradgradcheck(lambda v: v * 3 + 1, X)      # a truly constant first derivative passes


def test_transposed_and_fortran_ordered_inputs_give_no_false_alarm():
    a = np.array([[0.3, -1.2, 2.0], [0.5, 0.1, -0.7]])
    assert gradcheck(lambda v: v**2, a.T)
    assert gradcheck(lambda v: v**2, np.asfortranarray(a))
    fortran = np.asfortranarray([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(numerical_gradient(lambda m: (m**2).sum(), [fortran], 0), 2 * fortran)


@pytest.mark.parametrize("x", [np.array([1, 2]), np.array([1.0, 2.0], np.float32)], ids=["int", "float32"])
def test_numerical_gradient_works_in_float64_whatever_the_input(x):
    # float32 cannot hold x + 1e-6 apart from x, and integers cannot hold it at all.
    grad = numerical_gradient(lambda v: (v**2).sum(), [x], 0)
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, [2.0, 4.0], rtol=1e-6)
    np.testing.assert_array_equal(x, [1, 2])          # the caller's array is left as it was
