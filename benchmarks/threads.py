"""The ``threads`` workload: the command line's MLP epoch in numpy's default environment.

``run.py`` pins one BLAS thread for everything it times (see the top of run.py), so this workload runs in
a child process started without those variables, as a user's shell would start ``microgradx train``:

    python benchmarks/threads.py DATA ROUNDS MIN_TIME      # prints the rows as JSON on stdout

Three ways to run the same epoch (``Trainer.train_epoch`` of ``microgradx train --model mlp``), each
interleaved with the second: microgradx's own choice of threads, everything pinned to one thread (what
``OPENBLAS_NUM_THREADS=1`` gives), and every core for BLAS (numpy's default, what the command line did
before it chose).
:func:`bench` runs the child twice: on a quiet machine, and beside one busy process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINNED_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
CHOSEN, PINNED, ALL_CORES = "microgradx (threads chosen)", "pinned to 1 thread", "all cores for BLAS"


def bench(data: Path | None, rounds: int, min_time: float) -> list:
    import harness

    rows = []
    for condition in ("quiet", "one busy process beside"):
        busy = None
        if condition != "quiet":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            env = {k: v for k, v in os.environ.items() if k not in PINNED_VARS}
            args = [sys.executable, str(HERE / "threads.py"), str(data or ""), str(rounds), str(min_time)]
            done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        if done.returncode != 0:
            rows.append(harness.Row(f"6 threads: mlp epoch, {condition}", CHOSEN, "epoch",
                                    note=f"failed: {done.stderr.strip().splitlines()[-1:]}"))
            continue
        for fields in json.loads(done.stdout):
            fields["workload"] = f"6 threads: mlp epoch, {condition}"
            rows.append(harness.Row(**fields))
    return rows


def child(data: str, rounds: int, min_time: float) -> None:
    import harness
    import workloads
    from threadpoolctl import threadpool_limits

    from microgradx.data import load_mnist_3_7
    from microgradx.threads import num_threads
    from microgradx.train import TrainConfig, Trainer, prepare

    dataset = prepare(load_mnist_3_7(data or None))
    # Many epochs' budget: every timed call trains one more epoch, each the same amount of work.
    trainers = {name: Trainer(TrainConfig.for_model("mlp", epochs=10**6), dataset)
                for name in (CHOSEN, PINNED, ALL_CORES)}

    def pinned() -> None:
        with threadpool_limits(1, user_api="blas"):
            trainers[PINNED].train_epoch()

    def all_cores() -> None:
        with num_threads(os.cpu_count() or 1):
            trainers[ALL_CORES].train_epoch()

    # Two runs, each against the pinned epoch: the idle BLAS threads of an all-cores epoch go on spinning
    # for a while after it, and would slow whichever sample came next.
    chosen = harness.Case(CHOSEN, trainers[CHOSEN].train_epoch, note="the default")
    rows = harness.measure("threads", "epoch", [chosen, harness.Case(PINNED, pinned)], PINNED, rounds,
                           min_time)
    before = harness.Case(ALL_CORES, all_cores, note="numpy's default, before microgradx chose")
    rows += [row for row in harness.measure("threads", "epoch", [before, harness.Case(PINNED, pinned)],
                                            PINNED, rounds, min_time) if row.impl == ALL_CORES]
    shown = "the bundled sample" if not data else workloads.shown(Path(data))
    for row in rows:
        if row.is_reference:
            row.note = f"{shown}: {len(dataset.x_train):,} training images"
    print(json.dumps([{k: v for k, v in asdict(r).items() if k != "workload"} for r in rows]))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))       # the checkout's microgradx, installed or not
    child(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
