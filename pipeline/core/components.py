"""Connected components of an edge list as rounds on the engine: the alternating large-star /
small-star algorithm (Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC
2014), each step one shuffle of the edges by node. The driver only reads each round's count
of changed edges; the edges live in the rounds' part files.

Edges are undirected (lo < hi, int64 nodes). With Γ(u) the neighbours of u:

- large-star at u: m = min(Γ(u) ∪ {u}); every neighbour v > u is linked to m instead of u.
  Edge {u < v} changes iff m < u.
- small-star at u: N = {v ∈ Γ(u) : v < u}, m = min N; every v ∈ N ∪ {u}, v ≠ m, is linked to
  m. Changes iff |N| > 1.

When a large-star and the small-star after it change nothing, every node has either only
larger neighbours (a centre: the smallest node of its component) or exactly one smaller one
(the centre): a forest of stars, (lo = the component's smallest node, hi = a member). The
result is a function of the components alone, so it is the same for any partitioning, engine
or number of workers; `near.connected_components` computes it in one process (the tests'
oracle). Rounds needed: O(log n) (two for components that are already stars, e.g. pairs).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from babelmill.pipeline.core.rounds import hash_part

EDGES = pa.schema([("lo", pa.int64()), ("hi", pa.int64())])
#: a run that needs more rounds has a bug (the algorithm needs O(log n))
MAX_ROUNDS = 64


def _edges(lo: np.ndarray, hi: np.ndarray) -> pa.Table:
    if len(lo) == 0:
        return EDGES.empty_table()
    e = np.unique(np.stack([lo, hi], axis=1), axis=0)
    return pa.table({"lo": pa.array(e[:, 0]), "hi": pa.array(e[:, 1])}, schema=EDGES)


def _adjacency(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(node, nbr) sorted by node then nbr, duplicates removed; starts of each node's run."""
    node = table.column("node").to_numpy()
    nbr = table.column("nbr").to_numpy()
    if len(node):
        pairs = np.unique(np.stack([node, nbr], axis=1), axis=0)
        node, nbr = pairs[:, 0], pairs[:, 1]
    start = np.ones(len(node), bool)
    start[1:] = node[1:] != node[:-1]
    return node, nbr, start


class Components:
    """The rounds' map and reduce methods (an engine pickles this object to its workers)."""

    name = "components"

    def _both_ways(self, table: pa.Table, task: dict, context: dict) -> pa.Table:
        lo = table.column("lo").to_numpy()
        hi = table.column("hi").to_numpy()
        node = np.concatenate([lo, hi])
        return pa.table({"part": pa.array(hash_part(node)), "node": pa.array(node),
                         "nbr": pa.array(np.concatenate([hi, lo]))})

    def _large_star(self, table: pa.Table, context: dict):
        node, nbr, start = _adjacency(table)
        if len(node) == 0:
            return EDGES.empty_table(), {"changes": 0}
        # nbr is sorted within each node: the run's first neighbour is its smallest
        first = np.maximum.accumulate(np.where(start, np.arange(len(node)), 0))
        m = np.minimum(nbr[first], node)
        up = nbr > node
        changes = int((up & (m < node)).sum())
        return _edges(m[up], nbr[up]), {"changes": changes}

    def _small_star(self, table: pa.Table, context: dict):
        node, nbr, _ = _adjacency(table)
        down = nbr < node
        node, nbr = node[down], nbr[down]
        if len(node) == 0:
            return EDGES.empty_table(), {"changes": 0}
        start = np.ones(len(node), bool)
        start[1:] = node[1:] != node[:-1]
        first = np.maximum.accumulate(np.where(start, np.arange(len(node)), 0))
        m = nbr[first]  # smallest smaller neighbour of each row's node
        changes = int(len(node) - start.sum())  # |N| - 1 per node
        others = nbr != m
        lo = np.concatenate([m[others], m[start]])
        hi = np.concatenate([nbr[others], node[start]])
        return _edges(lo, hi), {"changes": changes}


def connected_components(rounds, edges, log=None):
    """Star edges (lo = smallest node of the component, hi = member) of the undirected edges
    in round `edges` (columns lo, hi; other columns ignored), in rounds of `rounds`."""
    comp = Components()
    cur = edges
    for _ in range(MAX_ROUNDS):
        large = rounds.run("large-star", cur.tasks("_both_ways"), "_large_star", rows=2 * cur.rows, row_bytes=48,
                           owner=comp)
        small = rounds.run("small-star", large.tasks("_both_ways"), "_small_star", rows=2 * large.rows,
                           row_bytes=48, owner=comp)
        cur = small
        if large.stats.get("changes", 0) == 0 and small.stats.get("changes", 0) == 0:
            return cur
    raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")


__all__ = ["EDGES", "Components", "connected_components"]
