"""The pretraining run config: one YAML file, validated with file:line errors.

A config names a model preset and overrides any of its fields, and sets parallelism, batch,
schedule, data split and checkpointing. The same file drives a CPU smoke run and a multi-node
GPU run: settings left to `auto` (or unset, as `model.vocab_size`) depend on where the run
lands. `resolve` turns them into concrete values in one place, given the `World` the run found
(data-parallel size, GPU or not) and the tokenizer; training uses only the `ResolvedConfig`,
and the save dir's run_config.json records it, so a run says what it actually ran with.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from babelmill.pretrain import presets
from babelmill.yamlconf import ConfigError, apply_overrides, load_model, read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    preset: str | None = None
    num_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_query_groups: int | None = None
    ffn_hidden_size: int | None = None
    seq_length: int = Field(gt=0)
    max_position_embeddings: int | None = None
    position_embedding_type: Literal["rope", "learned_absolute"] = "rope"
    rotary_base: int = 10000
    normalization: Literal["RMSNorm", "LayerNorm"] = "RMSNorm"
    swiglu: bool = True
    untie_embeddings_and_output_weights: bool = False
    add_bias_linear: bool = False  # biases on the QKV/output projections and both MLP linears
    norm_epsilon: float = Field(1e-5, gt=0)
    init_method_std: float = 0.02
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    make_vocab_size_divisible_by: int = 128
    vocab_size: int | None = None  # None: taken from the tokenizer (padded)

    @model_validator(mode="after")
    def _check(self):
        groups = self.num_query_groups or self.num_attention_heads
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.num_attention_heads % groups:
            raise ValueError(f"num_attention_heads {self.num_attention_heads} is not divisible by "
                             f"num_query_groups {groups}")
        if (self.max_position_embeddings or self.seq_length) < self.seq_length:
            raise ValueError("max_position_embeddings is smaller than seq_length")
        return self


class ParallelConfig(_Strict):
    tensor: int = Field(1, ge=1)
    pipeline: int = Field(1, ge=1)
    virtual_pipeline: int | None = None
    sequence_parallel: bool = False
    distributed_optimizer: bool | Literal["auto"] = "auto"  # auto: on GPU only


class OptimizerConfig(_Strict):
    lr: float = Field(3e-4, gt=0)
    min_lr: float = Field(3e-5, ge=0)
    warmup_iters: int = Field(0, ge=0)
    decay_style: Literal["cosine", "linear", "constant", "inverse-square-root", "WSD"] = "cosine"
    decay_iters: int | None = None  # None: train_iters
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_eps: float = 1e-8
    clip_grad: float = 1.0


class TrainConfig(_Strict):
    micro_batch_size: int = Field(gt=0)
    global_batch_size: int = Field(gt=0)
    train_iters: int = Field(gt=0)
    seed: int = 1234
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_interval: int = Field(100, gt=0)
    eval_iters: int = Field(4, gt=0)
    log_interval: int = Field(10, gt=0)
    num_workers: int = Field(0, ge=0)
    prefetch: Literal["auto", "on", "off"] = Field(
        "auto", description="read the next batch in a thread while the step computes; auto = on GPU only "
        "(on CPU the thread competes with the step for the GIL: one run on the 2-core VM measured 12.8% "
        "loop overhead with it, 2.6% without)")


class DataConfig(_Strict):
    split: str = "98,1,1"
    balance: str | None = None  # balance.json; relative to the config file
    eod_mask_loss: bool = False


class CheckpointConfig(_Strict):
    save_interval: int = Field(1000, gt=0)
    keep_last: int = Field(3, ge=1)
    async_save: bool | Literal["auto"] = "auto"
    checksum: Literal["sha256", "size"] = "sha256"


class PretrainConfig(_Strict):
    model: ModelConfig
    parallel: ParallelConfig = ParallelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    train: TrainConfig
    data: DataConfig = DataConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    source: str | None = None  # the file it was loaded from (set by load_config)

    @model_validator(mode="after")
    def _check(self):
        t = self.train
        if t.global_batch_size % t.micro_batch_size:
            raise ValueError(f"global_batch_size {t.global_batch_size} is not a multiple of "
                             f"micro_batch_size {t.micro_batch_size}")
        decay = self.optimizer.decay_iters or t.train_iters
        if self.optimizer.warmup_iters >= decay:
            raise ValueError(f"optimizer.warmup_iters {self.optimizer.warmup_iters} must be smaller than "
                             f"the decay length {decay} (optimizer.decay_iters or train.train_iters)")
        return self

    def num_microbatches(self, data_parallel_size: int) -> int:
        t = self.train
        per_step = t.micro_batch_size * data_parallel_size
        if t.global_batch_size % per_step:
            raise ConfigError(
                f"{self.source or 'config'}: train.global_batch_size {t.global_batch_size} is not "
                f"divisible by micro_batch_size x data-parallel size = {per_step}")
        return t.global_batch_size // per_step


def _merge_preset(data: dict, path: Path, root) -> dict:
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or "preset" not in model:
        return data
    from babelmill.yamlconf import _line_of

    try:
        base = presets.preset(model["preset"])
    except KeyError as e:
        line = _line_of(root, ("model", "preset"))
        raise ConfigError(f"{path}:{line}: model.preset: {e.args[0]}") from None
    merged = dict(data)
    merged["model"] = {**base, **model}
    return merged


def load_config(path: str | Path, overrides: dict | None = None) -> PretrainConfig:
    """Load and validate a pretraining YAML; `overrides` maps dotted keys to values."""
    path = Path(path)
    data, root = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    data = _merge_preset(data, path, root)
    apply_overrides(data, overrides)
    cfg = load_model(PretrainConfig, path, data=data, root=root)
    cfg.source = str(path)
    if cfg.data.balance and not Path(cfg.data.balance).is_absolute():
        cfg.data.balance = str((path.parent / cfg.data.balance).resolve())
    return cfg


def config_with_overrides(cfg: PretrainConfig, overrides: dict) -> PretrainConfig:
    """A validated copy of `cfg` with dotted-key overrides (errors name the key)."""
    from pydantic import ValidationError

    from babelmill.yamlconf import format_validation_error

    data = apply_overrides(cfg.model_dump(), overrides)
    try:
        out = PretrainConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, cfg.source or "config", None)) from None
    out.source = cfg.source
    return out


def config_from_dict(data: dict) -> PretrainConfig:
    """Rebuild a config saved inside a checkpoint (already merged and validated once)."""
    return PretrainConfig.model_validate(data)


# ---------------------------------------------------------------- resolving `auto` settings

@dataclass(frozen=True)
class World:
    """What the run found at start-up that `auto` settings depend on."""

    data_parallel_size: int
    cuda: bool  # GPUs: mixed precision, the distributed optimizer and async saves need them

    @classmethod
    def current(cls, data_parallel_size: int) -> World:
        import torch

        return cls(data_parallel_size, torch.cuda.is_available())


@dataclass(frozen=True)
class ResolvedConfig:
    """Every setting the config may leave to the run, made concrete (see `resolve`)."""

    precision: Literal["fp32", "bf16", "fp16"]
    distributed_optimizer: bool
    async_save: bool
    prefetch: bool
    data_parallel_size: int
    num_microbatches: int
    lr_decay_iters: int
    wsd_decay_iters: int | None  # the WSD schedule's final decay: a tenth of the decay length
    vocab_size: int | None = None  # None until `with_tokenizer` (model.vocab_size or the padded tokenizer's)

    def with_tokenizer(self, cfg: PretrainConfig, tokenizer_vocab: int) -> ResolvedConfig:
        """The model's vocabulary: `model.vocab_size`, else the tokenizer's padded to
        make_vocab_size_divisible_by x tensor parallel (megatron's rule, so TP shards are even)."""
        m = cfg.model
        vocab = m.vocab_size or padded_vocab_size(tokenizer_vocab, m.make_vocab_size_divisible_by,
                                                  cfg.parallel.tensor)
        if vocab < tokenizer_vocab:
            raise ValueError(f"model.vocab_size {vocab} < tokenizer vocab {tokenizer_vocab}")
        return dataclasses.replace(self, vocab_size=vocab)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def padded_vocab_size(vocab: int, divisible_by: int, tensor_parallel: int = 1) -> int:
    multiple = divisible_by * tensor_parallel
    return int(math.ceil(vocab / multiple) * multiple)


def resolve_precision(precision: str, cuda: bool) -> str:
    """auto: bf16 on GPU, fp32 on CPU; bf16/fp16 asked for on CPU fall back to fp32, since
    megatron's mixed-precision optimizers are CUDA-only."""
    if precision == "auto":
        return "bf16" if cuda else "fp32"
    if precision in ("bf16", "fp16") and not cuda:
        return "fp32"
    return precision


def resolve_distributed_optimizer(value: bool | str, cuda: bool) -> bool:
    """auto: on GPU only (megatron's distributed optimizer shards over NCCL buffers)."""
    on = cuda if value == "auto" else bool(value)
    if on and not cuda:
        raise ValueError("parallel.distributed_optimizer needs GPUs; use `auto` or false on CPU")
    return on


def resolve(cfg: PretrainConfig, world: World) -> ResolvedConfig:
    """Every `auto` of `cfg` made concrete for `world`; raises on settings `world` cannot run.

    The vocabulary waits for the tokenizer (`ResolvedConfig.with_tokenizer`): it is known only
    once the data is opened, and resolving the rest first stops a bad config before that."""
    t, o = cfg.train, cfg.optimizer
    num_micro = cfg.num_microbatches(world.data_parallel_size)
    precision = resolve_precision(t.precision, world.cuda)
    dist_opt = resolve_distributed_optimizer(cfg.parallel.distributed_optimizer, world.cuda)
    a = cfg.checkpoint.async_save
    async_save = world.cuda if a == "auto" else bool(a)
    # prefetch on CPU competes with the step for the GIL (see TrainConfig.prefetch)
    prefetch = t.prefetch == "on" or (t.prefetch == "auto" and world.cuda)
    decay = o.decay_iters or t.train_iters
    return ResolvedConfig(
        precision=precision, distributed_optimizer=dist_opt, async_save=async_save, prefetch=prefetch,
        data_parallel_size=world.data_parallel_size, num_microbatches=num_micro, lr_decay_iters=decay,
        wsd_decay_iters=max(1, decay // 10) if o.decay_style == "WSD" else None)
