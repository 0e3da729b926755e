"""Run the notebooks top to bottom and save them with their fresh outputs.

    python notebooks/execute.py                      # every notebook in this folder
    python notebooks/execute.py 03_mnist_3_vs_7      # only the ones named (with or without .ipynb)

Each notebook runs in a new kernel (ipykernel, in the Python that runs this script) with this folder as its
working directory and this checkout first on its ``PYTHONPATH`` (so it documents this microgradx, installed
or not), and is written back only if every cell succeeded. The committed outputs are those of the defaults,
so ``MICROGRADX_DATA`` is ignored here: notebook 3 uses the bundled sample.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CELL_TIMEOUT = 600  # seconds; every notebook here runs in well under a minute


def execute(path: Path) -> float:
    """Execute the notebook at ``path`` in place; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    # So that re-running changes only real outputs: no timestamps in the cells' metadata (record_timing),
    # one output per stream however the kernel happened to flush it (coalesce_streams), and no text
    # fallback beside a picture (an object's repr, with a memory address that differs on every run).
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                   coalesce_streams=True, resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/plain" in data and ("image/png" in data or "image/svg+xml" in data):
                del data["text/plain"]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777)   # mkstemp makes it private; keep the notebook's mode
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return elapsed


def main(names: list[str]) -> None:
    # The kernel inherits our environment.
    os.environ.pop("MICROGRADX_DATA", None)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    paths = [HERE / (n if n.endswith(".ipynb") else f"{n}.ipynb") for n in names]
    for path in paths or sorted(HERE.glob("*.ipynb")):
        print(f"{path.name}: ", end="", flush=True)
        seconds = execute(path)
        print(f"{seconds:.1f} s, {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main(sys.argv[1:])
