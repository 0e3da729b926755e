"""The exceptions microgradx raises.

Every error the library raises on purpose is a :class:`MicrogradxError`, so ``except MicrogradxError``
catches all of them. Each one also subclasses the built-in exception a Python user would expect
(``ShapeError`` is a ``ValueError``, ``DTypeError`` a ``TypeError``), so existing handlers keep working.
"""

from __future__ import annotations


class MicrogradxError(Exception):
    """Base class of every exception microgradx raises on purpose."""


class ShapeError(MicrogradxError, ValueError):
    """Operands whose shapes do not fit the op (``@`` with mismatched inner sizes, bad broadcasting)."""


class DTypeError(MicrogradxError, TypeError):
    """An input that is not a real number or array of real numbers (strings, objects, complex)."""


class AxisError(MicrogradxError, ValueError, IndexError):
    """An ``axis`` argument outside the array's dimensions, or an index out of range."""


class ArgumentError(MicrogradxError, ValueError, TypeError):
    """An argument a function does not accept: a learning rate that is not positive, a batch size of 0,
    an unknown model or format name, a single Value where a list of them is expected.

    Both a ``ValueError`` and a ``TypeError``, so handlers written for either kind keep working.
    """


class GradientError(MicrogradxError, RuntimeError):
    """``backward()`` or ``grad()`` asked for something that has no answer (a non-scalar without a seed)."""


class AnomalyError(MicrogradxError, FloatingPointError):
    """Under :func:`microgradx.detect_anomaly`, an op produced a NaN or an infinity."""


class DataError(MicrogradxError, ValueError):
    """A data file or folder that is missing, truncated, corrupt, or holds something unexpected."""


class CheckpointError(MicrogradxError, ValueError):
    """A weights or checkpoint file that cannot be read, or that belongs to another model."""


class TrainingDivergedError(MicrogradxError, FloatingPointError):
    """The loss or the weights stopped being finite numbers: almost always a learning rate too large."""
