"""Build the demo benchmark `babelmill/data/benchmarks/udhr_mc/<lang>.jsonl` from the UDHR.

Item (one per article paragraph present in every language, id `a<N>p<P>`, aligned across
languages): "Complete the statement from Article N of the Universal Declaration of Human Rights:
"<first half of the paragraph's first sentence> ..."", options = ways to finish it.

Why this shape: the choice-swap test needs original distractors that are *harder* than "the
answer to another question". Here the wrong options begin like the correct ending (its first part)
and then continue with the ending of another paragraph, so only a model that knows the text is
sure; in the generalized version the distractors are other paragraphs' endings, which do not
follow the prefix, and any fluent model gains. The question template is in the item's
language for en, fr, de, es, ru, zh (TEMPLATES) and English for the others (no translation of it
yet); the statement and options are always in the language.

Run:  python -m bench.make_udhr_benchmark [--langs en,fr,...] [--out DIR] [--seed 0]

Why in bench/ (and not in the package or demo/): like bench/make_tokenizer_dev.py, it is a
maintainer's generator of a file babelmill ships, run by hand when the benchmark changes, not
by users or by `make demo` (which only reads the shipped files). It needs the demo's UDHR
fetcher (demo.udhr), which the library must not import.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import unicodedata
from pathlib import Path

from babelmill.contamination.benchmarks.loaders import save_jsonl
from babelmill.contamination.items import MCItem
from babelmill.paths import data_file

DEFAULT_LANGS = ("en", "fr", "de", "es", "ru", "zh", "ja", "ar", "hi", "th", "tr", "vi")
OUT = data_file("benchmarks", "udhr_mc")
TEMPLATE = 'Complete the statement from Article {n} of the Universal Declaration of Human Rights: "{prefix} ..."'
# The question in the item's own language where we have a translation of the template (a
# translated benchmark must not share an English sentence with the original: the n-gram audit
# would then "find" the translation through the template alone). Others keep the English one.
TEMPLATES = {
    "en": TEMPLATE,
    "fr": "Complétez l'énoncé de l'article {n} de la Déclaration universelle des droits de l'homme : « {prefix} ... »",
    "de": "Vervollständigen Sie die Aussage aus Artikel {n} der Allgemeinen Erklärung der Menschenrechte: „{prefix} ...“",
    "es": "Complete la afirmación del artículo {n} de la Declaración Universal de los Derechos Humanos: «{prefix} ...»",
    "ru": "Закончите утверждение из статьи {n} Всеобщей декларации прав человека: «{prefix} ...»",
    "zh": "请补全《世界人权宣言》第{n}条中的陈述：“{prefix}……”",
}
_SENT_END = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？；।؟])")


def first_sentence(paragraph: str) -> str:
    parts = [p.strip() for p in _SENT_END.split(paragraph.strip()) if p.strip()]
    return parts[0] if parts else paragraph.strip()


def _units(text: str, spaced: bool) -> list[str]:
    """Words, or (unspaced scripts) characters with their combining marks, so no cut splits a cluster."""
    if spaced:
        return text.split()
    out: list[str] = []
    for ch in text:
        if out and unicodedata.category(ch) in ("Mn", "Mc", "Me"):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _join(units: list[str], spaced: bool) -> str:
    return (" " if spaced else "").join(units)


def split_statement(sentence: str, spaced: bool) -> tuple[str, str] | None:
    """(prefix, ending) at about the middle; None if the sentence is too short to split usefully."""
    u = _units(sentence, spaced)
    if len(u) < (6 if spaced else 10):
        return None
    cut = len(u) // 2
    return _join(u[:cut], spaced), _join(u[cut:], spaced)


def hybrids(ending: str, others: list[str], spaced: bool, rng: random.Random, k: int = 3) -> list[str]:
    """k wrong endings that start like `ending` and finish like one of `others`."""
    head_u = _units(ending, spaced)
    keep = max(1, len(head_u) // 3)
    out: list[str] = []
    pool = list(others)
    rng.shuffle(pool)
    for o in pool:
        ou = _units(o, spaced)
        cand = _join(head_u[:keep] + ou[len(ou) // 3 :], spaced)
        if cand != ending and cand not in out and len(ou) >= 3:
            out.append(cand)
        if len(out) == k:
            break
    return out


def build(decls: dict, langs: list[str], seed: int = 0) -> dict[str, list[MCItem]]:
    from babelmill.languages import load_registry

    reg = load_registry()
    keys = None
    for lang in langs:
        have = {(n, p) for n, paras in decls[lang].articles.items() for p in range(len(paras))}
        keys = have if keys is None else keys & have
    statements: dict[str, dict[tuple[int, int], tuple[str, str]]] = {}
    for lang in langs:
        spaced = reg.is_space_delimited(lang)
        statements[lang] = {}
        for n, p in sorted(keys):
            s = split_statement(first_sentence(decls[lang].articles[n][p]), spaced)
            if s:
                statements[lang][(n, p)] = s
    common = sorted(set.intersection(*(set(v) for v in statements.values())))
    out: dict[str, list[MCItem]] = {}
    for lang in langs:
        spaced = reg.is_space_delimited(lang)
        items = []
        for n, p in common:
            rng = random.Random(f"{seed}:{n}:{p}")  # same gold position and donor articles in every language
            prefix, ending = statements[lang][(n, p)]
            others = [statements[lang][k][1] for k in common if k[0] != n]
            wrong = hybrids(ending, others, spaced, rng)
            if len(wrong) < 3:
                continue
            gold = rng.randrange(4)
            choices = tuple(wrong[:gold] + [ending] + wrong[gold:])
            items.append(MCItem(f"a{n}p{p + 1}", lang, TEMPLATES.get(lang, TEMPLATE).format(n=n, prefix=prefix), choices, gold,
                                subject=f"article {n}"))
        out[lang] = items
    ids = [{it.id for it in v} for v in out.values()]
    shared = set.intersection(*ids)
    return {lang: [it for it in v if it.id in shared] for lang, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--langs", default=",".join(DEFAULT_LANGS))
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--cache-dir", default=".cache/udhr")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from demo.udhr import load_languages

    decls = load_languages(cache_dir=a.cache_dir)
    langs = [x for x in a.langs.split(",") if x]
    missing = [x for x in langs if x not in decls]
    if missing:
        print(f"no UDHR declaration for {missing}", file=sys.stderr)
        return 2
    for lang, items in build(decls, langs, a.seed).items():
        path = save_jsonl(items, Path(a.out) / f"{lang}.jsonl")
        print(f"{path}: {len(items)} items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
