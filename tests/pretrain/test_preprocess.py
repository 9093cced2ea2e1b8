"""Corpus -> per-language Megatron indexed datasets: round trip, layout, resume, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from babelmill.pretrain.data.preprocess import PreprocessError, preprocess
from testing import pretrain_corpus


def _docs(corpus):
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    by_lang = {}
    for r in rows:
        by_lang.setdefault(r["lang"], []).append(r["text"])
    return by_lang


def test_round_trip_tokens_equal_tokenizer_plus_eod(data_dir, corpus, tokenizer_json):
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    eos = tok.token_to_id("</s>")
    manifest = json.loads((data_dir / "preprocess.json").read_text())
    docs = _docs(corpus)
    assert set(manifest["languages"]) == set(docs)
    for lang, texts in docs.items():
        entry = manifest["languages"][lang]
        ds = IndexedDataset(str(data_dir / entry["shards"][0]))
        assert len(ds) == len(texts) == entry["documents"]
        for i, text in enumerate(texts):
            expected = tok.encode(text, add_special_tokens=False).ids + [eos]
            assert np.asarray(ds[i]).tolist() == expected
        assert entry["tokens"] == int(ds.sequence_lengths.sum())
    assert manifest["tokenizer"]["eos_id"] == eos and len(manifest["tokenizer"]["sha256"]) == 64


def test_parquet_lang_dirs_sharding_and_resume(tmp_path, tokenizer_json):
    src = pretrain_corpus.write_corpus(tmp_path / "bal", docs_per_lang={"en": 30, "sw": 20}, layout="parquet")
    out = tmp_path / "data"
    m = preprocess([src], tokenizer_json, out, workers=2, shard_tokens=1500, keep_parts=True)
    assert m["languages"]["en"]["documents"] == 30 and m["languages"]["sw"]["documents"] == 20
    assert len(m["languages"]["en"]["shards"]) == 2  # two input parts of ~1000+ tokens each
    assert sum(m["languages"]["en"]["shard_tokens"]) == m["languages"]["en"]["tokens"]
    # a rerun after losing one shard rebuilds only that shard and yields the same manifest
    shard = out / (m["languages"]["sw"]["shards"][0] + ".json")
    shard.unlink()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("en_*.bin")}
    m2 = preprocess([src], tokenizer_json, out, workers=1, shard_tokens=1500)
    assert m2["languages"] == m["languages"]
    assert shard.is_file()
    assert {p: p.stat().st_mtime_ns for p in out.rglob("en_*.bin")} == before
    assert not (out / ".parts").exists()


def test_errors_name_the_file(tmp_path, tokenizer_json):
    bad = tmp_path / "nolang.jsonl"
    bad.write_text('{"text": "hello"}\n')
    with pytest.raises(PreprocessError, match=r"nolang\.jsonl:1: record has no 'lang'"):
        preprocess([bad], tokenizer_json, tmp_path / "o1", workers=1)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a", "lang": "en"}\n{oops\n')
    with pytest.raises(PreprocessError, match=r"broken\.jsonl:2: invalid JSON"):
        preprocess([broken], tokenizer_json, tmp_path / "o2", workers=1)
    with pytest.raises(PreprocessError, match="input not found"):
        preprocess([tmp_path / "missing"], tokenizer_json, tmp_path / "o3")
    from tokenizers import Tokenizer, models

    noeos = tmp_path / "noeos.json"
    Tokenizer(models.BPE()).save(str(noeos))
    with pytest.raises(ValueError, match="no EOS token"):
        preprocess([bad], noeos, tmp_path / "o4")


def test_bad_line_strict_names_file_and_line_quarantine_counts_and_writes_it(tmp_path, tokenizer_json):
    """Strict (the default) stops at the pipeline's error, file:line and reason; quarantine
    keeps every good record, counts the bad one in the manifest and writes it to quarantine/;
    a strict rerun over that DATA_DIR fails again instead of reusing the quarantine run."""
    import pyarrow.parquet as pq

    from babelmill.pipeline.io.readers import InputError

    src = tmp_path / "mixed.jsonl"
    lines = [json.dumps({"text": f"hello world number {i}", "lang": "en"}) for i in range(4)]
    lines.insert(2, '{"text": "cut off')
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"mixed\.jsonl:3: invalid JSON \(bad_json: ") as e:
        preprocess([src], tokenizer_json, tmp_path / "strict", workers=1)
    assert isinstance(e.value, PreprocessError) and (e.value.line, e.value.reason) == (3, "bad_json")

    out = tmp_path / "quarantine"
    m = preprocess([src], tokenizer_json, out, workers=1, on_bad="quarantine")
    assert m["documents"] == m["languages"]["en"]["documents"] == 4
    q = m["quarantine"]
    assert (q["on_bad"], q["records"], q["by_reason"]) == ("quarantine", 1, {"bad_json": 1})
    assert q["files"] == {str(src): {"records": 1, "by_reason": {"bad_json": 1}}}
    (written,) = q["written"]
    (row,) = pq.read_table(out / written).to_pylist()
    assert (row["offset"], row["reason"], row["text"].strip()) == (3, "bad_json", '{"text": "cut off')

    with pytest.raises(PreprocessError, match=r"mixed\.jsonl:3: invalid JSON"):
        preprocess([src], tokenizer_json, out, workers=1)


def test_shard_split_gives_small_languages_a_validation_document():
    from babelmill.pretrain.data.blend import shard_split

    assert shard_split(3, "90,5,5") == (1, 1, 1)  # megatron's rounding would give (3, 0, 0)
    assert shard_split(2, "90,5,5") == (1, 1, 0)
    assert shard_split(1, "90,5,5") == (1, 0, 0)
    assert shard_split(1000, "98,1,1") == (980, 10, 10)
    assert sum(shard_split(37, "969,30,1")) == 37


@pytest.mark.ray
def test_ray_engine_writes_the_same_datasets(data_dir, corpus, tokenizer_json, tmp_path, ray_session):
    """Tokenizing on Ray (one task per input file) gives byte-identical shards."""
    ray_dir = tmp_path / "ray"
    m = preprocess([corpus], tokenizer_json, ray_dir, engine="ray")
    base = json.loads((data_dir / "preprocess.json").read_text())
    assert {k: v["tokens"] for k, v in m["languages"].items()} == {k: v["tokens"] for k, v in base["languages"].items()}
    for v in base["languages"].values():
        for shard in v["shards"]:
            assert (ray_dir / f"{shard}.bin").read_bytes() == (data_dir / f"{shard}.bin").read_bytes()
