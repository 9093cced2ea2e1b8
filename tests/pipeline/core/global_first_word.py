"""A toy global stage for tests/pipeline/core/test_global_stage.py: drop every document whose
first word an earlier document (in input order) already started with. One file, nothing else:
what a new global stage (URL dedup, paragraph dedup) needs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from babelmill.pipeline.core.global_stage import DROPS_SCHEMA, GlobalStage
from babelmill.pipeline.dedup.refs import make_refs


class FirstWordDedup(GlobalStage):
    name = "first_word_dedup"
    produces = {"first_word": pa.string()}
    internal = ("first_word",)
    reasons = ("dup_first_word",)

    def process(self, batch):
        words = pc.utf8_lower(pc.list_element(pc.utf8_split_whitespace(batch.column("text")), 0))
        return batch.append_column("first_word", words)

    def key_rows(self, shard, unit_index, excluded):
        t = pq.read_table(shard, columns=["first_word", "id"])
        refs = make_refs(unit_index, t.num_rows)
        keep = ~np.isin(refs, excluded)
        t = t.filter(pa.array(keep))
        parts = pc.cast(pc.equal(t.column("first_word"), t.column("first_word")), pa.int32())  # one partition
        return pa.table({"part": parts, "word": t.column("first_word"), "ref": pa.array(refs[keep]),
                         "id": t.column("id")})

    def reduce(self, table):
        t = table.sort_by([("word", "ascending"), ("ref", "ascending")])
        words, refs, ids = (t.column(c).to_pylist() for c in ("word", "ref", "id"))
        rows, first = [], {}
        for w, r, i in zip(words, refs, ids, strict=True):
            if w in first:
                rows.append({"ref": r, "kept_ref": first[w][0], "kept_id": first[w][1], "reason": "dup_first_word",
                             "detail": f"starts with {w!r} like {first[w][1]}"})
            else:
                first[w] = (r, i)
        return pa.Table.from_pylist(rows, schema=DROPS_SCHEMA) if rows else DROPS_SCHEMA.empty_table()
