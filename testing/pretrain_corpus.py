"""Small generated multilingual corpora and a tiny BPE tokenizer, for tests and benchmarks.

Sentences are drawn from per-language word lists with a seeded RNG, so a corpus is reproducible
and languages differ in script and vocabulary (per-language validation losses then differ).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = {
    "en": "the river water report committee north annual quality city people read write green small house".split(),
    "fr": "le la rivière eau rapport comité nord qualité ville gens lire écrire vert petit maison".split(),
    "de": "der die Fluss Wasser Bericht Ausschuss Norden Qualität Stadt Leute lesen schreiben grün klein Haus".split(),
    "ru": "река вода доклад комитет север качество город люди читать писать зелёный маленький дом".split(),
    "sw": "mto maji ripoti kamati kaskazini ubora mji watu soma andika kijani ndogo nyumba".split(),
    "zh": "河 水 报告 委员会 北方 质量 城市 人们 阅读 写作 绿色 小 房子".split(),
}


def sentences(lang: str, n: int, seed: int = 0, min_words: int = 5, max_words: int = 14) -> list[str]:
    rng = random.Random(f"{seed}-{lang}")
    words = WORDS[lang]
    sep = "" if lang == "zh" else " "
    end = "。" if lang == "zh" else "."
    return [sep.join(rng.choice(words) for _ in range(rng.randint(min_words, max_words))) + end
            for _ in range(n)]


def write_corpus(root: str | Path, docs_per_lang: dict[str, int] | int = 120, seed: int = 0,
                 layout: str = "jsonl", sentences_per_doc: int = 3) -> Path:
    """Write a corpus: `jsonl` (one mixed file with text+lang) or `parquet` (DIR/<lang>/*.parquet)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if isinstance(docs_per_lang, int):
        docs_per_lang = {lang: docs_per_lang for lang in WORDS}
    rows = []
    for lang, n in docs_per_lang.items():
        sents = sentences(lang, n * sentences_per_doc, seed)
        for i in range(n):
            text = " ".join(sents[i * sentences_per_doc:(i + 1) * sentences_per_doc])
            rows.append({"id": f"{lang}-{i}", "lang": lang, "text": text})
    if layout == "jsonl":
        path = root / "corpus.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    for lang in docs_per_lang:
        lrows = [r for r in rows if r["lang"] == lang]
        (root / lang).mkdir(exist_ok=True)
        half = len(lrows) // 2
        for k, chunk in enumerate((lrows[:half], lrows[half:])):
            pq.write_table(pa.table({"id": [r["id"] for r in chunk], "text": [r["text"] for r in chunk]}),
                           root / lang / f"part-{k:03d}.parquet")
    return root


def train_tokenizer(path: str | Path, vocab_size: int = 400, seed: int = 0) -> Path:
    """A byte-level BPE tokenizer.json with `</s>` as EOS, trained on generated sentences."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    text = [s for lang in WORDS for s in sentences(lang, 100, seed)]
    tok.train_from_iterator(text, trainer)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path
