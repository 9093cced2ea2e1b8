"""Sharded checkpoints (megatron dist_checkpointing) that are never loaded half-written.

Layout of a save directory:

    latest                   "iter_0000200" - replaced atomically (temp file + os.replace)
    iter_0000200/            a complete checkpoint:
        <dist_checkpointing files>   model + optimizer, sharded
        rng/rank<r>.pt       python/numpy/torch(/cuda) RNG state of every rank
        trainer_state.json   iteration, consumed samples, scheduler state, config, tokenizer
        manifest.json        size (+ sha256) of every file above; written last
    iter_0000300.partial/    a save in progress (or interrupted): never loaded, removed later

    iter_0000100.corrupt/    a checkpoint that failed to verify or load, set aside (see below)

A save writes into `iter_N.partial/`, then rank 0 writes the manifest, renames the directory to
`iter_N/` and only then points `latest` at it. Loading verifies the manifest; a checkpoint that
fails (truncated or altered file, unreadable shard) is reported by name and the previous
complete one is used instead.

A checkpoint that cannot be loaded is renamed `iter_N.corrupt` once the run has moved on (it
resumed from an older one, or `--restart` started over): it is then no candidate for resume,
does not count towards keep-last-K (a higher-numbered broken checkpoint would otherwise evict
every new one) and is kept, not deleted, for inspection. A run that finds checkpoints but can
load none stops with an error naming them (nothing renamed) unless asked to restart. A
checkpoint refused as unsafe (see safe_load) always stops the run.

What a checkpoint holds is a dict of stateful objects handed to the `CheckpointManager` (as
torch.distributed.checkpoint's `Stateful` and torchtitan's CheckpointManager have it): `model`
(the model chunks) and `optimizer` go into the sharded dist_checkpointing files (megatron's
optimizer state is sharded along the model's), `rng` into this rank's rng/rank<r>.pt, and every
other entry's `state_dict()` into trainer_state.json - `train` (iteration, consumed samples: the
data position) at its top level, the rest (the LR scheduler) under their names. The manager also
holds the save policy: `maybe_save(step)` saves every `interval` steps, `force=True` at exit,
never the same step twice; keep-last-K prunes after each save.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from babelmill.errors import BabelmillError
from babelmill.fileutil import sha256_file

log = logging.getLogger(__name__)

LATEST = "latest"
MANIFEST = "manifest.json"
TRAINER_STATE = "trainer_state.json"
CORRUPT_SUFFIX = ".corrupt"
_ITER_RE = re.compile(r"^iter_(\d{7,})$")


class CheckpointError(BabelmillError, RuntimeError):
    pass


class NoLoadableCheckpointError(CheckpointError):
    """--save holds checkpoints but none of them can be loaded (and no restart was asked for)."""


def iter_name(iteration: int) -> str:
    return f"iter_{iteration:07d}"


def iteration_of(ckpt: Path) -> int:
    return int(_ITER_RE.match(Path(ckpt).name).group(1))


def set_aside(ckpt: Path) -> Path | None:
    """Rename a checkpoint that cannot be loaded to `iter_N.corrupt` (`.corrupt.2`, ... if taken)."""
    if not ckpt.is_dir():
        return None
    dst = ckpt.with_name(ckpt.name + CORRUPT_SUFFIX)
    n = 1
    while dst.exists():
        n += 1
        dst = ckpt.with_name(f"{ckpt.name}{CORRUPT_SUFFIX}.{n}")
    os.replace(ckpt, dst)
    return dst


def _rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def _barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


_sha256 = sha256_file  # the one implementation (babelmill.fileutil)


# ---------------------------------------------------------------- RNG state (per rank, plain data)

def rng_state() -> dict:
    """RNG states as tensors/primitives only, so they load with torch.load(weights_only=True)."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        from megatron.core import tensor_parallel

        state["cuda"] = torch.cuda.get_rng_state()
        tracker = tensor_parallel.get_cuda_rng_tracker()
        state["cuda_tracker"] = dict(tracker.get_states())
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and "cuda" in state:
        from megatron.core import tensor_parallel

        torch.cuda.set_rng_state(state["cuda"])
        tensor_parallel.get_cuda_rng_tracker().set_states(state["cuda_tracker"])


# ---------------------------------------------------------------- finding a loadable checkpoint

def complete_checkpoints(save_dir: str | Path) -> list[Path]:
    """Renamed (complete) checkpoint dirs, newest first."""
    d = Path(save_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if p.is_dir() and (m := _ITER_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def read_latest(save_dir: str | Path) -> str | None:
    path = Path(save_dir) / LATEST
    if not path.is_file():
        return None
    name = path.read_text().strip()
    return name or None


def verify(ckpt: Path, deep: bool = True) -> str | None:
    """None if `ckpt` matches its manifest, else the reason it does not."""
    man_path = ckpt / MANIFEST
    if not man_path.is_file():
        return f"{man_path} is missing (the save did not finish)"
    try:
        man = json.loads(man_path.read_text())
        files = man["files"]
    except (json.JSONDecodeError, KeyError) as e:
        return f"{man_path} is unreadable ({e})"
    for rel, meta in files.items():
        p = ckpt / rel
        if not p.is_file():
            return f"file {rel} is missing"
        size = p.stat().st_size
        if size != meta["size"]:
            return f"file {rel} has {size} bytes, expected {meta['size']} (truncated?)"
        if deep and meta.get("sha256") and _sha256(p) != meta["sha256"]:
            return f"file {rel} does not match its sha256"
    return None


def candidates(save_dir: str | Path) -> list[Path]:
    """Checkpoints to try, in order: the one `latest` names, then older complete ones."""
    complete = complete_checkpoints(save_dir)
    latest = read_latest(save_dir)
    if latest is None:
        return complete
    m = _ITER_RE.match(latest)
    if not m:
        log.warning("%s: unexpected content %r; ignoring it", Path(save_dir) / LATEST, latest)
        return complete
    it = int(m.group(1))
    named = Path(save_dir) / latest
    older = [p for p in complete if int(_ITER_RE.match(p.name).group(1)) < it]
    return [named, *older]


def load_trainer_state(ckpt: Path) -> dict:
    return json.loads((ckpt / TRAINER_STATE).read_text())


def say(report: Callable[[str], object] | None, logger: logging.Logger, level: int, msg: str) -> None:
    """A message of pretrain's: to `logger` at `level` (the CLI sets the level), or to `report`
    when a caller passed one. `report` is what these functions took before they logged (it
    defaulted to print); it is kept for callers that collect the messages (tests, benchmarks)."""
    if report is not None:
        report(msg)
    else:
        logger.log(level, msg)


def first_verified(save_dir: str | Path, deep: bool = True, report=None, skip: set[str] | None = None,
                   rejected: dict[str, str] | None = None) -> Path | None:
    """The newest candidate checkpoint that matches its manifest, falling back to older ones.

    Reports every checkpoint it passes over (a warning; to `report` if given, see `say`).
    Training's load retries with `skip` (names already passed over or that failed to load; the
    ones this call passes over are added) and collects the reasons in `rejected` (path -> why),
    to set them aside or name them in an error."""
    tried = [c for c in candidates(save_dir) if skip is None or c.name not in skip]
    for i, ckpt in enumerate(tried):
        reason = verify(ckpt, deep) if ckpt.is_dir() else "it does not exist"
        if reason is None:
            return ckpt
        nxt = tried[i + 1].name if i + 1 < len(tried) else None
        say(report, log, logging.WARNING, f"checkpoint {ckpt} is corrupt or incomplete: {reason}; "
            + (f"falling back to the previous checkpoint {nxt}" if nxt else "no older checkpoint to fall back to"))
        if skip is not None:
            skip.add(ckpt.name)
        if rejected is not None:
            rejected[str(ckpt)] = f"corrupt or incomplete ({reason})"
    return None


def find_loadable(save_dir: str | Path, deep: bool = True, report=None) -> Path | None:
    """The newest checkpoint that passes verification (export and inference; training's load
    also falls back past checkpoints that verify but cannot be loaded)."""
    return first_verified(save_dir, deep, report)


# ---------------------------------------------------------------- sharded state dicts

def _sharded_state_dict(model_chunks: list, optimizer, is_loading: bool) -> dict:
    from babelmill.pretrain.model import unwrap

    sd = {}
    if len(model_chunks) == 1:
        sd["model"] = unwrap(model_chunks[0]).sharded_state_dict()
    else:
        for i, c in enumerate(model_chunks):
            sd[f"model{i}"] = unwrap(c).sharded_state_dict()
    if optimizer is not None:
        model_sd = {k: v for k, v in sd.items()}
        sd["optimizer"] = optimizer.sharded_state_dict(
            model_sd["model"] if len(model_chunks) == 1 else model_sd, is_loading=is_loading)
    return sd


def _apply_loaded(state: dict, model_chunks: list, optimizer) -> None:
    from babelmill.pretrain.model import unwrap

    if len(model_chunks) == 1:
        unwrap(model_chunks[0]).load_state_dict(state["model"], strict=True)
    else:
        for i, c in enumerate(model_chunks):
            unwrap(c).load_state_dict(state[f"model{i}"], strict=True)
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])


# ---------------------------------------------------------------- stateful objects

class Stateful(Protocol):
    """What the manager saves and restores (torch.distributed.checkpoint.stateful.Stateful)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state_dict: dict) -> None: ...


class RNGState:
    """This rank's python/numpy/torch(/cuda) RNG state as a stateful object."""

    def state_dict(self) -> dict:
        return rng_state()

    def load_state_dict(self, state_dict: dict) -> None:
        set_rng_state(state_dict)


MODEL, OPTIMIZER, RNG, TRAIN = "model", "optimizer", "rng", "train"
_SHARDED = (MODEL, OPTIMIZER)  # megatron sharded state dicts, not state_dict()/load_state_dict


# ---------------------------------------------------------------- saving

class CheckpointManager:
    """Saves a dict of stateful objects by its save policy, keeps the last K, loads the newest
    verifiable checkpoint back into them.

    `states`: `model` (list of model chunks) and `optimizer` (megatron's, or None) are saved
    sharded, `rng` per rank, any other entry as JSON in trainer_state.json (`train` at its top
    level); `metadata` is static JSON written after them (config, vocab, tokenizer name).
    `interval`: `maybe_save` saves at steps divisible by it. Without `states` the manager only
    saves what `save()` is handed (the importer writes a weights-only checkpoint that way)."""

    def __init__(self, save_dir: str | Path, keep_last: int = 3, checksum: str = "sha256",
                 async_save: bool = False, states: dict | None = None, interval: int | None = None,
                 metadata: dict | None = None, tokenizer_json: str | None = None):
        self.save_dir = Path(save_dir)
        self.keep_last = keep_last
        self.checksum = checksum
        self.async_save = async_save
        self.states = dict(states or {})
        self.interval = interval
        self.metadata = dict(metadata or {})
        self.tokenizer_json = tokenizer_json
        self._queue = None
        self.last_saved_iteration: int | None = None
        self.set_aside_dirs: list[Path] = []  # set by load()
        self.restarted = False  # load() found checkpoints, loaded none, and was told to restart

    # -- save policy
    def maybe_save(self, step: int, force: bool = False) -> Path | None:
        """Save `states` at `step` if the policy says so: every `interval` steps, or `force`
        (the end of a run, --exit-after); never twice for one step. The new dir, or None."""
        if self.last_saved_iteration == step:
            return None
        if not force and (self.interval is None or step % self.interval):
            return None
        return self.save(step, self.states[MODEL], self.states.get(OPTIMIZER), self.trainer_state(),
                         tokenizer_json=self.tokenizer_json, rng=self.states.get(RNG))

    def trainer_state(self) -> dict:
        """trainer_state.json's content from `states` and `metadata`."""
        out = {}
        if TRAIN in self.states:
            out.update(self.states[TRAIN].state_dict())
        for name, obj in self.states.items():
            if name not in (*_SHARDED, RNG, TRAIN):
                out[name] = obj.state_dict()
        out.update(self.metadata)
        return out

    def _restore_json_states(self, trainer_state: dict) -> None:
        """Load trainer_state.json into the JSON states; one absent from the checkpoint (the
        scheduler of a weights-only import) keeps its fresh state."""
        for name, obj in self.states.items():
            if name == TRAIN:
                obj.load_state_dict(trainer_state)
            elif name not in (*_SHARDED, RNG) and name in trainer_state:
                obj.load_state_dict(trainer_state[name])

    # -- save
    def save(self, iteration: int, model_chunks: list, optimizer, trainer_state: dict,
             tokenizer_json: str | None = None, rng: Stateful | None = None) -> Path:
        """Write a checkpoint of exactly these objects now (no policy); see `maybe_save`."""
        from megatron.core import dist_checkpointing

        final = self.save_dir / iter_name(iteration)
        partial = self.save_dir / (iter_name(iteration) + ".partial")
        self.wait()  # one save in flight at a time
        if _rank() == 0:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(partial, ignore_errors=True)
            if final.exists():  # re-saving an iteration (e.g. after a fallback): replace it
                shutil.rmtree(final)
            partial.mkdir()
            (partial / "rng").mkdir()
            _atomic_write_text(partial / TRAINER_STATE, json.dumps(trainer_state, indent=1, default=str))
            if tokenizer_json:  # self-describing: inference needs only this directory
                shutil.copyfile(tokenizer_json, partial / "tokenizer.json")
        _barrier()
        torch.save((rng or RNGState()).state_dict(), partial / "rng" / f"rank{_rank()}.pt")
        sd = _sharded_state_dict(model_chunks, optimizer, is_loading=False)
        if self.async_save:
            from megatron.core.dist_checkpointing.strategies.async_utils import AsyncCallsQueue

            if self._queue is None:
                self._queue = AsyncCallsQueue()
            req = dist_checkpointing.save(sd, str(partial), async_sharded_save=True)
            req.add_finalize_fn(lambda: self._finalize(partial, final))
            self._queue.schedule_async_request(req)
        else:
            dist_checkpointing.save(sd, str(partial))
            _barrier()
            self._finalize(partial, final)
            _barrier()
        self.last_saved_iteration = iteration
        return final

    def _finalize(self, partial: Path, final: Path) -> None:
        if _rank() != 0:
            return
        files = {}
        for p in sorted(partial.rglob("*")):
            if p.is_file():
                rel = p.relative_to(partial).as_posix()
                meta = {"size": p.stat().st_size}
                if self.checksum == "sha256":
                    meta["sha256"] = _sha256(p)
                files[rel] = meta
        _atomic_write_text(partial / MANIFEST, json.dumps({"files": files}, indent=1))
        os.replace(partial, final)
        _atomic_write_text(self.save_dir / LATEST, final.name + "\n")
        self._prune(final)
        log.info("saved checkpoint %s", final)

    def _prune(self, saved: Path) -> None:
        """Keep the newest `keep_last` checkpoints that verify (sizes), counting down from the one
        just saved; delete what is older than the oldest of them.

        Checkpoints that fail verification do not count, so a broken checkpoint can never push
        a good one out; ones numbered above `saved` (not candidates while `latest` names
        `saved`) are left alone, so the new checkpoint is never deleted because of them."""
        it = iteration_of(saved)
        older = [p for p in complete_checkpoints(self.save_dir) if iteration_of(p) <= it]
        good = [p for p in older if verify(p, deep=False) is None][:self.keep_last]
        if good:
            floor = iteration_of(good[-1])
            for old in older:
                if iteration_of(old) < floor:
                    shutil.rmtree(old, ignore_errors=True)
        for p in self.save_dir.glob("iter_*.partial"):
            if self._queue is None or not self._queue.get_num_unfinalized_calls():
                shutil.rmtree(p, ignore_errors=True)

    def maybe_finalize(self) -> None:
        """Finish async saves that are done (non-blocking); call once per step."""
        if self._queue is not None:
            self._queue.maybe_finalize_async_calls(blocking=False)

    def wait(self) -> None:
        if self._queue is not None:
            self._queue.maybe_finalize_async_calls(blocking=True)

    def close(self) -> None:
        self.wait()
        if self._queue is not None:
            self._queue.close()
            self._queue = None

    # -- load
    def load(self, report=None, restart: bool = False) -> tuple[Path, dict] | None:
        """Restore the newest valid checkpoint into `states`: model/optimizer, this rank's RNG,
        then the JSON states (a weights-only checkpoint: the model only, and the data position).

        Returns (checkpoint dir, trainer_state), or None when there is nothing to resume from
        (no checkpoint, or none loadable and `restart`; `self.set_aside_dirs` then lists those).
        Raises NoLoadableCheckpointError when checkpoints exist but none loads (unless
        `restart`) and UnsafeCheckpointError when one is refused as unsafe.
        All ranks agree on the checkpoint: rank 0 chooses and broadcasts it. What it passes
        over or sets aside is logged as a warning on rank 0 (to `report` if given, see `say`).
        """
        from babelmill.pretrain.safe_load import UnsafeCheckpointError

        skip: set[str] = set()
        rejected: dict[str, str] = {}  # checkpoint path -> why it cannot be used
        self.set_aside_dirs: list[Path] = []
        self.restarted = False
        while True:
            choice = [None]
            if _rank() == 0:
                found = first_verified(self.save_dir, deep=self.checksum == "sha256", report=report,
                                       skip=skip, rejected=rejected)
                choice[0] = None if found is None else str(found)
            if torch.distributed.is_initialized():
                torch.distributed.broadcast_object_list(choice, src=0)
            if choice[0] is None:
                return self._nothing_loadable(rejected, restart, report)
            ckpt = Path(choice[0])
            err, code = None, 0
            try:
                self._load_into(ckpt)
            except UnsafeCheckpointError as e:  # never a fallback: stop the run
                err, code = str(e), 2
            except (Exception, _checkpoint_exception()) as e:  # noqa: BLE001 - unreadable: an older one
                err, code = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}", 1
            failed = torch.tensor([code])
            if torch.distributed.is_initialized():
                torch.distributed.all_reduce(failed, op=torch.distributed.ReduceOp.MAX)
            if failed.item() == 2:
                raise UnsafeCheckpointError(err if code == 2 else
                                            f"unsafe checkpoint: {ckpt} was refused on another rank")
            if failed.item():
                if _rank() == 0:
                    say(report, log, logging.WARNING, f"checkpoint {ckpt} could not be loaded "
                        f"({err or 'failed on another rank'}); falling back to the previous checkpoint")
                    rejected[str(ckpt)] = f"could not be loaded ({err or 'failed on another rank'})"
                skip.add(ckpt.name)
                continue
            self._set_aside(rejected, report, loaded=ckpt)
            state = load_trainer_state(ckpt)
            self._restore_json_states(state)
            return ckpt, state

    def _load_into(self, ckpt: Path) -> None:
        from babelmill.pretrain.safe_load import safe_load, torch_load_weights_only

        model_chunks, optimizer = self.states[MODEL], self.states.get(OPTIMIZER)
        # a weights-only checkpoint (`babelmill pretrain import`): the model only; the optimizer
        # starts fresh and the RNG keeps this run's seed
        weights_only = bool(load_trainer_state(ckpt).get("weights_only"))
        if weights_only:
            optimizer = None
        sd = _sharded_state_dict(model_chunks, optimizer, is_loading=True)
        state = safe_load(sd, ckpt)
        _apply_loaded(state, model_chunks, optimizer)
        if weights_only:
            return
        rng_file = ckpt / "rng" / f"rank{_rank()}.pt"
        if not rng_file.is_file():
            rng_file = ckpt / "rng" / "rank0.pt"
            log.warning("%s: no RNG state for rank %d (different world size?); using rank 0's",
                        ckpt, _rank())
        rng = self.states.get(RNG) or RNGState()
        rng.load_state_dict(torch_load_weights_only(rng_file, str(rng_file), map_location="cpu"))

    def _nothing_loadable(self, rejected: dict[str, str], restart: bool, report) -> None:
        """No checkpoint left to try: fine if there was none; else stop, or set them aside."""
        found = rejected
        if torch.distributed.is_initialized():
            box = [rejected]
            torch.distributed.broadcast_object_list(box, src=0)
            found = box[0]
        if not found:
            return None
        if not restart:
            names = "; ".join(f"{Path(p).name}: {why}" for p, why in found.items())
            raise NoLoadableCheckpointError(
                f"{self.save_dir} holds checkpoints but none can be loaded ({names}). Fix or remove "
                "them, or pass --restart to start over from iteration 0 (they are then kept as "
                f"iter_N{CORRUPT_SUFFIX}).")
        self._set_aside(found, report, loaded=None)
        self.restarted = True
        if _rank() == 0:
            say(report, log, logging.WARNING, f"--restart: no checkpoint in {self.save_dir} can be loaded; "
                "starting over from iteration 0")
        return None

    def _set_aside(self, rejected: dict[str, str], report, loaded: Path | None) -> None:
        """Rename the rejected checkpoints; `latest` then names the loaded one (or is removed on a
        restart), so a crash before the next save does not send the next resume after them."""
        if _rank() == 0:
            for p in rejected:
                dst = set_aside(Path(p))
                if dst is not None:
                    self.set_aside_dirs.append(dst)
                    say(report, log, logging.WARNING, f"checkpoint {p} kept as {dst.name} (not loadable; "
                        "never resumed from or pruned - delete it when done)")
            latest = read_latest(self.save_dir)
            if rejected and latest is not None and not (self.save_dir / latest).is_dir():
                if loaded is not None:
                    _atomic_write_text(self.save_dir / LATEST, loaded.name + "\n")
                else:
                    (self.save_dir / LATEST).unlink()
        _barrier()


def _checkpoint_exception() -> type:
    """torch's CheckpointException derives from BaseException: `except Exception` misses it."""
    from torch.distributed.checkpoint.api import CheckpointException

    return CheckpointException
