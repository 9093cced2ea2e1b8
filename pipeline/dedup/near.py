"""Near-duplicate detection with MinHash LSH, as rounds on the engine (pipeline/core/rounds.py;
NearDedupStage.run_global chains them). No step runs on the driver:

1. bands: each signature is cut into `bands` bands of `rows` values; each band is hashed to a
   uint64 bucket key; rows (key, ref) meet by key, and every member of a bucket is linked to
   the bucket's representative, its member with the smallest hash of its ref (a star, not all
   pairs: the edge list stays linear in bucket size). Not the smallest ref: an early document
   is the smallest of many buckets, and the rounds below route pairs by their representative,
   so the first slices of the corpus would hold most of the pairs (measured at 5M documents:
   one attach partition at 564 MB for a 512 MB budget);
2. attach: the candidate pairs (rep, mem) are routed by the slice of rows (4,096) of `rep`;
   each reduce reads the signatures of those documents from the row groups of their staged
   shards that hold them, and attaches them to the pair;
3. screen: routed by the slice of `mem`, whose signature is attached the same way; a pair goes
   on if the signatures agree on at least `threshold` of their values (estimated Jaccard), and
   mem's id and (with `verify: alignment`) unit sequence are attached to it: the many pairs of
   unrelated documents that LSH proposes are dropped having cost a signature each;
4. verify: routed by `rep` again, whose id and units are attached; with `verify: alignment`
   (the default) a pair is linked if the two documents' word (character) sequences align
   (`aligned_similarity` >= `align_threshold`), which removes LSH false positives such as
   pages that share only their site boilerplate;
5. connected components of the verified edges (pipeline/core/components.py, large-star /
   small-star rounds): the smallest ref of a component is kept, the others are dropped;
6. best-match: per document, its component's kept ref, its id and its best verified match
   (highest similarity, ties to the smaller ref), for the reject detail;
7. kept-ids: per component, the kept document's id is attached to every dropped member.

`connected_components` below is the same computation in one process: the tests' oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from babelmill.pipeline.core.rounds import hash_part
from babelmill.pipeline.dedup.minhash import EMPTY
from babelmill.pipeline.dedup.refs import ROW_BITS, unit_of
from babelmill.text import splitmix64

EDGES_SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.int64())])


def band_rows(sigs: np.ndarray, refs: np.ndarray, bands: int, rows: int) -> pa.Table:
    """(part, key, ref) for every band of every signature (documents with no shingles skipped)."""
    ok = ~(sigs == EMPTY).all(axis=1)
    sigs, refs = sigs[ok], refs[ok]
    n = len(refs)
    keys = np.empty((n, bands), np.uint64)
    with np.errstate(over="ignore"):
        for b in range(bands):
            acc = np.full(n, np.uint64(b + 1) * np.uint64(0x9E3779B97F4A7C15), np.uint64)
            for r in range(rows):
                acc = splitmix64(acc ^ sigs[:, b * rows + r].astype(np.uint64))
            keys[:, b] = acc
    flat = keys.reshape(-1)
    return pa.table({
        "part": pa.array((flat >> np.uint64(33)).astype(np.int32)),  # routed by the bucket key
        "key": pa.array(flat, pa.uint64()),
        "ref": pa.array(np.repeat(refs, bands), pa.int64()),
    })


def bucket_edges(table: pa.Table) -> pa.Table:
    """Star edges (a = member, b = representative: the member with the smallest splitmix64 of
    its ref) of every bucket with at least two documents, unique and sorted by (a, b)."""
    if table.num_rows == 0:
        return EDGES_SCHEMA.empty_table()
    key = table.column("key").to_numpy()
    ref = table.column("ref").to_numpy()
    # most buckets hold one document: find the shared keys with one plain sort of the keys,
    # then order only their rows by (key, hash of ref) (~3x faster than a lexsort of every row)
    order = np.argsort(key)
    ks = key[order]
    shared = np.zeros(len(ks), bool)
    same = ks[1:] == ks[:-1]
    shared[1:] |= same
    shared[:-1] |= same
    if not shared.any():
        return EDGES_SCHEMA.empty_table()
    sel = order[shared]
    key, ref = key[sel], ref[sel]
    with np.errstate(over="ignore"):
        h = splitmix64(ref.view(np.uint64))  # a bijection: no ties between different refs
    o = np.lexsort((h, key))
    key, ref = key[o], ref[o]
    start = np.ones(len(key), bool)
    start[1:] = key[1:] != key[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(len(key)), 0))
    member = ~start
    a, b = ref[member], ref[first[member]]
    keep = a != b
    a, b = a[keep], b[keep]
    if len(a) == 0:
        return EDGES_SCHEMA.empty_table()
    o = np.lexsort((b, a))  # unique pairs (a pair shared by several bands once), as np.unique(axis=0)
    a, b = a[o], b[o]
    u = np.ones(len(a), bool)
    u[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return pa.table({"a": pa.array(a[u]), "b": pa.array(b[u])}, schema=EDGES_SCHEMA)


def connected_components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, label) with label = smallest node of each node's component."""
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    u, v = inv[: len(a)], inv[len(a) :]
    label = np.arange(len(nodes))
    while True:
        m = np.minimum(label[u], label[v])
        new = label.copy()
        np.minimum.at(new, u, m)
        np.minimum.at(new, v, m)
        while True:  # pointer jumping
            nxt = new[new]
            if np.array_equal(nxt, new):
                break
            new = nxt
        if np.array_equal(new, label):
            return nodes, nodes[label]
        label = new


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    return (sig_a == sig_b).mean(axis=1)


def aligned_similarity(a: pa.Array, b: pa.Array, cutoff: float = 0.0,
                       keys: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """1 - (insertions + deletions) / (len a + len b) of each pair (a[i], b[i]) of unit sequences
    (two row-aligned large_list<uint32> arrays): the normalised Indel similarity, i.e. 2 x longest
    common subsequence / total length, with RapidFuzz's bit-parallel LCS. Unlike shingle Jaccard
    it does not multiply scattered edits by the shingle size, and a page that shares only its
    boilerplate with another scores the share of text it really has in common. Pairs below
    `cutoff` score 0.0 (RapidFuzz stops early on them). `keys`: the documents' refs, so that a
    document in several pairs (a bucket's representative) is converted once.

    RapidFuzz compares Python strings straight from their buffers but converts a list of ints
    element by element, so the units are renumbered densely (pandas.factorize: equal units get
    equal numbers, different units different ones, so the LCS is exactly that of the units) and
    written as code points, one string per document: ~3x faster than lists of ints."""
    n = len(a)
    out = np.zeros(n, np.float64)
    if n == 0:
        return out
    ka, kb = (np.asarray(k) for k in keys) if keys is not None else (np.arange(n), np.arange(n, 2 * n))
    oa, ob = a.offsets.to_numpy(), b.offsets.to_numpy()
    # pairs in chunks of about ALIGN_CHUNK_UNITS units: the renumbering's codes (8 bytes a
    # unit) and the strings (4) of one chunk at a time, whatever the partition's size
    total = np.cumsum((oa[1:] - oa[:-1]) + (ob[1:] - ob[:-1]))
    cuts = np.searchsorted(total, np.arange(ALIGN_CHUNK_UNITS, total[-1] + ALIGN_CHUNK_UNITS, ALIGN_CHUNK_UNITS),
                           side="right")
    start = 0
    for stop in [*np.unique(np.clip(cuts, 1, n)).tolist(), n]:
        if stop > start:
            _align_chunk(a, b, ka, kb, start, stop, cutoff, out)
            start = stop
    return out


#: units renumbered and written as strings at a time by aligned_similarity (~50 MB of work memory)
ALIGN_CHUNK_UNITS = 1 << 22
#: distinct units one renumbering can write as code points (all but the surrogates)
_CODE_POINTS = 0x110000 - 0x800


def _flat(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(values, offsets from 0) of a list array, without copying the values."""
    offs = arr.offsets.to_numpy()
    vals = arr.values.to_numpy(zero_copy_only=False)[offs[0] : offs[-1]]
    return vals, offs - offs[0]


def _align_chunk(a: pa.Array, b: pa.Array, ka: np.ndarray, kb: np.ndarray, start: int, stop: int, cutoff: float,
                 out: np.ndarray) -> None:
    """Pairs start..stop: each distinct document of the chunk renumbered and written as a
    string once (one renumbering for the chunk, so that equal units compare equal across its
    pairs); a chunk whose distinct units outnumber the code points is split in halves."""
    import pandas as pd
    from rapidfuzz.distance import Indel

    m = stop - start
    _, first, inv = np.unique(np.concatenate([ka[start:stop], kb[start:stop]]), return_index=True,
                              return_inverse=True)
    docs = pa.concat_arrays([a.slice(start, m), b.slice(start, m)]).take(pa.array(first))
    vals, offs = _flat(docs)
    codes, uniques = pd.factorize(vals)
    if len(uniques) > _CODE_POINTS:
        if m == 1:  # one pair alone: its units are cut to align_max_units each
            raise ValueError(f"{len(uniques)} distinct units in one pair: more than align_max_units allows")
        half = start + m // 2
        _align_chunk(a, b, ka, kb, start, half, cutoff, out)
        _align_chunk(a, b, ka, kb, half, stop, cutoff, out)
        return
    cp = codes.astype(np.uint32)
    cp += np.uint32(0x800) * (cp >= 0xD800)  # skip the surrogates
    text = cp.tobytes().decode("utf-32-le")
    o = offs.tolist()
    strs = [text[o[i] : o[i + 1]] for i in range(len(first))]
    f = Indel.normalized_similarity
    ia, ib = inv[:m].tolist(), inv[m:].tolist()
    for i in range(m):
        x, y = strs[ia[i]], strs[ib[i]]
        out[start + i] = f(x, y, score_cutoff=cutoff) if (x or y) else 1.0


# -- rounds 2-7 (the stage's reduce and map methods call these) -------------------------------
@dataclass
class DocData:
    """What verification needs of some documents of one unit, row-aligned; a round reads only
    the fields it asks for (`docs(unit, rows, fields)`), the others stay None."""

    sig: np.ndarray | None = None  # (n, num_perm) uint32
    chars: np.ndarray | None = None  # bool: shingled by characters
    ids: pa.Array | None = None  # string
    units: pa.Array | None = None  # large_list<uint32>, with verify: alignment


#: what each side needs in each round: the signatures for the screen, then only for the pairs
#: that pass it the ids and (with alignment) the unit sequences, recomputed from the text
SCREEN_FIELDS = ("sig", "chars")
MATCH_FIELDS = ("ids", "units")

#: rows of a shard per slice: a reduce of the attach, screen and verify rounds holds the pairs
#: of some slices and reads only the row groups of those (rounds.read_rows), so its memory
#: follows the partition count, not the size of a work unit
SLICE_BITS = 12


def slice_part(refs: np.ndarray) -> np.ndarray:
    """`part` of pairs routed by one document: a hash of its (unit, slice of rows)."""
    return hash_part(refs >> np.int64(SLICE_BITS))


def edges_by_rep(table: pa.Table) -> pa.Table:
    """Round 2's map: candidate pairs (rep, mem) by the slice of rep; two documents of earlier
    runs are never compared again (neither can be dropped here)."""
    mem, rep = table.column("a").to_numpy(), table.column("b").to_numpy()
    keep = (mem >= 0) | (rep >= 0)
    mem, rep = mem[keep], rep[keep]
    return pa.table({"part": pa.array(slice_part(rep)), "rep": pa.array(rep), "mem": pa.array(mem)})


def _unique_pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique (x, y) sorted by x then y, as np.unique(axis=0) but ~4x faster."""
    o = np.lexsort((y, x))
    x, y = x[o], y[o]
    u = np.ones(len(x), bool)
    u[1:] = (x[1:] != x[:-1]) | (y[1:] != y[:-1])
    return x[u], y[u]


def _attach(table: pa.Table, side: str, docs, fields: tuple[str, ...]) -> pa.Table:
    """`table` with the `side` document's `fields` as side_sig, side_chars, side_id,
    side_units, read unit by unit through `docs(unit, rows, fields)`. Rows come back sorted by
    (unit, row) of side."""
    ref = table.column(side).to_numpy()
    order = np.argsort(ref, kind="stable")
    table, ref = table.take(pa.array(order)), ref[order]
    units = unit_of(ref)
    pieces = []
    for u in np.unique(units):
        sel = np.flatnonzero(units == u)
        rows = (ref[sel] & np.int64((1 << ROW_BITS) - 1)).astype(np.int64)
        need, pos = np.unique(rows, return_inverse=True)
        d = docs(int(u), need, fields)
        take = pa.array(pos)
        cols = {}
        if d.sig is not None:
            cols[f"{side}_sig"] = pa.FixedSizeListArray.from_arrays(pa.array(d.sig[pos].reshape(-1)), d.sig.shape[1])
        if d.chars is not None:
            cols[f"{side}_chars"] = pa.array(d.chars[pos])
        if d.ids is not None:
            cols[f"{side}_id"] = d.ids.take(take)
        if d.units is not None:
            cols[f"{side}_units"] = d.units.take(take)
        piece = table.slice(int(sel[0]), len(sel))
        for k, v in cols.items():
            piece = piece.append_column(k, v)
        pieces.append(piece)
    return pa.concat_tables(pieces) if pieces else table


_PAIRS = pa.schema([("rep", pa.int64()), ("mem", pa.int64())])


def attach_rep(table: pa.Table, docs) -> pa.Table:
    """Round 2's reduce: unique pairs with the representative's signature attached."""
    rep, mem = table.column("rep").to_numpy(), table.column("mem").to_numpy()
    if len(rep) == 0:
        return _PAIRS.empty_table()
    rep, mem = _unique_pairs(rep, mem)  # a pair found in several bands, once
    return _attach(pa.table({"rep": pa.array(rep), "mem": pa.array(mem)}), "rep", docs, SCREEN_FIELDS)


def pairs_by(table: pa.Table, side: str) -> pa.Table:
    """Rounds 3 and 4's maps: pairs routed by the slice of their `side` document (rep or mem)."""
    return table.append_column("part", pa.array(slice_part(table.column(side).to_numpy())))


def screen_pairs(table: pa.Table, docs, threshold: float, threshold_chars: float):
    """Round 3's reduce (routed by mem): the candidate pairs whose signatures agree on at
    least the threshold share of their values (estimated Jaccard; a pair of a word-shingled
    and a character-shingled document needs the stricter threshold), with mem's id and unit
    sequence attached. Only these survivors carry text-derived data onwards: most LSH
    candidates of a large corpus are pairs of unrelated documents (their number grows with the
    square of the corpus), and this round drops them having read 512 bytes of each."""
    if table.num_rows == 0 or "rep_sig" not in table.column_names:
        return _PAIRS.empty_table(), {"candidates": 0, "screened": 0}
    t = _attach(table, "mem", docs, SCREEN_FIELDS)
    n, width = t.num_rows, t.schema.field("rep_sig").type.list_size
    sa = t.column("rep_sig").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(n, width)
    sb = t.column("mem_sig").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(n, width)
    sim = estimated_jaccard(sa, sb).astype(np.float64)
    ca = t.column("rep_chars").to_numpy(zero_copy_only=False)
    cb = t.column("mem_chars").to_numpy(zero_copy_only=False)
    need = np.maximum(np.where(ca, threshold_chars, threshold), np.where(cb, threshold_chars, threshold))
    ok = sim >= need
    out = pa.table({"rep": t.column("rep"), "mem": t.column("mem"), "est": pa.array(sim)}).filter(pa.array(ok))
    if out.num_rows:
        out = _attach(out, "mem", docs, MATCH_FIELDS)
    return out, {"candidates": n, "screened": out.num_rows}


VERIFIED = pa.schema([("lo", pa.int64()), ("hi", pa.int64()), ("sim", pa.float64()), ("lo_id", pa.string()),
                      ("hi_id", pa.string())])


def verify_pairs(table: pa.Table, docs, align_threshold: float | None):
    """Round 4's reduce (routed by rep): the screened pairs that are near duplicates, as
    (lo < hi) with their similarity and both ids. With `align_threshold` (verify: alignment),
    a pair is linked if the two documents' unit sequences align (`aligned_similarity`), which
    removes LSH false positives such as pages that share only their site boilerplate; else on
    the estimate."""
    if table.num_rows == 0 or "mem_id" not in table.column_names:
        return VERIFIED.empty_table(), {"verified": 0}
    t = _attach(table, "rep", docs, MATCH_FIELDS)
    sim = t.column("est").to_numpy()
    ok = np.ones(len(sim), bool)
    if align_threshold is not None:
        sim = aligned_similarity(t.column("rep_units").combine_chunks(), t.column("mem_units").combine_chunks(),
                                 cutoff=align_threshold, keys=(t.column("rep").to_numpy(), t.column("mem").to_numpy()))
        ok = sim >= align_threshold
    rep, mem = t.column("rep").to_numpy(), t.column("mem").to_numpy()
    first = pa.array(rep < mem)
    rep_id, mem_id = t.column("rep_id"), t.column("mem_id")
    out = pa.table({"lo": pa.array(np.minimum(rep, mem)), "hi": pa.array(np.maximum(rep, mem)), "sim": pa.array(sim),
                    "lo_id": pc.if_else(first, rep_id, mem_id), "hi_id": pc.if_else(first, mem_id, rep_id)},
                   schema=VERIFIED).filter(pa.array(ok))
    return out, {"verified": out.num_rows}


NODE_ROWS = pa.schema([("part", pa.int32()), ("node", pa.int64()), ("other", pa.int64()), ("sim", pa.float64()),
                       ("own_id", pa.string()), ("other_id", pa.string()), ("root", pa.int64())])


def node_rows_verified(table: pa.Table) -> pa.Table:
    """Round 6's map, verified edges: each end gets the other as a possible best match."""
    lo, hi = table.column("lo").to_numpy(), table.column("hi").to_numpy()
    sim = table.column("sim").to_numpy()
    node = np.concatenate([lo, hi])
    lo_id, hi_id = table.column("lo_id").combine_chunks(), table.column("hi_id").combine_chunks()
    return pa.table({"part": pa.array(hash_part(node)), "node": pa.array(node), "other": pa.array(np.concatenate([hi, lo])),
                     "sim": pa.array(np.concatenate([sim, sim])), "own_id": pa.concat_arrays([lo_id, hi_id]),
                     "other_id": pa.concat_arrays([hi_id, lo_id]), "root": pa.nulls(len(node), pa.int64())},
                    schema=NODE_ROWS)


def node_rows_star(table: pa.Table) -> pa.Table:
    """Round 6's map, component stars: each member learns its component's kept ref."""
    hi, lo = table.column("hi").to_numpy(), table.column("lo").to_numpy()
    n = len(hi)
    return pa.table({"part": pa.array(hash_part(hi)), "node": pa.array(hi), "other": pa.nulls(n, pa.int64()),
                     "sim": pa.nulls(n, pa.float64()), "own_id": pa.nulls(n, pa.string()),
                     "other_id": pa.nulls(n, pa.string()), "root": pa.array(lo)}, schema=NODE_ROWS)


NODES = pa.schema([("node", pa.int64()), ("root", pa.int64()), ("own_id", pa.string()), ("best_sim", pa.float64()),
                   ("best_id", pa.string())])


def best_match(table: pa.Table) -> pa.Table:
    """Round 6's reduce: per document of a component, its root (itself for the kept one), id
    and best verified match (highest similarity, ties to the smaller ref)."""
    if table.num_rows == 0:
        return NODES.empty_table()
    is_star = table.column("root").is_valid().to_numpy(zero_copy_only=False)
    stars = table.filter(pa.array(is_star))
    edges = table.filter(pa.array(~is_star))
    node = edges.column("node").to_numpy()
    order = np.lexsort((edges.column("other").to_numpy(), -edges.column("sim").to_numpy(), node))
    node = node[order]
    first = np.ones(len(node), bool)
    first[1:] = node[1:] != node[:-1]
    best = edges.take(pa.array(order[first]))
    nodes = best.column("node").to_numpy()
    root = nodes.copy()
    sn, sr = stars.column("node").to_numpy(), stars.column("root").to_numpy()
    if len(sn):
        pos = np.searchsorted(nodes, sn)
        if not (pos < len(nodes)).all() or not np.array_equal(nodes[np.minimum(pos, len(nodes) - 1)], sn):
            raise RuntimeError("a component member has no verified edge")
        root[pos] = sr
    return pa.table({"node": pa.array(nodes), "root": pa.array(root), "own_id": best.column("own_id"),
                     "best_sim": best.column("sim"), "best_id": best.column("other_id")}, schema=NODES)


def nodes_by_root(table: pa.Table) -> pa.Table:
    return table.append_column("part", pa.array(hash_part(table.column("root").to_numpy())))


def near_drops(table: pa.Table, what: str) -> pa.Table:
    """Round 7's reduce: per component, the kept document's id on every dropped member (an
    earlier run's document is never dropped)."""
    from babelmill.pipeline.core.global_stage import DROPS_SCHEMA

    node, root = table.column("node").to_numpy(), table.column("root").to_numpy()
    is_root = node == root
    rn = node[is_root]
    order = np.argsort(rn)
    rn = rn[order]
    rid = table.column("own_id").filter(pa.array(is_root)).take(pa.array(order))
    dup = ~is_root & (node >= 0)
    if not dup.any():
        return DROPS_SCHEMA.empty_table()
    d = table.filter(pa.array(dup))
    kept = d.column("root").to_numpy()
    pos = np.minimum(np.searchsorted(rn, kept), max(len(rn) - 1, 0))
    if len(rn) == 0 or not np.array_equal(rn[pos], kept):
        raise RuntimeError("a component's kept document is missing from its partition")
    kept_id = rid.take(pa.array(pos))
    detail = pa.array([f"near duplicate of {k} ({what} {s:.2f} with {b})" for k, s, b in
                       zip(kept_id.to_pylist(), d.column("best_sim").to_pylist(), d.column("best_id").to_pylist(),
                           strict=True)], pa.string())
    return pa.table({"ref": d.column("node"), "kept_ref": d.column("root"), "kept_id": kept_id,
                     "reason": pa.array(["dup_near"] * d.num_rows, pa.string()), "detail": detail},
                    schema=DROPS_SCHEMA)
