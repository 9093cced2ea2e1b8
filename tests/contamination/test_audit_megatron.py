"""The audit on models trained by `pretrain/` (megatron-core, CPU): the same synthetic quiz as
test_audit_e2e.py, one model trained on clean text, one with the English test items injected
and one with their French translation injected. The audit must flag each contaminated model
in the language it memorised and must not flag the clean one."""

from __future__ import annotations

import json

import pytest

from testing.contamination_items import injected_docs


def _tokenizer(texts: list[str], path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["</s>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok.save(str(path))
    return path


@pytest.mark.slow
def test_megatron_models_from_pretrain_are_audited(synth, tmp_path):
    pytest.importorskip("megatron.core")
    from babelmill.contamination.audit import run_audit
    from babelmill.pretrain.data.preprocess import preprocess
    from demo.pretrain import TINY, run_train

    items = synth["items"]
    tok = _tokenizer(synth["corpora"]["clean"] + injected_docs(items, "en", 1) + injected_docs(items, "fr", 1),
                     tmp_path / "tokenizer.json")
    verdicts = {}
    for name in ("clean", "inj_en", "inj_fr"):
        corpus = tmp_path / name / "corpus" / "part.jsonl"
        corpus.parent.mkdir(parents=True)
        corpus.write_text("".join(json.dumps({"id": f"{name}-{i}", "text": t, "lang": "mix"}) + "\n"
                                  for i, t in enumerate(synth["corpora"][name])), encoding="utf-8")
        preprocess([corpus.parent], tok, tmp_path / name / "data", workers=1)
        run_train(TINY, tmp_path / name / "data", tmp_path / name / "run", ["--train-iters", "800"])
        res = run_audit(str(tmp_path / name / "run"), [str(synth["bench_dir"])], languages=["en", "fr"])
        verdicts[name] = {lang: r["verdict"] for lang, r in next(iter(res["benchmarks"].values()))["languages"].items()}
        print(name, {lang: (r["acc_original"], r["acc_generalized"], r["verdict"])
                     for lang, r in next(iter(res["benchmarks"].values()))["languages"].items()})
    assert verdicts["inj_en"]["en"] == "contaminated", verdicts
    assert verdicts["inj_fr"]["fr"] == "contaminated", verdicts  # the translation it memorised
    assert "contaminated" not in verdicts["clean"].values(), verdicts
