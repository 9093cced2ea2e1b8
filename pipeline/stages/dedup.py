"""Deduplication stages. Each has a map part (a column computed per batch, like any stage) and
a global part (key rows -> engine shuffle -> reduce -> finalize) that the runner executes after
the map phase over all staged shards. The logic lives here and in pipeline/dedup/; engines
only move rows between partitions.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from babelmill.pipeline.core.components import connected_components
from babelmill.pipeline.core.global_stage import GlobalStage, cluster_sizes
from babelmill.pipeline.core.rounds import read_rows
from babelmill.pipeline.core.stage import StageParams, register_stage
from babelmill.pipeline.dedup import exact, near
from babelmill.pipeline.dedup.hashing import batch_shingles_and_units, exact_hashes
from babelmill.pipeline.dedup.minhash import oph_signatures, permutations, signatures_flat
from babelmill.pipeline.dedup.refs import make_refs
from babelmill.unicode_scripts import dominant_scripts


def _refs_kept(n: int, unit_index: int, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    refs = make_refs(unit_index, n)
    if len(excluded) == 0:
        return refs, np.ones(n, bool)
    keep = ~np.isin(refs, excluded)
    return refs[keep], keep


#: the shuffle settings of both dedup stages (pipeline/core/rounds.py)
NUM_PARTS_DOC = "at least this many shuffle partitions (reduce tasks) per round; more as the data grows"
MEMORY_DOC = "rows one reduce task holds, in MB: a round's partitions are sized from its input rows to stay near it"


class ExactParams(StageParams):
    num_parts: int = Field(1, description=NUM_PARTS_DOC)
    reduce_memory_mb: int = Field(512, description=MEMORY_DOC)


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
    key_row_bytes = 80

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch.append_column("dedup_hash", exact_hashes(batch.column("text")))

    def key_rows(self, shard, unit_index, excluded):
        t = pq.read_table(shard, columns=["dedup_hash", "id"])
        refs, keep = _refs_kept(t.num_rows, unit_index, excluded)
        if not keep.all():
            t = t.filter(pa.array(keep))
        return exact.key_rows(t.column("dedup_hash").combine_chunks(), t.column("id").combine_chunks(), refs)

    def reduce(self, table):
        return exact.reduce_groups(table)

    def index_params(self):
        from babelmill.pipeline.dedup.index import NORMALISER_VERSION

        return {"normaliser": NORMALISER_VERSION}

    def index_columns(self, staged):
        return {"dedup_hash": staged.column("dedup_hash")}

    def index_key_rows(self, shard, unit_index):
        t = pq.read_table(shard, columns=["dedup_hash", "id", "root_id"])
        ids = pc.coalesce(t.column("root_id"), t.column("id")).combine_chunks()
        return exact.key_rows(t.column("dedup_hash").combine_chunks(), ids, make_refs(unit_index, t.num_rows))


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
    num_parts: int = Field(1, description=NUM_PARTS_DOC)
    reduce_memory_mb: int = Field(512, description=MEMORY_DOC)
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
        self.key_rows_per_doc, self.key_row_bytes = p.bands, 24

    def setup(self, ctx):
        self.reg = ctx.registry_for(self.params.registry)  # the run's, unless its own parameter names another
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
        return near.band_rows(sig, refs, p.bands, p.rows)

    # -- the global part: rounds on the engine (see near.py for the steps) ----------------------
    def run_global(self, rounds):
        p = self.params
        sig_bytes = 4 * p.num_perm + 32
        match_bytes = 64 + (2048 if p.verify == "alignment" else 0)  # id and unit sequence of one side
        bands = rounds.run("bands", rounds.shard_tasks(), "_bucket_edges", rows=rounds.docs * p.bands, row_bytes=24)
        attach = rounds.run("attach", bands.tasks("_by_rep"), "_attach", rows=bands.rows, row_bytes=sig_bytes)
        # the pairs with both signatures attached: twice what the attach round wrote (and mem's
        # id and units for those that pass, at most every pair)
        screened = rounds.run("screen", attach.tasks("_by_mem"), "_screen", rows=attach.rows,
                              row_bytes=2 * sig_bytes + match_bytes, data_bytes=2 * attach.bytes)
        # rep's data doubles the screened rows; the alignment's working copies of both sides
        # (near.ALIGN_CHUNK_UNITS at a time) and the output come on top: measured at 1M documents
        # (bench/dedup_scale.py), 2x the input bytes put a partition at 565 MB for 512
        verified = rounds.run("verify", screened.tasks("_by_rep_screened"), "_verify", rows=screened.rows,
                              row_bytes=3 * match_bytes, data_bytes=3 * screened.bytes)
        stars = connected_components(rounds, verified)
        nodes = rounds.run("best-match", verified.tasks("_node_rows_verified") + stars.tasks("_node_rows_star"),
                           "_best_match", rows=2 * verified.rows + stars.rows, row_bytes=120)
        return rounds.run("kept-ids", nodes.tasks("_by_root"), "_near_drops", rows=nodes.rows, row_bytes=150)

    def _bucket_edges(self, table, context):
        return near.bucket_edges(table)

    def _by_rep(self, table, task, context):
        return near.edges_by_rep(table)

    def _docs(self, context, unit: int, rows: np.ndarray, fields: tuple[str, ...]) -> near.DocData:
        """`fields` (sig, chars, ids, units: see near.DocData) of some rows of a unit; only the
        columns they need are read (the text only for units, recomputed with alignment)."""
        p = self.params
        shard = context["shards"][str(unit)]
        want_units = "units" in fields and p.verify == "alignment"
        cols = []
        if "sig" in fields:
            cols.append("minhash")
        if "chars" in fields or (want_units and unit >= 0):
            cols.append("minhash_chars")
        if "ids" in fields:
            cols += ["id", "root_id"] if unit < 0 else ["id"]  # an index shard's document stands for its kept one
        if want_units:
            cols.append("dedup_units" if unit < 0 else "text")
        t = read_rows(shard, rows, cols)
        d = near.DocData()
        if "sig" in fields:
            d.sig = t.column("minhash").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, p.num_perm)
        chars = t.column("minhash_chars").to_numpy(zero_copy_only=False) if "minhash_chars" in cols else None
        if "chars" in fields:
            d.chars = chars
        if "ids" in fields:
            ids = t.column("id").cast(pa.string())
            d.ids = (pc.coalesce(t.column("root_id"), ids) if unit < 0 else ids).combine_chunks()
        if want_units and unit < 0:
            d.units = t.column("dedup_units").combine_chunks()
        elif want_units:
            _, _, d.units = batch_shingles_and_units(t.column("text"), ~chars, 1, 1, p.align_max_units)
        return d

    def _attach(self, table, context):
        return near.attach_rep(table, partial(self._docs, context))

    def _by_mem(self, table, task, context):
        return near.pairs_by(table, "mem")

    def _screen(self, table, context):
        p = self.params
        thr_chars = p.threshold if p.threshold_unspaced is None else p.threshold_unspaced
        return near.screen_pairs(table, partial(self._docs, context), p.threshold, thr_chars)

    def _by_rep_screened(self, table, task, context):
        return near.pairs_by(table, "rep")

    def _verify(self, table, context):
        p = self.params
        return near.verify_pairs(table, partial(self._docs, context), p.align_threshold if p.verify == "alignment" else None)

    def _node_rows_verified(self, table, task, context):
        return near.node_rows_verified(table)

    def _node_rows_star(self, table, task, context):
        return near.node_rows_star(table)

    def _best_match(self, table, context):
        return near.best_match(table)

    def _by_root(self, table, task, context):
        return near.nodes_by_root(table)

    def _near_drops(self, table, context):
        what = "aligned similarity" if self.params.verify == "alignment" else "est. Jaccard"
        return near.near_drops(table, what)


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
