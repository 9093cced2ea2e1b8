"""Export a babelmill (megatron-core) checkpoint as a Hugging Face transformers model directory.

    babelmill pretrain export --checkpoint CKPT_DIR [--iteration N] --output HF_DIR [--dtype bfloat16]

HF_DIR then holds config.json, model.safetensors (sharded with an index for large models),
generation_config.json and the project tokenizer (tokenizer.json + tokenizer_config.json), and
loads with `AutoModelForCausalLM` / `AutoTokenizer` without `trust_remote_code` (so also with
lm-evaluation-harness and vLLM, which know both architectures below).

Architecture mapping (`hf_architecture`):

- RoPE + RMSNorm + SwiGLU (+ GQA), biases or not -> **Llama** (`LlamaForCausalLM`): its
  decoder is exactly megatron's GPT with these options; `attention_bias` / `mlp_bias` carry
  `add_bias_linear`, `tie_word_embeddings` the (un)tied output layer.
- RoPE + RMSNorm + a plain (non-gated) GeLU MLP, linear biases kept, untied embeddings - the
  FuxiTranyu-like shape (`swiglu: false`, `add_bias_linear: true`) -> **Arcee**
  (`ArceeForCausalLM`, in transformers since 4.53). Why Arcee: it is the one architecture in
  transformers 5.18 that has all of these pieces and nothing else: Llama's attention (RoPE with
  rotate-half, GQA, `attention_bias` on q/k/v/o), RMSNorm, and a non-gated MLP
  `down(act(up(x)))` with `mlp_bias` and a configurable `hidden_act` (set to "gelu", the exact
  erf GeLU megatron's `F.gelu` computes). The alternatives each differ in a piece that changes
  the function: Llama/Granite/Olmo gate their MLP; Starcoder2, GPT-NeoX, Phi, StableLm,
  Persimmon and Cohere use LayerNorm (Phi/Persimmon/NeoX also partial rotary, NeoX/GPT-J a
  parallel residual); Nemotron uses LayerNorm1P and relu^2. So no preset needed to change.
- Anything else (learned absolute positions, LayerNorm) is refused with the reason, before any
  weight is read (`ExportError`).

Weights: the checkpoint is read exactly as the audit reads it (`inference.MegatronLM`: manifest
verified, `safe_load`'s allow-listed unpickler / weights-only reads), into a tensor- and
pipeline-parallel size 1 model: megatron's dist_checkpointing stores every tensor with its
global shape and offsets, so a checkpoint saved with TP/PP > 1 is resharded to one by the load
itself. Layouts converted here: the fused QKV (megatron keeps, per query group, that group's
query heads then its key head then its value head) is split into q/k/v; SwiGLU's fused fc1 is
[gate; up]. Tensors are written as safetensors only.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from babelmill.pretrain import checkpoint as ck
from babelmill.pretrain.config import ModelConfig

log = logging.getLogger(__name__)

NORM_KEYS = {  # local layer spec name -> Transformer Engine spec name (fused norm + linear)
    "input_layernorm.weight": "self_attention.linear_qkv.layer_norm_weight",
    "pre_mlp_layernorm.weight": "mlp.linear_fc1.layer_norm_weight",
}


class ExportError(ck.CheckpointError):
    """The checkpoint's model cannot be expressed as a transformers architecture (or the HF
    model cannot be expressed as a babelmill one)."""


# ---------------------------------------------------------------- which architecture

def hf_architecture(m: ModelConfig) -> str:
    """"llama" or "arcee" for a babelmill model config; ExportError naming what does not map."""
    why = []
    if m.position_embedding_type != "rope":
        why.append(f"position_embedding_type {m.position_embedding_type!r} (only rope maps)")
    if m.normalization != "RMSNorm":
        why.append(f"normalization {m.normalization!r} (only RMSNorm maps: transformers has no "
                   "architecture with LayerNorm, RoPE and this MLP)")
    if why:
        raise ExportError("cannot export this checkpoint to a transformers architecture: "
                          + "; ".join(why))
    if m.swiglu:
        return "llama"
    return "arcee"


def hf_config(m: ModelConfig, vocab_size: int, eos_id: int | None, pad_id: int | None = None,
              dtype: str = "float32"):
    """The transformers config (LlamaConfig / ArceeConfig) of a babelmill model config."""
    arch = hf_architecture(m)
    heads = m.num_attention_heads
    kw = dict(
        vocab_size=vocab_size, hidden_size=m.hidden_size,
        intermediate_size=m.ffn_hidden_size or 4 * m.hidden_size,
        num_hidden_layers=m.num_layers, num_attention_heads=heads,
        num_key_value_heads=m.num_query_groups or heads, head_dim=m.hidden_size // heads,
        max_position_embeddings=m.max_position_embeddings or m.seq_length,
        rms_norm_eps=m.norm_epsilon, initializer_range=m.init_method_std,
        tie_word_embeddings=not m.untie_embeddings_and_output_weights,
        rope_parameters={"rope_type": "default", "rope_theta": float(m.rotary_base)},
        attention_bias=m.add_bias_linear, mlp_bias=m.add_bias_linear,
        attention_dropout=0.0, bos_token_id=None, eos_token_id=eos_id, pad_token_id=pad_id,
        dtype=dtype,
    )
    if arch == "llama":
        from transformers import LlamaConfig

        return LlamaConfig(hidden_act="silu", **kw)
    from transformers import ArceeConfig

    return ArceeConfig(hidden_act="gelu", **kw)


# ---------------------------------------------------------------- tensor mapping

def _norm(sd: dict, prefix: str, local: str) -> torch.Tensor:
    key = prefix + local
    return sd[key] if key in sd else sd[prefix + NORM_KEYS[local]]


def _attention_layout(m: ModelConfig) -> tuple[int, int, int, int]:
    """(heads, query groups, head dim, query heads per group): how linear_qkv is interleaved."""
    heads = m.num_attention_heads
    groups = m.num_query_groups or heads
    return heads, groups, m.hidden_size // heads, heads // groups


def megatron_to_hf(sd: dict, m: ModelConfig) -> dict[str, torch.Tensor]:
    """A TP=1/PP=1 GPTModel state dict (local or TE spec names) -> HF Llama/Arcee names."""
    heads, groups, d, per = _attention_layout(m)
    out = {"model.embed_tokens.weight": sd["embedding.word_embeddings.weight"],
           "model.norm.weight": sd["decoder.final_layernorm.weight"]}
    if m.untie_embeddings_and_output_weights:
        out["lm_head.weight"] = sd["output_layer.weight"]
    for i in range(m.num_layers):
        p, q = f"decoder.layers.{i}.", f"model.layers.{i}."
        out[q + "input_layernorm.weight"] = _norm(sd, p, "input_layernorm.weight")
        out[q + "post_attention_layernorm.weight"] = _norm(sd, p, "pre_mlp_layernorm.weight")
        names = ["weight"] + (["bias"] if m.add_bias_linear else [])
        for n in names:
            qkv = sd[p + f"self_attention.linear_qkv.{n}"]
            g = qkv.reshape(groups, per + 2, d, *qkv.shape[1:])
            out[q + f"self_attn.q_proj.{n}"] = g[:, :per].reshape(heads * d, *qkv.shape[1:])
            out[q + f"self_attn.k_proj.{n}"] = g[:, per].reshape(groups * d, *qkv.shape[1:])
            out[q + f"self_attn.v_proj.{n}"] = g[:, per + 1].reshape(groups * d, *qkv.shape[1:])
            out[q + f"self_attn.o_proj.{n}"] = sd[p + f"self_attention.linear_proj.{n}"]
            fc1 = sd[p + f"mlp.linear_fc1.{n}"]
            if m.swiglu:
                gate, up = torch.chunk(fc1, 2, dim=0)
                out[q + f"mlp.gate_proj.{n}"], out[q + f"mlp.up_proj.{n}"] = gate, up
            else:
                out[q + f"mlp.up_proj.{n}"] = fc1
            out[q + f"mlp.down_proj.{n}"] = sd[p + f"mlp.linear_fc2.{n}"]
    return {k: v.contiguous() for k, v in out.items()}


def hf_to_megatron(hf: dict, m: ModelConfig, model_keys=None) -> dict[str, torch.Tensor]:
    """The inverse of `megatron_to_hf`; `model_keys` (the target GPTModel's state dict keys)
    decides between local and TE norm names."""
    heads, groups, d, per = _attention_layout(m)
    te = model_keys is not None and any(k.endswith("linear_qkv.layer_norm_weight") for k in model_keys)
    out = {"embedding.word_embeddings.weight": hf["model.embed_tokens.weight"],
           "decoder.final_layernorm.weight": hf["model.norm.weight"]}
    if m.untie_embeddings_and_output_weights:
        out["output_layer.weight"] = hf["lm_head.weight"]
    for i in range(m.num_layers):
        p, q = f"decoder.layers.{i}.", f"model.layers.{i}."
        for local, src in (("input_layernorm.weight", "input_layernorm.weight"),
                           ("pre_mlp_layernorm.weight", "post_attention_layernorm.weight")):
            out[p + (NORM_KEYS[local] if te else local)] = hf[q + src]
        names = ["weight"] + (["bias"] if m.add_bias_linear else [])
        for n in names:
            qh, kh, vh = (hf[q + f"self_attn.{x}_proj.{n}"] for x in "qkv")
            rest = qh.shape[1:]
            qkv = torch.cat([qh.reshape(groups, per, d, *rest), kh.reshape(groups, 1, d, *rest),
                             vh.reshape(groups, 1, d, *rest)], dim=1)
            out[p + f"self_attention.linear_qkv.{n}"] = qkv.reshape(groups * (per + 2) * d, *rest)
            out[p + f"self_attention.linear_proj.{n}"] = hf[q + f"self_attn.o_proj.{n}"]
            if m.swiglu:
                out[p + f"mlp.linear_fc1.{n}"] = torch.cat([hf[q + f"mlp.gate_proj.{n}"],
                                                           hf[q + f"mlp.up_proj.{n}"]], dim=0)
            else:
                out[p + f"mlp.linear_fc1.{n}"] = hf[q + f"mlp.up_proj.{n}"]
            out[p + f"mlp.linear_fc2.{n}"] = hf[q + f"mlp.down_proj.{n}"]
    return {k: v.contiguous() for k, v in out.items()}


# ---------------------------------------------------------------- reading the checkpoint

def resolve_checkpoint(ckpt_dir: str | Path, iteration: int | None = None) -> Path:
    """The `iter_*` dir to export: `--iteration N` of a save dir, the dir itself if it is one
    checkpoint, else the newest complete, verified one (as resume picks it)."""
    path = Path(ckpt_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: checkpoint directory not found")
    if iteration is not None:
        if (path / ck.MANIFEST).is_file():
            if ck.iteration_of(path) != iteration:
                raise ck.CheckpointError(f"{path} is iteration {ck.iteration_of(path)}, not {iteration}")
            return path
        one = path / ck.iter_name(iteration)
        if not one.is_dir():
            have = ", ".join(p.name for p in ck.complete_checkpoints(path)) or "none"
            raise ck.CheckpointError(f"{path}: no checkpoint for iteration {iteration} (have: {have})")
        return one
    if (path / ck.MANIFEST).is_file():
        return path
    found = ck.find_loadable(path)
    if found is None:
        raise ck.CheckpointError(f"{path}: no complete checkpoint found")
    return found


def load_checkpoint(ckpt: Path):
    """(MegatronLM with the weights loaded through safe_load, its trainer_state). The config is
    checked for an HF mapping first, so an unmappable checkpoint is refused before it is read."""
    from babelmill.pretrain.config import config_from_dict

    try:
        state = ck.load_trainer_state(ckpt)
        cfg = config_from_dict(state["config"])
    except (OSError, ValueError, KeyError) as e:
        raise ck.CheckpointError(f"{ckpt}: unreadable trainer_state.json ({type(e).__name__}: {e})") from None
    hf_architecture(cfg.model)
    from babelmill.pretrain.inference import MegatronLM

    return MegatronLM(str(ckpt)), state


# ---------------------------------------------------------------- writing HF files

def write_tokenizer(tokenizer_json: str | Path, out: Path, eos_id: int, max_len: int) -> None:
    """tokenizer.json + tokenizer_config.json (+ special_tokens_map.json) for AutoTokenizer.

    The project tokenizer adds no special tokens to an encoded text (documents were packed with
    EOS between them), so the HF tokenizer encodes `text` exactly as training did."""
    from transformers import PreTrainedTokenizerFast

    from babelmill.pretrain.data.tokenizer import load_tokenizer

    raw = load_tokenizer(tokenizer_json)
    eos = raw.id_to_token(eos_id)
    pad = next((t for t in ("<pad>", "[PAD]", "<|pad|>") if raw.token_to_id(t) is not None), None)
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_json), eos_token=eos,
                                  pad_token=pad or eos, model_max_length=max_len,
                                  clean_up_tokenization_spaces=False)
    tok.save_pretrained(str(out))
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")  # byte-identical to the project's
    # transformers 5 writes its own class name ("TokenizersBackend"); the generic fast-tokenizer
    # class loads in transformers 4.x too (vLLM, older lm-eval) and maps to the same in 5.x
    tc_path = out / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    tc.pop("backend", None)
    tc_path.write_text(json.dumps(tc, indent=2) + "\n")


def save_hf(tensors: dict[str, torch.Tensor], config, out: Path, dtype: torch.dtype,
            max_shard_size: str = "5GB") -> None:
    """Build the transformers model on the meta device, assign the tensors (strict: every
    weight must be there and nothing else) and save it as safetensors."""
    from transformers import AutoModelForCausalLM, GenerationConfig

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    tensors = {k: v.to(dtype) for k, v in tensors.items()}
    expected = {k for k in model.state_dict() if not (config.tie_word_embeddings and k == "lm_head.weight")}
    missing, extra = expected - set(tensors), set(tensors) - expected
    if missing or extra:
        raise ExportError(f"tensor mapping does not match {type(model).__name__}: missing "
                          f"{sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
    model.load_state_dict(tensors, strict=False, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = GenerationConfig(eos_token_id=config.eos_token_id,
                                               pad_token_id=config.pad_token_id,
                                               bos_token_id=None)
    model.save_pretrained(str(out), safe_serialization=True, max_shard_size=max_shard_size)


def export(checkpoint: str | Path, output: str | Path, iteration: int | None = None,
           dtype: str = "float32", report=None) -> dict:
    """Write HF_DIR from a babelmill checkpoint; returns a summary (also HF_DIR/babelmill_export.json).
    What was exported is logged (INFO; to `report` if given, see checkpoint.say)."""
    out = Path(output)
    if out.exists() and any(out.iterdir()) and not (out / "babelmill_export.json").is_file():
        raise ExportError(f"--output {out} is not empty (and not an earlier export); use a new directory")
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    ckpt = resolve_checkpoint(checkpoint, iteration)
    lm, state = load_checkpoint(ckpt)
    m = lm.config.model
    sd = {k: v.detach().cpu() for k, v in lm.model.state_dict().items()
          if isinstance(v, torch.Tensor) and "_extra_state" not in k}
    tensors = megatron_to_hf(sd, m)
    pad_id = _pad_id(lm.tokenizer, lm.eos_id)
    config = hf_config(m, state["vocab_size"], lm.eos_id, pad_id, dtype)
    out.mkdir(parents=True, exist_ok=True)
    save_hf(tensors, config, out, torch_dtype)
    write_tokenizer(lm.tokenizer_path, out, lm.eos_id, m.seq_length)
    written = json.loads((out / "config.json").read_text())
    summary = {"checkpoint": str(ckpt), "iteration": state["iteration"],
               "architecture": (written.get("architectures") or [written["model_type"]])[0],
               "model_type": written["model_type"], "dtype": dtype, "vocab_size": state["vocab_size"],
               "tokenizer_vocab": lm.tokenizer.get_vocab_size(with_added_tokens=True),
               "parameters": sum(v.numel() for v in tensors.values()),
               "saved_with": {"tensor": lm.config.parallel.tensor, "pipeline": lm.config.parallel.pipeline}}
    (out / "babelmill_export.json").write_text(json.dumps(summary, indent=1) + "\n")
    ck.say(report, log, logging.INFO,
           f"exported {ckpt} (iteration {state['iteration']}) as {summary['architecture']} to {out}")
    return summary


def _pad_id(tok, eos_id: int) -> int:
    for t in ("<pad>", "[PAD]", "<|pad|>"):
        tid = tok.token_to_id(t)
        if tid is not None:
            return tid
    return eos_id


def export_if_changed(checkpoint: str | Path, output: str | Path, report=None) -> tuple[Path, bool]:
    """`export` unless `output` already holds the export of the same checkpoint (the demo reruns);
    (output, whether it was written now)."""
    out = Path(output)
    ckpt = resolve_checkpoint(checkpoint)
    done = out / "babelmill_export.json"
    if done.is_file() and (out / "model.safetensors").is_file():
        try:
            if json.loads(done.read_text()).get("checkpoint") == str(ckpt):
                return out, False
        except json.JSONDecodeError:
            pass
    export(ckpt, out, report=report)
    return out, True
