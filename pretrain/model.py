"""Build megatron-core GPTModel chunks (and their DDP wrappers) from a ModelConfig.

The layer spec is the only place where CPU and GPU differ: Transformer Engine spec when TE is
importable, else megatron's local spec; on a CPU-only host the local spec with torch SDPA as core
attention (see cpu_compat). Everything else (TransformerConfig, GPTModel, DDP, optimizer) is
the same code on both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from babelmill.pretrain import cpu_compat
from babelmill.pretrain.config import ModelConfig, PretrainConfig


def transformer_config(m: ModelConfig, cfg: PretrainConfig | None = None, precision: str = "fp32",
                       for_inference: bool = False):
    from megatron.core.transformer.transformer_config import TransformerConfig

    on_cpu = cpu_compat.needed()
    par = cfg.parallel if cfg is not None else None
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    fused = not on_cpu
    kwargs = dict(
        num_layers=m.num_layers,
        hidden_size=m.hidden_size,
        num_attention_heads=m.num_attention_heads,
        num_query_groups=m.num_query_groups or m.num_attention_heads,
        ffn_hidden_size=m.ffn_hidden_size or 4 * m.hidden_size,
        kv_channels=m.hidden_size // m.num_attention_heads,
        normalization=m.normalization,
        layernorm_epsilon=m.norm_epsilon,
        gated_linear_unit=m.swiglu,
        activation_func=F.silu if m.swiglu else F.gelu,
        add_bias_linear=m.add_bias_linear,
        init_method_std=m.init_method_std,
        hidden_dropout=0.0 if for_inference else m.hidden_dropout,
        attention_dropout=0.0 if for_inference else m.attention_dropout,
        tensor_model_parallel_size=par.tensor if par else 1,
        pipeline_model_parallel_size=par.pipeline if par else 1,
        virtual_pipeline_model_parallel_size=par.virtual_pipeline if par else None,
        sequence_parallel=bool(par and par.sequence_parallel and par.tensor > 1),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        params_dtype=dtype,
        pipeline_dtype=dtype,
        use_cpu_initialization=on_cpu,
        bias_dropout_fusion=fused,
        masked_softmax_fusion=fused,
        persist_layer_norm=fused,
        apply_rope_fusion=False,
        gradient_accumulation_fusion=False,
        deterministic_mode=on_cpu,
    )
    if par is not None and par.pipeline > 1 and cfg is not None:
        kwargs["variable_seq_lengths"] = False
    return TransformerConfig(**kwargs)


def layer_spec(m: ModelConfig):
    from megatron.core.models.gpt import gpt_layer_specs as specs

    if cpu_compat.needed():
        spec = specs.get_gpt_layer_local_spec(normalization=m.normalization)
        spec.submodules.self_attention.submodules.core_attention = cpu_compat.SDPAttention
        return spec
    if getattr(specs, "HAVE_TE", False):
        return specs.get_gpt_layer_with_transformer_engine_spec()
    return specs.get_gpt_layer_local_spec(normalization=m.normalization)


def build_gpt(m: ModelConfig, vocab_size: int, cfg: PretrainConfig | None = None,
              precision: str = "fp32", for_inference: bool = False,
              device: torch.device | None = None) -> tuple[list, object]:
    """Return (list of GPTModel chunks for this pipeline rank, TransformerConfig)."""
    from megatron.core import parallel_state
    from megatron.core.models.gpt import GPTModel

    tconf = transformer_config(m, cfg, precision, for_inference)
    spec = layer_spec(m)
    vp = tconf.virtual_pipeline_model_parallel_size
    chunks = []
    for vp_stage in range(vp or 1):
        pre = parallel_state.is_pipeline_first_stage(ignore_virtual=False, vp_stage=vp_stage) if vp \
            else parallel_state.is_pipeline_first_stage()
        post = parallel_state.is_pipeline_last_stage(ignore_virtual=False, vp_stage=vp_stage) if vp \
            else parallel_state.is_pipeline_last_stage()
        kwargs = dict(vp_stage=vp_stage) if vp else {}
        model = GPTModel(
            config=tconf,
            transformer_layer_spec=spec,
            vocab_size=vocab_size,
            max_sequence_length=m.max_position_embeddings or m.seq_length,
            pre_process=pre,
            post_process=post,
            share_embeddings_and_output_weights=not m.untie_embeddings_and_output_weights,
            position_embedding_type=m.position_embedding_type,
            rotary_base=m.rotary_base,
            **kwargs,
        )
        if device is not None and device.type == "cuda":
            model.cuda(device)
        chunks.append(model)
    return chunks, tconf


def wrap_for_training(chunks: list, tconf, precision: str, distributed_optimizer: bool) -> list:
    """Float16Module for bf16/fp16 (as megatron's trainer does), then megatron DDP."""
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.transformer.module import Float16Module

    ddp_config = DistributedDataParallelConfig(
        grad_reduce_in_fp32=precision != "fp32",
        overlap_grad_reduce=distributed_optimizer,
        use_distributed_optimizer=distributed_optimizer,
        check_for_nan_in_grad=False,
        bucket_size=None if not distributed_optimizer else 40_000_000,
    )
    wrapped = []
    for i, chunk in enumerate(chunks):
        if precision in ("bf16", "fp16"):
            chunk = Float16Module(tconf, chunk)
        wrapped.append(DistributedDataParallel(
            tconf, ddp_config, chunk, disable_bucketing=(i > 0)))
    return wrapped


def unwrap(model):
    while hasattr(model, "module"):
        model = model.module
    return model
