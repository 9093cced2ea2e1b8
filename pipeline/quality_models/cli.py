"""`babelmill quality-model train` (fastText quality classifiers) and `babelmill quality-model
train-lm` (KenLM-readable ARPA n-gram models, pure Python).

Both read their inputs through the pipeline's readers (JSONL, Parquet, WARC, text folders; any
compression the readers take), so an input that `babelmill run` reads, they read the same way,
and broken records are counted, not fatal. A document's language is its `--lang-field` value
(default `lang`); with exactly one `--lang`, documents without one are taken to be in it.

    babelmill quality-model train --positive good.jsonl --negative junk.parquet [--lang en fr]
                                  [--multilingual] --output models/quality
    babelmill quality-model train-lm --input wiki/ [--lang en] [--order 3] --output models/kenlm
    babelmill quality-model prepare-lm --input wiki/ --lang en [--sp-model en.sp.model] --output en.txt
                                       (then: lmplz -o 5 < en.txt > en.arpa)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from babelmill.errors import BabelmillError
from babelmill.pipeline.io.readers import ReadOptions, plan_inputs, read_unit


class TrainError(BabelmillError, ValueError):
    """Bad training input or options: one line for the user."""


def read_documents(paths: list[str], text_field: str, lang_field: str, langs: list[str] | None
                   ) -> tuple[dict[str, list[str]], dict[str, int]]:
    """lang -> texts, read through the pipeline's readers; and counts of what was left out."""
    opts = ReadOptions(text_field=text_field, id_field=None, extra_fields=(lang_field,))
    plan = plan_inputs(list(paths), opts)
    default = langs[0] if langs and len(langs) == 1 else None
    wanted = set(langs) if langs else None
    out: dict[str, list[str]] = {}
    stats = {"documents": 0, "rejected_records": 0, "no_language": 0, "other_language": 0}
    for unit in plan.units:
        for docs, rejects in read_unit(unit, opts):
            stats["rejected_records"] += rejects.num_rows
            texts = docs.column("text").to_pylist()
            col = docs.column(lang_field).to_pylist() if lang_field in docs.schema.names else [None] * len(texts)
            for text, lang in zip(texts, col, strict=True):
                lang = lang or default
                if not lang:
                    stats["no_language"] += 1
                    continue
                if wanted is not None and lang not in wanted:
                    stats["other_language"] += 1
                    continue
                out.setdefault(lang, []).append(text)
                stats["documents"] += 1
    return out, stats


def _registry(path: str | None):
    from babelmill.languages import load_registry

    return load_registry(path)


def _spaced(reg, code: str) -> bool:
    return code not in reg or reg.get(code).space_delimited


# -- train (classifier) -----------------------------------------------------------------------
def train_classifiers(positive: list[str], negative: list[str], output: str | Path, langs: list[str] | None = None,
                      multilingual: bool = False, lang_field: str = "lang", text_field: str = "text",
                      registry: str | None = None, params=None) -> dict[str, dict]:
    """Train and save one classifier per language (or `multilingual.bin`); name -> metrics."""
    from babelmill.pipeline.quality_models.classifier import MULTILINGUAL, TrainParams, train_classifier

    params = params or TrainParams()
    reg = _registry(registry)
    pos, pstats = read_documents(positive, text_field, lang_field, langs)
    neg, nstats = read_documents(negative, text_field, lang_field, langs)
    if not pos or not neg:
        side = "positive" if not pos else "negative"
        raise TrainError(f"no {side} documents with a language in {positive if side == 'positive' else negative} "
                         f"({(pstats if side == 'positive' else nstats)}); set --lang-field or one --lang")
    out = Path(output)
    results: dict[str, dict] = {}
    inputs = {"positive": [str(x) for x in positive], "negative": [str(x) for x in negative]}
    if multilingual:
        p = [(t, _spaced(reg, c)) for c in sorted(pos) for t in pos[c]]
        n = [(t, _spaced(reg, c)) for c in sorted(neg) for t in neg[c]]
        try:
            m = train_classifier(p, n, out / f"{MULTILINGUAL}.bin", params,
                                 {"languages": sorted(set(pos) | set(neg)), "inputs": inputs})
        except ValueError as e:
            raise TrainError(f"multilingual: {e}") from None
        results[MULTILINGUAL] = m
    else:
        codes = sorted(set(langs) if langs else set(pos) | set(neg))
        for code in codes:
            p = [(t, _spaced(reg, code)) for t in pos.get(code, [])]
            n = [(t, _spaced(reg, code)) for t in neg.get(code, [])]
            if len(p) < 2 or len(n) < 2:
                msg = f"{code}: need at least 2 positive and 2 negative documents (got {len(p)} and {len(n)})"
                if langs:  # asked for by name: an error
                    raise TrainError(msg)
                results[code] = {"skipped": msg}
                continue
            try:
                results[code] = train_classifier(p, n, out / f"{code}.bin", params, {"language": code, "inputs": inputs})
            except ValueError as e:
                raise TrainError(f"{code}: {e}") from None
    summary = {"tool": "babelmill quality-model train", "positive": list(positive), "negative": list(negative),
               "read": {"positive": pstats, "negative": nstats},
               "models": {k: v.get("held_out", v) for k, v in results.items()}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return results


def format_classifier_table(results: dict[str, dict]) -> str:
    rows = [["model", "train +/-", "held-out +/-", "precision", "recall", "F1", "AUC", "s"]]
    for name, m in results.items():
        if "skipped" in m:
            rows.append([name, m["skipped"], "", "", "", "", "", ""])
            continue
        h = m["held_out"]

        def f(v):
            return "-" if v is None else f"{v:.3f}"

        rows.append([name, f"{m['train']['positive']}/{m['train']['negative']}", f"{h['positive']}/{h['negative']}",
                     f(h["precision"]), f(h["recall"]), f(h["f1"]), f(h["auc"]), f"{m['seconds']:.2f}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


# -- train-lm (ARPA) ----------------------------------------------------------------------------
def train_lms(inputs: list[str], output: str | Path, langs: list[str] | None = None, order: int = 3,
              normalize: str = "ccnet", lang_field: str = "lang", text_field: str = "text",
              registry: str | None = None, min_sentences: int = 1) -> dict[str, dict]:
    """One ARPA model per language (`<lang>.arpa` + `<lang>.lm.json`); lang -> info."""
    from babelmill.pipeline.quality_models.ngram import train_ngram
    from babelmill.pipeline.quality_models.text import lm_line, lm_lines

    reg = _registry(registry)
    docs, stats = read_documents(inputs, text_field, lang_field, langs)
    if not docs:
        raise TrainError(f"no documents with a language in {inputs} ({stats}); set --lang-field or one --lang")
    out = Path(output)
    results: dict[str, dict] = {}
    for code in sorted(set(langs) if langs else set(docs)):
        tokens = "words" if _spaced(reg, code) else "chars"
        t0 = time.perf_counter()
        sents = [lm_line(s, tokens).split() for t in docs.get(code, []) for s in lm_lines(t, "line", normalize)]
        sents = [s for s in sents if s]
        if len(sents) < min_sentences:
            msg = f"{code}: no text to train on"
            if langs:
                raise TrainError(msg)
            results[code] = {"skipped": msg}
            continue
        try:
            model = train_ngram(sents, order)
        except ValueError as e:
            raise TrainError(f"{code}: {e}") from None
        path = model.write_arpa(out / f"{code}.arpa")
        info = {"tool": "babelmill quality-model train-lm", "tokens": tokens, "normalize": normalize,
                "documents": len(docs.get(code, [])), **model.info(),
                "arpa_bytes": path.stat().st_size, "seconds_total": round(time.perf_counter() - t0, 3)}
        (out / f"{code}.lm.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        results[code] = info
    return results


# -- prepare-lm (text for KenLM's lmplz) ----------------------------------------------------------
def prepare_lm_text(inputs: list[str], output: str | Path, lang: str, sp_model: str | None = None,
                    normalize: str = "ccnet", lang_field: str = "lang", text_field: str = "text",
                    registry: str | None = None) -> dict:
    """Write `lang`'s documents as lmplz input: one normalised, tokenised sentence (line) per
    line, exactly as the perplexity stage prepares text for that model."""
    from babelmill.pipeline.quality_models.kenlm_models import load_sentencepiece
    from babelmill.pipeline.quality_models.text import lm_sentences

    reg = _registry(registry)
    docs, stats = read_documents(inputs, text_field, lang_field, [lang])
    texts = docs.get(lang, [])
    if not texts:
        raise TrainError(f"no {lang} documents in {inputs} ({stats}); set --lang-field, or give only {lang} text")
    sp = load_sentencepiece(Path(sp_model), "prepare-lm") if sp_model else None
    tokens = "sentencepiece" if sp is not None else ("words" if _spaced(reg, lang) else "chars")
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        for i in range(0, len(texts), 1000):
            for sents in lm_sentences(texts[i:i + 1000], "line", normalize, tokens, sp):
                for sent in sents:
                    f.write(sent + "\n")
                    n += 1
    return {"lang": lang, "documents": len(texts), "sentences": n, "tokens": tokens, "normalize": normalize,
            "output": str(out)}


# -- CLI ------------------------------------------------------------------------------------------
def add_arguments(ap: argparse.ArgumentParser) -> None:
    sub = ap.add_subparsers(dest="qm_cmd", required=True)
    t = sub.add_parser("train", help="train fastText quality classifiers (per language, or --multilingual)")
    t.add_argument("--positive", nargs="+", action="extend", required=True, help="high-quality documents (JSONL/Parquet/...)")
    t.add_argument("--negative", nargs="+", action="extend", required=True, help="low-quality documents")
    t.add_argument("--lang", nargs="+", action="extend", help="train these languages only (one --lang: documents "
                   "without a language are in it)")
    t.add_argument("--multilingual", action="store_true", help="one model for all languages (multilingual.bin)")
    t.add_argument("--output", "-o", required=True, help="model directory: <lang>.bin + <lang>.metrics.json")
    t.add_argument("--lang-field", default="lang")
    t.add_argument("--text-field", default="text")
    t.add_argument("--registry", help="language registry YAML (which languages are unspaced)")
    t.add_argument("--holdout", type=float, default=0.2, help="share of each class held out for precision/recall")
    t.add_argument("--epoch", type=int, default=10)
    t.add_argument("--lr", type=float, default=0.5)
    t.add_argument("--dim", type=int, default=32)
    t.add_argument("--word-ngrams", type=int, default=2)
    t.add_argument("--bucket", type=int, default=200_000, help="hash buckets for word n-grams (model size ~ bucket*dim*4 B)")
    t.add_argument("--max-chars", type=int, default=10_000, help="characters of each document used")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(qm_func=_run_train)

    lm = sub.add_parser("train-lm", help="train per-language n-gram LMs as ARPA (pure Python; small corpora)")
    lm.add_argument("--input", "-i", nargs="+", action="extend", required=True, help="reference text (JSONL/Parquet/...)")
    lm.add_argument("--lang", nargs="+", action="extend", help="these languages only (one --lang: documents without a "
                    "language are in it)")
    lm.add_argument("--output", "-o", required=True, help="model directory: <lang>.arpa + <lang>.lm.json")
    lm.add_argument("--order", type=int, default=3)
    lm.add_argument("--normalize", choices=["ccnet", "ccnet_keep_accents", "none"], default="ccnet")
    lm.add_argument("--lang-field", default="lang")
    lm.add_argument("--text-field", default="text")
    lm.add_argument("--registry", help="language registry YAML (which languages are unspaced)")
    lm.set_defaults(qm_func=_run_train_lm)

    pr = sub.add_parser("prepare-lm", help="write one language's text as KenLM lmplz input (normalised, tokenised "
                        "as the perplexity stage will score it)")
    pr.add_argument("--input", "-i", nargs="+", action="extend", required=True, help="reference text (JSONL/Parquet/...)")
    pr.add_argument("--lang", required=True, help="the language (documents without one are taken to be in it)")
    pr.add_argument("--output", "-o", required=True, help="text file: one sentence per line")
    pr.add_argument("--sp-model", help="SentencePiece model to tokenise with (put it next to the LM as <lang>.sp.model)")
    pr.add_argument("--normalize", choices=["ccnet", "ccnet_keep_accents", "none"], default="ccnet")
    pr.add_argument("--lang-field", default="lang")
    pr.add_argument("--text-field", default="text")
    pr.add_argument("--registry", help="language registry YAML (which languages are unspaced)")
    pr.set_defaults(qm_func=_run_prepare_lm)


def _run_train(args) -> int:
    from babelmill.pipeline.quality_models.classifier import TrainParams

    if not 0 < args.holdout < 1:
        raise TrainError(f"--holdout must be in (0, 1), got {args.holdout}")
    params = TrainParams(epoch=args.epoch, lr=args.lr, dim=args.dim, word_ngrams=args.word_ngrams,
                         bucket=args.bucket, max_chars=args.max_chars, holdout=args.holdout, seed=args.seed)
    res = train_classifiers(args.positive, args.negative, args.output, args.lang, args.multilingual,
                            args.lang_field, args.text_field, args.registry, params)
    print(format_classifier_table(res))
    print(f"wrote {args.output} (<name>.bin, <name>.metrics.json, train_summary.json)")
    return 0


def _run_train_lm(args) -> int:
    res = train_lms(args.input, args.output, args.lang, args.order, args.normalize, args.lang_field,
                    args.text_field, args.registry)
    for code, info in res.items():
        if "skipped" in info:
            print(f"{code}: skipped ({info['skipped']})")
        else:
            print(f"{code}: {info['sentences']} sentences, {info['n_tokens']} {info['tokens']}, "
                  f"{'/'.join(map(str, info['ngrams']))} n-grams, {info['seconds']:.2f} s -> {code}.arpa")
    print(f"wrote {args.output}")
    return 0


def _run_prepare_lm(args) -> int:
    res = prepare_lm_text(args.input, args.output, args.lang, args.sp_model, args.normalize, args.lang_field,
                          args.text_field, args.registry)
    print(f"{res['lang']}: {res['documents']} documents -> {res['sentences']} sentences of {res['tokens']} "
          f"({res['normalize']} normalisation) in {res['output']}")
    if res["normalize"] != "ccnet":  # the stage's default is ccnet: say how to score this model
        print(f"put {res['lang']}.lm.json with {{\"normalize\": \"{res['normalize']}\"}} next to the model "
              f"(or give the stage normalize: {res['normalize']})")
    return 0


def run(args: argparse.Namespace) -> int:
    """`babelmill quality-model ...` (pipeline/cli.py): the chosen command. A TrainError (a
    BabelmillError) is printed as one line with exit code 2 by babelmill/cli.py."""
    return args.qm_func(args)
