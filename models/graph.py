"""The network as a data-flow graph, recorded during the analysis trace.

No second tracer and no torch.fx: the same meta forward pass that counts MACs
(models/analysis.py) tags every tensor with the graph node that produced it.
Nodes are:

- ``input``: the network input;
- ``layer``: a call of a module without children (its inputs are the
  producers of the tensors it is called with);
- ``block``: a call of a module with children (a residual bottleneck, an
  Inception module ...): the parent of what runs inside it;
- ``op``: a functional op run inside a block (or the model's own forward)
  that joins the outputs of two or more nodes -- the ``+`` of a residual,
  ``torch.cat``, the ``*`` of a squeeze-excitation -- or that has a cost of
  its own (an attention matmul, ``F.linear`` on a child's weight). Its
  ``type`` names the op (``add``, ``cat``, ``mul``, ``matmul``, ``linear``,
  ``attention`` ...) and its ``path`` is the block it runs in.

Any other functional op (a view, ``F.relu``, ``torch.flatten``) passes its
input's producer on. ``fold`` turns the recorded graph into the one drawn at
a folding depth: blocks below it become one node with their summed costs.
Netron, torchview and Model Explorer draw the same kind of nested graph.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch

from models import receptive_field
from models.meta import flat_leaves

_ATTR = "_convzoo_node"
INPUT_ID = "input"

aten = torch.ops.aten
# aten overload packets whose op is better known by another name.
_OP_NAMES = {
    "addmm": "linear", "mm": "matmul", "bmm": "matmul", "baddbmm": "matmul", "convolution": "conv",
    "_scaled_dot_product_flash_attention_for_cpu": "attention", "_scaled_dot_product_efficient_attention":
        "attention", "_scaled_dot_product_flash_attention": "attention", "_scaled_dot_product_cudnn_attention":
        "attention", "_scaled_dot_product_attention_math": "attention",
}


@dataclass
class GraphNode:
    """One node of the recorded graph. ``inputs``: ids of the nodes whose
    outputs it consumes (for a block: none, its contents carry the edges).
    ``row``: the index of its row in ``Analysis.layers`` (module calls); the
    costs and shape of a module call are read from that row, those of an op
    and of the input are kept here."""

    id: str
    kind: str  # input | layer | block | op
    path: str
    type: str
    parent: str | None = None
    inputs: list[str] = field(default_factory=list)
    row: int | None = None
    output_shape: list[int] | None = None
    macs: int = 0
    receptive_field: int | None = None


_OPTIONAL = {"parent": None, "inputs": [], "row": None, "output_shape": None, "macs": 0, "receptive_field": None}


def node_to_dict(node: GraphNode) -> dict[str, Any]:
    """The node for the cache file, fields at their defaults left out (a third of the size)."""
    return {k: v for k, v in vars(node).items() if k not in _OPTIONAL or v != _OPTIONAL[k]}


def _producer(t: Any) -> str | None:
    return getattr(t, _ATTR, None) if isinstance(t, torch.Tensor) else None


def _producers(leaves: list) -> list[str]:
    found: list[str] = []
    for t in leaves:
        node = _producer(t)
        if node is not None and node not in found:
            found.append(node)
    return found


def _tag(obj: Any, node_id: str) -> None:
    for t in flat_leaves(obj, []) if isinstance(obj, (tuple, list, dict)) else [obj]:
        # A parameter handed out as an output (a learned embedding) outlives the trace: not tagged.
        if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter):
            setattr(t, _ATTR, node_id)


def op_name(func) -> str:
    name = func._overloadpacket.__name__
    return _OP_NAMES.get(name, name.rstrip("_") or name)


class GraphRecorder:
    """Builds the graph from the analysis hooks: ``enter``/``exit`` around
    each module call, ``op`` for each aten op run outside a leaf module."""

    def __init__(self, x: torch.Tensor) -> None:
        self.nodes = [GraphNode(id=INPUT_ID, kind="input", path="", type="Input", output_shape=list(x.shape))]
        self.rows: list[Any] = [None]  # each node's LayerRow (object), resolved to indexes by ``finish``
        self._calls: list[GraphNode] = []  # module calls now running
        self._blocks: list[GraphNode] = []  # the blocks now running, innermost last
        self._seen: dict[str, int] = {}  # calls so far per module path or op name
        _tag(x, INPUT_ID)

    def _unique(self, base: str) -> str:
        count = self._seen.get(base, 0) + 1
        self._seen[base] = count
        return base if count == 1 else f"{base}#{count}"

    def enter(self, row, args: tuple) -> None:
        node = GraphNode(id=self._unique(row.path), kind="layer" if row.is_leaf else "block", path=row.path,
                         type=row.type, parent=self._blocks[-1].id if self._blocks else None,
                         inputs=_producers(flat_leaves(args, [])) if row.is_leaf else [])
        self.nodes.append(node)
        self.rows.append(row)
        self._calls.append(node)
        if not row.is_leaf:
            self._blocks.append(node)

    def exit(self, output: Any) -> None:
        node = self._calls.pop()
        if node.kind == "block":
            self._blocks.pop()
        else:
            _tag(output, node.id)

    def op(self, func, leaves: list, out: Any, macs: int | None) -> None:
        """An aten op outside any leaf module; ``macs`` is None for ops without a cost formula."""
        producers = _producers(leaves)
        if not producers:
            return
        if len(producers) == 1 and macs is None:
            _tag(out, producers[0])  # a view or an elementwise op: the data keeps its producer
            return
        outputs = [out] if isinstance(out, torch.Tensor) else [t for t in flat_leaves(out, [])
                                                                 if isinstance(t, torch.Tensor)]
        if not outputs:  # a comparison read back as a Python value: no data flows on
            return
        block = self._blocks[-1] if self._blocks else None
        name = op_name(func)
        rf = receptive_field.of(outputs)
        node = GraphNode(id=self._unique(f"{block.id if block else ''}:{name}"), kind="op",
                         path=block.path if block else "", type=name, parent=block.id if block else None,
                         inputs=producers, output_shape=list(outputs[0].shape),
                         macs=macs or 0, receptive_field=rf[0] if rf else None)
        self.nodes.append(node)
        self.rows.append(None)
        _tag(out, node.id)

    def finish(self, layers: list) -> list[GraphNode]:
        """The nodes, each module call pointing at its row's index in ``layers``."""
        index = {id(row): i for i, row in enumerate(layers)}
        for node, row in zip(self.nodes, self.rows):
            if row is not None:
                node.row = index[id(row)]
        return self.nodes


@dataclass
class GraphView:
    """The graph as drawn at one folding: ``nodes`` (layers, ops and closed
    blocks, in execution order), ``edges`` (source id, target id) between
    them, and ``blocks``, the open blocks that hold them (drawn as frames)."""

    nodes: list[dict[str, Any]]
    edges: list[tuple[str, str]]
    blocks: list[dict[str, Any]]
    max_depth: int


def _levels(nodes: list[GraphNode]) -> dict[str, int]:
    """Nesting depth of each node: 1 at the top, one more inside each block
    call (a block is entered before anything runs in it)."""
    level: dict[str, int] = {}
    for node in nodes:
        level[node.id] = level[node.parent] + 1 if node.parent else 1
    return level


def nesting_depth(nodes: list[GraphNode]) -> int:
    """How deep blocks nest: folding at this depth or deeper folds nothing."""
    return max(_levels(nodes).values())


def _representatives(nodes: list[GraphNode], is_open) -> dict[str, str]:
    """Each node's visible stand-in: itself, or the outermost closed block around it."""
    rep: dict[str, str] = {}
    for node in nodes:
        parent = node.parent
        if parent is None:
            rep[node.id] = node.id
        elif rep[parent] != parent or not is_open(parent):
            rep[node.id] = rep[parent]
        else:
            rep[node.id] = node.id
    return rep


def _describe(node: GraphNode, layers: list, level: int) -> dict[str, Any]:
    row = layers[node.row] if node.row is not None else None
    return {
        "id": node.id, "kind": node.kind, "path": node.path, "type": node.type, "parent": node.parent,
        "depth": level, "row": node.row,
        "output_shape": row.output_shape if row is not None else node.output_shape,
        "params": row.params if row is not None else 0,
        "macs": row.macs if row is not None else node.macs,
        "receptive_field": row.receptive_field if row is not None else node.receptive_field,
    }


def fold(nodes: list[GraphNode], layers: list, depth: int | None = None, opened: set[str] = frozenset(),
         closed: set[str] = frozenset()) -> GraphView:
    """The graph with blocks nested ``depth`` or more deep closed (None: all
    open), except those in ``opened``; blocks in ``closed`` closed too. A
    closed block is one node carrying its row's costs (its params and MACs
    include everything inside it); its edges are those that cross its border."""
    level = _levels(nodes)

    def is_open(block_id: str) -> bool:
        if block_id in opened:
            return True
        return (depth is None or level[block_id] < depth) and block_id not in closed

    rep = _representatives(nodes, is_open)
    inside = Counter(rep[node.id] for node in nodes if node.kind != "block")
    visible, frames = [], []
    for node in nodes:
        if rep[node.id] != node.id:
            continue
        described = _describe(node, layers, level[node.id])
        if node.kind == "block" and is_open(node.id):
            frames.append(described)
        elif node.kind != "block" or inside[node.id]:  # a block with nothing inside draws nothing
            described["folded"] = node.kind == "block"
            described["contains"] = inside[node.id] if node.kind == "block" else 0
            visible.append(described)
    edges: dict[tuple[str, str], None] = {}
    for node in nodes:
        for source in node.inputs:
            edge = rep[source], rep[node.id]
            if edge[0] != edge[1]:
                edges[edge] = None
    used = {n["parent"] for n in visible}
    for frame in reversed(frames):  # outer frames hold inner ones
        if frame["id"] in used:
            used.add(frame["parent"])
    return GraphView(nodes=visible, edges=list(edges),
                     blocks=[f for f in frames if f["id"] in used], max_depth=max(level.values()))


def suggested_depth(nodes: list[GraphNode], layers: list, limit: int = 60) -> int:
    """The deepest folding that draws at most ``limit`` nodes (at least 1): big
    nets open folded and stay readable."""
    best = 1
    for depth in range(2, nesting_depth(nodes) + 1):
        if len(fold(nodes, layers, depth).nodes) > limit:
            break
        best = depth
    return best
