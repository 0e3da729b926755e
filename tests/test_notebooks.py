"""The notebooks run top to bottom, and still show what they are there to show.

Each notebook is executed on a temporary copy (the committed files, with their outputs, are never touched)
in a fresh kernel, with this checkout first on the kernel's path, and must print exactly what its committed
copy shows: a notebook whose output changes when it is re-run (an unseeded random number, a float printed
to its last digit, a library's message) fails here. Refresh the committed outputs with
``python notebooks/execute.py``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ["01_derivatives", "02_learning_rate", "03_mnist_3_vs_7", "04_under_the_hood", "05_newton",
         "06_further_research"]
CELL_TIMEOUT = 300       # seconds: a "doesn't hang" bound; each notebook takes seconds
MAX_BYTES = 300 * 1024   # committed with outputs: keep the images small


def run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, same_as_committed: bool = True
        ) -> nbformat.NotebookNode:
    """Execute a copy of notebook ``name`` in ``tmp_path``; a failing cell raises CellExecutionError.
    With ``same_as_committed``, every cell's text output must be the committed one."""
    copy = tmp_path / f"{name}.ipynb"
    shutil.copy(NOTEBOOKS / copy.name, copy)
    nb = nbformat.read(copy, as_version=4)
    monkeypatch.setenv("PYTHONPATH", str(REPO))   # the kernel inherits the environment
    # coalesce_streams as notebooks/execute.py does, so a stream's text does not depend on its flushes.
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", coalesce_streams=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    if same_as_committed:
        committed = nbformat.read(NOTEBOOKS / copy.name, as_version=4)
        for i, (then, now) in enumerate(zip(texts_by_cell(committed), texts_by_cell(nb), strict=True)):
            assert now == then, (f"{name}, cell {i}: re-running it changes its output (make it "
                                 f"deterministic, then run python notebooks/execute.py {name})\n"
                                 f"committed: {then}\nnow:       {now}")
    return nb


def texts_by_cell(nb: nbformat.NotebookNode) -> list[list[str]]:
    """Per cell, its outputs as text: streams, and the plain text of results that are not pictures."""
    cells = []
    for cell in nb.cells:
        texts = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if out.output_type == "stream":
                texts.append(f"{out.name}: {out.text}")
            elif "image/png" not in data and "image/svg+xml" not in data:
                texts.append(data.get("text/plain", out.output_type))
        cells.append(texts)
    return cells


def text_of(nb: nbformat.NotebookNode) -> str:
    """Everything the code cells printed or displayed as text."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif "data" in out:
                parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


def count(nb: nbformat.NotebookNode, mime: str) -> int:
    return sum(mime in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


def number_after(text: str, label: str) -> float:
    match = re.search(re.escape(label) + r"\s*(?:=\s*)?([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", text)
    assert match, f"no number after {label!r} in the notebook's output"
    return float(match.group(1))


@pytest.fixture(autouse=True)
def _bundled_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MICROGRADX_DATA", raising=False)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_its_outputs(name):
    path = NOTEBOOKS / f"{name}.ipynb"
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size:,} bytes: shrink its images"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code), \
        f"{path.name} is committed without outputs: run python notebooks/execute.py {name}"
    assert not any(out.output_type == "error" for cell in code for out in cell.outputs)
    assert count(nb, "image/png") + count(nb, "image/svg+xml") >= 2, "the pictures are missing"


def test_derivatives(tmp_path, monkeypatch):
    nb = run("01_derivatives", tmp_path, monkeypatch)
    text = text_of(nb)
    assert "x.grad = 6.0" in text
    assert number_after(text, "mg.grad(f)(3.0)") == 6.0
    assert number_after(text, "mg.grad(mg.grad(f))(3.0) =") == 2.0
    # The slope at the random point agrees with finite differences and with 2 * x0.
    numeric, analytic = number_after(text, "finite difference"), number_after(text, "backward()")
    assert numeric == pytest.approx(analytic, abs=1e-6)
    assert number_after(text, "slope f'(x0) =") == pytest.approx(number_after(text, "(2 * x0 ="), abs=1e-4)
    # Descent moves towards the minimum: |x| shrinks by 0.8 a step, from 1.8 to 1.8 * 0.8**12.
    assert number_after(text, "step 12: x =") == pytest.approx(-1.8 * 0.8**12, abs=1e-4)
    assert count(nb, "image/png") == 4


def test_learning_rate(tmp_path, monkeypatch):
    nb = run("02_learning_rate", tmp_path, monkeypatch)
    text = text_of(nb)
    final = {}
    for line in text.splitlines():
        if "x after 12 steps =" in line:
            final[line.split("lr =")[0].strip()] = abs(number_after(line, "x after 12 steps ="))
    assert set(final) == {"too small", "good", "too large: bounces", "much too large: diverges"}
    assert final["good"] < 1e-3
    assert 0.5 < final["too small"] < 1.6                   # moved, but slowly (start: |x| = 1.6)
    assert final["good"] < final["too large: bounces"] < 1.6
    assert final["much too large: diverges"] > 1.6
    assert count(nb, "image/png") == 3


def test_mnist_3_vs_7_on_the_bundled_sample(tmp_path, monkeypatch):
    nb = run("03_mnist_3_vs_7", tmp_path, monkeypatch)
    text = text_of(nb)
    assert "bundled sample (800 train, 200 valid)" in text
    assert number_after(text, "baseline accuracy on the validation set:") > 0.9
    assert number_after(text, "accuracy with random weights:") < 0.75
    first, after = (number_after(text, label) for label in
                    ("loss on the first batch: Value(", "loss on the first batch after one step: Value("))
    assert after < first, "one step against the gradient must lower the loss on that batch"
    assert number_after(text, "final accuracy: by hand") > 0.9
    # nn.Linear + optim.SGD, seeded and fed like the hand-written loop, take exactly the same steps.
    assert number_after(text, "largest difference from the hand-written weights:") == 0.0
    assert count(nb, "image/png") >= 6


@pytest.mark.data
@pytest.mark.slow
def test_mnist_3_vs_7_on_the_full_data(tmp_path, monkeypatch, full_idx_folder):
    monkeypatch.setenv("MICROGRADX_DATA", str(full_idx_folder))
    text = text_of(run("03_mnist_3_vs_7", tmp_path, monkeypatch, same_as_committed=False))
    assert "(12396 train, 2038 valid)" in text
    # The figures the notebook's closing table quotes.
    assert number_after(text, "baseline accuracy on the validation set:") == pytest.approx(0.951, abs=0.002)
    assert number_after(text, "final accuracy: by hand") > 0.96
    assert number_after(text, "final accuracy:") > 0.975     # simple_net's line: the only bare number


def test_under_the_hood(tmp_path, monkeypatch):
    nb = run("04_under_the_hood", tmp_path, monkeypatch)
    text = text_of(nb)
    for line in text.splitlines():
        if "by hand" in line and "backward()" in line:
            assert number_after(line, "backward()") == number_after(line, "by hand"), line
    assert "buggy version: gradcheck of normalise_buggy" in text     # gradcheck caught the bug ...
    assert "correct version passes: True" in text                    # ... and not the fix
    assert "the graph is freed as soon as its output is: True" in text
    assert "softsign: 40 random arrays passed" in text
    # hypothesis found the wrong rule and reported the (shrunk) input; the wording varies by version.
    assert "smallest failing input: x=array(" in text
    if shutil.which("dot"):
        assert count(nb, "image/svg+xml") == 2, "the two graphs were not drawn"


def test_newton(tmp_path, monkeypatch):
    nb = run("05_newton", tmp_path, monkeypatch)
    text = text_of(nb)
    assert "parabola from -1.8:        [-1.8, 1.5, 1.5]" in text          # one step on a parabola
    assert number_after(text, "x**2 + exp(-x) from -1.8:  [-1.8, -0.601234, 0.190227, 0.348116, 0.351732,") \
        == 0.351734
    assert "Hessian of mnist_loss at (0, 0):\n [[0. 0.]\n [0. 0.]]" in text    # flat where the chapter starts
    # The race: Newton's sixth step is below gradient descent's hundredth, and its tenth is a minimum.
    step6 = next(line for line in text.splitlines() if line.startswith("step 6:"))
    newton6 = number_after(step6, "Newton")
    descent100 = number_after(text, "step 100: gradient descent")
    assert newton6 < descent100 < number_after(step6, "gradient descent")
    lowest = float(re.search(r"after 10 steps: .*?loss ([\d.]+);", text).group(1))
    assert 0 <= newton6 - lowest < 1e-4
    assert "largest gradient there below 1e-10: True" in text
    assert "hvp equals hessian @ v: True" in text
    by_cg, by_solve = (re.search(re.escape(label) + r"\s*\[([^\]]*)\]", text).group(1).split() for label in
                       ("Newton step by conjugate gradients:", "Newton step by solving with H:"))
    assert by_cg == by_solve
    assert count(nb, "image/png") == 3


def test_further_research(tmp_path, monkeypatch):
    nb = run("06_further_research", tmp_path, monkeypatch)
    text = text_of(nb)
    assert "epoch  train_loss  valid_loss    accuracy" in text          # mg.Learner's table
    assert "epoch  train_loss  valid_loss  class_accuracy" in text      # the ten-digit CNN's
    wrong = int(re.search(r"(\d+) wrong of 200", text).group(1))
    assert wrong < 100                      # the CNN is far above chance (180 wrong) on the valid digits
    assert count(nb, "image/png") == 2      # the digits it gets wrong, and the filters
