"""Tests of microgradx.viz: the DOT source read back structurally, and rendering with the real ``dot``."""

from __future__ import annotations

import html
import math
import os
import re
import shutil
import stat
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microgradx import Value, maximum
from microgradx.errors import MicrogradxError
from microgradx.viz import GraphvizNotFoundError, draw_graph, example_scalar_neuron, op_label, render_graph

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's `dot` is not installed (apt-get install graphviz)")

# ---------------------------------------------------------------------------------------------------------
# Reading the DOT source back: nodes with their attributes, edges, and which cluster each node is in
# ---------------------------------------------------------------------------------------------------------

NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$")
SUBGRAPH = re.compile(r"^\s*subgraph (\w+) \{$")
KEY = re.compile(r"\s*(\w+)=")


@dataclass
class Dot:
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    cluster_of: dict[str, str] = field(default_factory=dict)      # node id -> subgraph name
    cluster_label: dict[str, str] = field(default_factory=dict)
    graph_attrs: dict[str, str] = field(default_factory=dict)

    def values(self) -> dict[str, dict[str, str]]:
        return {k: a for k, a in self.nodes.items() if re.fullmatch(r"v\d+", k)}

    def ops(self) -> dict[str, dict[str, str]]:
        return {k: a for k, a in self.nodes.items() if re.fullmatch(r"op\d+", k)}

    def consts(self) -> dict[str, dict[str, str]]:
        return {k: a for k, a in self.nodes.items() if re.fullmatch(r"c\d+", k)}

    def by_name(self, name: str) -> str:
        """The id of the value node whose first cell is ``name`` (its label)."""
        found = [k for k, a in self.values().items() if name_of(a) == name]
        assert len(found) == 1, f"{len(found)} value nodes named {name!r}"
        return found[0]

    def inputs(self, node: str) -> list[str]:
        return [a for a, b, _ in self.edges if b == node]

    def outputs(self, node: str) -> list[str]:
        return [b for a, b, _ in self.edges if a == node]


def parse_attrs(text: str) -> dict[str, str]:
    """``k=v k="v" k=<html>`` -> dict; an HTML value keeps its markup, without the outer brackets."""
    attrs, i = {}, 0
    while i < len(text.rstrip()):
        m = KEY.match(text, i)
        assert m, f"cannot parse attributes at {text[i:i + 40]!r}"
        i = m.end()
        if text[i] == "<":                       # HTML-like: up to the matching '>'
            depth, j = 0, i
            while True:
                depth += {"<": 1, ">": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            value, i = text[i + 1:j], j + 1
        elif text[i] == '"':
            j = i + 1
            while text[j] != '"' or text[j - 1] == "\\":
                j += 1
            value, i = text[i + 1:j], j + 1
        else:
            j = i
            while j < len(text) and not text[j].isspace():
                j += 1
            value, i = text[i:j], j
        attrs[m[1]] = value
    return attrs


def parse(graph) -> Dot:
    dot = Dot()
    cluster = None
    for line in graph.source.splitlines():
        if m := SUBGRAPH.match(line):
            cluster = m[1]
        elif line.strip() == "}":
            cluster = None
        elif m := EDGE.match(line):
            dot.edges.append((m[1], m[2], parse_attrs(m[3] or "")))
        elif m := NODE.match(line):
            attrs = parse_attrs(m[2])
            if m[1] == "graph":
                (dot.cluster_label if cluster else dot.graph_attrs).update(
                    {cluster: attrs.get("label", "")} if cluster else attrs)
            elif m[1] not in ("node", "edge"):
                assert m[1] not in dot.nodes, f"node {m[1]} declared twice"
                dot.nodes[m[1]] = attrs
                if cluster:
                    dot.cluster_of[m[1]] = cluster
        elif KEY.match(line):                                   # graph attributes as a bare statement
            attrs = parse_attrs(line.strip())
            if cluster:
                dot.cluster_label[cluster] = attrs["label"]
            else:
                dot.graph_attrs.update(attrs)
    return dot


def cells(attrs: dict[str, str]) -> list[str]:
    """The text of each table cell of an HTML-like label (markup removed, entities decoded)."""
    found = re.findall(r"<TD[^>]*>(.*?)</TD>", attrs["label"])
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in found]


def name_of(attrs: dict[str, str]) -> str | None:
    """The bold name at the head of a value node, unescaped."""
    m = re.search(r"<B>(.*?)</B>", attrs["label"])
    return html.unescape(m[1].replace("<BR/>", "\n")) if m else None


def number_after(word: str, attrs: dict[str, str]) -> float:
    """The number after ``word`` in the label's cells ("grad -1.5" -> -1.5)."""
    for c in cells(attrs):
        if m := re.match(rf"{word} (\S+)", c):
            return float(m[1])
    raise AssertionError(f"no cell '{word} <number>' in {cells(attrs)}")


def fill(attrs: dict[str, str]) -> tuple[int, int, int]:
    """Background colour of a value node's table, or the fill of an op node, as RGB."""
    colour = re.search(r'BGCOLOR="(#\w{6})"', attrs["label"])[1] if "BGCOLOR" in attrs["label"] \
        else attrs["fillcolor"]
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def neuron(x=2.0, w=-3.0, b=0.5):
    """y = tanh(x*w + b), labelled, after backward."""
    xv, wv, bv = Value(x, label="x"), Value(w, label="w"), Value(b, label="b")
    y = (xv * wv + bv).tanh()
    y.label = "y"
    y.backward()
    return y, xv, wv, bv


# ---------------------------------------------------------------------------------------------------------
# Structure of the drawing
# ---------------------------------------------------------------------------------------------------------

def test_neuron_has_a_node_per_value_and_per_op_wired_input_to_output():
    y, x, w, b = neuron()
    dot = parse(draw_graph(y))
    assert len(dot.values()) == 6        # x, w, b, x*w, x*w + b, y
    assert sorted(a["label"] for a in dot.ops().values()) == ["*", "+", "tanh"]
    assert not dot.consts()
    op = {a["label"]: k for k, a in dot.ops().items()}
    # every op has exactly one output, and it is a value node
    product, total = dot.outputs(op["*"]), dot.outputs(op["+"])
    assert len(product) == len(total) == 1
    assert sorted(dot.inputs(op["*"])) == sorted([dot.by_name("x"), dot.by_name("w")])
    assert sorted(dot.inputs(op["+"])) == sorted([product[0], dot.by_name("b")])
    assert dot.inputs(op["tanh"]) == total
    assert dot.outputs(op["tanh"]) == [dot.by_name("y")]
    assert dot.inputs(dot.by_name("x")) == [] and len(dot.edges) == 8


def test_neuron_shows_data_and_the_gradients_of_backward():
    y, x, w, b = neuron(x=2.0, w=-3.0, b=0.5)
    dot = parse(draw_graph(y))
    n = 2.0 * -3.0 + 0.5
    dn = 1 - math.tanh(n) ** 2
    expected = {"x": (2.0, dn * -3.0), "w": (-3.0, dn * 2.0), "b": (0.5, dn), "y": (math.tanh(n), 1.0)}
    for name, (data, grad) in expected.items():
        node = dot.values()[dot.by_name(name)]
        assert number_after("data", node) == pytest.approx(data, rel=1e-3), name
        assert number_after("grad", node) == pytest.approx(grad, rel=1e-3), name
    assert [c.split()[0] for c in cells(dot.values()[dot.by_name("x")])] == ["x", "data", "grad"]


def test_negative_zero_is_drawn_as_0():
    x = Value(-0.0, label="x")            # data -0.0; its gradient is y's 1 times w = -0.0
    w = Value(-0.0, label="w")
    y = x * w + Value(np.array([-0.0, 1.0]), label="v")
    y.sum().backward()
    dot = parse(draw_graph(y))
    texts = [c for a in dot.values().values() for c in cells(a)]
    assert any(c.startswith("data 0") for c in texts) and any(c.startswith("grad 0") for c in texts)
    assert not [c for c in texts if re.search(r"(?<![\w.])-0(?![.\de])", c)], texts


def test_show_grad_false_leaves_the_gradient_out():
    y, *_ = neuron()
    dot = parse(draw_graph(y, show_grad=False))
    assert len(dot.values()) == 6
    assert not any(c.startswith("grad") for a in dot.values().values() for c in cells(a))


def test_a_value_used_twice_is_one_node_with_two_edges():
    x = Value(3.0, label="x")
    y = x * x
    dot = parse(draw_graph(y))
    assert len(dot.values()) == 2
    (op,) = dot.ops()
    assert dot.inputs(op) == [dot.by_name("x"), dot.by_name("x")]


def test_edges_into_an_op_whose_input_order_matters_are_numbered():
    a, b = Value(5.0, label="a"), Value(2.0, label="b")
    y = maximum((1.0 - a / b) + a * b, a)
    dot = parse(draw_graph(y))
    op = {attrs["label"]: k for k, attrs in dot.ops().items()}
    position = {(src, dst): e.get("headlabel") for src, dst, e in dot.edges}
    assert position[dot.by_name("a"), op["/"]] == "1" and position[dot.by_name("b"), op["/"]] == "2"
    (one,) = dot.consts()
    assert position[one, op["-"]] == "1"
    assert position[dot.outputs(op["/"])[0], op["-"]] == "2"
    for symmetric in ("+", "*", op_label("maximum")):
        assert all(position[src, op[symmetric]] is None for src in dot.inputs(op[symmetric]))


def test_raw_constants_are_grey_nodes_feeding_their_op():
    x = Value([1.0, 2.0, 3.0], label="x")
    k = Value(4.0, requires_grad=False, label="k")
    y = ((2 * x + np.array([10.0, 20.0, 30.0])) * k).sum()
    y.backward()
    dot = parse(draw_graph(y))
    consts = dot.consts()
    assert len(consts) == 2
    texts = {cells(a)[0] for a in consts.values()}
    assert texts == {"2", "(3,) float64 [10, 20, 30]"}
    for c in consts:
        (target,) = dot.outputs(c)
        assert target in dot.ops()
        assert dot.inputs(c) == []
    two = next(c for c, a in consts.items() if cells(a) == ["2"])
    assert dot.ops()[dot.outputs(two)[0]]["label"] == "*"
    # A Value that needs no gradient is a value node, greyed, without a gradient cell.
    k_node = dot.values()[dot.by_name("k")]
    assert [c.split()[0] for c in cells(k_node)] == ["k", "data"]
    assert fill(k_node) == fill(consts[two])


def test_tensor_node_shows_shape_dtype_and_a_summary_never_the_array():
    rng = np.random.default_rng(0)
    w = Value(rng.normal(size=(30, 40)).astype(np.float32), label="W")
    bias = Value(np.array([0.5, -1.0, 2.0], dtype=np.float32), label="bias")
    loss = (w * w).mean() + bias.sum()
    loss.backward()
    dot = parse(draw_graph(loss))
    w_cells = cells(dot.values()[dot.by_name("W")])
    assert w_cells[0] == "W (30, 40) float32"
    assert number_after("data mean", dot.values()[dot.by_name("W")]) == pytest.approx(
        float(np.mean(w.data)), rel=1e-3, abs=1e-6)
    data_cell = w_cells[1]
    norm = float(re.search(r"norm (\S+)", data_cell)[1])
    assert norm == pytest.approx(float(np.linalg.norm(w.data)), rel=1e-3)
    grad_norm = float(re.search(r"norm (\S+)", w_cells[2])[1])
    assert grad_norm == pytest.approx(float(np.linalg.norm(w.grad)), rel=1e-3)
    label = dot.values()[dot.by_name("W")]["label"]
    assert len(re.findall(r"-?\d+\.\d+", label)) <= 6, "the label holds array elements"
    # A tensor of at most 4 elements shows its values.
    b_cells = cells(dot.values()[dot.by_name("bias")])
    assert b_cells == ["bias (3,) float32", "data [0.5, -1, 2]", "grad [1, 1, 1]"]


def test_op_parameters_are_shown_and_defaults_left_out():
    x = Value(np.arange(12.0).reshape(3, 4), label="x")
    y = x[:, 1:3].sum(axis=1, keepdims=True).sum()
    dot = parse(draw_graph(y))
    labels = sorted(a["label"] for a in dot.ops().values())
    assert labels == ["getitem\\n[:, 1:3]", "sum", "sum\\naxis=1\\nkeepdims=True"]


def test_labels_are_escaped_for_dot():
    x = Value(1.0, label='<b>&"x"</b>')
    y = x * 2.0
    y.label = "line one\nline two"
    graph = draw_graph(y, title='a "quoted" <title>')
    dot = parse(graph)
    assert cells(dot.values()[dot.by_name('<b>&"x"</b>')])[0] == '<b>&"x"</b>'
    assert "&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;" in graph.source
    assert "line one<BR/>line two" in graph.source
    if shutil.which("dot"):
        ET.fromstring(graph.pipe(format="svg"))          # dot accepts it and writes valid XML


def test_any_text_is_drawn_as_written_and_never_breaks_the_dot_source():
    # DOT's quoted strings read backslashes as escapes (a final one swallows the rest of the graph) and
    # XML cannot hold control characters: titles, module names and labels all go as escaped HTML text.
    l1 = Layer(2, 1, 0)
    x = Value(np.ones((1, 2)), label="ctrl\x01char nul\x00 lone\ud800 form\x0cfeed \ufffe\uffff")
    y = l1(x).sum()
    y.label = 7                                         # not a string: drawn as str(label)
    title = "C:\\Users\\Nina\\graphs\\"             # C:\Users\Nina\graphs\ : ends in a backslash
    graph = draw_graph(y, title=title, modules={"layer\\": l1})
    dot = parse(graph)
    assert dot.graph_attrs["label"] == title
    assert list(dot.cluster_label.values()) == ["layer\\"]
    assert dot.by_name("7") is not None
    assert "ctrl\\x01char nul\\x00 lone\\ud800 form\\x0cfeed \\ufffe\\uffff" in graph.source
    if shutil.which("dot"):
        svg = ET.fromstring(graph.pipe(format="svg"))   # dot accepts it and writes valid XML
        texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
        assert title in texts and "layer\\" in texts


def test_rankdir_is_left_to_right_by_default_and_top_to_bottom_on_request():
    y, *_ = neuron()
    assert parse(draw_graph(y)).graph_attrs["rankdir"] == "LR"
    assert parse(draw_graph(y, rankdir="TB")).graph_attrs["rankdir"] == "TB"
    with pytest.raises(ValueError, match="rankdir"):
        draw_graph(y, rankdir="sideways")


def test_title_is_the_graph_label():
    y, *_ = neuron()
    assert parse(draw_graph(y, title="A neuron")).graph_attrs["label"] == "A neuron"


def test_drawing_twice_gives_the_same_source_with_unique_ids():
    y, *_ = neuron()
    first, second = draw_graph(y, grad_flow=True).source, draw_graph(y, grad_flow=True).source
    assert first == second
    parse(draw_graph(y))   # parse() asserts that no node id is declared twice


def test_draw_graph_refuses_what_is_not_a_value():
    with pytest.raises(TypeError, match="expected a Value"):
        draw_graph(np.ones(3))
    with pytest.raises(ValueError, match="max_nodes"):
        draw_graph(Value(1.0), max_nodes=0)


def test_example_scalar_neuron_is_labelled_and_backpropagated():
    o = example_scalar_neuron()
    assert o.label == "o" and o.data == pytest.approx(math.sqrt(0.5), abs=1e-6)
    dot = parse(draw_graph(o))
    expected_grads = {"x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0, "b": 0.5, "n": 0.5, "o": 1.0}
    for name, grad in expected_grads.items():
        assert number_after("grad", dot.values()[dot.by_name(name)]) == pytest.approx(grad, abs=1e-4)
    assert len(dot.ops()) == 5


# ---------------------------------------------------------------------------------------------------------
# Node limit
# ---------------------------------------------------------------------------------------------------------

def chain(n):
    """x -> v0 -> v1 ... -> v{n-1}, each v = v * 1.001 (labelled)."""
    x = Value(1.0, label="x")
    v = x
    for i in range(n):
        v = v * 1.001
        v.label = f"v{i}"
    return v


def note_counts(dot: Dot) -> tuple[int, int]:
    text = dot.nodes["more"]["label"].replace(",", "")
    m = re.match(r"(\d+) more values and (\d+) ops not drawn", text)
    assert m, text
    return int(m[1]), int(m[2])


def test_max_nodes_draws_the_values_nearest_the_output_and_says_what_is_left_out():
    dot = parse(draw_graph(chain(30), max_nodes=10))
    names = {cells(a)[0] for a in dot.values().values()}
    assert names == {f"v{i}" for i in range(20, 30)}
    assert note_counts(dot) == (21, 20)                 # v0..v19 and x; the ops that made v0..v19
    assert "max_nodes=10" in dot.nodes["more"]["label"]
    # the one op whose input was cut (the one that made v20) hangs off the note
    (cut,) = dot.outputs("more")
    assert dot.outputs(cut) == [dot.by_name("v20")]


def test_shared_values_are_counted_once_when_left_out():
    x = Value(2.0, label="x")
    h = x * x
    for _ in range(20):
        h = h + h * 0.5                                 # h is used twice each step
    dot = parse(draw_graph(h, max_nodes=5))
    total_values = 1 + 1 + 2 * 20                       # x, x*x, and two per step
    assert len(dot.values()) == 5
    assert note_counts(dot) == (total_values - 5, total_values - 5 - 1)   # all but the leaf x are ops


def test_no_note_when_everything_fits():
    dot = parse(draw_graph(chain(30), max_nodes=31))
    assert len(dot.values()) == 31 and "more" not in dot.nodes
    assert len(parse(draw_graph(chain(30), max_nodes=None)).values()) == 31


def test_deep_graph_is_walked_without_recursion():
    depth = 3000                                        # three times Python's default recursion limit
    dot = parse(draw_graph(chain(depth), max_nodes=None))
    assert len(dot.values()) == depth + 1 and len(dot.ops()) == depth


def reachable(root):
    seen, stack = {root}, [root]
    while stack:
        for a in stack.pop()._args:
            if isinstance(a, Value) and a not in seen:
                seen.add(a)
                stack.append(a)
    return seen


@st.composite
def random_graphs(draw):
    """A random DAG of scalar ops over a few leaves, with sharing and constants."""
    values = [Value(draw(st.floats(-2, 2)), label=f"leaf{i}") for i in range(draw(st.integers(1, 4)))]
    for _ in range(draw(st.integers(1, 25))):
        a = values[draw(st.integers(0, len(values) - 1))]
        kind = draw(st.sampled_from(["add", "mul", "const", "tanh"]))
        if kind == "tanh":
            values.append(a.tanh())
        elif kind == "const":
            values.append(a * draw(st.floats(-2, 2)))
        else:
            b = values[draw(st.integers(0, len(values) - 1))]
            values.append(a + b if kind == "add" else a * b)
    return values[-1], draw(st.one_of(st.none(), st.integers(1, 30)))


@given(random_graphs())
def test_drawing_matches_the_graph_for_any_dag_and_limit(case):
    root, limit = case
    everything = reachable(root)
    dot = parse(draw_graph(root, max_nodes=limit))
    shown = len(dot.values())
    assert shown == (len(everything) if limit is None else min(limit, len(everything)))
    if shown < len(everything):
        ops_total = sum(v._op is not None for v in everything)
        drawn_ops = len(dot.ops())
        assert note_counts(dot) == (len(everything) - shown, ops_total - drawn_ops)
    else:
        assert "more" not in dot.nodes
    # each op node: one edge out to its value; one edge in per input (drawn, constant, or via the note)
    for op in dot.ops():
        assert len(dot.outputs(op)) == 1
        assert dot.outputs(op)[0] == "v" + op[2:]


# ---------------------------------------------------------------------------------------------------------
# Gradient flow
# ---------------------------------------------------------------------------------------------------------

def test_grad_flow_colours_vanishing_blue_exploding_red_and_zero_grey():
    tiny, huge, zero = Value(1.0, label="tiny"), Value(1.0, label="huge"), Value(1.0, label="zero")
    bad = Value(1.0, label="bad")
    y = tiny * 1e-9 + huge * 1e9 + zero * 0.0 + bad * float("nan")
    y.backward()
    dot = parse(draw_graph(y, grad_flow=True))
    colour = {name: fill(dot.values()[dot.by_name(name)]) for name in ("tiny", "huge", "zero", "bad")}
    r, g, b = colour["tiny"]
    assert b > r + 50, f"vanishing gradient should be blue, got {colour['tiny']}"
    r, g, b = colour["huge"]
    assert r > b + 50, f"exploding gradient should be red, got {colour['huge']}"
    assert len(set(colour["zero"])) == 1, "zero gradient should be grey"
    assert len(set(colour.values())) == 4
    # edges carrying the gradients: wider for the huge one
    width = {name: float(dot.edges[[e[0] for e in dot.edges].index(dot.by_name(name))][2]["penwidth"])
             for name in ("tiny", "huge")}
    assert width["huge"] > width["tiny"]
    legend = " ".join(cells(dot.nodes["legend"]))
    assert "vanishing" in legend and "exploding" in legend


def test_without_grad_flow_there_is_no_legend_and_leaves_look_alike():
    tiny, huge = Value(1.0, label="tiny"), Value(1.0, label="huge")
    y = tiny * 1e-9 + huge * 1e9
    y.backward()
    dot = parse(draw_graph(y))
    assert "legend" not in dot.nodes
    assert fill(dot.values()[dot.by_name("tiny")]) == fill(dot.values()[dot.by_name("huge")])


def test_grad_flow_uses_the_rms_of_a_tensor_gradient():
    small = Value(np.ones(1000), label="small")
    big = Value(np.ones(1000), label="big")
    y = (small * 1e-8).sum() + (big * 1e4).sum()
    y.backward()
    dot = parse(draw_graph(y, grad_flow=True))
    r_small, _, b_small = fill(dot.values()[dot.by_name("small")])
    r_big, _, b_big = fill(dot.values()[dot.by_name("big")])
    assert b_small > r_small and r_big > b_big


# ---------------------------------------------------------------------------------------------------------
# Module clusters
# ---------------------------------------------------------------------------------------------------------

class Layer:
    """A stand-in for an nn module: weight and bias, named."""

    def __init__(self, n_in, n_out, seed):
        rng = np.random.default_rng(seed)
        self.w = Value(rng.normal(size=(n_in, n_out)))
        self.b = Value(np.zeros(n_out))

    def named_parameters(self):
        return [("weight", self.w), ("bias", self.b)]

    def __call__(self, x):
        return x @ self.w + self.b


class Unnamed:
    def __init__(self, *params):
        self.params = params

    def parameters(self):
        return list(self.params)


def test_modules_group_their_parameters_and_the_ops_that_use_them():
    l1, l2 = Layer(3, 4, 0), Layer(4, 2, 1)
    x = Value(np.ones((5, 3)), label="x")
    loss = l2(l1(x).tanh()).sum()
    loss.backward()
    dot = parse(draw_graph(loss, modules={"layer1": l1, "layer2": l2}))
    assert sorted(dot.cluster_label.values()) == ["layer1", "layer2"]
    name_of = {c: lab for c, lab in dot.cluster_label.items()}
    groups: dict[str, list[str]] = {}
    for node, cluster in dot.cluster_of.items():
        label = cells(dot.nodes[node])[0] if node.startswith("v") else dot.nodes[node]["label"]
        groups.setdefault(name_of[cluster], []).append(label.split()[0])
    # weight, bias, and the @ and + that consume them; nothing else
    assert sorted(groups["layer1"]) == sorted(["weight", "bias", "@", "+"])
    assert sorted(groups["layer2"]) == sorted(["weight", "bias", "@", "+"])
    assert dot.by_name("x") not in dot.cluster_of


class Net:
    """A stand-in for a nested model: two layers, named by path; their Values share labels, as in nn."""

    def __init__(self):
        self.layers = [Layer(2, 3, 0), Layer(3, 1, 1)]
        for layer in self.layers:
            layer.w.label, layer.b.label = "weight", "bias"

    def named_parameters(self):
        return [(f"layers.{i}.{name}", p) for i, layer in enumerate(self.layers)
                for name, p in layer.named_parameters()]

    def __call__(self, x):
        return self.layers[1](self.layers[0](x).tanh())


def test_parameters_are_titled_by_their_path_in_the_module():
    net = Net()
    y = net(np.ones((4, 2))).sum()
    dot = parse(draw_graph(y, modules={"net": net}))
    assert list(dot.cluster_label.values()) == ["net"]
    names = sorted(name_of(dot.nodes[n]) for n in dot.cluster_of if n.startswith("v"))
    assert names == ["layers.0.bias", "layers.0.weight", "layers.1.bias", "layers.1.weight"]


def test_a_single_module_is_titled_by_its_class_and_parameters_alone_suffice():
    a, b = Value(2.0), Value(3.0, label="own label")
    y = a * b
    dot = parse(draw_graph(y, modules=Unnamed(a, b)))
    assert list(dot.cluster_label.values()) == ["Unnamed"]
    names = {cells(dot.nodes[n])[0] for n in dot.cluster_of if n.startswith("v")}
    assert names == {"param0", "own label"}       # without names from the module, its own label
    with pytest.raises(TypeError, match="named_parameters"):
        draw_graph(y, modules={"bad": object()})


# ---------------------------------------------------------------------------------------------------------
# Rendering and files
# ---------------------------------------------------------------------------------------------------------

def svg_nodes(svg: bytes, kind: str = "node") -> int:
    root = ET.fromstring(svg)
    return sum(1 for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == kind)


@needs_dot
def test_render_svg_with_dot(tmp_path):
    y, *_ = neuron()
    out = render_graph(y, tmp_path / "neuron.svg")
    assert out == tmp_path / "neuron.svg"
    assert svg_nodes(out.read_bytes()) == 6 + 3
    assert os.listdir(tmp_path) == ["neuron.svg"]


@needs_dot
def test_render_svg_of_a_tensor_graph_with_clusters_note_and_legend(tmp_path):
    l1 = Layer(3, 4, 0)
    y = (l1(np.ones((2, 3))).tanh() * 2.0).sum()
    y.backward()
    graph = draw_graph(y, modules={"layer": l1}, grad_flow=True, max_nodes=4)
    dot = parse(graph)
    svg = render_graph(graph, tmp_path / "g.svg").read_bytes()
    assert svg_nodes(svg) == len(dot.nodes)          # values, ops, constants, note and legend
    assert svg_nodes(svg, "cluster") == len(dot.cluster_label)


@needs_dot
def test_render_png_and_inline_display(tmp_path):
    y, *_ = neuron()
    png = render_graph(y, tmp_path / "neuron.png", rankdir="TB").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    bundle = draw_graph(y)._repr_mimebundle_()
    assert svg_nodes(bundle["image/svg+xml"].encode()) == 9


def test_render_dot_source_needs_no_program(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    y, *_ = neuron()
    out = render_graph(y, tmp_path / "neuron.dot", rankdir="TB")
    text = out.read_text()
    assert text == draw_graph(y, rankdir="TB").source
    assert "rankdir=TB" in text
    # The format is read without regard to case, given or taken from the suffix.
    assert render_graph(y, tmp_path / "upper.DOT").read_text() == draw_graph(y).source
    assert render_graph(y, tmp_path / "given", format="DOT").read_text() == draw_graph(y).source


def test_missing_dot_raises_our_error_naming_the_program_and_the_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    y, *_ = neuron()
    for fmt in ("svg", "png"):
        with pytest.raises(GraphvizNotFoundError) as info:
            render_graph(y, tmp_path / f"neuron.{fmt}")
        assert isinstance(info.value, MicrogradxError) and isinstance(info.value, RuntimeError)
        message = str(info.value)
        for hint in ("`dot`", "apt-get install graphviz", "brew install graphviz", "conda install graphviz"):
            assert hint in message
    assert os.listdir(tmp_path) == []
    # Jupyter gets the hint and the DOT text instead of a traceback
    bundle = draw_graph(y)._repr_mimebundle_()
    assert "apt-get install graphviz" in bundle["text/plain"] and "digraph" in bundle["text/plain"]


def test_failed_render_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "g.svg"
    target.write_bytes(b"old")
    y, *_ = neuron()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GraphvizNotFoundError):
        render_graph(y, target)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["g.svg"]
    monkeypatch.undo()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        render_graph(y, target, format="dot")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["g.svg"]


def test_successful_render_replaces_the_file_with_ordinary_permissions(tmp_path):
    target = tmp_path / "g.dot"
    target.write_bytes(b"old")
    y, *_ = neuron()
    render_graph(y, target)
    assert target.read_text().startswith("digraph") and os.listdir(tmp_path) == ["g.dot"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_render_graph_checks_its_arguments(tmp_path):
    y, *_ = neuron()
    with pytest.raises(ValueError, match="format"):
        render_graph(y, tmp_path / "g.jpg")
    with pytest.raises(TypeError, match="only when given a Value"):
        render_graph(draw_graph(y), tmp_path / "g.dot", rankdir="TB")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------
# Scale
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_100k_node_graph_is_drawn_with_a_limit_and_counts_what_it_leaves_out():
    # Timing is for benchmarks/, not tests: this checks the deep walk (no recursion) and the counts.
    x, w = Value(0.5, label="x"), Value(0.9, label="w")
    y = x
    steps = 34_000                                   # three ops a step: 102,002 Values
    for _ in range(steps):
        y = (y * w + 0.1).tanh()
    graph = draw_graph(y, max_nodes=500)
    dot = parse(graph)
    assert len(dot.values()) == 500
    # w feeds every multiply, so it is among the 500 drawn: all the hidden Values but x are op outputs
    hidden = 2 + 3 * steps - 500
    assert note_counts(dot) == (hidden, hidden - 1)


def test_a_value_s_draw_method_is_draw_graph():
    y = Value(2.0, label="x") * 3
    assert y.draw(rankdir="TB").source == draw_graph(y, rankdir="TB").source
