"""Connected components and cluster resolution as rounds (pipeline/core/components.py,
global_stage.Resolver) give what a single process computes, for any partition count."""

from __future__ import annotations

import types

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.pipeline.core.components import connected_components
from babelmill.pipeline.core.global_stage import DROPS_SCHEMA, GlobalRounds, cluster_sizes, resolve
from babelmill.pipeline.core.rounds import RoundResult, read_unit_rows
from babelmill.pipeline.dedup import near
from babelmill.pipeline.dedup.refs import make_refs
from babelmill.pipeline.engines.local import LocalEngine


def _input_round(d, table, files=3):
    """A finished round holding `table` in a few part files."""
    d.mkdir(parents=True)
    for k, idx in enumerate(np.array_split(np.arange(table.num_rows), files)):
        pq.write_table(table.take(pa.array(idx, pa.int64())), d / f"part-{k:05d}.parquet")
    return RoundResult(d, files, {"rows": table.num_rows})


def _rounds(tmp_path, parts):
    owner = types.SimpleNamespace(params=types.SimpleNamespace(num_parts=parts, reduce_memory_mb=512))
    return GlobalRounds(LocalEngine(), owner, tmp_path / "stage", {}, 0, [], [])


def _graph(rng):
    """Paths in shuffled node order (they need several rounds), stars, small cliques, pairs,
    and some negative nodes (documents of earlier runs)."""
    edges = []
    nodes = rng.permutation(np.arange(-40, 2000))
    pos = 0
    for kind, size in [("path", 120), ("path", 37), ("star", 30), ("clique", 6), *[("pair", 2)] * 50]:
        grp = nodes[pos : pos + size]
        pos += size
        if kind == "path":
            edges += list(zip(grp[:-1], grp[1:], strict=True))
        elif kind == "star":
            edges += [(grp[0], x) for x in grp[1:]]
        else:
            edges += [(x, y) for i, x in enumerate(grp) for y in grp[i + 1 :]]
    e = np.array(edges, np.int64)
    return np.minimum(e[:, 0], e[:, 1]), np.maximum(e[:, 0], e[:, 1])


@pytest.mark.parametrize("parts", [1, 3, 16])
def test_components_rounds_equal_the_single_process_oracle(tmp_path, parts):
    lo, hi = _graph(np.random.default_rng(7))
    edges = _input_round(tmp_path / "edges", pa.table({"lo": lo, "hi": hi}))
    rounds = _rounds(tmp_path, parts)
    stars = connected_components(rounds, edges)
    got = pa.concat_tables([pq.read_table(f) for f in stars.files()])
    root = dict(zip(got.column("hi").to_pylist(), got.column("lo").to_pylist(), strict=True))
    nodes, label = near.connected_components(lo, hi)
    want = {int(n): int(m) for n, m in zip(nodes, label, strict=True) if n != m}
    assert got.num_rows == len(root) == len(want)  # one edge per member: a forest of stars
    assert root == want
    # the shuffled paths need more than one large-star/small-star pair
    assert sum(h["round"].endswith("large-star") for h in rounds.history) > 1


def test_components_of_pairs_take_one_pair_of_rounds(tmp_path):
    lo = np.arange(0, 200, 2, dtype=np.int64)
    edges = _input_round(tmp_path / "edges", pa.table({"lo": lo, "hi": lo + 1}))
    rounds = _rounds(tmp_path, 4)
    stars = connected_components(rounds, edges)
    assert [h["round"] for h in rounds.history] == ["01-large-star", "02-small-star"]
    assert stars.rows == 100


def test_components_of_nothing_run_nothing(tmp_path):
    edges = _input_round(tmp_path / "edges", pa.table({"lo": pa.array([], pa.int64()), "hi": pa.array([], pa.int64())}), 1)
    stars = connected_components(_rounds(tmp_path, 4), edges)
    assert stars.rows == 0 and stars.files() == []


def _chain_roots(drops: list[pa.Table]) -> dict[int, str]:
    """ref -> id of the document finally kept for it (single process)."""
    kept = {}
    for d in drops:
        for r, k, i in zip(*(d.column(c).to_pylist() for c in ("ref", "kept_ref", "kept_id")), strict=True):
            kept[r] = (k, i)
    out = {}
    for r in kept:
        k, i = kept[r]
        while k in kept:
            k, i = kept[k]
        out[r] = i
    return out


def _drops_round(d, rows):
    t = pa.table({"ref": pa.array([r for r, _ in rows], pa.int64()), "kept_ref": pa.array([k for _, k in rows], pa.int64()),
                  "kept_id": pa.array([f"doc{k}" for _, k in rows], pa.string()),
                  "reason": pa.array(["x"] * len(rows), pa.string()), "detail": pa.array([""] * len(rows), pa.string())},
                 schema=DROPS_SCHEMA)
    return _input_round(d, t, 2), t


@pytest.mark.parametrize("parts", [1, 5])
def test_resolver_equals_cluster_sizes_and_chained_roots(tmp_path, parts):
    """Three stages, as the runner chains them: each drops only documents the earlier ones
    kept, into a document still kept at that point (earlier runs' documents: negative refs)."""
    rng = np.random.default_rng(3)
    refs = np.concatenate([make_refs(u, 300) for u in range(4)])
    alive = set(refs.tolist())
    earlier = [-(1 << 33) + i for i in range(5)]
    stages, tables = [], []
    for s in range(3):
        pool = sorted(alive)
        dropped = rng.choice(pool, 150, replace=False)
        rows = []
        for x in sorted(dropped.tolist()):
            alive.discard(x)
        survivors = sorted(alive)
        for x in sorted(dropped.tolist()):
            k = earlier[x % 5] if x % 7 == 0 else survivors[int(rng.integers(len(survivors)))]
            rows.append((x, k))
        rd, t = _drops_round(tmp_path / f"s{s}", rows)
        stages.append(rd)
        tables.append(t)
    resolved, _ = resolve(LocalEngine(), tmp_path / "dedup", stages)
    got_sizes, got_roots = {}, {}
    for u in range(4):
        t = read_unit_rows(resolved.dir, u)
        for r, size, rid in zip(*(t.column(c).to_pylist() for c in ("ref", "cluster_size", "root_id")), strict=True):
            assert (size is None) != (rid is None)
            if size is not None:
                got_sizes[r] = size
            else:
                got_roots[r] = rid
    assert got_sizes == {k: v for k, v in cluster_sizes(tables).items() if k >= 0}
    assert got_roots == _chain_roots(tables)
