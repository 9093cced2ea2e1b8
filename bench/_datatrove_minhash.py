"""Runs datatrove's four MinHash stages on a JSONL corpus and prints timings and removed ids
as JSON. Executed by bench/dedup_speed.py inside its own virtualenv (datatrove 0.10.1 needs
xxhash<4), so it imports nothing from babelmill. Word tokenizer: \\w+ (what babelmill uses;
datatrove's default English tokenizer needs NLTK).

    _datatrove_minhash.py DOCS.jsonl all|io

- all: the four stages on documents parsed before the clock starts, no output written (the
  stages alone);
- io: the four stages as datatrove's examples/minhash_deduplication.py runs them: `JsonlReader`
  feeds the signature stage and, again, the filter, which writes the kept documents and (its
  `exclusion_writer`) the removed ones, as babelmill's rejects keep their text. `ParquetWriter`
  (zstd) in place of the example's `JsonlWriter`, so that both sides write babelmill's output
  format. Left out, so that datatrove does no more work than babelmill: the example's
  `TokensCounter`, cluster ids and sizes (babelmill's output has cluster sizes).
"""

import json
import os
import re
import sys
import tempfile
import time

from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer

WORD = re.compile(r"\w+")


class RegexTokenizer(WordTokenizer):
    def word_tokenize(self, text):
        return WORD.findall(text)

    def sent_tokenize(self, text):
        return [text]

    def span_tokenize(self, text):
        return [(0, len(text))]


def main():
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "io":
        from datatrove.pipeline.readers import JsonlReader
        from datatrove.pipeline.writers import ParquetWriter

        folder, name = os.path.split(os.path.abspath(path))

        def docs():
            return JsonlReader(folder, glob_pattern=name).run()

        def filtered(tmp):
            flt = MinhashDedupFilter(input_folder=f"{tmp}/remove",
                                     exclusion_writer=ParquetWriter(f"{tmp}/removed", compression="zstd"))
            return ParquetWriter(f"{tmp}/output", compression="zstd").run(flt.run(docs()))
    else:
        parsed = [json.loads(line) for line in open(path, encoding="utf-8")]

        def docs():
            return (Document(text=d["text"], id=d["id"]) for d in parsed)

        def filtered(tmp):
            return MinhashDedupFilter(input_folder=f"{tmp}/remove").run(docs())

    out = run_stages(docs, filtered)
    keep = set(out.pop("kept"))
    out["removed"] = [i for i in (json.loads(line)["id"] for line in open(path, encoding="utf-8")) if i not in keep]
    print(json.dumps(out))


def run_stages(docs, filtered) -> dict:
    """The four stages, each timed: `docs()` feeds the signature stage, `filtered(tmp)` is the
    filter stage's output (kept documents)."""
    cfg = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        MinhashDedupSignature(output_folder=f"{tmp}/sigs", config=cfg, language=RegexTokenizer()).run(docs())
        out["signature_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for b in range(cfg.num_buckets):
            MinhashDedupBuckets(input_folder=f"{tmp}/sigs", output_folder=f"{tmp}/buckets", config=cfg).run(rank=b, world_size=cfg.num_buckets)
        out["buckets_s"] = time.perf_counter() - t
        t = time.perf_counter()
        MinhashDedupCluster(input_folder=f"{tmp}/buckets", output_folder=f"{tmp}/remove", config=cfg).run()
        out["cluster_s"] = time.perf_counter() - t
        t = time.perf_counter()
        out["kept"] = [d.id for d in filtered(tmp)]
        out["filter_s"] = time.perf_counter() - t
    return out


if __name__ == "__main__":
    main()
