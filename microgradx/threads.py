"""How many threads numpy's BLAS uses for microgradx's training and evaluation.

numpy hands every ``@`` to a BLAS library (OpenBLAS in numpy's wheels), which by default starts one thread
per core. For the chapter's matrices (a batch of 256 images against 784x30 weights) splitting one product
across threads costs more in starting and joining them than it saves, and when another program keeps a
core busy the threads wait for each other: the two-layer net's epoch then takes several times as long.
So the training loop, :func:`~microgradx.train.evaluate` and the learning-rate finder choose the count
from the size of their largest matrix product: one thread below :data:`MULTITHREAD_WORK` multiply-adds,
the library's own count above it. ``benchmarks/run.py --only threads`` measures the difference.

The choice is made with threadpoolctl (a library made for exactly this), for the duration of the call
only; no environment variable is set, and code of yours outside those calls keeps whatever BLAS
threads it had. The automatic choice never raises the count above the current one, so a limit you set
yourself (``OPENBLAS_NUM_THREADS=1``, threadpoolctl) is kept. To override the choice: :func:`set_num_threads`,
the :func:`num_threads` context manager, or ``--threads N`` on the command line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .errors import ArgumentError

__all__ = ["MULTITHREAD_WORK", "get_num_threads", "num_threads", "set_num_threads"]

# Multiply-adds in one matrix product from which the library's own thread count is used. On a shared
# 2-core machine, single products of 10^7 to 5*10^8 multiply-adds were as often slower as faster on two
# threads, and a whole epoch of the chapter's MLP (products up to 4.8*10^7) ran 2-7x faster on one
# (docs/benchmarks.md, "Threads"); at 1000x1000x1000 (10^9) two threads began to win.
MULTITHREAD_WORK = 10**9

_setting: int | None = None       # None: chosen by the size of the work
_controller: Any = None


def set_num_threads(n: int | None) -> None:
    """Use ``n`` BLAS threads in microgradx's training and evaluation; ``None`` restores the automatic
    choice (one thread for small matrix products, the library's default for large ones).

    Raises:
        ArgumentError: ``n`` is not a positive integer or None.
    """
    global _setting
    _setting = _checked(n)


def get_num_threads() -> int | None:
    """The count set by :func:`set_num_threads`, or ``None`` when it is chosen automatically."""
    return _setting


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """For the ``with`` block: ``n`` BLAS threads in microgradx's training and evaluation, and a BLAS
    limit of ``n`` threads for any other numpy code in the block (``None``: the automatic choice, and no
    limit on other code). The previous setting comes back at the end of the block.

    >>> from microgradx.threads import get_num_threads, num_threads
    >>> with num_threads(1):
    ...     get_num_threads()
    1
    >>> print(get_num_threads())
    None
    """
    global _setting
    previous, _setting = _setting, _checked(n)
    try:
        if n is None:
            yield
        else:
            with _blas().limit(limits=n, user_api="blas"):
                yield
    finally:
        _setting = previous


@contextlib.contextmanager
def threads_for(work: int) -> Iterator[None]:
    """For the block: the BLAS threads suited to matrix products of ``work`` multiply-adds each (the
    block's largest), or the count the user set."""
    n = _setting
    if n is None:
        if work >= MULTITHREAD_WORK:
            yield              # large products: the library's own count
            return
        n = 1
    with _blas().limit(limits=n, user_api="blas"):
        yield


def _checked(n: int | None) -> int | None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ArgumentError(f"the number of threads must be a positive integer or None, got {n!r}")
    return n


def _blas() -> Any:
    # Found once: finding the BLAS scans the loaded libraries, far dearer than setting a limit through it.
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller
