"""Turn the UDHR into a small web-like multilingual corpus for the demo.

Documents are runs of 2-4 consecutive articles (several paragraphs each) in the 43 target
languages, plus a few documents in distractor languages (not targets: they exercise the
`lang_other` drop). A seeded share of documents is planted again as exact duplicates and as
near duplicates (5-10% of words edited; characters for unspaced scripts), and the list of
planted pairs is written to corpus_info.json so that later dedup stages can be scored.
Articles 28-30 are held out of the corpus and written as an aligned parallel set for
tokenizer evaluation. Everything is deterministic from the seed; files are written under
temporary names and renamed, and a rebuild with the same parameters is a no-op.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

from babelmill.demo.udhr import Declaration, load_config, load_languages
from babelmill.languages import load_registry
from babelmill.pipeline.io.writers import atomic_write_bytes, atomic_write_json

FORMAT_VERSION = 1


def _documents(lang: str, decl: Declaration, heldout: set[int], sizes: tuple[int, int], rng: random.Random):
    arts = [n for n in sorted(decl.articles) if n not in heldout]
    blocks = [("preamble", decl.preamble)] + [(f"article-{n}", decl.articles[n]) for n in arts]
    i = 0
    while i < len(blocks):
        k = rng.randint(*sizes)
        chunk = blocks[i : i + k]
        text = "\n\n".join(p for _, paras in chunk for p in paras)
        yield f"{chunk[0][0]}..{chunk[-1][0]}", text
        i += k


def near_duplicate(text: str, spaced: bool, share: float, rng: random.Random) -> str:
    """Edit `share` of the words (or characters) of `text`: substitutions and deletions."""
    units = text.split(" ") if spaced else list(text)
    n_edit = max(1, round(len(units) * share))
    idx = rng.sample(range(len(units)), min(n_edit, len(units)))
    for j in sorted(idx, reverse=True):
        if rng.random() < 0.5:
            del units[j]
        else:
            donor = units[rng.randrange(len(units))]
            units[j] = donor if donor != units[j] else units[j][::-1]
    return (" " if spaced else "").join(units)


def build_demo_corpus(out_dir: Path | str, cache_dir: Path | str = ".cache/udhr", config: Path | str | None = None,
                      seed: int = 0, declaration_dir: Path | None = None) -> dict:
    out = Path(out_dir)
    cfg = load_config(config)
    c = cfg["corpus"]
    params = {"format": FORMAT_VERSION, "seed": seed, "package": cfg["package"], "corpus": c,
              "languages": cfg["languages"], "distractors": cfg.get("distractors", {})}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    info_path = out / "corpus_info.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("key") == key:
            return info
    reg = load_registry()
    langs = load_languages(cache_dir, config, include_distractors=True, declaration_dir=declaration_dir)
    heldout = set(c["heldout_articles"])
    rng = random.Random(seed)
    files: dict[str, list[dict]] = {}
    planted = []
    counts: dict[str, dict[str, int]] = {}
    for lang in sorted(langs):
        is_target = lang in cfg["languages"]
        docs = []
        for j, (span, text) in enumerate(_documents(lang, langs[lang], heldout, tuple(c["articles_per_doc"]), rng)):
            if not is_target and j >= c["distractor_docs"]:
                break
            kind = "original" if is_target else "distractor"
            docs.append({"id": f"udhr-{lang}-{j:03d}", "text": text, "lang_true": lang, "kind": kind,
                         "url": f"udhr://{lang}/{span}"})
        if is_target:
            spaced = reg.is_space_delimited(lang) if lang in reg else True
            originals = list(docs)
            for kind, share in (("exact_dup", c["exact_dup_share"]), ("near_dup", c["near_dup_share"])):
                n = max(1, round(len(originals) * share))
                for src in rng.sample(originals, n):
                    text = src["text"]
                    if kind == "near_dup":
                        text = near_duplicate(text, spaced, rng.uniform(*c["near_dup_edit"]), rng)
                    dup = {**src, "id": f"{src['id']}-{kind.split('_')[0]}{len(docs)}", "text": text, "kind": kind}
                    docs.append(dup)
                    planted.append([dup["id"], src["id"], kind])
        rng.shuffle(docs)
        files[lang] = docs
        counts[lang] = {}
        for d in docs:
            counts[lang][d["kind"]] = counts[lang].get(d["kind"], 0) + 1
    raw = out / "raw"
    for lang, docs in files.items():
        body = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
        atomic_write_bytes(raw / f"udhr-{lang}.jsonl", body)
    # A few broken records, as any real crawl has: they must end in rejects, not vanish.
    broken = [b'{"id": "broken-1", "text": "unterminated', b'{"id": "broken-2", "text": "bad \xff\xfe bytes"}',
              b'{"id": "broken-3", "text": "   "}', b'{"id": "broken-4", "body": "no text field"}', b'["not", "an", "object"]']
    atomic_write_bytes(raw / "zz-broken.jsonl", b"\n".join(broken) + b"\n")
    counts["(broken input)"] = {"broken": len(broken)}
    info = {"key": key, **params, "heldout_articles": sorted(heldout), "counts": counts,
            "documents": sum(sum(v.values()) for v in counts.values()), "planted_duplicates": planted}
    atomic_write_json(info_path, info)
    return info


def build_parallel_set(out_dir: Path | str, articles=(28, 29, 30), cache_dir: Path | str = ".cache/udhr",
                       config: Path | str | None = None, declaration_dir: Path | None = None) -> Path:
    """One file per target language, line i = article articles[i] (its paragraphs joined)."""
    out = Path(out_dir)
    langs = load_languages(cache_dir, config, include_distractors=False, declaration_dir=declaration_dir)
    for lang, decl in sorted(langs.items()):
        lines = [" ".join(decl.articles.get(n, [])) for n in articles]
        atomic_write_bytes(out / f"{lang}.txt", ("\n".join(lines) + "\n").encode("utf-8"))
    return out


def build_langid_eval_set(cache_dir: Path | str = ".cache/udhr", config=None, min_chars: int = 40) -> list[tuple[str, str]]:
    from babelmill.demo.udhr import udhr_paragraphs

    langs = load_languages(cache_dir, config)
    return [(p, lang) for lang, d in sorted(langs.items()) for p in udhr_paragraphs(d) if len(p) >= min_chars]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    info = build_demo_corpus(args.out_dir, seed=args.seed)
    build_parallel_set(Path(args.out_dir) / "parallel")
    kinds = sorted({k for v in info["counts"].values() for k in v})
    print("lang " + " ".join(f"{k:>10}" for k in kinds))
    for lang, v in info["counts"].items():
        print(f"{lang:4} " + " ".join(f"{v.get(k, 0):>10}" for k in kinds))
    print(f"{info['documents']} documents, {len(info['planted_duplicates'])} planted duplicates -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
