"""Runs datatrove's four MinHash stages on a JSONL corpus and prints timings and removed ids
as JSON. Executed by bench/dedup_speed.py inside its own virtualenv (datatrove 0.10.1 needs
xxhash<4), so it imports nothing from babelmill. Word tokenizer: \\w+ (what babelmill uses;
datatrove's default English tokenizer needs NLTK)."""

import json
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
    path, signature_only = sys.argv[1], sys.argv[2] == "sig"
    docs = [json.loads(line) for line in open(path, encoding="utf-8")]
    cfg = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        sig = MinhashDedupSignature(output_folder=f"{tmp}/sigs", config=cfg, language=RegexTokenizer())
        sig.run(Document(text=d["text"], id=d["id"]) for d in docs)  # writes signature files
        out["signature_s"] = time.perf_counter() - t
        if not signature_only:
            t = time.perf_counter()
            for b in range(cfg.num_buckets):
                MinhashDedupBuckets(input_folder=f"{tmp}/sigs", output_folder=f"{tmp}/buckets", config=cfg).run(rank=b, world_size=cfg.num_buckets)
            out["buckets_s"] = time.perf_counter() - t
            t = time.perf_counter()
            MinhashDedupCluster(input_folder=f"{tmp}/buckets", output_folder=f"{tmp}/remove", config=cfg).run()
            out["cluster_s"] = time.perf_counter() - t
            t = time.perf_counter()
            kept = [d.id for d in MinhashDedupFilter(input_folder=f"{tmp}/remove").run(
                Document(text=d["text"], id=d["id"]) for d in docs)]
            out["filter_s"] = time.perf_counter() - t
            keep = set(kept)
            out["removed"] = [d["id"] for d in docs if d["id"] not in keep]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
