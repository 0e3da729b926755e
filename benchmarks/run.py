"""microgradx's benchmark suite: one command, one table, ratios measured side by side in one run.

    python benchmarks/run.py [--quick] [--only NAME ...] [--repeat N] [--markdown] [--profile]

Workloads (``--only`` takes these names): linear, mlp, moons, ops, chain, threads, lenet, transforms. See
workloads.py for what each one computes and harness.py for how it is timed. Peers (PyTorch, HIPS autograd,
micrograd) are used when installed and skipped with a note when not; this script installs nothing.
``--quick`` finishes in about a minute; the full run in several.
``--profile`` runs cProfile over microgradx's side of the selected workloads instead of timing them.
"""

from __future__ import annotations

import os

# One thread for every library (numpy's BLAS, PyTorch's intra-op pool), unless you set these yourself.
# On a small shared machine the idle worker threads of one library spin and take the cores another one
# needs, which made interleaved timings swing by 2-10x; and the per-call overheads compared here are
# single-threaded anyway. Must happen before numpy (or torch) is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import threads  # noqa: E402
import workloads as w  # noqa: E402
from harness import Case, Row  # noqa: E402

NAMES = ["linear", "mlp", "moons", "ops", "chain", "threads", "lenet", "transforms"]
BATCH = 256
LR = {"linear": 1.0, "mlp": 0.1, "moons": 0.1}
TINY, LARGE = (8,), (1000, 1000)
HVP_WORKLOAD = f"6 hvp, MLP {'-'.join(map(str, w.HVP_SIZES))}, batch {w.HVP_BATCH}"


@dataclass
class Settings:
    mnist: int          # rounds per workload
    moons: int
    tiny: int
    large: int
    chain: int
    long_chain: int     # rounds of the 1,000,000-op chain
    transforms: int     # rounds of each function-transform workload
    min_time: float     # seconds per sample, at least
    chains: tuple[int, ...]
    thorough: bool      # peak memory of the large ops and the chain; untimed warm-up of the 100,000 chain


QUICK = Settings(mnist=5, moons=3, tiny=5, large=3, chain=2, long_chain=0, transforms=3, min_time=0.02,
                 chains=(100_000,), thorough=False)
FULL = Settings(mnist=15, moons=7, tiny=15, large=5, chain=5, long_chain=2, transforms=9, min_time=0.1,
                chains=(100_000, 1_000_000), thorough=True)


# --------------------------------------------------------------------------------------------------
# The workloads
# --------------------------------------------------------------------------------------------------

def _absent(name: str, module: str) -> Case:
    return Case(name, None, note=f"skipped: {module} not installed")


def _peer_absent(cls: type, peers: dict[type, str]) -> Case | None:
    """The row saying why ``cls`` is not timed, if the library it runs (named in ``peers``) is missing."""
    peer = peers.get(cls)
    return _absent(cls.name, peer) if peer and not w.have(peer) else None


def bench_mnist(model: str, s: Settings, data: tuple[np.ndarray, np.ndarray, str]) -> list[Row]:
    x, y, _ = data
    params0 = w.mnist_init(model)
    cases = []
    for cls in w.MNIST_TRAINERS:
        if absent := _peer_absent(cls, w.TRAINER_PEER):
            cases.append(absent)
            continue
        try:
            trainer = cls(model, params0)
        except ImportError as e:  # microgradx.nn or optim not there yet
            cases.append(Case(cls.name, None, note=f"skipped: {e}"))
            continue
        run = w.epoch(trainer, params0, w.batches(x, y, BATCH, seed=0), LR[model])
        cases.append(Case(cls.name, run, memory=True, traced=cls is not w.TorchTrainer))
    xb, yb = x[:BATCH], y[:BATCH]
    cases.append(Case("microgradx compiled: the trace alone", lambda: w.CompiledTrainer(model, params0).step(
        xb, yb, LR[model]), note="one batch traced (runs eagerly, written down); the row above replays"))
    loader = w.batches(x, y, BATCH, seed=0)
    cases.append(Case("shuffled batches alone", lambda: sum(1 for _ in loader()), memory=True,
                      note="the data loader's share of every row above"))
    label = "1 linear" if model == "linear" else "2 mlp 784-30-1"
    return harness.measure(f"{label} epoch", "epoch", cases, "numpy floor", s.mnist, s.min_time)


def bench_moons(s: Settings) -> list[Row]:
    X, y = w.two_moons(100, noise=0.1, seed=0)
    params0 = w.moons_init(seed=0)
    cases = []
    for cls in w.MOONS_VERSIONS:
        if absent := _peer_absent(cls, w.MOONS_PEER):
            cases.append(absent)
            continue
        version = cls(params0, X, y)
        cases.append(Case(cls.name, lambda v=version: v.step(LR["moons"])))
    cases.append(Case("microgradx scalar compiled: the trace alone", lambda: w.MoonsMicrogradxScalarCompiled(
        params0, X, y).step(LR["moons"]), note="the model built and one step traced; the row above replays"))
    return harness.measure("3 moons step", "step", cases, "numpy floor", s.moons, s.min_time)


def bench_ops(s: Settings) -> list[Row]:
    rows = []
    for shape, rounds in ((TINY, s.tiny), (LARGE, s.large)):
        size = "x".join(map(str, shape)) if len(shape) > 1 else f"({shape[0]},)"
        per_op = []
        for op in w.OPS:
            inputs, g = w.op_inputs(op, shape)
            cases = []
            for name, (make, peer) in w.OP_VERSIONS.items():
                if peer and not w.have(peer):
                    cases.append(_absent(name, peer))
                    continue
                cases.append(Case(name, make(op, inputs, g), memory=s.thorough and shape == LARGE,
                                  traced=name != "PyTorch eager"))
            per_op.append(harness.measure(f"4 op {size} {op}", "op", cases, "numpy floor", rounds,
                                          s.min_time))
        rows += [r for op_rows in per_op for r in op_rows]
        rows += _geomean_rows(f"4 op {size} geomean", per_op)
    return rows


def _geomean_rows(workload: str, per_op: list[list[Row]]) -> list[Row]:
    """One row per implementation: geometric means over the ops of the medians and of the ratios."""
    out = []
    for k, first in enumerate(per_op[0]):
        rows = [op_rows[k] for op_rows in per_op]
        if any(r.median is None for r in rows):
            continue
        out.append(Row(workload, first.impl, "op", times=[_geomean(r.median for r in rows)],
                       ratios=[_geomean(r.ratio for r in rows)], is_reference=first.is_reference,
                       note=f"over {len(rows)} ops"))
    return out


def _geomean(values: Any) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def bench_chain(s: Settings) -> list[Row]:
    rows = []
    for n in s.chains:
        long = n > 100_000
        cases = []
        for name, (fn, peer) in w.CHAIN_VERSIONS.items():
            if peer and not w.have(peer):
                cases.append(_absent(name, peer))
                continue
            # A long chain takes seconds per call: no untimed warm-up call (beyond the full run's
            # 100,000-op one), no memory run for the 1,000,000-op one.
            full = s.thorough and not long
            cases.append(Case(name, lambda f=fn, n=n: f(n), per=n, memory=full,
                              traced=name != "PyTorch eager", warmup=full))
        rows += harness.measure(f"5 chain {n:,} ops", "node", cases, "Python floats (hand tape)",
                                s.long_chain if long else s.chain, s.min_time)
    # micrograd's recursive topological sort stops near Python's recursion limit: show it where it works.
    n = 500
    cases = [Case(name, lambda f=fn: f(n), per=n) for name, (fn, peer) in w.CHAIN_VERSIONS.items()
             if not peer or w.have(peer)]
    rows += harness.measure(f"5 chain {n} ops", "node", cases, "Python floats (hand tape)", s.chain,
                            s.min_time)
    return rows


def bench_threads(s: Settings, data: Path | None) -> list[Row]:
    folder = data or w.SHARED_DATA / "mnist_3_7_idx"
    return threads.bench(folder if folder.is_dir() else None, s.mnist, s.min_time)


def bench_lenet(s: Settings, data: tuple[np.ndarray, np.ndarray, str]) -> list[Row]:
    xb, yb = w.lenet_batch(*data[:2])
    params0 = w.lenet_init()
    cases = []
    for cls in (w.LenetMicrogradx, w.LenetTorch):
        if cls is w.LenetTorch and not w.have("torch"):
            cases.append(_absent(cls.name, "torch"))
            continue
        impl = cls(params0, xb, yb)
        cases.append(Case(cls.name, impl.loss_and_grads, memory=True, traced=cls is not w.LenetTorch))
    return harness.measure(LENET, "batch", cases, "PyTorch eager", s.mnist, s.min_time)


LENET = f"6 lenet forward+backward, batch {w.LENET_BATCH}"


def bench_transforms(s: Settings) -> list[Row]:
    def cases(versions: dict[str, tuple[Any, str | None]], slow: tuple[str, ...] = ()) -> list[Case]:
        out = []
        for name, (make, peer) in versions.items():
            if peer and not w.have(peer):
                out.append(_absent(name, peer))
                continue
            # A call of seconds (building a 1000 x 1000 Jacobian row by row) gets no untimed warm-up.
            out.append(Case(name, make(), traced=not name.startswith("PyTorch"), warmup=name not in slow))
        return out

    rows = harness.measure(HVP_WORKLOAD, "call", cases(w.HVP_VERSIONS), "microgradx gradient", s.transforms,
                           s.min_time)
    rows += harness.measure("6 jacobian 100 -> 100", "call", cases(w.JACOBIAN_VERSIONS), "numpy floor",
                            s.transforms, s.min_time)
    for outputs, label in (("many", "1000 -> 1000"), ("one", "1000 -> 1")):
        slow = ("microgradx jacobian @ t",) if outputs == "many" else ()
        rows += harness.measure(f"6 jvp {label}", "call", cases(w.jvp_versions(outputs), slow), "numpy floor",
                                s.transforms, s.min_time)
    return rows


# --------------------------------------------------------------------------------------------------
# Targets (from issues 2, 3, 7 and 17; figures measured when they were filed, in brackets)
# --------------------------------------------------------------------------------------------------

def targets(rows: list[Row]) -> list[list[str]]:
    def find(workload: str, impl: str) -> Row | None:
        return next((r for r in rows if r.workload == workload and r.impl == impl), None)

    def speedup(workload: str, slow: str, fast: str) -> float | None:
        a, b = find(workload, slow), find(workload, fast)
        return harness.paired_ratio(a, b) if a and b else None

    out = []

    def add(what: str, value: float | None, goal: str, ok: bool | None, issue: str) -> None:
        if value is not None:
            met = "-" if ok is None else "yes" if ok else "NO"
            out.append([what, f"{value:.2f}x", goal, met, issue])

    r = speedup("1 linear epoch", "microgradx", "numpy floor")
    add("linear epoch: microgradx time / numpy floor time", r, "<= 1.3x", r is not None and r <= 1.3,
        "floor 5.0 ms, PyTorch 11 ms, HIPS 19 ms")
    for model, label in (("linear", "1 linear"), ("mlp", "2 mlp 784-30-1")):
        r = speedup(f"{label} epoch", "microgradx compiled", "numpy floor")
        add(f"{model} epoch: microgradx compiled time / numpy floor time", r, "<= 1.1x",
            r is not None and r <= 1.1, "issue 13: mg.compile")
    r = speedup("3 moons step", "micrograd", "microgradx scalar compiled")
    add("moons step: micrograd time / microgradx scalar compiled time", r, ">= 10x",
        r is not None and r >= 10, "issue 13: mg.compile")
    r = speedup("3 moons step", "micrograd", "microgradx scalar")
    add("moons step: micrograd time / microgradx scalar time", r, ">= 3.5x", r is not None and r >= 3.5,
        "issue 12: median of 5 processes")
    r = speedup("3 moons step", "PyTorch eager", "microgradx tensor")
    add("moons step: PyTorch time / microgradx tensor time", r, "> 1x", r is not None and r > 1,
        "PyTorch 330 us, floor 59 us")
    tiny = [op for op in w.OPS if find(f"4 op (8,) {op}", "PyTorch eager")]
    ratios = [speedup(f"4 op (8,) {op}", "PyTorch eager", "microgradx") for op in tiny]
    if tiny and all(q is not None for q in ratios):
        r = _geomean(ratios)
        add("tiny ops: PyTorch time / microgradx time (geomean)", r, "> 1x", r > 1,
            "floor 0.84 us, PyTorch 4.9 us, HIPS 8.2 us")
    for condition in ("quiet", "one busy process beside"):
        r = speedup(f"6 threads: mlp epoch, {condition}", threads.CHOSEN, threads.PINNED)
        add(f"mlp epoch, {condition}: default environment / pinned to 1 thread", r, "<= 1.1x",
            r is not None and r <= 1.1, "issue 16: 1.0x quiet, 2.7x busy")
    for n in (100_000, 1_000_000):
        r = speedup(f"5 chain {n:,} ops", "PyTorch eager", "microgradx")
        add(f"chain {n:,}: PyTorch time / microgradx time per node", r, ">= 1x", r is not None and r >= 1,
            "PyTorch about 6 us/op")
    r = speedup(LENET, "microgradx", "PyTorch eager")
    add("lenet batch: microgradx time / PyTorch time", r, "<= 3x", r is not None and r <= 3, "issue 14")
    r = speedup(HVP_WORKLOAD, "microgradx hvp", "microgradx gradient")
    add("hvp, 10,000-weight MLP: hvp time / gradient time", r, "<= 4x", r is not None and r <= 4, "issue 17")
    r = speedup("6 jacobian 100 -> 100", "microgradx jacobian", "PyTorch torch.func.jacrev")
    add("jacobian 100 -> 100: microgradx time / torch.func.jacrev time", r, "compared", None, "issue 17")
    for label in ("1000 -> 1000", "1000 -> 1"):
        r = speedup(f"6 jvp {label}", "microgradx jacobian @ t", "microgradx jvp (double vjp)")
        add(f"jvp {label}: via jacobian time / double-vjp time", r, "compared", None, "issue 17")
    return out


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------

def machine_lines(data_note: str | None, s: Settings) -> list[str]:
    cpu = "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or cpu
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    blas = "?"
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{info['name']} {info.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        pass
    versions = w.peer_versions()
    peers = []
    for module, label in w.PEERS.items():
        v = versions[module]
        if v is None:
            peers.append(f"{label} not installed (skipped)")
        elif module == "torch":
            peers.append(f"{label} {v} ({w._torch().get_num_threads()} threads)")
        else:
            peers.append(f"{label} {v}")
    lines = [
        f"machine: {cpu}, {os.cpu_count()} cores ({usable} usable), {platform.system()} {platform.release()}",
        f"python {platform.python_version()}, numpy {np.__version__} ({blas}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}), "
        f"microgradx {w.mg.__version__} {_git_state()}",
        "peers: " + ", ".join(peers),
        f"rounds: mnist {s.mnist}, moons {s.moons}, ops {s.tiny} tiny / {s.large} large, chain {s.chain}"
        + (f" (1,000,000: {s.long_chain})" if len(s.chains) > 1 else "") + f", transforms {s.transforms}; "
        f"samples of at least {s.min_time * 1000:.0f} ms; median over rounds; ratio = median of the "
        "per-round ratios to the row marked (ref)",
    ]
    if data_note:
        lines.append(f"data: {data_note}; batch {BATCH}, float32, shuffled")
    return lines


def _git_state() -> str:
    try:
        head = subprocess.run(["git", "-C", str(w.REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(w.REPO), "status", "--porcelain", "--", "microgradx"],
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return ""
    changed = [line[3:] for line in dirty if line.strip()]
    if not changed:
        return f"(commit {head})"
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return f"(commit {head}; uncommitted changes in {', '.join(changed[:3])}{more})"


def print_report(rows: list[Row], header: list[str], markdown: bool) -> None:
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    if markdown:
        print(f"Command: `{command}`\n")
        print("\n".join(f"- {line}" for line in header))
    else:
        print(f"command: {command}")
        print("\n".join(header))
    print()
    print(harness.render(harness.COLUMNS, harness.table_cells(rows), markdown, group=True))
    goals = targets(rows)
    if goals:
        print()
        print(harness.render(["target", "measured", "goal", "met", "issue's figures"], goals, markdown))
    print()
    notes = [
        "peak (tracemalloc): Python and numpy allocations during one call; blind to PyTorch's allocator.",
        "peak RSS growth: resident-set high-water mark during one call minus the resident set before it.",
        "spread: interquartile range of the rounds / median.",
    ]
    print("\n".join(f"- {n}" if markdown else n for n in notes))


# --------------------------------------------------------------------------------------------------
# Profiling
# --------------------------------------------------------------------------------------------------

def profile(selected: list[str], data: tuple[np.ndarray, np.ndarray, str] | None, top: int) -> None:
    """cProfile microgradx's side of each selected workload; print the functions that cost most."""
    jobs = []
    for model in ("linear", "mlp"):
        if model in selected and data is not None:
            x, y, _ = data
            params0 = w.mnist_init(model)
            run = w.epoch(w.MicrogradxTrainer(model, params0), params0, w.batches(x, y, BATCH, 0), LR[model])
            jobs.append((f"{model}: 20 epochs", lambda r=run: [r() for _ in range(20)]))
    if "moons" in selected:
        X, y = w.two_moons(100, 0.1, 0)
        scalar = w.MoonsMicrogradxScalar(w.moons_init(0), X, y)
        tensor = w.MoonsMicrogradxTensor(w.moons_init(0), X, y)
        jobs.append(("moons scalar mode: 5 steps", lambda: [scalar.step(LR["moons"]) for _ in range(5)]))
        jobs.append(("moons tensor mode: 2000 steps",
                     lambda: [tensor.step(LR["moons"]) for _ in range(2000)]))
    if "ops" in selected:
        runs = [w.op_microgradx(op, *w.op_inputs(op, TINY)) for op in w.OPS]
        jobs.append(("tiny ops: 10,000 of each", lambda: [r() for r in runs for _ in range(10_000)]))
    if "chain" in selected:
        jobs.append(("chain: 100,000 ops", lambda: w.chain_microgradx(100_000)))
    for title, job in jobs:
        job()  # warm up outside the profile
        prof = cProfile.Profile()
        prof.runcall(job)
        print(f"\n==== {title} ====")
        stats = pstats.Stats(prof, stream=sys.stdout)
        stats.strip_dirs().sort_stats("tottime").print_stats(top)


# --------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds, no 1,000,000-op chain, memory of the MNIST epochs only (~1 min)")
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME",
                        help=f"run only these workloads: {', '.join(NAMES)}")
    parser.add_argument("--repeat", type=int, metavar="N", help="rounds per workload (overrides the mode)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables (for the docs)")
    parser.add_argument("--data", type=Path, help="MNIST 3/7 folder (default: ../shared/data/mnist_3_7_idx)")
    parser.add_argument("--profile", action="store_true", help="profile microgradx's side instead of timing")
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")

    s = QUICK if args.quick else FULL
    if args.repeat:
        r = args.repeat
        s = replace(s, mnist=r, moons=r, tiny=r, large=r, chain=r, long_chain=r, transforms=r)
    selected = args.only or NAMES
    data = w.mnist_train(args.data) if {"linear", "mlp", "lenet"} & set(selected) else None

    if args.profile:
        profile(selected, data, top=25)
        return 0

    header = machine_lines(data[2] if data else None, s)
    print("\n".join(header) if not args.markdown else "running...", file=sys.stderr)
    rows: list[Row] = []
    start = time.perf_counter()
    for name in selected:
        print(f"  {name} ... (at {time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
        if name in ("linear", "mlp"):
            rows += bench_mnist(name, s, data)
        elif name == "threads":
            rows += bench_threads(s, args.data)
        elif name == "moons":
            rows += bench_moons(s)
        elif name == "ops":
            rows += bench_ops(s)
        elif name == "lenet":
            rows += bench_lenet(s, data)
        elif name == "transforms":
            rows += bench_transforms(s)
        else:
            rows += bench_chain(s)
    print_report(rows, header, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
