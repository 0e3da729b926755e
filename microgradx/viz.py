"""Drawing computation graphs with Graphviz.

``draw_graph(y)`` returns a ``graphviz.Digraph`` of everything that led to ``y``:

* every Value is a box ``label | data | grad``; a tensor shows its shape and dtype and a summary (its
  values when it has at most four, else their mean and norm), never the whole array;
* every op is a small ellipse of its own between its inputs and its output, with its parameters
  (``sum`` with ``axis=1``, ``getitem`` with ``[:, 0:3]``); where the order of its inputs matters
  (``a - b``, ``a @ b``, ``where``) the edges into it are numbered 1, 2, ...;
* raw constants (numbers and arrays handed to an op that are not Values, as the ``2`` in ``2 * x`` or a
  numpy batch) are small grey boxes beside the op that uses them. They are always drawn and count toward
  no limit. Values that do not require grad (``Value(a, requires_grad=False)``) are grey value boxes.

Options: ``rankdir="TB"`` stacks the graph top to bottom; ``max_nodes`` draws only the Values nearest the
output and a note of how many were left out; ``grad_flow=True`` colours nodes and edges by gradient
magnitude (blue vanishing, red exploding, with a legend); ``modules=`` draws each module's parameters
and the ops that use them inside a labelled box.

The DOT source (``graph.source``) needs only the ``graphviz`` Python package. Images need Graphviz's
``dot`` program: ``render_graph(y, "graph.svg")``, or display the graph in Jupyter.
"""

from __future__ import annotations

import functools
import html
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._files import atomic_write
from .engine import TABLE, Value, data_of
from .errors import ArgumentError, MicrogradxError
from .user_ops import USER_OPS

if TYPE_CHECKING:
    import graphviz

__all__ = ["draw_graph", "render_graph", "example_scalar_neuron", "GraphvizNotFoundError"]

FORMATS = ("svg", "png", "dot")

INSTALL_HINT = ("Install Graphviz (a system package, not a Python one): `apt-get install graphviz` "
                "(Debian/Ubuntu), `brew install graphviz` (macOS) or `conda install graphviz`. "
                "The DOT source needs no program: graph.source, or render_graph(..., format='dot').")


class GraphvizNotFoundError(MicrogradxError, RuntimeError):
    """Rendering an image needs Graphviz's ``dot`` program, and it is not installed (or not on PATH)."""


class _Html(str):
    """An HTML-like label, ``<...>``: markup we wrote, with any user text already escaped."""


def op_label(name: str) -> str:
    """How a drawing labels an op: the symbol its table entry gives (``*``), else its name."""
    op = _entry(name)
    return (op.symbol if op is not None and op.symbol else None) or name


def _symmetric(name: str | None) -> bool:
    op = _entry(name or "")
    return op is not None and op.symmetric


def _entry(name: str) -> Any:
    """The built-in or user op of that name, if any."""
    return TABLE.primitives.get(name) or USER_OPS.get(name)


# Look of the drawing.
_FONT = "Helvetica"
_TEXT = "#202124"
_EDGE = "#5f6368"
_LEAF_FILL = "#e8f0fe"        # inputs and parameters: what gradients are for
_INNER_FILL = "#ffffff"
_CONST_FILL = "#f1f3f4"
_CONST_TEXT = "#5f6368"
_OP_FILL = "#fff4d6"
_CONST_EDGE = {"color": _CONST_TEXT, "style": "dashed", "arrowhead": "none"}
_POSITION = {"labelfontsize": "8", "labelfontcolor": _CONST_TEXT, "labeldistance": "1.4"}

# Gradient-flow scale: log10 of a gradient's RMS -> fill colour, from blue (vanishing) through pale
# yellow (ordinary) to red (exploding). Linear in RGB between stops; clamped at the ends.
_GRAD_STOPS = ((-7, "#4575b4"), (-5, "#91bfdb"), (-3, "#e0f3f8"), (-1, "#ffffbf"),
               (1, "#fee090"), (3, "#fc8d59"), (5, "#d73027"))
_ZERO_GRAD = "#d9d9d9"        # exactly zero (or no backward yet)
_BAD_GRAD = "#c51b7d"         # NaN or inf somewhere in the gradient


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------

def draw_graph(root: Value, *, rankdir: str = "LR", max_nodes: int | None = 500, show_grad: bool = True,
               grad_flow: bool = False, modules: Any = None, title: str | None = None) -> graphviz.Digraph:
    """The computation graph that produced ``root``, as a ``graphviz.Digraph``.

    Args:
        root: the output Value; the graph is everything it was computed from.
        rankdir: ``"LR"`` (inputs left, output right) or ``"TB"`` (inputs on top); ``"RL"``, ``"BT"`` too.
        max_nodes: the most Values to draw (each with the op that made it), taken breadth-first from
            ``root`` so that the part nearest the output is shown. The rest is summed up in one note
            ("N more values and M ops not drawn") with dashed edges into the ops whose inputs were cut.
            ``None`` draws everything.
        show_grad: show each Value's ``.grad`` (zeros before any ``backward()``).
        grad_flow: colour Values, ops and edges by the RMS of the gradient they carry, on a log scale
            from blue (vanishing) to red (exploding); edges get wider as it grows. A legend is added.
        modules: a module (anything with ``named_parameters()`` or ``parameters()``) or a dict
            ``{name: module}``: each module's parameters and the ops that use them directly are drawn in
            a box titled with the module's name (its class name when not given). A parameter is titled
            with its name from ``named_parameters()`` (``"layers.0.weight"``), which tells apart layers
            whose parameters share a label; with only ``parameters()``, by its own label.
        title: a caption above the graph.

    The result shows inline in Jupyter; ``.source`` is the DOT text; ``render_graph`` writes a file.
    """
    gv = _graphviz()
    if not isinstance(root, Value):
        raise ArgumentError(f"draw_graph: expected a Value, got {type(root).__name__} (an op with no Value "
                        "among its inputs returns a plain array, which has no graph to draw)")
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ArgumentError(f"draw_graph: rankdir must be 'LR', 'TB', 'RL' or 'BT', got {rankdir!r}")
    if max_nodes is not None and max_nodes < 1:
        raise ArgumentError(f"draw_graph: max_nodes must be at least 1 (or None for no limit), "
                            f"got {max_nodes}")

    order, n_hidden, n_hidden_ops = _walk(root, max_nodes)
    number = {v: i for i, v in enumerate(order)}
    clusters, param_cluster, param_names = _clusters(modules)

    graph = _graph_class(gv)(name="microgradx", graph_attr={
        "rankdir": rankdir, "fontname": _FONT, "nodesep": "0.25", "ranksep": "0.35"})
    # Defaults fit the value boxes (most nodes), so each of them carries only its label.
    graph.attr("node", fontname=_FONT, fontsize="11", fontcolor=_TEXT, shape="none", margin="0", width="0",
               height="0")
    graph.attr("edge", color=_EDGE, arrowsize="0.6")
    if title:
        graph.attr(label=f"<{_text(title)}>", labelloc="t", fontsize="16")

    # Statements are written straight into the body: the graphviz package's node() and edge() quote
    # every attribute through regular expressions, which was most of the drawing time. _stmt quotes.
    body = graph.body
    # Nodes of a module's cluster must be declared inside its subgraph: gather them, declare them last.
    members: list[list[str]] = [[] for _ in clusters]

    def place(node_id: str, attrs: dict[str, str], cluster: int | None) -> None:
        (body if cluster is None else members[cluster]).append(_stmt(node_id, attrs))

    # Gradient-flow look of each Value: its fill, and the attributes of the edges that carry its gradient.
    looks = [_grad_look(v) if grad_flow else (None, {}) for v in order]
    cut_ops: list[str] = []      # op nodes with an input that was left out
    n_consts = 0
    for i, v in enumerate(order):
        fill, edge_attrs = looks[i]
        name = param_names.get(v, v.label)
        place(f"v{i}", _value_attrs(v, name, show_grad, fill, is_root=i == 0), param_cluster.get(v))
        if v._op is None:
            continue
        op_id = f"op{i}"
        user = next((param_cluster[a] for a in v._args if isinstance(a, Value) and a in param_cluster), None)
        place(op_id, _op_attrs(v, fill), user)
        body.append(_stmt(f"{op_id} -> v{i}", edge_attrs))
        ordered = len(v._args) > 1 and not _symmetric(v.op)
        for pos, a in enumerate(v._args):
            # Where the order of inputs matters (a - b, a @ b), each edge says which input it is.
            position = {"headlabel": str(pos + 1), **_POSITION} if ordered else {}
            if not isinstance(a, Value):
                const_id = f"c{n_consts}"
                n_consts += 1
                body.append(_stmt(const_id, {"label": _const_label(a)}))
                body.append(_stmt(f"{const_id} -> {op_id}", {**_CONST_EDGE, **position}))
            elif a in number:
                body.append(_stmt(f"v{number[a]} -> {op_id}", {**looks[number[a]][1], **position}))
            elif not cut_ops or cut_ops[-1] != op_id:
                cut_ops.append(op_id)

    for k, (title_k, nodes) in enumerate(zip(clusters, members, strict=True)):
        if nodes:
            with graph.subgraph(name=f"cluster_{k}") as sub:
                sub.attr(label=f"<{_text(title_k)}>", style="rounded,dashed", color="#9aa0a6", fontsize="12")
                sub.body.extend(nodes)

    if n_hidden:
        note = (f"{n_hidden:,} more values and {n_hidden_ops:,} ops not drawn\\n"
                f"(max_nodes={max_nodes}: the {len(order):,} values nearest the output are shown)")
        body.append(_stmt("more", {"label": note, "shape": "note", "style": "filled", "fillcolor": "#fef7e0",
                                   "color": "#f9ab00", "margin": "0.1,0.05"}))
        body.extend(_stmt(f"more -> {op_id}", {"style": "dashed", "color": "#f9ab00"}) for op_id in cut_ops)
    if grad_flow:
        body.append(_stmt("legend", {"label": _legend()}))
    return graph


def render_graph(root_or_graph: Any, path: str | os.PathLike, format: str | None = None,  # noqa: A002
                 **kwargs: Any) -> Path:
    """Write a drawing of a Value's graph (or of a Digraph from ``draw_graph``) to ``path``; return it.

    ``format`` is ``"svg"``, ``"png"`` or ``"dot"`` (the DOT source, which needs no Graphviz program);
    by default it is taken from the file's extension. ``kwargs`` go to :func:`draw_graph`. The file is
    written atomically: an existing file is replaced only once the drawing has succeeded.

    Raises GraphvizNotFoundError for SVG and PNG when Graphviz's ``dot`` program is not installed.
    """
    gv = _graphviz()
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".") or "svg").lower()
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        raise ArgumentError(f"render_graph: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if isinstance(root_or_graph, gv.Digraph | gv.Graph | gv.Source):
        if kwargs:
            raise ArgumentError(f"render_graph: options {sorted(kwargs)} apply only when given a Value")
        graph = root_or_graph
    else:
        graph = draw_graph(root_or_graph, **kwargs)
    data = graph.source.encode() if fmt == "dot" else _pipe(graph, fmt)
    with atomic_write(path) as f:
        f.write(data)
    return path


def example_scalar_neuron() -> Value:
    """A neuron ``o = tanh(x1*w1 + x2*w2 + b)`` on scalars, every Value labelled, after ``o.backward()``.

    The numbers make ``n = 0.8814`` and so ``o = tanh(n) = 0.7071`` and ``do/dn = 1 - o**2 = 0.5``.
    """
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.881373587019543, label="b")
    x1w1 = x1 * w1
    x2w2 = x2 * w2
    s = x1w1 + x2w2
    n = s + b
    o = n.tanh()
    for v, label in ((x1w1, "x1*w1"), (x2w2, "x2*w2"), (s, "x1*w1 + x2*w2"), (n, "n"), (o, "o")):
        v.label = label
    o.backward()
    return o


# --------------------------------------------------------------------------------------------------
# Walking the graph
# --------------------------------------------------------------------------------------------------

def _walk(root: Value, limit: int | None) -> tuple[list[Value], int, int]:
    """The first ``limit`` Values that led to ``root``, breadth-first; and how many Values and ops remain.

    Iterative: graphs may be a million nodes deep. The rest of the graph is walked only to be counted,
    a set insert per Value: a small fraction of what making each of those Values cost.
    """
    order = [root]           # doubles as the breadth-first queue: order[head] is the next to expand
    seen = {root}
    head = 0
    while head < len(order) and (limit is None or len(order) < limit):
        for a in order[head]._args:
            if isinstance(a, Value) and a not in seen:
                seen.add(a)
                order.append(a)
        head += 1
    if limit is None or (len(order) <= limit and head == len(order)):
        return order, 0, 0                              # everything fits
    # Count what is left out, depth first from the Values not yet expanded.
    n_ops = sum(1 for v in order[limit:] if v._op is not None)
    stack = order[head:]
    while stack:
        for a in stack.pop()._args:
            if isinstance(a, Value) and a not in seen:
                seen.add(a)
                stack.append(a)
                if a._op is not None:
                    n_ops += 1
    return order[:limit], len(seen) - limit, n_ops


def _clusters(modules: Any) -> tuple[list[str], dict[Value, int], dict[Value, str]]:
    """Cluster titles, and for each parameter its cluster's index and the name to show for it."""
    if modules is None:
        return [], {}, {}
    named = modules.items() if isinstance(modules, Mapping) else [(type(modules).__name__, modules)]
    titles: list[str] = []
    cluster: dict[Value, int] = {}
    names: dict[Value, str] = {}
    for title, module in named:
        if hasattr(module, "named_parameters"):
            pairs: Iterable = ((str(name), p) for name, p in module.named_parameters())
        elif hasattr(module, "parameters"):
            pairs = ((p.label or f"param{i}", p) for i, p in enumerate(module.parameters()))
        else:
            raise ArgumentError(f"draw_graph: modules={title!r} has neither named_parameters() nor "
                                "parameters()")
        for name, p in pairs:
            if p not in cluster:            # a parameter shared by two modules goes to the first
                cluster[p] = len(titles)
                names[p] = name
        titles.append(str(title))
    return titles, cluster, names


# --------------------------------------------------------------------------------------------------
# Nodes and edges
# --------------------------------------------------------------------------------------------------

def _value_attrs(v: Value, name: str | None, show_grad: bool, fill: str | None, is_root: bool) -> dict:
    """An HTML-like table: ``name | data | grad`` in a row for a scalar, stacked for a tensor.

    ``fill`` is the gradient-flow colour, or None for the plain look.
    """
    head = f"<B>{_esc(name)}</B>" if name else ""
    if v.ndim:
        head += ("  " if head else "") + f'<FONT POINT-SIZE="9">{v.shape} {v.dtype}</FONT>'
    cells = [head] if head else []
    cells.append("data " + _summary(v.data))
    if show_grad and v.requires_grad:
        cells.append("grad " + _summary(_grad_array(v)))
    if not v.requires_grad:
        fill = _CONST_FILL
    elif fill is None:
        fill = _LEAF_FILL if v._op is None else _INNER_FILL
    text = _CONST_TEXT if not v.requires_grad else _text_colour(fill)
    if v.ndim:   # a tensor's lines are long: stack them, the node stays narrow
        rows = "".join(f'<TR><TD ALIGN="LEFT">{c}</TD></TR>' for c in cells)
    else:
        rows = "<TR>" + "".join(f"<TD>{c}</TD>" for c in cells) + "</TR>"
    border = "2" if is_root else "0"     # the output stands out with a frame
    attrs = {"label": _Html(f'<<TABLE BORDER="{border}" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4" '
                            f'BGCOLOR="{fill}" COLOR="{_EDGE}">{rows}</TABLE>>')}
    if text != _TEXT:
        attrs["fontcolor"] = text
    return attrs


def _op_attrs(v: Value, fill: str | None) -> dict:
    # Parameters left at their defaults (axis=None, keepdims=False) would only crowd the ellipse.
    lines = [op_label(v.op or "")] + [_param_text(k, p) for k, p in v._params.items()
                                          if p is not None and p is not False]
    fill = fill or _OP_FILL
    attrs = {"label": "\\n".join(lines), "shape": "ellipse", "style": "filled", "fillcolor": fill,
             "fontsize": "10", "width": "0.45", "margin": "0.06,0.03"}
    if _text_colour(fill) != _TEXT:
        attrs["fontcolor"] = _text_colour(fill)
    return attrs


def _grad_look(v: Value) -> tuple[str | None, dict[str, str]]:
    """Gradient-flow view: the fill colour of ``v`` and the attributes of edges that carry its gradient."""
    if not v.requires_grad:
        return None, {}
    rms = _rms(_grad_array(v))
    if not math.isfinite(rms):
        return _BAD_GRAD, {"color": _BAD_GRAD, "penwidth": "3"}
    if rms == 0:
        return _ZERO_GRAD, {"color": "#bdc1c6", "style": "dotted"}
    x = math.log10(rms)
    lo, hi = _GRAD_STOPS[0][0], _GRAD_STOPS[-1][0]
    fill = _scale_colour(x)
    width = 0.6 + 3.4 * min(max((x - lo) / (hi - lo), 0), 1)     # wider as the gradient grows
    return fill, {"color": _darker(fill), "penwidth": f"{width:.2f}"}


def _stmt(head: str, attrs: dict[str, str]) -> str:
    """One line of DOT: a node id or an edge ``a -> b``, with its attributes quoted.

    Our ids are plain words. An HTML-like label (``_Html``, escaped when it was built) goes as it is;
    any other value is double-quoted, its own double quotes escaped.
    """
    if not attrs:
        return f"\t{head}\n"
    quoted = " ".join(f"{k}={v}" if isinstance(v, _Html) else f'{k}="{_quote(v)}"' for k, v in attrs.items())
    return f"\t{head} [{quoted}]\n"


def _quote(text: str) -> str:
    text = text.replace('"', '\\"')
    return text + " " if text.endswith("\\") else text    # a final backslash would escape the quote


def _legend() -> _Html:
    rows = ['<TR><TD COLSPAN="2"><B>gradient RMS</B></TD></TR>']
    for exponent, colour in reversed(_GRAD_STOPS):
        text = {_GRAD_STOPS[0][0]: f"&le; 1e{exponent} vanishing",
                _GRAD_STOPS[-1][0]: f"&ge; 1e+{exponent} exploding"}.get(exponent, f"1e{exponent:+d}")
        rows.append(_legend_row(colour, text))
    rows.append(_legend_row(_ZERO_GRAD, "zero"))
    rows.append(_legend_row(_BAD_GRAD, "NaN or inf"))
    table = "".join(rows)
    return _Html(f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" COLOR="#9aa0a6">{table}</TABLE>>')


def _legend_row(colour: str, text: str) -> str:
    return (f'<TR><TD BGCOLOR="{colour}" WIDTH="18"> </TD>'
            f'<TD ALIGN="LEFT"><FONT POINT-SIZE="9">{text}</FONT></TD></TR>')


def _const_label(c: Any) -> _Html:
    """A raw constant's small grey box: the number, or an array's shape, dtype and summary."""
    if isinstance(c, bool | int):
        text = str(c)
    elif np.ndim(c) == 0:
        text = _fmt(float(c))
    else:
        arr = np.asarray(c)
        text = f"{arr.shape} {arr.dtype}<BR/>{_summary(arr)}"
    return _Html(f'<<TABLE BORDER="1" CELLPADDING="2" CELLSPACING="0" STYLE="rounded" '
                 f'BGCOLOR="{_CONST_FILL}" COLOR="{_CONST_FILL}"><TR><TD>'
                 f'<FONT POINT-SIZE="9" COLOR="{_CONST_TEXT}">{text}</FONT></TD></TR></TABLE>>')


def _param_text(key: str, p: Any) -> str:
    if key == "index":
        return _index_text(p)
    return f"{key}={_short(p)}"


def _index_text(index: Any) -> str:
    """``x[index]`` as written: ``[:, 0:3]``; arrays in the index by shape only."""
    parts = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(_index_part(p) for p in parts) + "]"


def _index_part(p: Any) -> str:
    if isinstance(p, slice):
        text = ":".join("" if x is None else str(x) for x in (p.start, p.stop))
        return text + (f":{p.step}" if p.step is not None else "")
    if p is Ellipsis:
        return "..."
    if isinstance(p, np.ndarray):
        return f"{'mask' if p.dtype == bool else 'array'} {p.shape}"
    return _short(p)


def _short(p: Any, width: int = 24) -> str:
    text = repr(p)
    return text if len(text) <= width else text[:width - 3] + "..."


# --------------------------------------------------------------------------------------------------
# Numbers and colours
# --------------------------------------------------------------------------------------------------

def _summary(a: Any) -> str:
    """A few numbers that describe ``a``: itself if it has at most 4 elements, else mean and norm."""
    a = np.asarray(a)
    if a.ndim == 0:
        return _fmt(a.item())
    if a.size <= 4:
        return "[" + ", ".join(_fmt(x) for x in a.ravel().tolist()) + "]"
    return f"mean {_fmt(float(np.mean(a, dtype=np.float64)))}  norm {_fmt(_norm(a))}"


def _fmt(x: float) -> str:
    # -0.0 (a product with a negative zero, a gradient that cancelled) is zero to a reader: no "-0".
    return f"{0.0 if x == 0 else x:.4g}"


def _esc(text: Any) -> str:
    """A name for an HTML-like label: as :func:`_text`, long names cut."""
    text = str(text)
    return _text(text if len(text) <= 40 else text[:37] + "...")


def _text(text: Any) -> str:
    """Any user text as the content of an HTML-like label, shown as written.

    HTML-like labels take text literally (a backslash is a backslash, unlike DOT's quoted strings), once
    markup characters are escaped. Characters XML cannot hold at all (control characters, lone
    surrogates) are shown as Python escapes instead, or dot would refuse the whole graph.
    """
    text = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if (c >= " " and c not in "\ufffe\uffff") or c in "\n\t" else _escaped(c) for c in text)
    return html.escape(text).replace("\n", "<BR/>")


def _escaped(c: str) -> str:
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def _grad_array(v: Value) -> np.ndarray:
    g = v.grad
    return np.asarray(data_of(g))   # a Value after backward(create_graph=True)


def _norm(a: np.ndarray) -> float:
    """Euclidean norm, scaled by the largest magnitude first so that squaring cannot overflow."""
    a = np.abs(np.asarray(a, dtype=np.float64))
    if a.size == 0:
        return 0.0
    big = a.max()
    if big == 0 or not np.isfinite(big):
        return float(big)
    return float(big * np.sqrt(np.sum(np.square(a / big))))


def _rms(g: np.ndarray) -> float:
    return _norm(g) / math.sqrt(g.size) if g.size else 0.0


def _scale_colour(x: float) -> str:
    """The colour of log10(RMS) = ``x`` on the ``_GRAD_STOPS`` scale: linear in RGB between stops."""
    if x <= _GRAD_STOPS[0][0]:
        return _GRAD_STOPS[0][1]
    for (x0, c0), (x1, c1) in zip(_GRAD_STOPS, _GRAD_STOPS[1:], strict=False):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            mixed = (round(p + t * (q - p)) for p, q in zip(_rgb(c0), _rgb(c1), strict=True))
            return "#" + "".join(f"{c:02x}" for c in mixed)
    return _GRAD_STOPS[-1][1]


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _darker(colour: str) -> str:
    """The colour mixed with 35% black: pale fills must still show as thin edge lines."""
    return "#" + "".join(f"{round(c * 0.65):02x}" for c in _rgb(colour))


def _text_colour(fill: str) -> str:
    """Black on light fills, white on dark ones."""
    r, g, b = _rgb(fill)
    return _TEXT if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


# --------------------------------------------------------------------------------------------------
# Graphviz
# --------------------------------------------------------------------------------------------------

def _graphviz() -> Any:
    # Imported here, not at the top: ``import microgradx`` must not need it.
    try:
        import graphviz
    except ImportError as e:
        raise ImportError("drawing graphs needs the graphviz Python package: pip install graphviz") from e
    return graphviz


@functools.cache
def _graph_class(gv: Any) -> type:
    """A ``graphviz.Digraph`` that, in Jupyter, shows the install hint instead of failing without ``dot``."""

    class ValueGraph(gv.Digraph):
        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict:
            try:
                return super()._repr_mimebundle_(include, exclude, **kwargs)
            except gv.ExecutableNotFound:
                return {"text/plain": f"{_missing_dot('display the graph')}\n\n{self.source}"}

    return ValueGraph


def _missing_dot(task: str) -> str:
    return f"To {task}, microgradx needs Graphviz's `dot` program, which is not on PATH. {INSTALL_HINT}"


def _pipe(graph: Any, fmt: str) -> bytes:
    gv = _graphviz()
    try:
        return graph.pipe(format=fmt)
    except gv.ExecutableNotFound:
        raise GraphvizNotFoundError(_missing_dot(f"render {fmt.upper()}")) from None


