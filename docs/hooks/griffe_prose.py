"""A griffe extension (``extensions:`` in mkdocs.yml) that makes our docstrings render as markdown.

The docstrings are written to read well in ``help()`` and in an editor, with a few reStructuredText
habits that markdown would garble. Before mkdocstrings renders a docstring, this rewrites:

- a doctest (lines starting ``>>>``, with their output) into a ``pycon`` code block; markdown would
  otherwise read the ``>`` as nested quotes;
- a paragraph ending in ``::`` followed by an indented block (reST's literal block) into ``:`` and a
  ``python`` code block;
- Sphinx roles (``:class:`~microgradx.errors.DataError```, ``:func:`read_idx```) into inline code.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def convert(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}`", text)
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip():      # a doctest runs to the next blank line
                block.append(lines[i])
                i += 1
            out += ["```pycon", *textwrap.dedent("\n".join(block)).splitlines(), "```"]
            continue
        if line.rstrip().endswith("::") and i + 1 < len(lines) and not lines[i + 1].strip():
            indent = _indent(line)
            j = i + 2
            block = []
            while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > indent):
                block.append(lines[j])
                j += 1
            while block and not block[-1].strip():
                block.pop()
            if block:
                out += [line.rstrip()[:-1], "", "```python", *textwrap.dedent("\n".join(block)).splitlines(),
                        "```", ""]
                i = j
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


class ProseDocstrings(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
