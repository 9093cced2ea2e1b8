"""The training loop on megatron-core: schedules, optimizer, scheduler, eval, checkpoints.

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

from . import cpu_compat, savedir
from .checkpoint import CheckpointManager
from .config import PretrainConfig, config_with_overrides, load_config
from .distributed import DistInfo, init_model_parallel, init_process_group, set_seed, shutdown
from .metrics import METRICS_FILE, MetricsLogger, rotate
from .model import build_gpt, padded_vocab_size, resolve_precision, wrap_for_training

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


# ------------------------------------------------------------------ batches

def _collate(samples: list[dict]) -> dict:
    return {k: torch.stack([torch.as_tensor(s[k]) for s in samples])
            for k in ("tokens", "labels", "loss_mask", "position_ids")}


def microbatches(dataset, start: int, num_micro: int, mbs: int, dp_size: int, dp_rank: int,
                 device: torch.device) -> list[dict]:
    """This rank's micro-batches of the global batch that starts at sample `start`."""
    out = []
    n = len(dataset)
    for m in range(num_micro):
        base = start + m * mbs * dp_size + dp_rank * mbs
        batch = _collate([dataset[(base + i) % n] for i in range(mbs)])
        if device.type == "cuda":
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        out.append(batch)
    return out


def forward_step(data_iterator, model):
    """megatron-core forward step: per-token loss -> masked mean over the micro-batch."""
    batch = next(data_iterator)
    output = model(batch["tokens"], batch["position_ids"], None, labels=batch["labels"])

    def loss_func(output_tensor):
        mask = batch["loss_mask"].float().reshape(-1)
        losses = output_tensor.float().reshape(-1)
        denom = mask.sum().clamp(min=1.0)
        loss = (losses * mask).sum() / denom
        return loss, {"lm loss": torch.stack([(losses * mask).sum().detach(), denom.detach()])}

    return output, loss_func


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


def _reduce_loss(losses: list[dict]) -> float:
    """Token-weighted mean loss over micro-batches and all data-parallel ranks / last stage."""
    acc = torch.zeros(2, dtype=torch.float64)
    for d in losses:
        acc += d["lm loss"].double().cpu()
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        from megatron.core import parallel_state

        if not parallel_state.is_pipeline_last_stage(ignore_virtual=True):
            acc.zero_()
        if parallel_state.get_tensor_model_parallel_rank() != 0:
            acc.zero_()
        t = acc.to(torch.cuda.current_device()) if torch.cuda.is_available() else acc
        torch.distributed.all_reduce(t)
        acc = t.cpu()
    return (acc[0] / acc[1].clamp(min=1)).item()


# ------------------------------------------------------------------ trainer

class Trainer:
    """Holds the built model/optimizer/data for one run; `run()` trains to train_iters."""

    def __init__(self, cfg: PretrainConfig, data_dir: str, save_dir: str, exit_after: int | None = None,
                 progress: bool | None = None, report=print, tokenizer_json: str | None = None,
                 restart: bool = False):
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

        from .data.blend import build_datasets

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
        self.num_micro = cfg.num_microbatches(self.dp_size)
        self.precision = resolve_precision(cfg.train.precision)
        dist_opt = cfg.parallel.distributed_optimizer
        self.distributed_optimizer = (not cpu_compat.needed()) if dist_opt == "auto" else bool(dist_opt)
        if self.distributed_optimizer and cpu_compat.needed():
            raise ValueError("parallel.distributed_optimizer needs GPUs; use `auto` or false on CPU")

        t = cfg.train
        gbs = t.global_batch_size
        self.datasets = build_datasets(
            self.data_dir, cfg.model.seq_length, t.seed, cfg.data.split,
            train_samples=t.train_iters * gbs,
            valid_samples=max(1, t.eval_iters) * gbs,
            cache_dir=self.save_dir / "data_cache", balance_json=cfg.data.balance,
            eod_mask_loss=cfg.data.eod_mask_loss, tokenizer_json=self.tokenizer_json)
        tok = self.datasets.tokenizer
        self.vocab_size = cfg.model.vocab_size or padded_vocab_size(
            tok.vocab_size, cfg.model.make_vocab_size_divisible_by, cfg.parallel.tensor)
        if self.vocab_size < tok.vocab_size:
            raise ValueError(f"model.vocab_size {self.vocab_size} < tokenizer vocab {tok.vocab_size}")

        chunks, self.tconf = build_gpt(cfg.model, self.vocab_size, cfg, self.precision,
                                       device=self.dist.device)
        self.unwrapped = chunks
        self.model = wrap_for_training(chunks, self.tconf, self.precision, self.distributed_optimizer)
        o = cfg.optimizer
        self.optimizer = get_megatron_optimizer(OptimizerConfig(
            optimizer="adam", lr=o.lr, min_lr=o.min_lr, weight_decay=o.weight_decay,
            adam_beta1=o.adam_beta1, adam_beta2=o.adam_beta2, adam_eps=o.adam_eps,
            clip_grad=o.clip_grad, bf16=self.precision == "bf16", fp16=self.precision == "fp16",
            params_dtype=self.tconf.params_dtype, use_distributed_optimizer=self.distributed_optimizer,
        ), self.model)
        self.scheduler = OptimizerParamScheduler(
            self.optimizer, init_lr=0.0, max_lr=o.lr, min_lr=o.min_lr,
            lr_warmup_steps=o.warmup_iters, lr_decay_steps=o.decay_iters or t.train_iters,
            lr_decay_style=o.decay_style, start_wd=o.weight_decay, end_wd=o.weight_decay,
            wd_incr_steps=t.train_iters, wd_incr_style="constant",
            wsd_decay_steps=max(1, (o.decay_iters or t.train_iters) // 10) if o.decay_style == "WSD" else None,
            lr_wsd_decay_style="cosine" if o.decay_style == "WSD" else None)
        self.tconf.finalize_model_grads_func = finalize_model_grads
        self.tconf.grad_scale_func = self.optimizer.scale_loss
        if self.distributed_optimizer:
            no_sync = [m.no_sync for m in self.model]
            self.tconf.no_sync_func = no_sync[0] if len(no_sync) == 1 else no_sync
        from megatron.core.pipeline_parallel import get_forward_backward_func

        self.fb = get_forward_backward_func()
        async_save = cfg.checkpoint.async_save
        self.ckpt = CheckpointManager(
            self.save_dir, cfg.checkpoint.keep_last, cfg.checkpoint.checksum,
            async_save=(not cpu_compat.needed()) if async_save == "auto" else bool(async_save))
        self.iteration = 0
        self.consumed = 0
        self.resumed_from = None
        run = self._run_files()
        savedir.check_same_run(self.save_dir, run)
        loaded = self.ckpt.load(self.model, self.optimizer, report=self._report0, restart=self.restart)
        # only now: a failed or refused load must leave the save dir's run files as they were
        self._write_run_files(run)
        if self.ckpt.restarted and self.rank == 0:
            for name in (METRICS_FILE, "tensorboard"):  # the old run's record stays
                kept = rotate(self.save_dir / name)
                if kept is not None:
                    self._report0(f"--restart: kept the previous {name} as {kept.name}")
        if loaded is not None:
            ckpt, state = loaded
            self.iteration = state["iteration"]
            self.consumed = state["consumed_samples"]
            if "scheduler" in state:  # absent in a weights-only (imported) checkpoint
                self.scheduler.load_state_dict(state["scheduler"])
            self.resumed_from = str(ckpt)
            if state.get("train_iters") not in (None, t.train_iters):
                self._report0(f"warning: resuming with train_iters={t.train_iters} but the checkpoint "
                              f"was made with {state['train_iters']}: data order and LR schedule differ")
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

    def _report0(self, msg: str) -> None:
        if self.dist is None or self.dist.rank == 0:
            self.report(msg)
            log.info(msg)

    def _run_files(self) -> dict:
        """run_config.json's content: the config, tokenizer (and its hash), data, weights."""
        tok_src = Path(self.datasets.tokenizer.path)
        return {"config": self.cfg.model_dump(mode="json"), "vocab_size": self.vocab_size,
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

    def _trainer_state(self) -> dict:
        return {"iteration": self.iteration, "consumed_samples": self.consumed,
                "train_iters": self.cfg.train.train_iters, "scheduler": self.scheduler.state_dict(),
                "vocab_size": self.vocab_size, "config": self.cfg.model_dump(mode="json"),
                "tokenizer": TOKENIZER_COPY}

    # -- steps
    def _iterators(self, batches: list[dict]):
        if len(self.model) == 1:
            return iter(batches)
        return [iter(batches) for _ in self.model]

    def _batches_at(self, consumed: int) -> list[dict]:
        t = self.cfg.train
        return microbatches(self.datasets.train, consumed, self.num_micro, t.micro_batch_size,
                            self.dp_size, self.dp_rank, self.dist.device)

    def train_step(self, batches: list[dict] | None = None) -> tuple[float, float | None]:
        """One optimizer step on the global batch at `consumed` (`batches` if prefetched)."""
        t = self.cfg.train
        if batches is None:
            batches = self._batches_at(self.consumed)
        for m in self.model:
            m.zero_grad_buffer()
        self.optimizer.zero_grad()
        losses = self.fb(forward_step_func=forward_step, data_iterator=self._iterators(batches),
                         model=self.model, num_microbatches=self.num_micro,
                         seq_length=self.cfg.model.seq_length, micro_batch_size=t.micro_batch_size,
                         forward_only=False)
        ok, grad_norm, _ = self.optimizer.step()
        if ok:
            self.scheduler.step(increment=1)
        self.iteration += 1
        self.consumed += t.global_batch_size
        return _reduce_loss(losses), grad_norm

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
                acc += self.fb(forward_step_func=forward_step, data_iterator=self._iterators(batches),
                               model=self.model, num_microbatches=self.num_micro,
                               seq_length=self.cfg.model.seq_length,
                               micro_batch_size=t.micro_batch_size, forward_only=True)
            loss = _reduce_loss(acc)
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

    def save(self) -> None:
        if self.ckpt.last_saved_iteration == self.iteration:
            return
        self.ckpt.save(self.iteration, self.model, self.optimizer, self._trainer_state(),
                       tokenizer_json=self.datasets.tokenizer.path)

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

        prefetch = t.prefetch == "on" or (t.prefetch == "auto" and self.dist.device.type == "cuda")
        pool = ThreadPoolExecutor(max_workers=1) if prefetch else _Inline()
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
                if self.iteration % cfg.checkpoint.save_interval == 0:
                    self.save()
            if save_at_exit:
                self.save()
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
          exit_after: int | None = None, progress: bool | None = None, report=print,
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
