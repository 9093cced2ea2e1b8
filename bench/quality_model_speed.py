"""Model-based quality scoring on one core: babelmill's `perplexity` and `quality_classifier`
stages vs datatrove 0.10.1's CCNetPerplexityStats (its KenlmModel: CCNet-style normalisation,
SentencePiece, KenLM) and FastTextClassifierFilter, on the same documents with the same model
files, measured in the same run.

Models (built here in seconds, per language, from UDHR text; no download): a SentencePiece
unigram model and a KenLM 3-gram over its pieces (babelmill's pure-Python trainer, written as
`<lang>.arpa` + `<lang>.sp.model`, CCNet's layout), and a fastText classifier (UDHR vs generated
junk, `babelmill quality-model train`). Documents: UDHR-based, 3-8 paragraphs, the benchmark's
languages drawn uniformly. datatrove gets one stats step / filter per language, each document
routed to its language's at no cost; its downloads are replaced by the local files.

Also measured: the pure-Python n-gram trainer (tokens/s, peak memory) on a larger corpus.

    python -m bench.quality_model_speed [--docs N] [--json OUT]      (N scales with BENCH_SCALE)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from bench.timing import best_of  # noqa: E402

LANGS = ("en", "fr", "ru", "ar", "hi", "zh")


def interleaved(fa, fb, rounds: int = 5) -> tuple[float, float]:
    """Best time of each of two functions, timed alternately (a load that comes and goes hits
    both sides alike, rather than whichever ran during it)."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(best_of(fa, repeat=1))
        tb.append(best_of(fb, repeat=1))
    return min(ta), min(tb)


def build_models(work: Path, langs=LANGS) -> dict:
    """<lang>.sp.model + <lang>.arpa (kenlm/) and <lang>.bin (classifier/) from UDHR text."""
    import sentencepiece as spm

    from babelmill.languages import load_registry
    from babelmill.pipeline.quality_models.classifier import TrainParams, train_classifier
    from babelmill.pipeline.quality_models.ngram import train_ngram
    from babelmill.pipeline.quality_models.text import lm_lines
    from demo.quality import JUNK_KINDS, junk_document
    from demo.udhr import load_languages, udhr_paragraphs

    reg = load_registry()
    decl = load_languages()
    lm_dir, clf_dir = work / "kenlm", work / "classifier"
    lm_dir.mkdir(parents=True, exist_ok=True)
    info = {}
    for code in langs:
        t0 = time.perf_counter()
        paras = udhr_paragraphs(decl[code])
        sents = [s for p in paras for s in lm_lines(p, "line", "ccnet")]
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(sents), model_writer=buf, vocab_size=800,
                                       model_type="unigram", num_threads=1, minloglevel=2, hard_vocab_limit=False)
        (lm_dir / f"{code}.sp.model").write_bytes(buf.getvalue())
        sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
        model = train_ngram([sp.encode(s, out_type=str) for s in sents], 3)
        model.write_arpa(lm_dir / f"{code}.arpa")
        spaced = reg.get(code).space_delimited
        rng = random.Random(f"bench/{code}")
        pos, neg = [], []
        for i in range(len(paras) - 2):
            chunk = paras[i:i + 3]
            pos.append(("\n\n".join(chunk), spaced))
            neg.append((junk_document(JUNK_KINDS[i % 4], chunk, spaced, rng), spaced))
        m = train_classifier(pos, neg, clf_dir / f"{code}.bin", TrainParams(epoch=25, lr=0.5, dim=16, bucket=20_000))
        info[code] = {"sentences": len(sents), "ngrams": model.info()["ngrams"], "held_out_auc": m["held_out"]["auc"],
                      "seconds": round(time.perf_counter() - t0, 2)}
    return info


def documents(n: int, langs=LANGS, seed: int = 0) -> list[tuple[str, str]]:
    from demo.udhr import load_languages, udhr_paragraphs

    decl = load_languages()
    paras = {c: udhr_paragraphs(decl[c]) for c in langs}
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        c = rng.choice(langs)
        k = rng.randint(3, 8)
        s = rng.randint(0, max(0, len(paras[c]) - k))
        out.append(("\n\n".join(paras[c][s:s + k]), c))
    return out


def batches(docs, size: int) -> list[pa.RecordBatch]:
    return [pa.RecordBatch.from_pydict({"id": [str(s + i) for i in range(len(docs[s:s + size]))],
                                        "text": pa.array([t for t, _ in docs[s:s + size]], pa.large_string()),
                                        "lang": [c for _, c in docs[s:s + size]]}) for s in range(0, len(docs), size)]


def _datatrove_accepts_our_wheels() -> None:
    """datatrove checks distribution *names*: kenlm (we install kenlm-ex, the same `kenlm`
    module) and fasttext-numpy2-wheel (we install fasttext-numpy2, the same `fasttext`)."""
    from datatrove.utils import _import_utils

    orig = _import_utils._is_distribution_available
    alias = {"kenlm": "kenlm-ex", "fasttext-numpy2-wheel": "fasttext-numpy2"}
    _import_utils._is_distribution_available = lambda name: orig(name) or (name in alias and orig(alias[name]))


def datatrove_perplexity(lm_dir: Path, langs, out_dir: Path):
    """{lang: CCNetPerplexityStats} whose KenlmModel reads the local files."""
    import kenlm
    import sentencepiece
    from datatrove.pipeline.stats import CCNetPerplexityStats
    from datatrove.utils import perplexity as dp

    class LocalSentencePiece(dp.SentencePiece):
        @property
        def model(self):
            if self._model is None:
                self._model = sentencepiece.SentencePieceProcessor()
                self._model.load(str(lm_dir / f"{self.model_name}.sp.model"))
            return self._model

    class LocalKenlm(dp.KenlmModel):
        @property
        def model(self):
            if self._model is None:  # as datatrove loads it, minus the progress bar on stderr
                cfg = kenlm.Config()
                cfg.show_progress = False
                cfg.arpa_complain = kenlm.ARPALoadComplain.NONE
                self._model = kenlm.Model(str(lm_dir / f"{self.language}.arpa"), cfg)
            return self._model

        @property
        def tokenizer(self):
            if self._tokenizer is None:
                self._tokenizer = LocalSentencePiece(self.model_dataset, self.language)
            return self._tokenizer

    out = {}
    for c in langs:
        st = CCNetPerplexityStats(output_folder=str(out_dir / c), model_dataset="local", language=c)
        st.model = LocalKenlm("local", c)
        out[c] = st
    return out


def datatrove_classifiers(clf_dir: Path, langs):
    from datatrove.pipeline.filters import FastTextClassifierFilter
    from fasttext.FastText import _FastText

    out = {}
    for c in langs:
        f = FastTextClassifierFilter(model_url=str(clf_dir / f"{c}.bin"), keep_labels=("hq", 0.5))
        f._model = _FastText(str(clf_dir / f"{c}.bin"))  # the local model, not a download
        out[c] = f
    return out


def trainer_speed(tokens_target: int) -> dict:
    """The pure-Python KN trainer on word sentences drawn from all UDHR languages."""
    from babelmill.pipeline.quality_models.ngram import train_ngram
    from babelmill.pipeline.quality_models.text import lm_lines
    from demo.udhr import load_languages, udhr_paragraphs

    decl = load_languages()
    base = [s.split() for c in sorted(decl) for p in udhr_paragraphs(decl[c]) for s in lm_lines(p, "line", "ccnet")]
    rng = random.Random(0)
    sents, n = [], 0
    while n < tokens_target:  # resample sentences with word-level shuffles: a realistic vocabulary growth
        s = list(rng.choice(base))
        if len(s) > 3 and rng.random() < 0.5:
            i = rng.randrange(len(s) - 1)
            s[i], s[i + 1] = s[i + 1], s[i]
        sents.append(s)
        n += len(s)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    m = train_ngram(sents, 3)
    secs = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        size = m.write_arpa(Path(tmp) / "x.arpa").stat().st_size
        write_s = time.perf_counter() - t1
    return {"tokens": m.tokens, "sentences": m.sentences, "ngrams": m.info()["ngrams"], "train_seconds": round(secs, 2),
            "tokens_per_s": round(m.tokens / secs), "write_seconds": round(write_s, 2), "arpa_mb": round(size / 1e6, 1),
            "peak_rss_growth_mb": round((rss1 - rss0) / 1024, 1),
            "rss_bytes_per_ngram": round((rss1 - rss0) * 1024 / max(1, sum(m.info()["ngrams"])))}


def main() -> int:
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=int(3000 * scale))
    ap.add_argument("--dt-docs", type=int, default=int(1500 * scale), help="documents for the datatrove side")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--trainer-tokens", type=int, default=int(500_000 * scale))
    ap.add_argument("--json")
    args = ap.parse_args()

    from babelmill.pipeline.stages.perplexity import PerplexityStage
    from babelmill.pipeline.stages.quality_classifier import QualityClassifierStage

    t_start = time.perf_counter()
    trainer = trainer_speed(args.trainer_tokens)  # first: its peak-RSS growth is its own
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        model_info = build_models(work)
        build_s = time.perf_counter() - t0
        docs = documents(args.docs)
        n = len(docs)
        avg = sum(len(t) for t, _ in docs) / n
        bs = batches(docs, args.batch_size)
        ppl_stage = PerplexityStage(models=str(work / "kenlm"), languages=list(LANGS), score_only=True)
        clf_stage = QualityClassifierStage(models=str(work / "classifier"), languages=list(LANGS), score_only=True)
        for st in (ppl_stage, clf_stage):
            st.preflight()
            for b in bs:  # warm-up: every model loaded once (per worker, as in a run)
                st(b)
        def run_ours_ppl():
            return [ppl_stage(b) for b in bs]

        def run_ours_clf():
            return [clf_stage(b) for b in bs]

        ours_ppl = ours_clf = None
        our_values = np.concatenate([ppl_stage(b).column("perplexity").to_numpy(zero_copy_only=False) for b in bs])
        our_scores = np.concatenate([clf_stage(b).column("quality_score").to_numpy(zero_copy_only=False) for b in bs])

        res: dict = {"docs": n, "avg_chars": round(avg, 1), "languages": list(LANGS), "models": model_info,
                     "model_build_seconds": round(build_s, 1), "timing": "best of 5 rounds, ours and datatrove alternately"}
        notes = []
        try:
            _datatrove_accepts_our_wheels()
            from datatrove.data import Document

            m = min(n, args.dt_docs)
            dt_docs = [Document(text=t, id=str(i), metadata={"language": c}) for i, (t, c) in enumerate(docs[:m])]
            dt_ppl = datatrove_perplexity(work / "kenlm", LANGS, work / "dt_stats")
            for d in dt_docs[: len(LANGS) * 5]:
                dt_ppl[d.metadata["language"]].extract_stats(d)  # warm-up: models loaded
            dt_values: list[float] = []

            def run_ppl():
                dt_values.clear()
                for d in dt_docs:
                    st = dt_ppl[d.metadata["language"]]
                    dt_values.extend(st.extract_stats(d).values())

            ours_ppl, secs = interleaved(run_ours_ppl, run_ppl)
            res["perplexity_stage_docs_per_s"] = round(n / ours_ppl, 1)
            res["datatrove_perplexity_docs_per_s"] = round(m / secs, 1)
            res["ratio_perplexity"] = round(res["perplexity_stage_docs_per_s"] / res["datatrove_perplexity_docs_per_s"], 2)
            ours = np.round(our_values[:m].astype(np.float64), 1)
            theirs = np.asarray(dt_values, dtype=np.float64)
            res["perplexity_equal_to_0.1"] = round(float(np.mean(np.abs(ours - theirs) <= 0.1 + 1e-6)), 3)
            res["perplexity_median_rel_diff"] = round(float(np.median(np.abs(ours - theirs) / theirs)), 5)
            res["perplexity_max_rel_diff"] = round(float(np.max(np.abs(ours - theirs) / theirs)), 4)
            digits = np.array([any(ch.isdigit() for ch in d.text) for d in dt_docs])
            if digits.any() and (~digits).any():
                res["perplexity_equal_to_0.1_without_digits"] = round(
                    float(np.mean(np.abs(ours - theirs)[~digits] <= 0.1 + 1e-6)), 3)
            res["docs_with_digits"] = int(digits.sum())

            dt_clf = datatrove_classifiers(work / "classifier", LANGS)
            dt_scores: list[float] = []

            def run_clf():
                dt_scores.clear()
                for d in dt_docs:
                    d.metadata.pop("__label__hq", None)
                    dt_clf[d.metadata["language"]].filter(d)
                    dt_scores.append(d.metadata.get("__label__hq", float("nan")))

            run_clf()
            ours_clf, secs = interleaved(run_ours_clf, run_clf)
            res["classifier_stage_docs_per_s"] = round(n / ours_clf, 1)
            res["datatrove_classifier_docs_per_s"] = round(m / secs, 1)
            res["ratio_classifier"] = round(res["classifier_stage_docs_per_s"] / res["datatrove_classifier_docs_per_s"], 2)
            res["classifier_score_corr"] = round(float(np.corrcoef(our_scores[:m], np.asarray(dt_scores))[0, 1]), 3)
            res["datatrove_docs"] = m
        except Exception as e:  # noqa: BLE001
            notes.append(f"datatrove side could not run: {type(e).__name__}: {e}")
        if ours_ppl is None:
            res["perplexity_stage_docs_per_s"] = round(n / best_of(run_ours_ppl), 1)
        if ours_clf is None:
            res["classifier_stage_docs_per_s"] = round(n / best_of(run_ours_clf), 1)
    res["trainer"] = trainer
    res["notes"] = notes
    head = (f"perplexity stage {res['perplexity_stage_docs_per_s']:.0f} docs/s/core"
            + (f" = {res['ratio_perplexity']:.2f}x datatrove CCNetPerplexityStats" if "ratio_perplexity" in res else "")
            + f"; classifier stage {res['classifier_stage_docs_per_s']:.0f} docs/s/core"
            + (f" = {res['ratio_classifier']:.2f}x datatrove FastTextClassifierFilter" if "ratio_classifier" in res else ""))
    res["headline"] = head
    res["seconds"] = round(time.perf_counter() - t_start, 1)

    print(f"documents: {n} in {len(LANGS)} languages ({', '.join(LANGS)}), avg {avg:.0f} chars; one core, "
          f"batches of {args.batch_size}; models built in {build_s:.1f} s; best of 5 alternating rounds")
    print(f"babelmill perplexity stage               : {res['perplexity_stage_docs_per_s']:>9.0f} docs/s")
    if "datatrove_perplexity_docs_per_s" in res:
        print(f"datatrove CCNetPerplexityStats           : {res['datatrove_perplexity_docs_per_s']:>9.0f} docs/s"
              f"  -> babelmill {res['ratio_perplexity']:.2f}x")
        print(f"  same perplexity (to 0.1) on {res['perplexity_equal_to_0.1']:.1%} of {m} documents; median relative "
              f"difference {res['perplexity_median_rel_diff']}, max {res['perplexity_max_rel_diff']} "
              f"({res['docs_with_digits']} documents have digits: CCNet maps each digit to 0, datatrove each number)")
    print(f"babelmill quality_classifier stage       : {res['classifier_stage_docs_per_s']:>9.0f} docs/s")
    if "datatrove_classifier_docs_per_s" in res:
        print(f"datatrove FastTextClassifierFilter       : {res['datatrove_classifier_docs_per_s']:>9.0f} docs/s"
              f"  -> babelmill {res['ratio_classifier']:.2f}x")
        print(f"  score correlation {res['classifier_score_corr']} (datatrove feeds the raw text; babelmill prepares it "
              "as the model was trained)")
    tr = res["trainer"]
    print(f"pure-Python 3-gram trainer               : {tr['tokens_per_s']:>9,} tokens/s ({tr['tokens']:,} tokens, "
          f"{'/'.join(map(str, tr['ngrams']))} n-grams, {tr['train_seconds']} s + {tr['write_seconds']} s to write "
          f"{tr['arpa_mb']} MB ARPA; peak RSS +{tr['peak_rss_growth_mb']} MB, ~{tr['rss_bytes_per_ngram']} B per n-gram)")
    for note in notes:
        print(f"note: {note}")
    print(f"headline: {head}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
