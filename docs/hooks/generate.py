"""Pages and tables the docs build generates from the code, so that nothing is written twice.

A mkdocs hook (``hooks:`` in mkdocs.yml). It adds:

- ``notebooks/<name>.md``: every notebook in ``notebooks/`` as a page, with the outputs it is committed
  with; its pictures become image files beside the page;
- in any page, the content of a marker comment:

  - ``<!-- generated: ops-table -->``: the primitives of ``microgradx.ops.PRIMITIVES``, each with the
    derivative the first line of its docstring states;
  - ``<!-- generated: composites-table [linalg|nn] -->``: the composites of ``microgradx.functional``
    (or of ``linalg``, ``nn_functional``), each with the ops its source calls;
  - ``<!-- generated: cli-help COMMAND -->``: the ``--help`` of ``microgradx COMMAND``;
  - ``<!-- generated: numpy-coverage -->``: scripts/numpy_coverage.py's lists of numpy's functions.

The build fails (and ``mkdocs build --strict`` with it) on a marker that names nothing known, a primitive
whose docstring does not state its derivative, or a notebook committed with an error in its outputs.
"""

from __future__ import annotations

import ast
import base64
import html
import inspect
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
sys.path.insert(0, str(REPO))   # document this checkout, whether or not it is installed

MARKER = re.compile(r"<!--\s*generated:\s*([\w-]+)\s*([\w-]*)\s*-->")


# --------------------------------------------------------------------------------------------------
# mkdocs events
# --------------------------------------------------------------------------------------------------

def on_files(files: Files, config: Any) -> Files:
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        page, images = notebook_page(path)
        for name, data in images.items():
            files.append(File.generated(config, f"notebooks/{name}", content=data))
        files.append(File.generated(config, f"notebooks/{path.stem}.md", content=page))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    def expand(match: re.Match) -> str:
        kind, arg = match.groups()
        if kind == "ops-table":
            return ops_table()
        if kind == "composites-table":
            return composites_table(arg)
        if kind == "cli-help":
            return cli_help(arg)
        if kind == "numpy-coverage":
            return numpy_coverage()
        raise PluginError(f"{page.file.src_uri}: unknown marker <!-- generated: {kind} {arg} -->")

    return MARKER.sub(expand, markdown)


# --------------------------------------------------------------------------------------------------
# Notebooks
# --------------------------------------------------------------------------------------------------

def notebook_page(path: Path) -> tuple[str, dict[str, bytes]]:
    """A notebook as markdown, and the images its outputs hold (file name -> bytes)."""
    nb = nbformat.read(path, as_version=4)
    images: dict[str, bytes] = {}
    blocks: list[str] = []
    note = (f'!!! note "A notebook"\n    This page is `notebooks/{path.name}`, shown with the outputs it '
            "is committed with. Open it in Jupyter to run it yourself; `python notebooks/execute.py` re-runs "
            "every notebook and saves its fresh outputs.")
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            blocks.append(cell.source)
        elif cell.cell_type == "code":
            blocks.append(_fence("python", cell.source))
            blocks.extend(_outputs(path, cell, images))
    # The note goes right under the title (the first line, when it is a heading), which names the page.
    title, _, rest = blocks[0].partition("\n") if blocks[0].startswith("# ") else ("", "", blocks[0])
    blocks[0] = f"{title}\n\n{note}\n\n{rest}".lstrip()
    return "\n\n".join(blocks) + "\n", images


def _outputs(path: Path, cell: Any, images: dict[str, bytes]) -> list[str]:
    blocks: list[str] = []
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            raise PluginError(f"{path.name}: committed with an error ({out.ename}: {out.evalue}); "
                              f"re-run it: python notebooks/execute.py {path.stem}")
        if out.output_type == "stream":
            blocks.append(_fence("text", out.text))
            continue
        data = out.get("data", {})
        for mime, ext in (("image/svg+xml", "svg"), ("image/png", "png")):
            if mime in data:
                name = f"{path.stem}-{len(images) + 1}.{ext}"
                raw = data[mime]
                images[name] = raw.encode() if ext == "svg" else base64.b64decode(raw)
                blocks.append(f"![output {len(images)} of {path.stem}]({name})")
                break
        else:
            if "text/plain" in data:
                blocks.append(_fence("text", data["text/plain"]))
    return blocks


def _fence(lang: str, text: str) -> str:
    return f"```{lang}\n{text.rstrip()}\n```"


# --------------------------------------------------------------------------------------------------
# The tables of ops
# --------------------------------------------------------------------------------------------------

# A primitive's docstring starts "what it computes;  d/dx = ...": split at the semicolon before "d/d".
_DERIVATIVE = re.compile(r"^(?P<what>.+?);\s+(?P<derivative>d/d.*)$")


def ops_table() -> str:
    import microgradx as mg
    from microgradx import ops

    rows = []
    for name, prim in ops.PRIMITIVES.items():
        lines = (prim.__doc__ or "").strip().splitlines()
        first = lines[0] if lines else ""
        match = _DERIVATIVE.match(first)
        if match is None:
            raise PluginError(f"microgradx.ops.{name}: the first line of its docstring must read "
                              f"'<what it computes>;  d/dx = <derivative>', got {first!r}")
        # Where the user finds it: the package, or the module that defines it (ops, linalg...).
        call = f"mg.{name}" if hasattr(mg, name) else f"{prim.forward.__module__}.{name}"
        rows.append((f"<code>{call}</code>", _inline(match["what"]), _inline(match["derivative"])))
    return _html_table(("op", "computes", "derivative (g is the gradient of the output)"), rows)


# The modules whose composites a page can list: <!-- generated: composites-table MODULE -->.
_COMPOSITE_MODULES = {"": ("functional", "mg"), "functional": ("functional", "mg"),
                      "linalg": ("linalg", "mg.linalg"), "nn": ("nn_functional", "mg.nn.functional")}


def composites_table(which: str = "") -> str:
    import importlib

    from microgradx import ops

    if which not in _COMPOSITE_MODULES:
        raise PluginError(f"composites-table: no module {which!r} (one of {sorted(_COMPOSITE_MODULES)})")
    module_name, prefix = _COMPOSITE_MODULES[which]
    module = importlib.import_module(f"microgradx.{module_name}")
    # Its own functions: not the primitives it defines (the ops table has those), nor names it re-exports.
    names = [n for n in module.__all__ if not isinstance(getattr(module, n), ops.Primitive)
             and getattr(getattr(module, n), "__module__", None) == module.__name__]
    rows = []
    for name in names:
        fn = getattr(module, name)
        first = inspect.getdoc(fn).splitlines()[0]
        parts = ", ".join(f"<code>{p}</code>" for p in _made_of(fn, set(names) - {name}))
        rows.append((f"<code>{prefix}.{name}</code>", _inline(first), parts))
    return _html_table(("composite", "computes", "made of"), rows)


_OPERATORS: dict[type, str] = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide",
              ast.Pow: "power", ast.MatMult: "matmul", ast.USub: "negative"}


def _made_of(fn: Any, composites: set[str]) -> list[str]:
    """The primitives and composites ``fn``'s body calls (operators included), in the order they run."""
    from microgradx.engine import TABLE as table
    found: list[tuple[int, int, int, int, str]] = []
    body = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0].body   # not the defaults (axis=-1)
    for node in (n for stmt in body for n in ast.walk(stmt)):
        name = None
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "ops"
                    and f.attr in table.primitives | table.composites):   # an op, not a helper
                name = f.attr
            elif isinstance(f, ast.Name) and f.id in composites:
                name = f.id
        elif isinstance(node, ast.BinOp | ast.UnaryOp) and type(node.op) in _OPERATORS:
            if not (isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant)):   # -1
                name = _OPERATORS[type(node.op)]
        if name is not None:
            # Inner calls run first: they end first, or (ending together) start later.
            found.append((node.end_lineno, node.end_col_offset, -node.lineno, -node.col_offset, name))
    return list(dict.fromkeys(name for *_, name in sorted(found)))


def _inline(text: str) -> str:
    """Docstring text as HTML: escaped, with ``code`` as <code>."""
    return re.sub(r"``(.+?)``", r"<code>\1</code>", html.escape(text.strip()))


def _html_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    # HTML rather than a markdown table: the docstrings hold |, * and _, which markdown would take as markup.
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def numpy_coverage() -> str:
    """scripts/numpy_coverage.py's lists: numpy's functions that differentiate, that cannot, and the rest."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("numpy_coverage", REPO / "scripts" / "numpy_coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.markdown()


# --------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------

def cli_help(command: str) -> str:
    from microgradx import cli

    parser = cli.build_parser()
    sub = next((a for a in parser._actions if a.choices and command in a.choices), None)
    if command and sub is None:
        raise PluginError(f"cli-help: microgradx has no command {command!r}")
    target = sub.choices[command] if sub else parser
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "82"       # argparse wraps to the terminal; 80 columns fit a code block
    try:
        text = target.format_help()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return _fence("text", f"$ microgradx {command} --help\n{text}")
