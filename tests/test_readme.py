"""The README's example is the first code a user runs: it must run and print what its comments say."""

from __future__ import annotations

import contextlib
import io
import re

from conftest import REPO


def test_readme_example_prints_what_it_claims():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own README
    assert out.getvalue().split() == ["6.0", "18.0"]


def test_readme_names_the_two_commands_the_makefile_provides():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for target in ("train", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no '{target}' target"
    assert (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().endswith("exec make test")
