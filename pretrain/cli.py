"""`babelmill pretrain {preprocess,train,plan,export,import}`: argparse registration and command functions.

babelmill/cli.py calls `register(sub)`; `python -m babelmill.pretrain.cli ...` runs the same
commands standalone (used by torchrun launches and the tests), with errors handled by the same
function as babelmill's (babelmill.errors.run_command: a user error is one line, exit code 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_preprocess(args) -> int:
    from babelmill.pretrain.data.preprocess import preprocess

    m = preprocess(args.input, args.tokenizer, args.output, workers=args.workers,
                   shard_tokens=args.shard_tokens, text_field=args.text_field,
                   lang_field=args.lang_field, keep_parts=args.keep_parts, progress=sys.stderr.isatty(),
                   engine=args.engine, on_bad=args.on_bad)
    for lang, v in sorted(m["languages"].items()):
        print(f"{lang:>8}  {v['documents']:>10,} docs  {v['tokens']:>14,} tokens  {len(v['shards'])} shard(s)")
    print(f"{'total':>8}  {m['documents']:>10,} docs  {m['tokens']:>14,} tokens  "
          f"({m['tokens_per_second_per_worker']:,.0f} tokens/s per worker)")
    quar = m.get("quarantine") or {}
    if quar.get("records"):
        reasons = ", ".join(f"{k} {n}" for k, n in quar["by_reason"].items())
        print(f"quarantined: {quar['records']:,} record(s) ({reasons}); see {args.output}/quarantine/")
    print(f"manifest: {args.output}/preprocess.json")
    return 0


def cmd_train(args) -> int:
    from babelmill.pretrain.loop import train
    from babelmill.yamlconf import parse_set

    overrides = parse_set(args.set)
    if args.balance:
        overrides["data.balance"] = str(Path(args.balance).resolve())  # CLI paths: relative to the cwd
    r = train(args.config, args.data, args.save, train_iters=args.train_iters,
              exit_after=args.exit_after, overrides=overrides, restart=args.restart)
    import torch

    if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        print(json.dumps({"iteration": r.iteration, "consumed_samples": r.consumed_samples,
                          "resumed_from": r.resumed_from,
                          "tokens_per_second": round(r.tokens_per_second, 1),
                          "valid": r.valid}, indent=1))
    return 0


def cmd_plan(args) -> int:
    from babelmill.pretrain.sizing import format_plan, plan

    p = plan(args.config, world_size=args.world_size, meta=args.meta)
    print(format_plan(p))
    return 0


def cmd_export(args) -> int:
    from babelmill.pretrain.hf_export import export

    s = export(args.checkpoint, args.output, iteration=args.iteration, dtype=args.dtype)
    print(json.dumps({**s, "output": str(args.output)}, indent=1))
    return 0


def cmd_import(args) -> int:
    from babelmill.pretrain.hf_import import import_hf

    s = import_hf(args.hf, args.output, config=args.config, seq_length=args.seq_length)
    print(json.dumps({k: v for k, v in s.items() if k != "model"}, indent=1))
    return 0


def register(subparsers) -> None:
    from babelmill.yamlconf import add_set_argument

    p = subparsers.add_parser("pretrain", help="pretrain a GPT with megatron-core (preprocess, train, plan, "
                                               "export/import Hugging Face models)")
    sub = p.add_subparsers(dest="pretrain_cmd", required=True)

    q = sub.add_parser("preprocess", help="tokenize a corpus into per-language Megatron indexed datasets")
    q.add_argument("--input", required=True, nargs="+",
                   help="Parquet/JSONL files with text and lang, or directories of them (DIR/<lang>/*.parquet)")
    q.add_argument("--tokenizer", required=True, help="HF tokenizers tokenizer.json")
    q.add_argument("--output", required=True, help="DATA_DIR for the .bin/.idx shards and preprocess.json")
    q.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    q.add_argument("--engine", choices=["process", "ray"], default="process",
                   help="process pool here, or one Ray task per input file ($RAY_ADDRESS or a local Ray)")
    q.add_argument("--shard-tokens", type=int, default=1_000_000_000, help="max tokens per shard")
    q.add_argument("--text-field", default="text")
    q.add_argument("--lang-field", default="lang")
    q.add_argument("--keep-parts", action="store_true", help="keep the per-input-file parts")
    q.add_argument("--on-bad", choices=["strict", "quarantine"], default="strict",
                   help="a broken input record (bad JSON/UTF-8, no or empty text): stop with its file:line "
                        "(strict), or leave it out, counted in preprocess.json and written to DATA_DIR/quarantine/")
    q.set_defaults(func=cmd_preprocess)

    t = sub.add_parser("train", help="train or resume (from --save) a GPT")
    t.add_argument("--config", required=True, help="pretraining YAML (configs/pretrain/*.yaml)")
    t.add_argument("--data", required=True, help="DATA_DIR written by `pretrain preprocess`")
    t.add_argument("--save", required=True, help="checkpoint + metrics dir; resumed from if it holds one")
    t.add_argument("--train-iters", type=int, help="override train.train_iters (the schedule length)")
    t.add_argument("--exit-after", type=int,
                   help="stop (with a checkpoint) at this iteration, e.g. to fit a job time limit")
    t.add_argument("--balance", help="balance.json with per-language weights (overrides data.balance)")
    t.add_argument("--restart", action="store_true",
                   help="if --save holds checkpoints but none can be loaded, start over from iteration 0 "
                        "(they are kept as iter_N.corrupt, metrics.jsonl as metrics.jsonl.N) instead of "
                        "stopping with an error")
    add_set_argument(t)
    t.set_defaults(func=cmd_train)

    pl = sub.add_parser("plan", help="parameter count and memory estimate of a config (no training)")
    pl.add_argument("--config", required=True)
    pl.add_argument("--world-size", type=int, default=None, help="GPUs (default: tensor x pipeline)")
    pl.add_argument("--meta", action="store_true", help="also build the model on the meta device")
    pl.set_defaults(func=cmd_plan)

    e = sub.add_parser("export", help="write a Hugging Face transformers model dir (Llama/Arcee, "
                                      "safetensors, tokenizer) from a checkpoint")
    e.add_argument("--checkpoint", required=True, help="a --save dir (newest verified checkpoint) or one iter_* dir")
    e.add_argument("--iteration", type=int, help="export this iteration's checkpoint of the save dir")
    e.add_argument("--output", required=True, help="HF_DIR to write (new or an earlier export)")
    e.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("import", help="turn a Hugging Face Llama model dir into a save dir training "
                                      "can continue from")
    i.add_argument("--hf", required=True, help="local HF model dir (config.json, safetensors, tokenizer.json)")
    i.add_argument("--output", required=True, help="new CKPT_DIR (a babelmill --save dir)")
    i.add_argument("--config", help="take train/optimizer/parallel/checkpoint settings from this YAML")
    i.add_argument("--seq-length", type=int, help="training sequence length (default: the model's context)")
    i.set_defaults(func=cmd_import)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="babelmill")
    sub = ap.add_subparsers(dest="cmd", required=True)
    register(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "pretrain":
        argv = ["pretrain", *argv]
    args = ap.parse_args(argv)
    from babelmill.cli import configure_logging
    from babelmill.errors import run_command

    configure_logging(0)  # INFO to stderr, as under `babelmill` (each rank's "resumed from ...")
    # what torchrun starts on every rank: user errors print one line, as under babelmill/cli.py
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
