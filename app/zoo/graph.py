"""The model page's graph view: the data-flow graph at a folding (the JSON of
``/api/models/{id}/graph``) and its layout by Graphviz ``dot``, top to bottom
with parallel branches side by side and open blocks drawn as frames.

Graphviz rather than our own layout: layered drawing of a DAG with nested
clusters (crossing reduction, edge routing) is its core job and it is
maintained; it is installed as Debian's ``graphviz`` package by the Makefile.
"""

from __future__ import annotations

import html
import shutil
import subprocess

from app.analysis_cache import AnalysisCache
from app.errors import InvalidParameter, LayoutUnavailable
from app.zoo.data import analysis_for
from app.zoo.schemas import GraphEdge, GraphNode, GraphResponse
from models.catalog import ModelEntry
from models.graph import fold, nesting_depth, suggested_depth

# Past these, dot's crossing reduction can run for minutes: its cost grows
# with the edges per node (unfolded DenseNet-161, every dense layer feeding
# every later one: 565 nodes, 1629 edges, 36 s; NASNet-A Large: 1240 nodes,
# 1455 edges, 4.5 s). The user folds instead.
MAX_LAYOUT_NODES = 1500
MAX_LAYOUT_EDGES = 1000
MAX_LAYOUT_EDGES_PER_NODE = 1.6
LAYOUT_TIMEOUT_S = 30
# Past this many edges dot's last phase (network simplex placing every node
# and every long edge's virtual nodes across) runs without end on dense nets:
# unfolded DenseNet-121 (425 nodes, 959 edges, each dense layer feeding all
# later ones in its block) was still placing after 300 s. Capped to one pass
# per node (nslimit=1) and crossing reduction to 0.3 of its default passes
# (mclimit), it takes 2-5 s (bench/graph_layout.py); the picture is a little
# less tidy, the ranks and the order the same.
BIG_GRAPH_EDGES = 500
BIG_GRAPH_ATTRIBUTES = "nslimit=1, mclimit=0.3"


def graph_data(cache: AnalysisCache, entry: ModelEntry, resolution: int | None = None, depth: int | None = None,
               opened: frozenset[str] = frozenset(), closed: frozenset[str] = frozenset()) -> GraphResponse:
    """The graph folded at ``depth`` (None: unfolded), blocks in ``opened``
    open and those in ``closed`` closed whatever their depth. Raises
    InvalidParameter for an id that is no block of the model."""
    analysis = analysis_for(cache, entry, resolution)
    blocks = {node.id for node in analysis.graph if node.kind == "block"}
    unknown = sorted((opened | closed) - blocks)
    if unknown:
        raise InvalidParameter(f"{entry.id} has no block {', '.join(unknown[:5])}; block ids are the graph's "
                               "nodes of kind 'block' (module paths, '#2' for a second call).")
    view = fold(analysis.graph, analysis.layers, depth, opened, closed)
    return GraphResponse(
        id=entry.id, input_shape=analysis.input_shape, depth=depth, max_depth=view.max_depth,
        suggested_depth=suggested_depth(analysis.graph, analysis.layers),
        nodes=[GraphNode(**node) for node in view.nodes],
        edges=[GraphEdge(source=s, target=t) for s, t in view.edges],
        blocks=[GraphNode(**block) for block in view.blocks],
    )


def graph_outline(cache: AnalysisCache, entry: ModelEntry, resolution: int | None = None) -> dict[str, int]:
    """What the page's graph view starts from: the folding it opens at
    (``depth``, so big nets open folded) and the deepest nesting."""
    analysis = analysis_for(cache, entry, resolution)
    return {"depth": suggested_depth(analysis.graph, analysis.layers), "max_depth": nesting_depth(analysis.graph)}


def _shape(node: GraphNode) -> str:
    shape = node.output_shape
    return "×".join(map(str, shape[1:])) if shape and len(shape) > 1 else "—"


def _label(node: GraphNode) -> str:
    """Graphviz HTML-like label: the type in bold over the output shape (C×H×W)."""
    name = node.path.rsplit(".", 1)[-1] if node.path else "model"
    lines = [f"<b>{html.escape(('▸ ' if node.folded else '') + node.type)}</b>",
             f'<font point-size="9">{html.escape(_shape(node))}</font>']
    if node.folded:
        lines.append(f'<font point-size="8" color="#555555">{html.escape(name)} · {node.contains} inside</font>')
    return "<" + "<br/>".join(lines) + ">"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_STYLE = {
    "input": 'shape=box, style="rounded,filled", fillcolor="#dddddd"',
    "layer": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    "block": 'shape=box, style="rounded,filled,bold", peripheries=2, fillcolor="#ffffff"',
    "op": 'shape=ellipse, style="filled", fillcolor="#ffffff"',
}


def dot_source(graph: GraphResponse) -> str:
    """The DOT text: node i has SVG id ``gn_i`` (its index in ``graph.nodes``),
    open block j is frame ``gb_j`` (its index in ``graph.blocks``)."""
    index = {node.id: i for i, node in enumerate(graph.nodes)}
    children: dict[str | None, list[str]] = {}
    for i, node in enumerate(graph.nodes):
        tooltip = f"{node.path or node.type} · {node.type} · params {node.params:,} · MACs {node.macs:,}"
        line = (f'n{i} [id="gn_{i}", class="{node.kind}", label={_label(node)}, '
                f'tooltip={_quote(tooltip)}, {_STYLE[node.kind]}];')
        children.setdefault(node.parent, []).append(line)
    frames = {block.id for block in graph.blocks}
    for j, block in enumerate(graph.blocks):
        children.setdefault(block.parent if block.parent in frames else None, [])

    def cluster(j: int) -> list[str]:
        block = graph.blocks[j]
        title = f"{block.path} · {block.type}"
        inner = [cluster(k) for k, b in enumerate(graph.blocks) if b.parent == block.id]
        return [f'subgraph cluster_{j} {{ id="gb_{j}"; label={_quote(title)}; tooltip={_quote(title)};',
                # dot places sibling clusters right to left in the order they are declared: reversed, they
                # come out left to right in execution order (inception's branches 1 to 4, as in the paper)
                *(line for lines in inner[::-1] for line in lines), *children.get(block.id, []), "}"]

    top = [line for j, b in enumerate(graph.blocks) if b.parent not in frames for line in cluster(j)]
    edges = [f'n{index[e.source]} -> n{index[e.target]} [id="ge_{k}"];' for k, e in enumerate(graph.edges)]
    # A fork's branches side by side, left to right in execution order: the targets that only the fork
    # feeds share a rank, chained by invisible flat edges (dot keeps a flat edge's tail left of its head).
    inputs: dict[str, int] = {}
    forks: dict[str, list[str]] = {}
    for e in graph.edges:
        inputs[e.target] = inputs.get(e.target, 0) + 1
        forks.setdefault(e.source, []).append(e.target)
    for targets in forks.values():
        branches = sorted((t for t in targets if inputs[t] == 1), key=lambda t: index[t])
        if len(branches) > 1:
            edges.append("{rank=same; " + " -> ".join(f"n{index[t]}" for t in branches) + " [style=invis];}")
    return "\n".join([
        "digraph convzoo {",
        # ordering=in: a join's inputs left to right in the order the op takes them
        # (inception's branches 1 to 4, a residual's main path before its shortcut).
        'graph [rankdir=TB, newrank=true, ordering=in, nodesep=0.2, ranksep=0.3, fontname="Helvetica", fontsize=10, labeljust=l, '
        'style="rounded,dashed", color="#8899aa", bgcolor="transparent"];',
        *([f"graph [{BIG_GRAPH_ATTRIBUTES}];"] if len(graph.edges) > BIG_GRAPH_EDGES else []),
        'node [fontname="Helvetica", fontsize=10, color="#667788", margin="0.08,0.03", height=0.3];',
        'edge [color="#667788", arrowsize=0.6];',
        *children.get(None, []), *top, *edges, "}",
    ])


def graph_svg(graph: GraphResponse) -> str:
    """The graph laid out by Graphviz ``dot`` as SVG. Raises InvalidParameter
    past the layout limits, LayoutUnavailable without Graphviz or past the
    time limit."""
    max_edges = max(MAX_LAYOUT_EDGES, int(MAX_LAYOUT_EDGES_PER_NODE * len(graph.nodes)))
    if len(graph.nodes) > MAX_LAYOUT_NODES or len(graph.edges) > max_edges:
        raise InvalidParameter(
            f"{len(graph.nodes)} nodes and {len(graph.edges)} edges at this folding: the layout takes at most "
            f"{MAX_LAYOUT_NODES} nodes and {max_edges} edges; fold more blocks (a smaller depth).")
    dot = shutil.which("dot")
    if dot is None:
        raise LayoutUnavailable("Graphviz is not installed (Debian package graphviz; `make serve` installs it).")
    try:
        result = subprocess.run([dot, "-Tsvg"], input=dot_source(graph), capture_output=True, text=True,
                                timeout=LAYOUT_TIMEOUT_S, check=True)
    except subprocess.TimeoutExpired:
        raise LayoutUnavailable(f"Graphviz took over {LAYOUT_TIMEOUT_S} s to lay this folding out "
                                f"({len(graph.nodes)} nodes, {len(graph.edges)} edges) and was stopped; fold more "
                                "blocks (a smaller depth), or use the graph's JSON.") from None
    except subprocess.CalledProcessError as exc:
        raise LayoutUnavailable(f"Graphviz failed: {exc.stderr.strip()[:300]}") from None
    return result.stdout
