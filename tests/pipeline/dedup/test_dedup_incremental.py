"""Incremental dedup across crawls: a run's dedup/index/ lets a later run deduplicate new input
against it without reading the old corpus (`dedup.against`, `babelmill dedup --against`)."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.run import run_pipeline
from babelmill.yamlconf import ConfigError
from bench.dedup_ruler import build_corpus, synthetic_source

STAGES = ["dedup_exact", "dedup_near"]


def _write(dir_, name, docs):
    dir_.mkdir(parents=True, exist_ok=True)
    (dir_ / name).write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return dir_


def _cfg(inputs, out, engine="local", against=(), stages=STAGES, index=True):
    return PipelineConfig.model_validate({
        "input": {"paths": [str(p) for p in inputs], "split_mb": 0.1}, "output": {"dir": str(out)},
        "stages": stages, "engine": {"name": engine},
        "dedup": {"against": [str(a) for a in against], "index": index}})


def _kept(run) -> set[str]:
    return set(pa.concat_tables([pq.read_table(p) for p in (run / "output").glob("*.parquet")]).column("id").to_pylist())


def _rejects(run) -> list[dict]:
    return pa.concat_tables([pq.read_table(p) for p in (run / "rejects").glob("*.parquet")]).to_pylist()


@pytest.fixture(scope="module")
def crawls(tmp_path_factory):
    """Crawl A, and crawl B holding new documents, copies (exact and edited) of A's documents,
    copies of its own documents, and copies of documents A itself dropped as duplicates."""
    corpus = build_corpus(synthetic_source(40, seed=4), seed=5)
    rng = random.Random(0)
    docs = [{"id": d["id"], "text": d["text"]} for d in corpus.docs]
    rng.shuffle(docs)
    cut = len(docs) // 2
    a, b = docs[:cut], docs[cut:]
    b += [{"id": "B-exact-" + d["id"], "text": d["text"].upper()} for d in a[:15]]
    root = tmp_path_factory.mktemp("crawls")
    return root, _write(root / "A", "a.jsonl", a), _write(root / "B", "b.jsonl", b), a, b


def test_against_keeps_the_same_documents_of_b_as_one_run(crawls):
    root, dir_a, dir_b, a, b = crawls
    both = root / "both"
    run_pipeline(_cfg([dir_a, dir_b], both), quiet=True)
    run_a, run_b = root / "runA", root / "runB"
    run_pipeline(_cfg([dir_a], run_a), quiet=True)
    m = run_pipeline(_cfg([dir_b], run_b, against=[run_a]), quiet=True)
    ids_b = {d["id"] for d in b}
    assert _kept(run_b) == _kept(both) & ids_b
    assert m["counts"]["balanced"] and m["counts"]["docs_in"] == len(b)
    # every drop of a B document that matches A names A's kept document and the run
    kept_a = _kept(run_a)
    from_a = [r for r in _rejects(run_b) if "from earlier run" in (r["detail"] or "")]
    assert len(from_a) >= 15  # at least the planted exact copies
    assert all(r["kept_id"] in kept_a and str(run_a) in r["detail"] for r in from_a)
    exact_copies = {r["id"] for r in from_a if r["reason"] == "dup_exact"}
    assert {"B-exact-" + d["id"] for d in a[:15]} - exact_copies <= {"B-exact-" + d["id"] for d in a[:15]
                                                                      if d["id"] not in kept_a}


def test_against_refuses_an_index_with_other_parameters(crawls):
    root, dir_a, dir_b, a, b = crawls
    run_a = root / "runA2"
    run_pipeline(_cfg([dir_a], run_a), quiet=True)
    other = ["dedup_exact", {"name": "dedup_near", "params": {"word_ngram": 3}}]
    with pytest.raises(ConfigError, match=r"word_ngram: 2 there, 3 here"):
        run_pipeline(_cfg([dir_b], root / "runB2", against=[run_a], stages=other), quiet=True)
    with pytest.raises(ConfigError, match="nowhere does not exist"):
        run_pipeline(_cfg([dir_b], root / "runB3", against=[root / "nowhere"]), quiet=True)
    no_index = root / "runA3"
    run_pipeline(_cfg([dir_a], no_index, index=False), quiet=True)
    assert not (no_index / "dedup" / "index").exists()
    with pytest.raises(ConfigError, match="has no dedup index.*babelmill dedup-index"):
        run_pipeline(_cfg([dir_b], root / "runB4", against=[no_index]), quiet=True)


def test_index_and_against_need_a_dedup_stage(crawls):
    root, dir_a, dir_b, a, b = crawls
    for kw in ({"index": True}, {"against": [root / "runA"], "index": False}):
        with pytest.raises(ConfigError, match="is set but the run has no global"):
            run_pipeline(_cfg([dir_b], root / "no-dedup", stages=["quality"], **kw), quiet=True)
    assert not (root / "no-dedup" / "run_config.yaml").exists()  # refused before the run started


def test_a_finished_run_indexed_later_gives_the_same_index(crawls):
    """`babelmill dedup-index RUN_DIR` writes what `dedup.index: true` would have written."""
    from babelmill.pipeline.dedup.index import build_for_run

    root, dir_a, dir_b, a, b = crawls
    with_index, later = root / "runA-indexed", root / "runA-later"
    run_pipeline(_cfg([dir_a], with_index), quiet=True)
    run_pipeline(_cfg([dir_a], later, index=False), quiet=True)
    meta = build_for_run(later, quiet=True)
    assert sum(s["rows"] for s in meta["shards"]) == len(a)
    for s in meta["shards"]:
        assert pq.read_table(later / "dedup" / "index" / s["file"]).equals(
            pq.read_table(with_index / "dedup" / "index" / s["file"]))


@pytest.mark.ray
@pytest.mark.beam
def test_against_is_identical_on_every_engine(crawls, ray_session):
    root, dir_a, dir_b, a, b = crawls
    run_a = root / "runA-engines"
    run_pipeline(_cfg([dir_a], run_a), quiet=True)
    kept = {}
    for engine in ("local", "ray", "beam"):
        out = root / f"runB-{engine}"
        run_pipeline(_cfg([dir_b], out, engine=engine, against=[run_a]), quiet=True)
        kept[engine] = (_kept(out), sorted((r["id"], r["kept_id"]) for r in _rejects(out)))
    assert kept["local"] == kept["ray"] == kept["beam"]
