"""Deduplication stages. Each has a map part (a column computed per batch, like any stage) and
a global part (key rows -> engine shuffle -> reduce -> finalize) that the runner executes after
the map phase over all staged shards. The logic lives here and in pipeline/dedup/; engines
only move rows between partitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from babelmill.languages import load_registry
from babelmill.pipeline.core.global_stage import GlobalStage, cluster_sizes
from babelmill.pipeline.core.stage import StageParams, register_stage
from babelmill.pipeline.dedup import exact, near
from babelmill.pipeline.dedup.hashing import batch_shingles_and_units, exact_hashes
from babelmill.pipeline.dedup.minhash import oph_signatures, permutations, signatures_flat
from babelmill.pipeline.dedup.refs import make_refs, unit_of
from babelmill.scripts import dominant_scripts


def _refs_kept(n: int, unit_index: int, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    refs = make_refs(unit_index, n)
    if len(excluded) == 0:
        return refs, np.ones(n, bool)
    keep = ~np.isin(refs, excluded)
    return refs[keep], keep


class ExactParams(StageParams):
    num_parts: int = Field(64, description="shuffle partitions (reduce tasks)")


@register_stage
class ExactDedupStage(GlobalStage):
    """Exact duplicates: xxh3-128 of the normalised text (NFKC, lower case, whitespace and
    punctuation folded), grouped through the engine's shuffle; the smallest ref is kept."""

    name = "dedup_exact"
    produces = {"dedup_hash": pa.binary(16)}
    internal = ("dedup_hash",)
    supports_index = True
    reasons = ("dup_exact",)
    Params = ExactParams

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch.append_column("dedup_hash", exact_hashes(batch.column("text")))

    def key_rows(self, shard, unit_index, excluded):
        t = pq.read_table(shard, columns=["dedup_hash", "id"])
        refs, keep = _refs_kept(t.num_rows, unit_index, excluded)
        if not keep.all():
            t = t.filter(pa.array(keep))
        return exact.key_rows(t.column("dedup_hash").combine_chunks(), t.column("id").combine_chunks(),
                              refs, self.params.num_parts)

    def reduce(self, table):
        return exact.reduce_groups(table)

    def finalize(self, parts, shards):
        drops = pa.concat_tables([exact.DROPS_SCHEMA.empty_table(), *parts]).sort_by("ref")
        return _against_details(drops, shards)

    def index_params(self):
        from babelmill.pipeline.dedup.index import NORMALISER_VERSION

        return {"normaliser": NORMALISER_VERSION}

    def index_columns(self, staged):
        return {"dedup_hash": staged.column("dedup_hash")}

    def index_key_rows(self, shard, unit_index):
        t = pq.read_table(shard, columns=["dedup_hash", "id", "root_id"])
        ids = pc.coalesce(t.column("root_id"), t.column("id")).combine_chunks()
        return exact.key_rows(t.column("dedup_hash").combine_chunks(), ids, make_refs(unit_index, t.num_rows),
                              self.params.num_parts)


class NearParams(StageParams):
    #: "oph": one-permutation hashing with densification, O(shingles) per document (default);
    #: "minhash": classic k-permutation MinHash, O(shingles x num_perm)
    method: Literal["oph", "minhash"] = Field("oph", description="oph: one-permutation hashing (fast); minhash: classic")
    # Defaults chosen on the tune half of bench/dedup_ruler.py (UDHR declarations, copies with
    # a known share of words edited; see the README's dedup section). Short shingles, because an
    # edit breaks every shingle that covers it (5% of words substituted leaves ~77% of word
    # 5-grams but ~90% of word 2-grams), and a generous candidate threshold (32 bands of 4: a
    # pair at Jaccard 0.55 becomes a candidate with p = 0.94, at 0.65 with 0.997); candidates are then
    # verified by aligning their word (character) sequences, which is what separates a copy with
    # 10% of its words edited (aligned similarity >= 0.89) from a page that shares three quarters
    # of its text as site boilerplate (<= 0.85): their shingle Jaccards overlap (0.65-0.69).
    num_perm: int = Field(128, description="signature length (= bands x rows)")
    bands: int = Field(32, description="LSH bands")
    rows: int = Field(4, description="rows per band")
    threshold: float = Field(0.45, description="estimated Jaccard a candidate pair needs to be verified (verify: "
                                               "alignment) or linked (verify: jaccard)")
    threshold_unspaced: float | None = Field(
        None, description="the same for documents shingled by characters (unspaced scripts); null: `threshold`")
    verify: Literal["alignment", "jaccard"] = Field(
        "alignment", description="alignment: link a candidate pair if its word (character) sequences align; "
                                 "jaccard: on the estimate alone")
    align_threshold: float = Field(0.87, description="aligned similarity needed to link two documents: "
                                                     "1 - (insertions + deletions) / (len a + len b), over words "
                                                     "(characters in unspaced scripts)")
    align_max_units: int = Field(20000, description="words (characters) of each document kept for the alignment")
    word_ngram: int = Field(2, description="shingle size in words (space-delimited languages)")
    char_ngram: int = Field(3, description="shingle size in characters (unspaced scripts)")
    seed: int = Field(1, description="hash seed")
    num_parts: int = Field(64, description="shuffle partitions (reduce tasks)")
    registry: str | None = Field(None, description="language registry YAML (default: the run's)")


@register_stage
class NearDedupStage(GlobalStage):
    """MinHash LSH. Shingles per language from the registry: word n-grams for space-delimited
    languages, character n-grams for unspaced ones (zh, ja, th, lo, km, my)."""

    name = "dedup_near"
    requires = ("id", "text")
    internal = ("minhash", "minhash_chars")
    supports_index = True
    reasons = ("dup_near",)
    Params = NearParams

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        if p.bands * p.rows != p.num_perm:
            from babelmill.pipeline.core.stage import StageError

            raise StageError(f"stage 'dedup_near': bands x rows ({p.bands} x {p.rows}) must equal num_perm ({p.num_perm})")
        self.produces = {"minhash": pa.list_(pa.uint32(), p.num_perm), "minhash_chars": pa.bool_()}

    def setup(self):
        self.reg = load_registry(self.params.registry)
        self.a, self.b = permutations(self.params.num_perm, self.params.seed)
        self._spaced = {c: self.reg.is_space_delimited(c) for c in self.reg.codes}
        # without a language, the script decides: scripts of unspaced languages that are not the
        # main script of a spaced one (Han counts as unspaced although Korean may use it);
        # a script the registry does not know (Tibetan, Tai Tham, ...) is judged by its spaces
        self._spaced_scripts = {self.reg.scripts(c)[0] for c in self.reg.codes if self.reg.is_space_delimited(c)}
        self._unspaced_scripts = {s for c in self.reg.codes if not self.reg.is_space_delimited(c)
                                  for s in self.reg.scripts(c)} - self._spaced_scripts

    def process(self, batch):
        p = self.params
        n = batch.num_rows
        langs = batch.column("lang").to_pylist() if "lang" in batch.schema.names else [None] * n
        spaced = np.fromiter((self._spaced.get(x, True) for x in langs), bool, count=n)
        unknown = np.fromiter((x not in self._spaced for x in langs), bool, count=n)
        if unknown.any():
            texts = batch.column("text").take(pa.array(np.flatnonzero(unknown))).to_pylist()
            scripts = dominant_scripts([t[:400:2] for t in texts], 200)
            spaced[unknown] = [s in self._spaced_scripts or (s not in self._unspaced_scripts and _has_spaces(t))
                               for s, t in zip(scripts, texts, strict=True)]
        flat, counts, _ = batch_shingles_and_units(batch.column("text"), spaced, p.word_ngram, p.char_ngram, 0)
        if p.method == "oph":
            sig = oph_signatures(flat, counts, p.num_perm, p.seed)
        else:
            sig = signatures_flat(flat, counts, self.a, self.b)
        arr = pa.FixedSizeListArray.from_arrays(pa.array(sig.reshape(-1)), p.num_perm)
        return batch.append_column("minhash", arr).append_column("minhash_chars", pa.array(~spaced))

    def index_params(self):
        p = self.params
        keys = ("method", "num_perm", "bands", "rows", "seed", "word_ngram", "char_ngram", "verify", "align_max_units")
        return {**{k: getattr(p, k) for k in keys}, "registry_spacing": self._spacing_fingerprint()}

    def _spacing_fingerprint(self) -> str:
        """Which languages are shingled by words: part of what makes two runs' keys comparable."""
        import hashlib

        self.ensure_setup()
        spaced = sorted(c for c, v in self._spaced.items() if v)
        return hashlib.sha256(" ".join(spaced).encode()).hexdigest()[:12]

    def index_columns(self, staged):
        cols = {"minhash": staged.column("minhash"), "minhash_chars": staged.column("minhash_chars")}
        if self.params.verify == "alignment":
            chars = staged.column("minhash_chars").to_numpy(zero_copy_only=False)
            _, _, units = batch_shingles_and_units(staged.column("text"), ~chars, 1, 1, self.params.align_max_units)
            cols["dedup_units"] = units
        return cols

    def index_key_rows(self, shard, unit_index):
        return self.key_rows(shard, unit_index, np.zeros(0, np.int64))

    def _sigs(self, shard, unit_index, excluded, columns=("minhash",)):
        if unit_index < 0:  # an earlier run's index shard: text is stored as unit sequences
            have = set(pq.ParquetFile(shard).schema_arrow.names)
            columns = [c for c in columns if c != "text"] + [c for c in ("dedup_units", "root_id") if c in have]
        t = pq.read_table(shard, columns=list(columns))
        refs, keep = _refs_kept(t.num_rows, unit_index, excluded)
        col = t.column("minhash").combine_chunks()
        sig = col.values.to_numpy(zero_copy_only=False).reshape(-1, self.params.num_perm)[keep]
        return t.filter(pa.array(keep)) if not keep.all() else t, refs, sig

    def key_rows(self, shard, unit_index, excluded):
        _, refs, sig = self._sigs(shard, unit_index, excluded)
        p = self.params
        return near.band_rows(sig, refs, p.bands, p.rows, p.num_parts)

    def reduce(self, table):
        return near.bucket_edges(table)

    def finalize(self, parts, shards):
        edges = pa.concat_tables([near.EDGES_SCHEMA.empty_table(), *parts])
        if edges.num_rows == 0:
            return exact.DROPS_SCHEMA.empty_table()
        a, b = edges.column("a").to_numpy(), edges.column("b").to_numpy()
        # a pair that collides in several bands arrives from several partitions: verify it once;
        # two documents of earlier runs are never compared again (neither can be dropped here)
        ab = np.unique(np.stack([a, b], axis=1), axis=0)
        ab = ab[(ab[:, 0] >= 0) | (ab[:, 1] >= 0)]
        if len(ab) == 0:
            return exact.DROPS_SCHEMA.empty_table()
        a, b = ab[:, 0], ab[:, 1]
        # signatures and ids of every document that has a candidate edge, one shard at a time
        need = np.unique(np.concatenate([a, b]))
        sig_of = np.zeros((len(need), self.params.num_perm), np.uint32)
        id_of = np.empty(len(need), object)
        p = self.params
        align = p.verify == "alignment"
        units_of = np.empty(len(need), object) if align else None
        thr_of = np.full(len(need), p.threshold, np.float64)
        thr_chars = p.threshold if p.threshold_unspaced is None else p.threshold_unspaced
        # with alignment, the unit sequences of the candidates only, from the staged text (most
        # documents have no candidate: storing sequences for all of them cost more than this)
        cols = ("minhash", "id", "minhash_chars", *(("text",) if align else ()))
        for u in np.unique(unit_of(need)):
            t, refs, sig = self._sigs(shards[int(u)], int(u), np.zeros(0, np.int64), cols)
            pos = np.searchsorted(refs, need[unit_of(need) == u])
            dst = np.searchsorted(need, refs[pos])
            sig_of[dst] = sig[pos]
            ids = t.column("id")
            if u < 0:  # an earlier run's document stands for its kept document there
                ids = pc.coalesce(t.column("root_id"), ids)
            id_of[dst] = np.array(ids.to_pylist(), dtype=object)[pos]
            thr_of[dst] = np.where(t.column("minhash_chars").to_numpy(zero_copy_only=False)[pos], thr_chars, p.threshold)
            if align and u < 0:
                seqs = t.column("dedup_units").combine_chunks().take(pa.array(pos))
            elif align:
                chars = t.column("minhash_chars").to_numpy(zero_copy_only=False)[pos]
                _, _, seqs = batch_shingles_and_units(t.column("text").take(pa.array(pos)), ~chars, 1, 1,
                                                      p.align_max_units)
            if align:
                # numpy views, 4 B per unit (a Python list would take ~36 B per unit on the driver)
                offs = seqs.offsets.to_numpy()
                vals = seqs.flatten().to_numpy()
                for k, d in enumerate(dst):
                    units_of[d] = vals[offs[k] - offs[0] : offs[k + 1] - offs[0]]
        ia, ib = np.searchsorted(need, a), np.searchsorted(need, b)
        sim = near.estimated_jaccard(sig_of[ia], sig_of[ib])
        ok = sim >= np.maximum(thr_of[ia], thr_of[ib])  # a mixed pair needs the stricter one
        if align and ok.any():
            idx = np.flatnonzero(ok)
            aligned = near.aligned_similarity([units_of[x] for x in ia[idx]], [units_of[x] for x in ib[idx]])
            ok[idx] = aligned >= p.align_threshold
            sim = sim.astype(np.float64)
            sim[idx] = aligned
        if not ok.any():
            return exact.DROPS_SCHEMA.empty_table()
        nodes, label = near.connected_components(a[ok], b[ok])
        dup = (nodes != label) & (nodes >= 0)  # an earlier run's document is never dropped
        refs, kept = nodes[dup], label[dup]
        kept_ids = id_of[np.searchsorted(need, kept)]
        # best verified similarity of each dropped document, for the reject detail
        best = {}
        for x, y, s in zip(np.concatenate([a[ok], b[ok]]), np.concatenate([b[ok], a[ok]]), np.concatenate([sim[ok], sim[ok]]), strict=True):
            if s > best.get(x, (0, None))[0]:
                best[x] = (s, y)
        what = "aligned similarity" if align else "est. Jaccard"
        details = [f"near duplicate of {k} ({what} {best[r][0]:.2f} with {id_of[np.searchsorted(need, best[r][1])]})"
                   for r, k in zip(refs, kept_ids, strict=True)]
        drops = pa.table({"ref": pa.array(refs), "kept_ref": pa.array(kept), "kept_id": pa.array(list(kept_ids), pa.string()),
                          "reason": pa.array(["dup_near"] * len(refs), pa.string()), "detail": pa.array(details, pa.string())},
                         schema=exact.DROPS_SCHEMA).sort_by("ref")
        return _against_details(drops, shards)


def _against_details(drops: pa.Table, shards: dict[int, Path]) -> pa.Table:
    """Drops of this run's documents only; one kept in an earlier run says which run."""
    refs = drops.column("ref").to_numpy()
    if (refs < 0).any():
        drops = drops.filter(pa.array(refs >= 0))
    kept = drops.column("kept_ref").to_numpy()
    if not (kept < 0).any():
        return drops
    details = drops.column("detail").to_pylist()
    for i in np.flatnonzero(kept < 0):
        run = Path(shards[int(unit_of(kept[i : i + 1])[0])]).parents[2]
        details[i] = f"{details[i]}, from earlier run {run}"
    return drops.set_column(drops.schema.get_field_index("detail"), "detail", pa.array(details, pa.string()))


def _has_spaces(text: str, sample: int = 2000, min_per_100: float = 8.0) -> bool:
    """Whether a text in a script the registry does not know is written with spaces between
    words: at least `min_per_100` spaces per 100 non-space characters of its first `sample`
    characters. Running text with spaces between words has 12-25; scripts that put spaces
    only between phrases (Thai, Lao, Khmer, Tai Tham) have 4-6 and Tibetan about 4, so they
    are shingled by characters like the registry's unspaced languages."""
    t = text[:sample]
    spaces = t.count(" ") + t.count("\n")
    return spaces * 100 >= min_per_100 * max(1, len(t) - spaces)


__all__ = ["ExactDedupStage", "GlobalStage", "NearDedupStage", "cluster_sizes"]  # the last two re-exported
