"""Turn the UDHR into a small web-like multilingual corpus for the demo and the benchmarks.

Why: the pipeline needs an input whose truth is known. Every document carries its true
language (`lang_true`) and what it is (`kind`), and corpus_info.json lists every planted
duplicate pair, so LID and the later dedup stages can be scored, not just run.

- Documents are runs of 2-4 consecutive blocks (the preamble or an article, several paragraphs
  each, joined by blank lines), about ten per target language.
- A seeded share of each language's documents is planted again verbatim (`exact_dup`) and with
  5-10% of its words edited (`near_dup`; characters for scripts written without spaces).
- A few documents per distractor language (not a target: they exercise `lang_other`).
- Articles 28-30 are held out of the corpus; build_parallel_set writes them as aligned lines
  for tokenizer/parallel evaluation, so that set never overlaps the training text.

Everything is deterministic from the seed (one RNG per language, seeded by seed and language,
so adding a language does not reshuffle the others); files are written under temporary names
and renamed, corpus_info.json last, and a rebuild with the same parameters is a no-op.

    python -m demo.corpus OUT_DIR [--seed N] [--cache-dir DIR] [--config YAML]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from babelmill.pipeline.io.writers import atomic_write_bytes, atomic_write_json
from demo.udhr import Declaration, load_config, load_languages, udhr_paragraphs

FORMAT_VERSION = 2  # bump when the output changes for the same parameters
KINDS = ("original", "exact_dup", "near_dup", "distractor")
DEFAULT_UNSPACED = ("zh", "ja", "th", "lo", "km", "my")
HOST = "udhr.demo.invalid"  # reserved TLD: the URLs look like URLs but lead nowhere

# A few malformed lines, as any real crawl has: the pipeline must reject them, not lose them.
BROKEN_RECORDS = [
    b'{"id": "broken-1", "text": "unterminated',
    b'{"id": "broken-2", "text": "bad \xff\xfe bytes"}',
    b'{"id": "broken-3", "text": "   "}',
    b'{"id": "broken-4", "body": "no text field"}',
    b'["not", "an", "object"]',
]


# --------------------------------------------------------------------------- documents


def _split_sizes(n: int, lo: int, hi: int, rng: random.Random) -> list[int]:
    """Chunk sizes in [lo, hi] summing to n (a shorter single chunk only if n < lo)."""
    sizes = []
    while n > 0:
        ok = [k for k in range(lo, min(hi, n) + 1) if n - k == 0 or n - k >= lo]
        k = rng.choice(ok) if ok else n
        sizes.append(k)
        n -= k
    return sizes


def split_documents(decl: Declaration, heldout: Iterable[int], sizes: Sequence[int],
                    rng: random.Random) -> list[tuple[str, str]]:
    """(span, text) documents of consecutive blocks; span names them, e.g. "article-4..article-6"."""
    held = set(heldout)
    blocks = [("preamble", decl.preamble)] if decl.preamble else []
    blocks += [(f"article-{n}", decl.articles[n]) for n in sorted(decl.articles) if n not in held]
    docs, i = [], 0
    for k in _split_sizes(len(blocks), int(sizes[0]), int(sizes[1]), rng):
        chunk = blocks[i : i + k]
        i += k
        text = "\n\n".join(p for _, paras in chunk for p in paras)
        if text:
            span = chunk[0][0] if k == 1 else f"{chunk[0][0]}..{chunk[-1][0]}"
            docs.append((span, text))
    return docs


def near_duplicate(text: str, spaced: bool, share: float, rng: random.Random) -> str:
    """Substitute or delete `share` of the units of `text`: words if `spaced`, else characters.

    Paragraph breaks survive, spaces are never edited in unspaced text, and every edit is real
    (a substitute always differs), so exactly max(1, floor(share * units)) units change.
    """
    paras = [p.split() if spaced else list(p) for p in text.split("\n\n")]
    slots = [(i, j) for i, units in enumerate(paras) for j, u in enumerate(units) if not u.isspace()]
    if not slots:
        return text
    pool = sorted({paras[i][j] for i, j in slots})
    n_edit = min(len(slots), max(1, int(len(slots) * share)))
    for i, j in sorted(rng.sample(slots, n_edit), reverse=True):
        donors = [u for u in pool if u != paras[i][j]]
        if donors and rng.random() < 0.5:
            paras[i][j] = rng.choice(donors)
        else:
            del paras[i][j]
    sep = " " if spaced else ""
    return "\n\n".join(s for s in (sep.join(units).strip() for units in paras) if s)


def _jsonl(docs: list[dict]) -> bytes:
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")


def _params(cfg: dict, seed: int) -> dict:
    c = dict(cfg["corpus"])
    c.setdefault("unspaced_languages", list(DEFAULT_UNSPACED))
    c.setdefault("broken_records", False)
    return {"format": FORMAT_VERSION, "seed": seed, "package": cfg["package"], "corpus": c,
            "languages": cfg["languages"], "distractors": cfg.get("distractors") or {}}


def _up_to_date(out: Path, key: str) -> dict | None:
    """The existing corpus_info if it was built with `key` and its files are intact."""
    try:
        info = json.loads((out / "corpus_info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if info.get("key") != key:
        return None
    for name, meta in info.get("files", {}).items():
        p = out / "raw" / name
        if not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != meta.get("sha256"):
            return None
    return info


def _planted_count(n: int, share: float) -> int:
    """round(n * share), but at least one when share > 0: every language gets each kind."""
    return max(1, round(n * share)) if share > 0 and n else 0


def _language_docs(lang: str, decl: Declaration, target: bool, c: dict, seed: int,
                   planted: list[list[str]]) -> list[dict]:
    rng = random.Random(f"babelmill-demo/{seed}/{lang}")
    split = split_documents(decl, c["heldout_articles"], c["articles_per_doc"], rng)
    if not target:
        picked = sorted(rng.sample(range(len(split)), min(int(c["distractor_docs"]), len(split))))
        docs = [{"span": split[i][0], "text": split[i][1], "kind": "distractor", "host": HOST} for i in picked]
    else:
        share = float((c.get("resource_share") or {}).get(lang, 1.0))
        if share < 1.0:  # a lower-resource language: only part of its text is "on the web"
            keep = sorted(rng.sample(range(len(split)), max(2, round(len(split) * share))))
            split = [split[i] for i in keep]
        docs = [{"span": s, "text": t, "kind": "original", "host": HOST} for s, t in split]
        n = len(docs)
        n_exact = min(n, _planted_count(n, c["exact_dup_share"]))
        n_near = min(n - n_exact, _planted_count(n, c["near_dup_share"]))
        sources = rng.sample(range(n), n_exact + n_near)  # disjoint: every planted cluster is a pair
        spaced = lang not in set(c["unspaced_languages"])
        for k, src_i in enumerate(sources):
            src = docs[src_i]
            if k < n_exact:
                kind, text = "exact_dup", src["text"]
            else:
                kind = "near_dup"
                text = near_duplicate(src["text"], spaced, rng.uniform(*c["near_dup_edit"]), rng)
            docs.append({"span": src["span"], "text": text, "kind": kind, "host": f"mirror{k + 1}.{HOST}",
                         "source": src})
    rng.shuffle(docs)
    # Ids are assigned after shuffling: they say nothing about which document copies which.
    for i, d in enumerate(docs):
        d["id"] = f"udhr-{lang}-{i:03d}"
    for d in docs:
        if "source" in d:
            planted.append([d["id"], d["source"]["id"], d["kind"]])
    return [{"id": d["id"], "text": d["text"], "lang_true": lang, "kind": d["kind"],
             "url": f"https://{d['host']}/{lang}/{d['span']}"} for d in docs]


def build_demo_corpus(out_dir: Path | str, cache_dir: Path | str = ".cache/udhr", config: Path | str | None = None,
                      seed: int = 0, declaration_dir: Path | str | None = None) -> dict:
    """Write out_dir/raw/udhr-<lang>.jsonl and out_dir/corpus_info.json; returns the info.

    `declaration_dir` bypasses fetching (tests). A rebuild with the same parameters (seed,
    package, languages, corpus settings) whose files are intact does nothing.
    """
    out = Path(out_dir)
    params = _params(load_config(config), seed)
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    info = _up_to_date(out, key)
    if info is not None:
        return info
    c = params["corpus"]
    langs = load_languages(cache_dir, config, include_distractors=True, declaration_dir=declaration_dir)
    planted: list[list[str]] = []
    files: dict[str, bytes] = {}
    counts: dict[str, dict[str, int]] = {}
    for lang in sorted(langs):
        docs = _language_docs(lang, langs[lang], lang in params["languages"], c, seed, planted)
        files[f"udhr-{lang}.jsonl"] = _jsonl(docs)
        counts[lang] = {k: n for k in KINDS if (n := sum(d["kind"] == k for d in docs))}
    if c["broken_records"]:
        files["zz-broken.jsonl"] = b"\n".join(BROKEN_RECORDS) + b"\n"
    raw = out / "raw"
    for name, body in files.items():
        atomic_write_bytes(raw / name, body)
    for stale in raw.glob("udhr-*.jsonl"):  # languages dropped from the config since the last build
        if stale.name not in files:
            stale.unlink()
    if not c["broken_records"]:
        (raw / "zz-broken.jsonl").unlink(missing_ok=True)
    by_kind = {k: sum(v.get(k, 0) for v in counts.values()) for k in KINDS}
    info = {
        "key": key, **params,
        "heldout_articles": sorted(int(n) for n in c["heldout_articles"]),
        "counts": counts,
        "counts_by_kind": by_kind,
        "documents": sum(by_kind.values()),
        "broken_records": len(BROKEN_RECORDS) if c["broken_records"] else 0,
        "files": {name: {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)} for name, body in files.items()},
        "planted_duplicates": planted,  # [dup_id, original_id, kind]
    }
    atomic_write_json(out / "corpus_info.json", info)  # last: its presence marks a complete build
    return info


# --------------------------------------------------------------------------- evaluation sets


def build_parallel_set(out_dir: Path | str, articles: Iterable[int] = (28, 29, 30), cache_dir: Path | str = ".cache/udhr",
                       config: Path | str | None = None, declaration_dir: Path | str | None = None) -> Path:
    """out_dir/<lang>.txt per target language, line i of every file meaning the same thing.

    Per article: if every language has the same number of paragraphs, one line per paragraph;
    otherwise one line per article (its paragraphs joined by a space). Articles missing from
    any language are left out. Returns out_dir.
    """
    out = Path(out_dir)
    langs = load_languages(cache_dir, config, include_distractors=False, declaration_dir=declaration_dir)
    lines: dict[str, list[str]] = {lang: [] for lang in langs}
    for n in articles:
        paras = {lang: d.articles.get(int(n), []) for lang, d in langs.items()}
        if not all(paras.values()):
            continue
        per_paragraph = len({len(p) for p in paras.values()}) == 1
        for lang, ps in paras.items():
            lines[lang].extend(ps if per_paragraph else [" ".join(ps)])
    for lang in sorted(lines):
        atomic_write_bytes(out / f"{lang}.txt", "".join(f"{s}\n" for s in lines[lang]).encode("utf-8"))
    return out


def build_langid_eval_set(cache_dir: Path | str = ".cache/udhr", config: Path | str | None = None, min_chars: int = 40,
                          declaration_dir: Path | str | None = None) -> list[tuple[str, str]]:
    """(text, lang) for every paragraph of at least `min_chars` characters of every target
    language's declaration (preamble and all articles), sorted by language, in document order."""
    langs = load_languages(cache_dir, config, include_distractors=False, declaration_dir=declaration_dir)
    return [(p, lang) for lang in sorted(langs) for p in udhr_paragraphs(langs[lang]) if len(p) >= min_chars]


# --------------------------------------------------------------------------- CLI


def format_table(info: dict) -> str:
    rows = [f"{'lang':6}" + "".join(f"{k:>11}" for k in KINDS) + f"{'total':>8}"]
    for lang, v in info["counts"].items():
        rows.append(f"{lang:6}" + "".join(f"{v.get(k, 0):>11}" for k in KINDS) + f"{sum(v.values()):>8}")
    t = info["counts_by_kind"]
    rows.append(f"{'all':6}" + "".join(f"{t.get(k, 0):>11}" for k in KINDS) + f"{info['documents']:>8}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the UDHR demo corpus and parallel set.")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=".cache/udhr")
    ap.add_argument("--config", default=None, help="default: configs/demo/udhr.yaml")
    args = ap.parse_args(argv)
    out = Path(args.out_dir)
    info = build_demo_corpus(out, cache_dir=args.cache_dir, config=args.config, seed=args.seed)
    par = build_parallel_set(out / "parallel", articles=info["heldout_articles"], cache_dir=args.cache_dir,
                             config=args.config)
    n_lines = {len(p.read_text(encoding="utf-8").splitlines()) for p in par.glob("*.txt")}
    print(format_table(info))
    pkg = info["package"]
    print(f"{info['documents']} documents in {len(info['counts'])} languages "
          f"({len(info['planted_duplicates'])} planted duplicates, {info['broken_records']} broken records) "
          f"from {pkg['name']}@{pkg['version']} -> {out / 'raw'}")
    print(f"parallel set: articles {info['heldout_articles']}, {'/'.join(map(str, sorted(n_lines)))} aligned lines "
          f"x {len(list(par.glob('*.txt')))} languages -> {par}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
