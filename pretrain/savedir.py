"""Which `--save` directories training may write into.

Training writes `tokenizer.json`, `run_config.json`, `metrics.jsonl`, `latest`, `iter_*/`,
`tensorboard/` and `data_cache/` into the save directory. Pointed at a directory of someone
else's files (a tokenizer output folder, a home directory) it would overwrite or truncate
them; pointed at another run it would mix two runs. So:

- a directory babelmill set up carries the marker `babelmill_run.json`, written by rank 0 when
  it starts a run in a missing or empty directory (before anything else is written there, so an
  interrupted first run is still recognised) or adopts an older save dir;
- a save dir from before the marker existed is recognised by its checkpoints
  (`iter_*/trainer_state.json`) and adopted;
- a missing or empty directory is a fresh run;
- anything else is refused, naming the files, before anything is written;
- a babelmill run dir whose `run_config.json` describes another model or tokenizer is refused
  too: resuming it cannot work and would overwrite its run files. Changing the schedule
  (train_iters, --exit-after), intervals, optimizer settings or parallelism keeps working.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from babelmill.fileutil import sha256_file
from babelmill.pretrain.checkpoint import TRAINER_STATE, CheckpointError

log = logging.getLogger(__name__)

MARKER = "babelmill_run.json"
RUN_CONFIG = "run_config.json"


class SaveDirError(CheckpointError):
    """--save is not a directory babelmill may write this run into."""




def _has_babelmill_checkpoint(d: Path) -> bool:
    return any(p.is_dir() and p.name.startswith("iter_") and (p / TRAINER_STATE).is_file()
               for p in d.iterdir())


def check_owned(save_dir: str | Path) -> str:
    """Whether --save is "fresh", "ours" or "adopted"; refuses a non-empty one babelmill did not
    set up. Read-only: every rank may call it."""
    d = Path(save_dir)
    if not d.exists():
        return "fresh"
    if not d.is_dir():
        raise SaveDirError(f"--save {d} exists and is not a directory")
    if (d / MARKER).is_file():
        return "ours"
    entries = sorted(p.name for p in d.iterdir())
    if not entries:
        return "fresh"
    if _has_babelmill_checkpoint(d):
        log.info("%s: a babelmill save dir from before %s; adopting it", d, MARKER)
        return "adopted"
    shown = ", ".join(entries[:5]) + (f", ... ({len(entries)} entries)" if len(entries) > 5 else "")
    raise SaveDirError(f"--save {d} holds files babelmill did not write ({shown}); training would "
                       "overwrite them. Use a new or empty directory.")


def run_identity(run: dict) -> dict:
    """What must stay the same for a save dir to be resumed: the model and the tokenizer."""
    cfg = run.get("config") or {}
    return {"model": cfg.get("model"), "vocab_size": run.get("vocab_size"),
            "tokenizer_sha256": run.get("tokenizer_sha256")}


def _model_defaults() -> dict:
    from babelmill.pretrain.config import ModelConfig

    return {k: f.default for k, f in ModelConfig.model_fields.items() if not f.is_required()}


def check_same_run(save_dir: str | Path, run: dict) -> None:
    """Refuse a save dir whose run_config.json describes another model or tokenizer."""
    d = Path(save_dir)
    path = d / RUN_CONFIG
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SaveDirError(f"{path} is unreadable ({e}); not resuming into it") from None
    if not isinstance(old, dict):
        raise SaveDirError(f"{path} is not a babelmill run config; not resuming into it")
    was, now = run_identity(old), run_identity(run)
    for side in (was, now):  # a model field added since the run was written counts as its default
        if isinstance(side["model"], dict):
            side["model"] = {**_model_defaults(), **side["model"]}
    if was["tokenizer_sha256"] is None and (d / "tokenizer.json").is_file():
        was["tokenizer_sha256"] = sha256_file(d / "tokenizer.json")  # run files from before the hash
    diffs = []
    for key in ("model", "vocab_size", "tokenizer_sha256"):
        if key == "model" and isinstance(was["model"], dict) and isinstance(now["model"], dict):
            diffs += [f"model.{k}: {was['model'].get(k)!r} -> {now['model'].get(k)!r}"
                      for k in sorted(set(was["model"]) | set(now["model"]))
                      if was["model"].get(k) != now["model"].get(k)]
        elif was[key] != now[key]:
            diffs.append(key if key == "tokenizer_sha256" else f"{key}: {was[key]!r} -> {now[key]!r}")
    if diffs:
        shown = "; ".join(d.replace("tokenizer_sha256", "a different tokenizer") for d in diffs[:4])
        raise SaveDirError(f"--save {d} holds a run of another configuration ({shown}); resuming it "
                           "would mix two runs. Use a new --save directory.")


def mark(save_dir: str | Path) -> None:
    """Record that babelmill set this directory up (idempotent)."""
    d = Path(save_dir)
    d.mkdir(parents=True, exist_ok=True)
    marker = d / MARKER
    if not marker.is_file():
        marker.write_text(json.dumps({"written_by": "babelmill pretrain train", "version": 1}) + "\n")

