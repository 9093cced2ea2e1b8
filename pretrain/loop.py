"""The training loop on megatron-core: set-up, the schedule of evals/logs/checkpoints, resume.

What one step computes (micro-batches, forward step, loss, forward/backward schedule) is in
`step`; which concrete values `auto` settings take is decided once, by `config.resolve`, and
recorded in run_config.json; what a checkpoint holds and when one is written is the
`CheckpointManager`'s (a dict of stateful objects and a save policy). The trainer wires them.

Data order is a pure function of `consumed_samples`: step k of every run reads global samples
[k*G, (k+1)*G) of the (seeded, cached) blended GPTDataset, data-parallel rank r taking its
micro-batch slices. Together with the restored model/optimizer/scheduler/RNG state this makes
a resumed run reproduce the uninterrupted one step for step.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from babelmill.pretrain import cpu_compat, savedir, step
from babelmill.pretrain.checkpoint import CheckpointManager, RNGState, say
from babelmill.pretrain.config import PretrainConfig, World, config_with_overrides, load_config, resolve
from babelmill.pretrain.distributed import (
    DistInfo,
    init_model_parallel,
    init_process_group,
    set_seed,
    shutdown,
)
from babelmill.pretrain.metrics import METRICS_FILE, MetricsLogger, rotate
from babelmill.pretrain.model import build_gpt, wrap_for_training
from babelmill.pretrain.step import forward_step, microbatches

# forward_step and microbatches are step's; imported from here by the benchmarks
__all__ = ["Trainer", "TrainProgress", "TrainResult", "forward_step", "microbatches", "train"]

log = logging.getLogger(__name__)

RUN_CONFIG = "run_config.json"
TOKENIZER_COPY = "tokenizer.json"

# Peak dense bf16 FLOP/s per GPU, for the MFU estimate.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40": 181e12, "A10": 125e12, "V100": 125e12}


@dataclass
class TrainResult:
    iteration: int
    consumed_samples: int
    resumed_from: str | None
    losses: dict[int, float] = field(default_factory=dict)
    valid: dict = field(default_factory=dict)
    seconds: float = 0.0
    tokens_per_second: float = 0.0


@dataclass
class TrainProgress:
    """The run's position (the checkpoint's `train` state): steps done and samples consumed,
    which is all the data order depends on. `train_iters` is saved beside them so a resume with
    another schedule length can be warned about."""

    train_iters: int
    iteration: int = 0
    consumed_samples: int = 0

    def state_dict(self) -> dict:
        return {"iteration": self.iteration, "consumed_samples": self.consumed_samples,
                "train_iters": self.train_iters}

    def load_state_dict(self, state_dict: dict) -> None:
        self.iteration = state_dict["iteration"]
        self.consumed_samples = state_dict["consumed_samples"]


class _Inline:
    """The ThreadPoolExecutor calls the loop uses, run inline (no prefetch thread)."""

    class _Done:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    def submit(self, fn, *args):
        return self._Done(fn(*args))

    def shutdown(self, wait: bool = True) -> None:
        pass


# ------------------------------------------------------------------ trainer

class Trainer:
    """Holds the built model/optimizer/data for one run; `run()` trains to train_iters."""

    def __init__(self, cfg: PretrainConfig, data_dir: str, save_dir: str, exit_after: int | None = None,
                 progress: bool | None = None, report=None, tokenizer_json: str | None = None,
                 restart: bool = False):
        """`report`: a callback for the run's messages (resumed from, checkpoints passed over)
        instead of this module's and the checkpoint module's loggers (see checkpoint.say)."""
        self.cfg = cfg  # schedule overrides (--train-iters) are applied to the config by train()
        self.data_dir = str(data_dir)
        self.save_dir = Path(save_dir)
        self.exit_after = exit_after
        self.progress = progress
        self.report = report
        self.tokenizer_json = tokenizer_json
        self.restart = restart  # start over when --save has checkpoints but none loads
        self.dist: DistInfo | None = None

    # -- setup
    def setup(self) -> None:
        from megatron.core import parallel_state
        from megatron.core.distributed import finalize_model_grads
        from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
        from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

        from babelmill.pretrain.data.blend import build_datasets

        cfg = self.cfg
        # before anything (data_cache, run files) is written; a fresh dir is claimed at once, so
        # an interrupted first run (data_cache only) is still recognised as babelmill's
        if savedir.check_owned(self.save_dir) == "fresh" and int(os.environ.get("RANK", "0")) == 0:
            savedir.mark(self.save_dir)
        self.dist = init_process_group()
        init_model_parallel(cfg.parallel.tensor, cfg.parallel.pipeline, cfg.parallel.virtual_pipeline)
        set_seed(cfg.train.seed)
        self.rank = self.dist.rank
        self.dp_size = parallel_state.get_data_parallel_world_size()
        self.dp_rank = parallel_state.get_data_parallel_rank()
        # every `auto` made concrete here, before any data is read; the vocabulary once it is
        self.resolved = resolve(cfg, World.current(self.dp_size))

        t = cfg.train
        gbs = t.global_batch_size
        self.datasets = build_datasets(
            self.data_dir, cfg.model.seq_length, t.seed, cfg.data.split,
            train_samples=t.train_iters * gbs,
            valid_samples=max(1, t.eval_iters) * gbs,
            cache_dir=self.save_dir / "data_cache", balance_json=cfg.data.balance,
            eod_mask_loss=cfg.data.eod_mask_loss, tokenizer_json=self.tokenizer_json)
        self.resolved = r = self.resolved.with_tokenizer(cfg, self.datasets.tokenizer.vocab_size)

        chunks, self.tconf = build_gpt(cfg.model, r.vocab_size, cfg, r.precision, device=self.dist.device)
        self.unwrapped = chunks
        self.model = wrap_for_training(chunks, self.tconf, r.precision, r.distributed_optimizer)
        o = cfg.optimizer
        self.optimizer = get_megatron_optimizer(OptimizerConfig(
            optimizer="adam", lr=o.lr, min_lr=o.min_lr, weight_decay=o.weight_decay,
            adam_beta1=o.adam_beta1, adam_beta2=o.adam_beta2, adam_eps=o.adam_eps,
            clip_grad=o.clip_grad, bf16=r.precision == "bf16", fp16=r.precision == "fp16",
            params_dtype=self.tconf.params_dtype, use_distributed_optimizer=r.distributed_optimizer,
        ), self.model)
        self.scheduler = OptimizerParamScheduler(
            self.optimizer, init_lr=0.0, max_lr=o.lr, min_lr=o.min_lr,
            lr_warmup_steps=o.warmup_iters, lr_decay_steps=r.lr_decay_iters,
            lr_decay_style=o.decay_style, start_wd=o.weight_decay, end_wd=o.weight_decay,
            wd_incr_steps=t.train_iters, wd_incr_style="constant",
            wsd_decay_steps=r.wsd_decay_iters,
            lr_wsd_decay_style="cosine" if o.decay_style == "WSD" else None)
        self.tconf.finalize_model_grads_func = finalize_model_grads
        self.tconf.grad_scale_func = self.optimizer.scale_loss
        if r.distributed_optimizer:
            no_sync = [m.no_sync for m in self.model]
            self.tconf.no_sync_func = no_sync[0] if len(no_sync) == 1 else no_sync
        self.schedule = step.StepSchedule.for_model(r.num_microbatches, t.micro_batch_size,
                                                    cfg.model.seq_length)
        self.train_state = TrainProgress(train_iters=t.train_iters)
        self.ckpt = CheckpointManager(
            self.save_dir, cfg.checkpoint.keep_last, cfg.checkpoint.checksum, async_save=r.async_save,
            states={"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler,
                    "rng": RNGState(), "train": self.train_state},
            interval=cfg.checkpoint.save_interval,
            metadata={"vocab_size": r.vocab_size, "config": cfg.model_dump(mode="json"),
                      "tokenizer": TOKENIZER_COPY},
            tokenizer_json=self.datasets.tokenizer.path)
        self.resumed_from = None
        run = self._run_files()
        savedir.check_same_run(self.save_dir, run)
        loaded = self.ckpt.load(report=self.report, restart=self.restart)  # logs on rank 0 only
        # only now: a failed or refused load must leave the save dir's run files as they were
        self._write_run_files(run)
        if self.ckpt.restarted and self.rank == 0:
            for name in (METRICS_FILE, "tensorboard"):  # the old run's record stays
                kept = rotate(self.save_dir / name)
                if kept is not None:
                    self._report0(f"--restart: kept the previous {name} as {kept.name}")
        if loaded is not None:  # the manager restored model, optimizer, RNG, scheduler, progress
            ckpt, state = loaded
            self.resumed_from = str(ckpt)
            if state.get("train_iters") not in (None, t.train_iters):
                self._report0(f"resuming with train_iters={t.train_iters} but the checkpoint was made with "
                              f"{state['train_iters']}: data order and LR schedule differ", logging.WARNING)
            self._report0(f"resumed from {ckpt} at iteration {self.iteration}")
        n_params = sum(p.numel() for c in self.unwrapped for p in c.parameters())
        if torch.distributed.is_initialized():
            tt = torch.tensor([n_params], dtype=torch.int64, device=self.dist.device)
            from megatron.core import parallel_state as ps

            torch.distributed.all_reduce(tt, group=ps.get_model_parallel_group())
            n_params = int(tt.item())
        self.n_params = n_params
        self.metrics = MetricsLogger(self.save_dir, enabled=self.rank == 0,
                                     resume_iteration=self.iteration, total_iters=t.train_iters,
                                     progress=self.progress)

    def _report0(self, msg: str, level: int = logging.INFO) -> None:
        if self.dist is None or self.dist.rank == 0:
            say(self.report, log, level, msg)

    # -- the run's position and resolved settings, under the names the benchmarks read
    @property
    def iteration(self) -> int:
        return self.train_state.iteration

    @property
    def consumed(self) -> int:
        return self.train_state.consumed_samples

    @property
    def precision(self) -> str:
        return self.resolved.precision

    @property
    def distributed_optimizer(self) -> bool:
        return self.resolved.distributed_optimizer

    @property
    def num_micro(self) -> int:
        return self.resolved.num_microbatches

    @property
    def vocab_size(self) -> int:
        return self.resolved.vocab_size

    @property
    def fb(self):
        """megatron's forward/backward function for this pipeline layout (`step.StepSchedule`)."""
        return self.schedule.forward_backward

    def _run_files(self) -> dict:
        """run_config.json's content: the config as given and as resolved for this world, the
        tokenizer (and its hash), data, weights."""
        tok_src = Path(self.datasets.tokenizer.path)
        return {"config": self.cfg.model_dump(mode="json"), "resolved": self.resolved.to_json(),
                "vocab_size": self.vocab_size,
                "tokenizer": TOKENIZER_COPY, "tokenizer_source": str(tok_src),
                "tokenizer_sha256": savedir.sha256_file(tok_src),
                "eos_id": self.datasets.tokenizer.eod, "data_dir": self.data_dir,
                "language_weights": self.datasets.weights}

    def _write_run_files(self, run: dict) -> None:
        """Make the save dir self-describing (config + tokenizer) for resume and inference."""
        if self.rank != 0:
            return
        savedir.mark(self.save_dir)
        tok_src = Path(run["tokenizer_source"])
        tok_dst = self.save_dir / TOKENIZER_COPY
        if tok_src.resolve() != tok_dst.resolve():
            shutil.copyfile(tok_src, tok_dst)
        tmp = self.save_dir / (RUN_CONFIG + ".tmp")
        tmp.write_text(json.dumps(run, indent=1))
        tmp.replace(self.save_dir / RUN_CONFIG)

    # -- steps
    def _batches_at(self, consumed: int) -> list[dict]:
        t = self.cfg.train
        return microbatches(self.datasets.train, consumed, self.num_micro, t.micro_batch_size,
                            self.dp_size, self.dp_rank, self.dist.device)

    def train_step(self, batches: list[dict] | None = None) -> tuple[float, float | None]:
        """One optimizer step on the global batch at `consumed` (`batches` if prefetched)."""
        if batches is None:
            batches = self._batches_at(self.consumed)
        loss, grad_norm = step.train_step(self.schedule, batches, self.model, self.optimizer, self.scheduler)
        self.train_state.iteration += 1
        self.train_state.consumed_samples += self.cfg.train.global_batch_size
        return loss, grad_norm

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Validation loss/perplexity on the blended valid split and on each language."""
        t = self.cfg.train
        for m in self.model:
            m.eval()
        out = {}
        sets = {"all": self.datasets.valid, **self.datasets.per_language_valid}
        for name, ds in sets.items():
            if ds is None or len(ds) == 0:
                continue
            acc = []
            for k in range(t.eval_iters):
                batches = microbatches(ds, k * t.global_batch_size, self.num_micro, t.micro_batch_size,
                                       self.dp_size, self.dp_rank, self.dist.device)
                acc += step.eval_losses(self.schedule, batches, self.model)
            loss = step.reduce_loss(acc)
            out[name] = {"loss": loss, "ppl": math.exp(min(loss, 50.0))}
        for m in self.model:
            m.train()
        return out

    def _mfu(self, tokens_per_s: float) -> float | None:
        if not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
        if peak is None:
            return None
        m = self.cfg.model
        flops_per_token = 6 * self.n_params + 12 * m.num_layers * m.hidden_size * m.seq_length
        return flops_per_token * tokens_per_s / (peak * torch.distributed.get_world_size())

    def run(self, save_at_exit: bool = True) -> TrainResult:
        cfg, t = self.cfg, self.cfg.train
        stop = min(t.train_iters, self.exit_after) if self.exit_after else t.train_iters
        result = TrainResult(self.iteration, self.consumed, self.resumed_from)
        tokens_per_step = t.global_batch_size * cfg.model.seq_length
        t_start = time.perf_counter()
        window_t, window_steps = time.perf_counter(), 0
        start_iter = self.iteration
        # read the next step's samples in a thread while this step computes (pure function of
        # consumed_samples, so prefetching cannot change data order)
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1) if self.resolved.prefetch else _Inline()
        nxt = pool.submit(self._batches_at, self.consumed) if self.iteration < stop else None
        try:
            while self.iteration < stop:
                batches = nxt.result()
                if self.iteration + 1 < stop:
                    nxt = pool.submit(self._batches_at, self.consumed + t.global_batch_size)
                loss, grad_norm = self.train_step(batches)
                result.losses[self.iteration] = loss
                window_steps += 1
                self.ckpt.maybe_finalize()
                self.metrics.step(self.iteration, loss)
                if self.iteration % t.log_interval == 0 or self.iteration == stop:
                    dt = time.perf_counter() - window_t
                    tps = tokens_per_step * window_steps / max(dt, 1e-9)
                    rec = {"iteration": self.iteration, "loss": loss, "lr": self.scheduler.get_lr(
                        self.optimizer.param_groups[0]), "grad_norm": grad_norm,
                        "consumed_samples": self.consumed, "tokens_per_second": tps,
                        "seconds_per_step": dt / window_steps}
                    mfu = self._mfu(tps)
                    if mfu is not None:
                        rec["mfu"] = mfu
                    self.metrics.log(rec)
                    window_t, window_steps = time.perf_counter(), 0
                else:
                    self.metrics.log({"iteration": self.iteration, "loss": loss, "grad_norm": grad_norm},
                                     light=True)
                if self.iteration % t.eval_interval == 0 or self.iteration == t.train_iters:
                    ev = self.evaluate()
                    result.valid = ev
                    self.metrics.log({"iteration": self.iteration,
                                      "valid": {k: v["loss"] for k, v in ev.items()},
                                      "valid_ppl": {k: v["ppl"] for k, v in ev.items()}})
                    window_t = time.perf_counter()  # keep eval time out of tokens/s
                self.ckpt.maybe_save(self.iteration)  # every checkpoint.save_interval steps
            if save_at_exit:
                self.ckpt.maybe_save(self.iteration, force=True)
        finally:
            pool.shutdown(wait=True)
            self.ckpt.close()
            self.metrics.close()
        result.iteration, result.consumed_samples = self.iteration, self.consumed
        result.seconds = time.perf_counter() - t_start
        steps = self.iteration - start_iter
        result.tokens_per_second = tokens_per_step * steps / max(result.seconds, 1e-9)
        return result

    def close(self) -> None:
        shutdown(self.dist)


def train(config: str | PretrainConfig, data_dir: str, save_dir: str, train_iters: int | None = None,
          exit_after: int | None = None, progress: bool | None = None, report=None,
          overrides: dict | None = None, restart: bool = False) -> TrainResult:
    """Train (or resume) a run; returns the losses of the steps this call ran.

    `restart`: when `save_dir` holds checkpoints but none can be loaded, start over from
    iteration 0 instead of stopping (they are kept as iter_N.corrupt, the old metrics.jsonl as
    metrics.jsonl.N). A checkpoint refused as unsafe stops the run either way."""
    cpu_compat.quiet_megatron_warnings()
    overrides = dict(overrides or {})
    if train_iters is not None:
        overrides["train.train_iters"] = train_iters
    if isinstance(config, PretrainConfig):
        cfg = config_with_overrides(config, overrides)
    else:
        cfg = load_config(config, overrides)
    trainer = Trainer(cfg, data_dir, save_dir, exit_after, progress, report, restart=restart)
    try:
        trainer.setup()
        return trainer.run()
    finally:
        trainer.close()
