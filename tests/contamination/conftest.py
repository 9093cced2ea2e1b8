"""Fixtures for the contamination audit: a synthetic translated benchmark and three tiny GPT-2s
trained on CPU (clean / items injected in English / items injected in French), shared by the
session because training is the expensive part (~10 s each)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    from babelmill.contamination.benchmarks.loaders import save_jsonl
    from testing.contamination_items import (
        LANGS,
        background_docs,
        benchmark_items,
        injected_docs,
        make_world,
    )

    root = tmp_path_factory.mktemp("synth")
    world = make_world(n_countries=30, seed=0)
    items = benchmark_items(world, n_countries=10, seed=0)
    bench_dir = root / "synth_mc"
    for lang in LANGS:
        save_jsonl([it for it in items if it.lang == lang], bench_dir / f"{lang}.jsonl")
    bg = background_docs(world, skip=10, repeats=2, seed=0)
    corpora = {"clean": list(bg), "inj_en": bg + injected_docs(items, "en", epochs=12, seed=1),
               "inj_fr": bg + injected_docs(items, "fr", epochs=12, seed=1)}
    paths = {}
    for name, docs in corpora.items():
        random.Random(0).shuffle(docs)
        p = root / "corpora" / name / "part-000.jsonl"
        p.parent.mkdir(parents=True)
        with open(p, "w", encoding="utf-8") as f:
            for i, d in enumerate(docs):
                f.write(json.dumps({"id": f"{name}-{i}", "text": d}, ensure_ascii=False) + "\n")
        paths[name] = p.parent
    return {"root": root, "items": items, "bench_dir": bench_dir, "corpora": corpora, "corpus_paths": paths}


@pytest.fixture(scope="session")
def tiny_models(synth) -> dict[str, Path]:
    """name -> HF model dir. One tokenizer for all three, trained on clean text plus both item sets once
    (so the tokenizer itself carries no contamination signal that differs between models)."""
    torch = pytest.importorskip("torch")
    from testing.contamination_items import injected_docs
    from testing.tinylm import build_model, train_lm, train_tokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is as fast and does not fight other jobs
    try:
        tok = train_tokenizer(synth["corpora"]["clean"] + injected_docs(synth["items"], "en", 1)
                              + injected_docs(synth["items"], "fr", 1), vocab_size=400)
        out = {}
        for name, docs in synth["corpora"].items():
            model = build_model(len(tok), n_embd=96, n_head=4, seed=0)
            train_lm(model, tok, docs, steps=300, seq_len=48, batch_size=16, lr=5e-3, seed=0)
            d = synth["root"] / "models" / name
            model.save_pretrained(d)
            tok.save_pretrained(d)
            out[name] = d
        return out
    finally:
        torch.set_num_threads(threads)
