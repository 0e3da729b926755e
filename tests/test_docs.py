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

from microgradx import functional, ops

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
API_MODULES = ["engine", "ops", "functional", "nn", "losses", "optim", "data", "train", "checkpoint", "viz",
               "testing", "errors", "transforms"]


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
        assert re.search(rf"<code>(mg|microgradx\.ops)\.{name}</code>", text), f"{name} is not in the table"
        assert derivative in text, f"{name}'s derivative is not in the table"
    for name in functional.__all__:
        assert f"<code>mg.{name}</code>" in text, f"composite {name} missing from the table"
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
    assert generate._made_of(functional.mean, set()) == ["sum", "divide"]
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


@pytest.mark.parametrize("name", ["quickstart.md", "concepts.md", "transforms.md"])
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
