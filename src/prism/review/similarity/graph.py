"""Structural comparison of architecture graphs, independent of the names a miner chose.

The graph hash (evaluation/graph.py) changes with every class and attribute name, so a renamed
copy has a new hash. Here a graph document is turned, by an adapter, into a generic form — node
labels that carry only what names cannot change (torch module types, parameter shapes and dtypes,
data-flow operations) and edges — and compared by Weisfeiler-Lehman subtree features (Shervashidze
et al. 2011): the multiset of each node's label refined three times by its neighbours' labels.
Two graphs that differ only in names have identical features; their weighted Jaccard is 1.

Labels carry no widths: a parameter is labelled by its rank and dtype, not its exact shape, so
nudging a width (128 -> 136) leaves the structure identical (issue 15). Widths are compared
separately (`width_similarity`, over the sorted parameter sizes), so that a structural match can
still tell a copy with tweaked widths (near 1) from the same textbook structure at another scale.

Adapters take the document as the evaluation helper writes it; pass another adapter for another
form. Everything is hashed with blake2b, so features are stable across machines.
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prism.review.similarity.errors import GraphFormatError, SimilarityError
from prism.review.similarity.hashing import band_keys, h64, minhash

WL_ITERATIONS = 3
GRAPH_BINS, GRAPH_ROWS = 32, 4
# Widths at least this similar (mean min/max ratio of the sorted parameter sizes) are "the same
# scale": a width tweak of a copy scores ~0.9, the same structure at twice the width ~0.4.
WIDTH_NEAR = 0.75


@dataclass(frozen=True, slots=True)
class GraphView:
    """The generic form: one label per node, directed edges between node indices."""

    labels: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    widths: tuple[int, ...] = ()  # element count of each parameter, for the separate width check


GraphAdapter = Callable[[Mapping[str, Any]], GraphView]


@dataclass(frozen=True, slots=True)
class GraphFingerprint:
    graph_hash: str
    node_count: int
    edge_count: int
    features: tuple[int, ...]  # sorted WL features, each occurrence counted (a multiset as a set)
    minhash: tuple[int, ...]
    band_keys: tuple[int, ...]
    widths: tuple[int, ...] = ()  # sorted parameter element counts

    def to_blob(self) -> bytes:
        header = json.dumps(
            {
                "graph_hash": self.graph_hash,
                "node_count": self.node_count,
                "edge_count": self.edge_count,
                "minhash": list(self.minhash),
                "band_keys": list(self.band_keys),
                "widths": list(self.widths),
            },
            separators=(",", ":"),
        ).encode("utf-8")
        arr = array("Q", self.features)
        if sys.byteorder == "big":
            arr.byteswap()
        return struct.pack("<II", len(header), len(self.features)) + header + arr.tobytes()

    @classmethod
    def from_blob(cls, blob: bytes) -> GraphFingerprint:
        try:
            header_len, count = struct.unpack_from("<II", blob, 0)
            meta = json.loads(blob[8 : 8 + header_len])
            arr = array("Q")
            arr.frombytes(blob[8 + header_len : 8 + header_len + 8 * count])
            if sys.byteorder == "big":
                arr.byteswap()
            return cls(
                graph_hash=str(meta["graph_hash"]),
                node_count=int(meta["node_count"]),
                edge_count=int(meta["edge_count"]),
                features=tuple(arr),
                minhash=tuple(int(v) for v in meta["minhash"]),
                band_keys=tuple(int(v) for v in meta["band_keys"]),
                widths=tuple(int(v) for v in meta.get("widths", ())),
            )
        except (struct.error, ValueError, KeyError, TypeError) as exc:
            raise SimilarityError(f"stored graph fingerprint is corrupt: {exc}") from exc


def _list(doc: Mapping[str, Any], key: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise GraphFormatError(f"graph field {key!r} must be a list")
    return value


def _module_label(type_name: str) -> str:
    # torch's classes keep their name; a miner's class name is a choice, not structure.
    return type_name if type_name.startswith("torch") else "user"


def prism_graph_adapter(doc: Mapping[str, Any]) -> GraphView:
    """`prism.architecture_graph.v1` (modules, parameters, buffers, optional fx data flow)."""
    if not isinstance(doc, Mapping):
        raise GraphFormatError("graph document must be a JSON object")
    if "nodes" in doc:
        return generic_graph_adapter(doc)
    labels: list[str] = []
    edges: list[tuple[int, int]] = []
    widths: list[int] = []
    by_path: dict[str, int] = {}
    try:
        for module in _list(doc, "modules"):
            path, type_name = str(module["path"]), str(module["type"])
            by_path[path] = len(labels)
            labels.append("module:" + _module_label(type_name))
            if path:
                parent = path.rsplit(".", 1)[0] if "." in path else ""
                if parent in by_path:
                    edges.append((by_path[parent], by_path[path]))
        tensor_labels: dict[str, str] = {}
        for kind in ("parameters", "buffers"):
            for item in _list(doc, kind):
                name = str(item["name"])
                shape = [int(d) for d in item["shape"]]
                label = f"{kind}:rank{len(shape)}:{item.get('dtype', '')}"  # widths are checked apart
                if kind == "parameters":
                    widths.append(_numel(shape))
                tensor_labels[name] = label
                owner = name.rsplit(".", 1)[0] if "." in name else ""
                index = len(labels)
                labels.append(label)
                if owner in by_path:
                    edges.append((by_path[owner], index))
        module_types = {str(m["path"]): _module_label(str(m["type"])) for m in _list(doc, "modules")}
        base = len(labels)
        for i, node in enumerate(_list(doc, "dataflow")):
            op, target = str(node["op"]), str(node.get("target", ""))
            if op == "call_module":
                target = module_types.get(target, "user")
            elif op == "get_attr":
                target = tensor_labels.get(target, "attr")
            elif op == "call_function" and not target.startswith(("torch", "operator", "builtins", "math", "_")):
                target = "user"
            labels.append(f"flow:{op}:{target}")
            for src in node.get("inputs", []):
                if not 0 <= int(src) < i:
                    raise GraphFormatError(f"dataflow node {i} has an input {src} that does not precede it")
                edges.append((base + int(src), base + i))
    except (KeyError, TypeError, ValueError) as exc:
        raise GraphFormatError(f"graph document does not have the expected fields: {exc}") from exc
    return GraphView(tuple(labels), tuple(edges), tuple(widths))


def _numel(shape: list[int]) -> int:
    out = 1
    for d in shape:
        out *= max(d, 0)
    return out


def generic_graph_adapter(doc: Mapping[str, Any]) -> GraphView:
    """`{"nodes": [{"id", "op"|"type"|"kind"|"target", "shape"?}], "edges": [[a, b] | {"src", "dst"}]}`."""
    widths: list[int] = []
    try:
        ids: dict[Any, int] = {}
        labels: list[str] = []
        for i, node in enumerate(_list(doc, "nodes")):
            if not isinstance(node, Mapping):
                raise GraphFormatError("each graph node must be an object")
            ids[node.get("id", node.get("name", i))] = i
            kind = next((str(node[k]) for k in ("op", "type", "kind", "target") if k in node), "node")
            shape = node.get("shape", node.get("shapes", node.get("output_shape", "")))
            rank = len(shape) if isinstance(shape, list) else 0
            labels.append(f"{kind}:rank{rank}")
            if isinstance(shape, list) and all(isinstance(d, int) for d in shape) and shape:
                widths.append(_numel(shape))
        edges: list[tuple[int, int]] = []
        for edge in _list(doc, "edges"):
            if isinstance(edge, Mapping):
                src = edge.get("src", edge.get("source", edge.get("from")))
                dst = edge.get("dst", edge.get("target", edge.get("to")))
            else:
                src, dst = edge[0], edge[1]
            edges.append((ids[src], ids[dst]))
    except (KeyError, TypeError, IndexError) as exc:
        raise GraphFormatError(f"graph edges name unknown nodes or are malformed: {exc}") from exc
    return GraphView(tuple(labels), tuple(edges), tuple(widths))


def wl_features(view: GraphView, *, iterations: int = WL_ITERATIONS) -> tuple[int, ...]:
    labels = [h64(b"L" + label.encode("utf-8")) for label in view.labels]
    incoming: list[list[int]] = [[] for _ in labels]
    outgoing: list[list[int]] = [[] for _ in labels]
    for src, dst in view.edges:
        outgoing[src].append(dst)
        incoming[dst].append(src)
    counts: Counter[int] = Counter(labels)
    for _ in range(iterations):
        labels = [
            h64(
                label.to_bytes(8, "big")
                + b"<"
                + b"".join(v.to_bytes(8, "big") for v in sorted(labels[j] for j in incoming[i]))
                + b">"
                + b"".join(v.to_bytes(8, "big") for v in sorted(labels[j] for j in outgoing[i]))
            )
            for i, label in enumerate(labels)
        ]
        counts.update(labels)
    # A multiset as a set: the n-th occurrence of a feature is its own element (weighted Jaccard).
    return tuple(sorted(h64(f.to_bytes(8, "big") + n.to_bytes(4, "big")) for f, c in counts.items() for n in range(c)))


def graph_fingerprint(
    graph_hash: str, graph: Mapping[str, Any], *, adapter: GraphAdapter = prism_graph_adapter
) -> GraphFingerprint:
    view = adapter(graph)
    features = wl_features(view)
    signature = minhash(features, bins=GRAPH_BINS)
    return GraphFingerprint(
        graph_hash=graph_hash,
        node_count=len(view.labels),
        edge_count=len(view.edges),
        features=features,
        minhash=signature,
        band_keys=tuple(sorted(set(band_keys(signature, rows=GRAPH_ROWS, scope=b"G")))),
        widths=tuple(sorted(view.widths)),
    )


def graph_similarity(a: GraphFingerprint, b: GraphFingerprint) -> float:
    """Weighted Jaccard of the WL feature multisets: 1.0 for graphs that differ only in names."""
    left, right = set(a.features), set(b.features)
    union = len(left | right)
    return len(left & right) / union if union else 0.0


def width_similarity(a: GraphFingerprint, b: GraphFingerprint) -> float | None:
    """Mean min/max ratio of the two sorted parameter-size lists (missing ones count 0); None if unknown."""
    if not a.widths or not b.widths:
        return None
    n = max(len(a.widths), len(b.widths))
    left = [0] * (n - len(a.widths)) + list(a.widths)
    right = [0] * (n - len(b.widths)) + list(b.widths)
    return sum(min(x, y) / max(x, y) if max(x, y) else 1.0 for x, y in zip(left, right, strict=True)) / n
