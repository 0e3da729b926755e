"""The documentation site builds in strict mode, its generated pages hold what they are generated from,
and the examples in its prose run.

A strict build fails on any warning: a broken link or anchor, a page missing from the nav, an API
reference (``::: microgradx.x``) to something that does not exist, or a failure in docs/hooks/generate.py.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mkdocs.exceptions import PluginError

from microgradx import functional, linalg, nn_functional, ops

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
API_MODULES = ["engine", "ops", "functional", "linalg", "nn", "nn_functional", "losses", "optim", "data",
               "learner", "train", "checkpoint", "threads", "viz", "testing", "errors", "transforms",
               "user_ops"]


def load_hook(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", DOCS / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")      # mkdocs-material's notice about its future
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


def test_the_ops_table_lists_every_primitive_with_its_derivative(site):
    text = html.unescape(page(site, "ops"))
    for name, prim in ops.PRIMITIVES.items():
        derivative = prim.__doc__.strip().splitlines()[0].split(";", 1)[1].strip()
        assert re.search(rf"<code>(mg|microgradx\.\w+)\.{name}</code>", text), f"{name} is not in the table"
        assert derivative in text, f"{name}'s derivative is not in the table"
    for name in functional.__all__:
        assert f"<code>mg.{name}</code>" in text, f"composite {name} missing from the table"
    for prefix, module in (("mg.linalg", linalg), ("mg.nn.functional", nn_functional)):
        for name in module.__all__:
            if getattr(module, name).__module__ == module.__name__ and name not in ops.PRIMITIVES:
                assert f"<code>{prefix}.{name}</code>" in text, f"{prefix}.{name} missing from the tables"
    assert "<!-- generated" not in text


def test_a_primitive_without_its_derivative_in_its_docstring_fails_the_build(monkeypatch):
    generate = load_hook("generate")

    def undocumented(x):
        """Doubles x."""
        return 2 * x

    monkeypatch.setitem(ops.PRIMITIVES, "undocumented", ops.Primitive(undocumented, [None], ""))
    with pytest.raises(PluginError, match="undocumented"):
        generate.ops_table()


def test_composites_are_listed_with_what_they_are_made_of():
    generate = load_hook("generate")
    made_of = generate._made_of(functional.var, set())
    assert made_of == ["mean", "subtract", "multiply", "add", "sum", "divide"]
    assert generate._made_of(functional.log_softmax, {"logsumexp"}) == ["logsumexp", "subtract"]


def test_every_notebook_has_a_page_with_its_pictures(site):
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        text = page(site, f"notebooks/{notebook.stem}")
        images = re.findall(r'<img [^>]*src="([^"]+)"', text)
        assert images, f"{notebook.name}: its page shows no pictures"
        for src in images:
            assert (site / "notebooks" / notebook.stem / src).resolve().is_file(), src


def test_the_cli_help_is_generated_into_the_training_guide(site):
    text = html.unescape(page(site, "training"))
    for command in ("train", "predict", "lr-find", "graph"):
        assert f"usage: microgradx {command}" in text


@pytest.mark.parametrize("module", API_MODULES)
def test_api_reference_renders_the_docstrings(site, module):
    text = page(site, f"api/{module}")
    assert f'id="microgradx.{module}' in text, f"no documented object of microgradx.{module}"
    # docs/hooks/griffe_prose.py turns doctests into code blocks and reST roles into code; without it
    # ">>>" renders as nested quotes and ":class:`X`" verbatim.
    assert "<blockquote>\n<blockquote>" not in text
    assert not re.search(r":(class|func|meth|mod):`", text)


def test_value_backward_is_documented(site):
    text = page(site, "api/engine")
    assert 'id="microgradx.engine.Value.backward"' in text


@pytest.mark.parametrize("name", ["quickstart.md", "concepts.md", "from-pytorch.md", "transforms.md",
                                  "defining-an-op.md", "compile.md", "learner.md"])
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")   # concepts' anomaly-mode example
def test_the_examples_run(name, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(encoding="utf-8"), re.S)
    assert blocks
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{name} example {i + 1}", "exec"), namespace)   # noqa: S102 - our own docs
    assert capsys.readouterr().out


def test_docstring_prose_becomes_markdown():
    convert = load_hook("griffe_prose").convert
    doc = "Use it like this::\n\n    y = f(x)\n\nSee :class:`~microgradx.errors.DataError`.\n\n>>> f(1)\n2\n"
    assert convert(doc) == ("Use it like this:\n\n```python\ny = f(x)\n```\n\nSee `DataError`.\n\n"
                            "```pycon\n>>> f(1)\n2\n```")


def test_the_pytorch_page_spellings_hold():
    import numpy as np

    import microgradx as mg
    from microgradx.errors import MicrogradxError

    v = mg.Value(np.arange(6.0).reshape(2, 3))
    assert v.view(-1, 6).shape == (1, 6) and v.view(3, 2).shape == (3, 2)
    assert v.unsqueeze(1).shape == (2, 1, 3)
    assert v.float().dtype == np.float32
    m = np.mean(v)
    assert isinstance(m, mg.Value) and m.item() == 2.5
    m.backward()
    np.testing.assert_allclose(v.grad, np.full((2, 3), 1 / 6))
    assert isinstance(np.sum(v), mg.Value)
    with pytest.raises(MicrogradxError, match="zero_grad"):
        v.grad.zero_()
    assert mg.concatenate([v, v]).shape == (4, 3) and mg.stack([v, v]).shape == (2, 2, 3)
def test_numpy_coverage_names_real_functions_on_both_sides():
    spec = importlib.util.spec_from_file_location("numpy_coverage", REPO / "scripts" / "numpy_coverage.py")
    coverage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(coverage)
    import numpy as np

    import microgradx as mg
    done, none, missing = coverage.coverage()
    numpy_names = set(coverage.numpy_names())
    for name, where in done:
        assert name in numpy_names
        path = where.split(" ")[0].split(".")        # "mg.linalg.inv (numpy's other name...)"
        obj = {"mg": mg, "microgradx": mg}[path[0]]
        for part in path[1:]:
            obj = getattr(obj, part)                  # every differentiable entry names something real
        assert callable(obj), where
    listed = {n for names in coverage.NO_DERIVATIVE.values() for n in names}
    assert not listed - {n for n in dir(np) if not n.startswith("_")}, "a typo in NO_DERIVATIVE"
    assert ("sin", "mg.sin") in done or ("sin", "microgradx.ops.sin") in done
    assert "sort" in dict(done) and "argsort" in dict(none) and "linalg.inv" in dict(done)
    assert not {n for n, _ in done} & set(missing)


def test_the_numpy_coverage_page_is_generated(site):
    text = html.unescape(page(site, "numpy-coverage"))
    assert "np.linalg.cholesky" in text and "np.argsort" in text and "<!-- generated" not in text
