"""How far can Malay vs Indonesian go on Tatoeba with what installs here? (issue 13 evidence)

Every system sees only the Tatoeba *tune* half, ms and id sentences only (so the question is the
two-way distinction, an upper bound on what any 43-way stage can reach for these two):

- lid.176 top-1 restricted to {ms, id} (the higher of the two probabilities in its top-5);
- lingua (`lingua-language-detector`, Apache-2.0) restricted to {Malay, Indonesian}, if installed;
- a fastText classifier trained on one fold of the tune half (all 40 languages, char 2-5-grams)
  and scored on the other fold (a seeded md5 split), i.e. a model *tuned on Tatoeba itself*.

    PYTHONPATH=. .venv/bin/python -m bench.lid_prototype.ms_id_ceiling

(HeLI-OTS / heliport is left out: it has one label, `msa`, for both.) The full prototype with
all its evidence is in bench/langid_tatoeba.py. Prints F1 for ms and id per system. The issue's floor is F1 >= 0.90 for each.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections import Counter
from pathlib import Path

from bench.langid_tatoeba import prf, tatoeba_half

PAIR = ("ms", "id")


def _f1(pred: list[str], gold: list[str]) -> str:
    m = prf(pred, gold)
    return "  ".join(f"{lang} F1 {m[lang][2]:.3f}" for lang in PAIR)


def main() -> int:
    items = tatoeba_half("tune")
    pair = [(g, t) for g, t in items if g in PAIR]
    gold = [g for g, _ in pair]
    texts = [t for _, t in pair]
    print(f"Tatoeba tune half: {Counter(gold)}")

    from babelmill.pipeline.stages.langid import LangIdStage

    st = LangIdStage()
    st.ensure_setup()
    labs, probs = st.model.f.multilinePredict([t.replace("\n", " ") + "\n" for t in texts], 5, 0.0, "strict")
    pred = []
    for lab, p in zip(labs, probs, strict=True):
        d = dict(zip((x.replace("__label__", "") for x in lab), p, strict=True))
        pred.append("ms" if d.get("ms", 0.0) > d.get("id", 0.0) else "id")
    print(f"lid.176 restricted      {_f1(pred, gold)}")

    try:
        from lingua import Language, LanguageDetectorBuilder

        det = LanguageDetectorBuilder.from_languages(Language.MALAY, Language.INDONESIAN).build()
        out = det.detect_languages_in_parallel_of(texts)
        pred = ["ms" if r == Language.MALAY else "id" for r in out]
        print(f"lingua restricted       {_f1(pred, gold)}")
    except ImportError:
        print("lingua                  not installed")

    import fasttext

    def fold(t: str) -> int:
        return hashlib.md5(t.encode("utf-8")).digest()[0] % 2

    def norm(t: str) -> str:
        return re.sub(r"\s+", " ", t.lower()).strip()

    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train.txt"
        train.write_text("".join(f"__label__{g} {norm(t)}\n" for g, t in items if fold(t) == 0), encoding="utf-8")
        model = fasttext.train_supervised(str(train), minn=2, maxn=5, dim=64, epoch=40, lr=0.5, verbose=0, thread=1, seed=1)
    held = [(g, t) for g, t in pair if fold(t) == 1]
    out, _ = model.predict([norm(t) for _, t in held], k=1)
    pred = [o[0].replace("__label__", "") for o in out]
    print(f"fastText trained on fold 0, scored on fold 1 ({len(held)} sentences, 40-way)  "
          f"{_f1(pred, [g for g, _ in held])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
