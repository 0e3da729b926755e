"""Timing, memory and reporting for the benchmark suite.

How a workload is measured (:func:`measure`):

* Each implementation is called once to warm up (imports, lazy initialisation, first allocations) and
  once more to find how many calls make a sample of at least ``min_time`` seconds.
* Then ``repeat`` rounds. In each round every implementation takes one sample, in an order rotated by
  one place per round, so that slow and fast moments of a shared machine fall on all of them alike.
  The garbage collector stays on (micrograd's reference cycles are part of its cost) but a full
  collection runs, untimed, before each sample, so nobody pays for the previous sample's garbage;
  objects that predate the rounds (the peers' modules) are frozen out of the collector's sight.
* The median is over rounds; the ratio to the reference is the median of the per-round ratios, each
  taken between samples of the same round.

Peak memory is measured after the timing, in two more calls per implementation, one for each measure
(PyTorch gets only the second):

* ``tracemalloc``: the peak of Python and numpy allocations made during the call (numpy reports its
  array buffers to tracemalloc). It does not see PyTorch's allocator, so it is left blank for torch.
* RSS: the process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs) minus
  the resident set before the call, after returning freed heap memory to the system (malloc_trim).
  Coarser (whole pages, whatever the allocators keep), but the same measure for every implementation.
"""

from __future__ import annotations

import ctypes
import gc
import math
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Case:
    """One implementation of a workload, ready to time."""

    name: str
    fn: Callable[[], Any] | None      # one call = ``per`` units of work; None: skipped (see ``note``)
    per: int = 1
    note: str = ""
    memory: bool = False              # measure peak memory too
    traced: bool = True               # tracemalloc sees its allocations (False for PyTorch)
    warmup: bool = True               # False for calls so long that one untimed call would only cost time


@dataclass
class Row:
    """What the table prints for one implementation of one workload."""

    workload: str
    impl: str
    unit: str                         # what one unit is: "epoch", "step", "op", "node"
    times: list[float] = field(default_factory=list)   # seconds per unit, one per round
    ratios: list[float] = field(default_factory=list)  # per-round ratio to the reference
    is_reference: bool = False
    peak_traced: int | None = None
    peak_rss: int | None = None
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def spread(self) -> float | None:
        """Interquartile range of the samples, relative to the median."""
        if len(self.times) < 4:
            return None
        q1, _, q3 = statistics.quantiles(self.times, n=4)
        return (q3 - q1) / statistics.median(self.times)


def measure(workload: str, unit: str, cases: list[Case], reference: str, repeat: int,
            min_time: float) -> list[Row]:
    """Time ``cases`` interleaved; ratios are to the case named ``reference``."""
    rows = {c.name: Row(workload, c.name, unit, note=c.note, is_reference=c.name == reference)
            for c in cases}
    calls: dict[str, int] = {}
    for c in cases:
        if c.fn is None:
            continue
        try:
            if not c.warmup:
                calls[c.name] = 1
                continue
            c.fn()  # warm-up: PyTorch's first backward() alone takes most of a second
            calls[c.name] = max(1, math.ceil(min_time / _timed(c.fn, 1)))
        except Exception as e:  # e.g. micrograd's RecursionError: report it, time the others
            rows[c.name].note = _join(rows[c.name].note, _failure(e))
    live = [c for c in cases if c.name in calls]
    # Objects alive now (imported modules: PyTorch's are many) are set aside for the collector, so that a
    # full collection costs whoever triggers it only the garbage made since, and the untimed collection
    # before each sample is quick.
    gc.collect()
    gc.freeze()
    try:
        for r in range(repeat):
            k = r % len(live) if live else 0
            for c in live[k:] + live[:k]:
                if c.name not in calls:
                    continue
                gc.collect()
                try:
                    rows[c.name].times.append(_timed(c.fn, calls[c.name]) / calls[c.name] / c.per)
                except Exception as e:
                    rows[c.name].note = _join(rows[c.name].note, _failure(e))
                    rows[c.name].times = []
                    del calls[c.name]
    finally:
        gc.unfreeze()
    live = [c for c in live if c.name in calls]
    ref = rows.get(reference)
    if ref is not None and ref.times:
        for row in rows.values():
            if row.times:
                row.ratios = [t / t_ref for t, t_ref in zip(row.times, ref.times, strict=True)]
    for c in live:
        if c.memory:
            rows[c.name].peak_traced = peak_traced(c.fn) if c.traced else None
            rows[c.name].peak_rss = peak_rss(c.fn)
    return list(rows.values())


def paired_ratio(a: Row, b: Row) -> float | None:
    """Median over rounds of a's time / b's time, both measured in the same round."""
    if not a.times or not b.times:
        return None
    return statistics.median(x / y for x, y in zip(a.times, b.times, strict=True))


def _timed(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - start


def _failure(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "RecursionError: deeper than Python's recursion limit"
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text[:60]}"


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# --------------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------------

def peak_traced(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (and not yet freed) through Python's and numpy's allocators during fn()."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def peak_rss(fn: Callable[[], Any]) -> int | None:
    """Growth of the resident set's high-water mark during fn(); None where Linux's /proc is missing."""
    gc.collect()
    _malloc_trim()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
        before = _proc_status("VmRSS")
    except OSError:
        return None
    fn()
    return _proc_status("VmHWM") - before


def _proc_status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{key} not in /proc/self/status")


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the RSS figure is coarser, nothing more
        pass


# --------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------

def fmt_time(seconds: float | None, unit: str = "") -> str:
    """Three significant figures in s, ms, us or ns, then "/unit"."""
    if seconds is None:
        return "-"
    scale, name = next(((s, n) for s, n in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")) if seconds >= s),
                       (1e-9, "ns"))
    value = seconds / scale
    digits = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{digits}f} {name}" + (f"/{unit}" if unit else "")


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n / 2**20:.1f} MiB"


COLUMNS = ["workload", "implementation", "median", "ratio", "spread", "peak (tracemalloc)",
           "peak RSS growth", "note"]


def table_cells(rows: list[Row]) -> list[list[str]]:
    cells = []
    for row in rows:
        if row.ratio is None:
            ratio = "-"
        else:
            ratio = f"{row.ratio:.2f}x" + (" (ref)" if row.is_reference else "")
        spread = "-" if row.spread is None else f"{100 * row.spread:.0f}%"
        cells.append([row.workload, row.impl, fmt_time(row.median, row.unit), ratio, spread,
                      fmt_bytes(row.peak_traced), fmt_bytes(row.peak_rss), row.note])
    return cells


def render(header: list[str], cells: list[list[str]], markdown: bool, group: bool = False) -> str:
    """A text table (a blank line between groups of rows with the same first cell) or a Markdown one."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    previous = None
    for row in cells:
        if group and previous is not None and row[0] != previous:
            out.append("")
        previous = row[0]
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(out)
