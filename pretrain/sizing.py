"""Sizing of a config (`babelmill pretrain plan`): parameter count and per-GPU memory, without
building the model.

Counts follow megatron-core's GPT layout (linear biases only with add_bias_linear, RMSNorm/LayerNorm weights, SwiGLU doubles
fc1, GQA shrinks the K/V projections). Memory: bf16 weights + fp32 main grads + fp32 Adam
(master, m, v), the latter sharded over data parallel with the distributed optimizer; activations
per Korthikanti et al. 2022 (flash attention, no recompute) for the micro-batches in flight.
With `meta=True` the real GPTModel is also built on the meta device to cross-check the count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from babelmill.pretrain.config import ModelConfig, PretrainConfig, load_config, resolve_distributed_optimizer

DEFAULT_VOCAB = 128_000


@dataclass
class Plan:
    config: str
    vocab_size: int
    vocab_assumed: bool
    params_total: int
    params_embedding: int
    params_per_layer: int
    world_size: int
    tensor: int
    pipeline: int
    data: int
    micro_batch_size: int
    global_batch_size: int
    seq_length: int
    gib_weights: float
    gib_grads: float
    gib_optimizer: float
    gib_activations: float
    gib_total: float
    meta_params: int | None = None


def count_parameters(m: ModelConfig, vocab: int) -> tuple[int, int, int]:
    h = m.hidden_size
    heads = m.num_attention_heads
    groups = m.num_query_groups or heads
    head_dim = h // heads
    ffn = m.ffn_hidden_size or 4 * h
    norm = h if m.normalization == "RMSNorm" else 2 * h
    attn = h * (h + 2 * groups * head_dim) + h * h
    mlp = h * ffn * (2 if m.swiglu else 1) + ffn * h
    bias = (h + 2 * groups * head_dim) + h + ffn * (2 if m.swiglu else 1) + h if m.add_bias_linear else 0
    per_layer = attn + mlp + 2 * norm + bias
    emb = vocab * h * (2 if m.untie_embeddings_and_output_weights else 1)
    if m.position_embedding_type == "learned_absolute":
        emb += (m.max_position_embeddings or m.seq_length) * h
    return emb + m.num_layers * per_layer + norm, emb, per_layer


def plan(config: str | PretrainConfig, world_size: int | None = None, vocab_size: int | None = None,
         meta: bool = False) -> Plan:
    cfg = config if isinstance(config, PretrainConfig) else load_config(config)
    m, p, t = cfg.model, cfg.parallel, cfg.train
    vocab = vocab_size or m.vocab_size or DEFAULT_VOCAB
    total, emb, per_layer = count_parameters(m, vocab)
    world = world_size or p.tensor * p.pipeline
    if world % (p.tensor * p.pipeline):
        raise ValueError(f"world size {world} is not divisible by tensor x pipeline = {p.tensor * p.pipeline}")
    dp = world // (p.tensor * p.pipeline)
    dist_opt = resolve_distributed_optimizer(p.distributed_optimizer, cuda=True)  # a plan is for GPUs
    shard = p.tensor * p.pipeline
    per_gpu_params = total / shard
    gib = 1024 ** 3
    weights = per_gpu_params * 2
    grads = per_gpu_params * 4
    optim = per_gpu_params * 12 / (dp if dist_opt else 1)
    s, b, h = m.seq_length, t.micro_batch_size, m.hidden_size
    layers_per_stage = m.num_layers / p.pipeline
    in_flight = p.pipeline  # 1F1B keeps up to pp micro-batches of activations on the first stage
    act = s * b * h * 34 / p.tensor * layers_per_stage * in_flight
    act += s * b * vocab * 4 / p.tensor  # logits in fp32 for the loss (last stage)
    out = Plan(
        config=cfg.source or "", vocab_size=vocab, vocab_assumed=not (vocab_size or m.vocab_size),
        params_total=total, params_embedding=emb, params_per_layer=per_layer, world_size=world,
        tensor=p.tensor, pipeline=p.pipeline, data=dp, micro_batch_size=b,
        global_batch_size=t.global_batch_size, seq_length=s,
        gib_weights=weights / gib, gib_grads=grads / gib, gib_optimizer=optim / gib,
        gib_activations=act / gib, gib_total=(weights + grads + optim + act) / gib)
    if meta:
        out.meta_params = meta_parameter_count(m, vocab)
    return out


def meta_parameter_count(m: ModelConfig, vocab: int) -> int:
    """Build the GPTModel on the meta device (no memory) in a 1-process group and count."""
    import torch

    from babelmill.pretrain.distributed import init_model_parallel, init_process_group, shutdown
    from babelmill.pretrain.model import build_gpt

    info = init_process_group()
    try:
        init_model_parallel(1, 1)
        with torch.device("meta"):
            chunks, _ = build_gpt(m, vocab, None, "fp32")
        return sum(p.numel() for c in chunks for p in c.parameters())
    finally:
        shutdown(info)


def format_plan(pl: Plan) -> str:
    d = asdict(pl)
    lines = [f"config: {pl.config}",
             f"parameters: {pl.params_total / 1e9:.3f} B  (embeddings {pl.params_embedding / 1e9:.3f} B, "
             f"{pl.params_per_layer / 1e6:.1f} M per layer)"
             + (f"; meta-device build: {pl.meta_params / 1e9:.3f} B" if pl.meta_params else ""),
             f"vocab: {pl.vocab_size:,}" + (" (assumed; set model.vocab_size)" if pl.vocab_assumed else ""),
             f"parallel: world {pl.world_size} = tensor {pl.tensor} x pipeline {pl.pipeline} x data {pl.data}",
             f"batch: micro {pl.micro_batch_size} x seq {pl.seq_length}, global {pl.global_batch_size}",
             "memory per GPU (GiB): " + ", ".join(
                 f"{k[4:]} {d[k]:.1f}" for k in ("gib_weights", "gib_grads", "gib_optimizer",
                                                  "gib_activations", "gib_total"))]
    return "\n".join(lines)
