"""Import a Hugging Face Llama (or Arcee) model directory as a babelmill training save dir.

    babelmill pretrain import --hf HF_DIR --output CKPT_DIR [--config BASE.yaml] [--seq-length N]

CKPT_DIR is a save dir as `babelmill pretrain train` writes it (marker file, run_config.json,
tokenizer.json, `latest` -> iter_0000000/ with a verified manifest), holding a *weights-only*
checkpoint: the model, no optimizer state. Training continues from it with

    babelmill pretrain preprocess --tokenizer CKPT_DIR/tokenizer.json ... --output DATA
    babelmill pretrain train --config CKPT_DIR/imported_config.yaml --data DATA --save CKPT_DIR

(a fresh optimizer and the run's own LR schedule, starting at iteration 0), and
`MegatronLM(CKPT_DIR)` / `babelmill audit --model CKPT_DIR` score with it.
`imported_config.yaml` spells the model out field by field (the run refuses another model);
its train/optimizer/checkpoint sections come from `--config` (default: small CPU-friendly
settings) and may be edited freely.

Only safetensors weights are read (a `pytorch_model.bin` is a pickle that could run code). A
config this cannot express (RoPE scaling, LayerNorm, another activation, head_dim !=
hidden/heads, ...) is refused with the reason.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from babelmill.pretrain import checkpoint as ck
from babelmill.pretrain import savedir
from babelmill.pretrain.config import ModelConfig, PretrainConfig
from babelmill.pretrain.hf_export import ExportError, hf_to_megatron

log = logging.getLogger(__name__)

IMPORTED_CONFIG = "imported_config.yaml"

DEFAULT_RUN = {  # non-model sections of imported_config.yaml without --config
    "parallel": {"tensor": 1, "pipeline": 1},
    "optimizer": {"lr": 1.0e-4, "min_lr": 1.0e-5, "warmup_iters": 10, "decay_style": "cosine"},
    "train": {"micro_batch_size": 1, "global_batch_size": 8, "train_iters": 1000, "precision": "auto"},
    "checkpoint": {"save_interval": 100, "keep_last": 2},
}


def model_config_from_hf(hf_cfg, seq_length: int | None = None) -> ModelConfig:
    """A babelmill ModelConfig equal to a transformers Llama/Arcee config, or ExportError."""
    mt = getattr(hf_cfg, "model_type", None)
    why = []
    if mt not in ("llama", "arcee"):
        raise ExportError(f"cannot import model_type {mt!r}: only Llama-architecture models "
                          "(model_type llama, or arcee) map to babelmill's GPT")
    act = getattr(hf_cfg, "hidden_act", None)
    want = "silu" if mt == "llama" else "gelu"
    if act != want:
        why.append(f"hidden_act {act!r} (babelmill's {mt} shape uses {want!r})")
    heads = hf_cfg.num_attention_heads
    hidden = hf_cfg.hidden_size
    head_dim = getattr(hf_cfg, "head_dim", None) or hidden // heads
    if head_dim * heads != hidden:
        why.append(f"head_dim {head_dim} x {heads} heads != hidden_size {hidden}")
    rope = dict(getattr(hf_cfg, "rope_parameters", None) or {})
    rtype = rope.get("rope_type", "default")
    if rtype != "default":
        why.append(f"RoPE scaling {rtype!r} (babelmill trains plain RoPE)")
    theta = float(rope.get("rope_theta", getattr(hf_cfg, "rope_theta", 10000.0)))
    if theta != int(theta):
        why.append(f"rope_theta {theta} is not an integer")
    ab, mb = bool(getattr(hf_cfg, "attention_bias", False)), bool(getattr(hf_cfg, "mlp_bias", False))
    if ab != mb:
        why.append(f"attention_bias={ab} but mlp_bias={mb} (megatron's add_bias_linear sets both)")
    if (getattr(hf_cfg, "pretraining_tp", 1) or 1) != 1:
        why.append("pretraining_tp != 1")
    if why:
        raise ExportError("cannot import this model into babelmill: " + "; ".join(why))
    max_pos = int(hf_cfg.max_position_embeddings)
    try:
        return ModelConfig(
            num_layers=hf_cfg.num_hidden_layers, hidden_size=hidden, num_attention_heads=heads,
            num_query_groups=getattr(hf_cfg, "num_key_value_heads", None) or heads,
            ffn_hidden_size=hf_cfg.intermediate_size, seq_length=min(seq_length or max_pos, max_pos),
            max_position_embeddings=max_pos, position_embedding_type="rope", rotary_base=int(theta),
            normalization="RMSNorm", swiglu=mt == "llama",
            untie_embeddings_and_output_weights=not bool(getattr(hf_cfg, "tie_word_embeddings", False)),
            add_bias_linear=ab, norm_epsilon=float(hf_cfg.rms_norm_eps),
            init_method_std=float(getattr(hf_cfg, "initializer_range", 0.02)),
            vocab_size=int(hf_cfg.vocab_size))
    except ValueError as e:
        raise ExportError(f"cannot import this model into babelmill: {e}") from None


def read_safetensors(hf_dir: Path) -> dict[str, torch.Tensor]:
    """All tensors of model.safetensors or its sharded index; a pickled checkpoint is refused."""
    from safetensors.torch import load_file

    index = hf_dir / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (hf_dir / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        pickled = [p.name for p in hf_dir.glob("*.bin")] + [p.name for p in hf_dir.glob("*.pt")]
        raise ExportError(f"{hf_dir}: no safetensors weights (model.safetensors[.index.json])"
                          + (f"; {', '.join(pickled)} are pickles, which could run code and are not "
                             "read - convert them to safetensors first" if pickled else ""))
    out = {}
    for name in files:
        p = (hf_dir / name).resolve()
        if p.parent != hf_dir.resolve():
            raise ExportError(f"{index}: weight file {name!r} is outside {hf_dir}")
        out.update(load_file(str(p), device="cpu"))
    return {k: v for k, v in out.items() if not k.endswith("rotary_emb.inv_freq")}


def _run_config(model: ModelConfig, base: str | None) -> PretrainConfig:
    if base:
        from babelmill.pretrain.config import load_config

        cfg = load_config(base)
        data = cfg.model_dump(mode="json")
        data.pop("source", None)
    else:
        data = {**DEFAULT_RUN}
    data["model"] = model.model_dump(mode="json")
    return PretrainConfig.model_validate(data)


def _yaml_of(cfg: PretrainConfig) -> str:
    import yaml

    data = cfg.model_dump(mode="json")
    data.pop("source", None)
    data["model"].pop("preset", None)  # every field is spelled out; no preset to merge
    return ("# written by `babelmill pretrain import`: the model section must stay as it is (it is\n"
            "# the imported model); train/optimizer/checkpoint/parallel may be changed.\n"
            + yaml.safe_dump(data, sort_keys=False))


def import_hf(hf_dir: str | Path, output: str | Path, config: str | None = None,
              seq_length: int | None = None, report=None) -> dict:
    """Write CKPT_DIR (see the module docstring) from a local HF Llama/Arcee model dir. What was
    imported is logged (INFO; to `report` if given, see checkpoint.say)."""
    from transformers import AutoConfig

    from babelmill.pretrain.data.tokenizer import eos_token_id, load_tokenizer
    from babelmill.pretrain.distributed import init_model_parallel, init_process_group
    from babelmill.pretrain.model import build_gpt

    src = Path(hf_dir)
    out = Path(output)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src}: not a Hugging Face model dir (no config.json)")
    if savedir.check_owned(out) != "fresh":
        raise savedir.SaveDirError(f"--output {out} already holds a run; import into a new directory")
    hf_cfg = AutoConfig.from_pretrained(str(src), local_files_only=True)
    m = model_config_from_hf(hf_cfg, seq_length)
    tok_json = src / "tokenizer.json"
    if not tok_json.is_file():
        raise ExportError(f"{src}: no tokenizer.json (babelmill trains with a HF tokenizers file)")
    tok = load_tokenizer(tok_json)
    try:
        eos = eos_token_id(tok, tok_json)
    except ValueError as e:
        raise ExportError(str(e)) from None
    if tok.get_vocab_size(with_added_tokens=True) > m.vocab_size:
        raise ExportError(f"{tok_json} has {tok.get_vocab_size(with_added_tokens=True)} tokens but the "
                          f"model's vocab_size is {m.vocab_size}")
    hf = read_safetensors(src)
    if not m.untie_embeddings_and_output_weights:
        hf.pop("lm_head.weight", None)  # tied: the embedding is the output layer
    cfg = _run_config(m, config)

    init_process_group()
    init_model_parallel(1, 1)
    chunks, _ = build_gpt(m, m.vocab_size, None, "fp32", for_inference=True)
    model = chunks[0]
    current = model.state_dict()
    try:
        mapped = hf_to_megatron(hf, m, current.keys())
    except KeyError as e:
        raise ExportError(f"{src}: weight {e.args[0]} is missing") from None
    used = set(_hf_names(m))
    if set(hf) - used:
        raise ExportError(f"{src}: weights this architecture does not have: {sorted(set(hf) - used)[:5]}")
    tensor_keys = {k for k, v in current.items() if isinstance(v, torch.Tensor) and "_extra_state" not in k}
    if set(mapped) != tensor_keys:
        raise ExportError(f"mapping mismatch: missing {sorted(tensor_keys - set(mapped))[:5]}, "
                          f"unexpected {sorted(set(mapped) - tensor_keys)[:5]}")
    for k, v in mapped.items():
        if tuple(v.shape) != tuple(current[k].shape):
            raise ExportError(f"{src}: {k} has shape {tuple(v.shape)}, the model expects {tuple(current[k].shape)}")
    model.load_state_dict({**current, **{k: v.to(current[k].dtype) for k, v in mapped.items()}}, strict=True)

    savedir.mark(out)
    shutil.copyfile(tok_json, out / "tokenizer.json")
    trainer_state = {"iteration": 0, "consumed_samples": 0, "train_iters": None, "weights_only": True,
                     "vocab_size": m.vocab_size, "config": cfg.model_dump(mode="json"),
                     "tokenizer": "tokenizer.json", "imported_from": str(src.resolve())}
    mgr = ck.CheckpointManager(out, keep_last=1, checksum="sha256", async_save=False)
    saved = mgr.save(0, [model], None, trainer_state, tokenizer_json=str(out / "tokenizer.json"))
    mgr.close()
    run = {"config": cfg.model_dump(mode="json"), "vocab_size": m.vocab_size, "tokenizer": "tokenizer.json",
           "tokenizer_source": str((out / "tokenizer.json").resolve()),
           "tokenizer_sha256": savedir.sha256_file(out / "tokenizer.json"), "eos_id": eos,
           "data_dir": None, "language_weights": None, "imported_from": str(src.resolve())}
    (out / savedir.RUN_CONFIG).write_text(json.dumps(run, indent=1))
    (out / IMPORTED_CONFIG).write_text(_yaml_of(cfg))
    ck.say(report, log, logging.INFO,
           f"imported {src} ({hf_cfg.model_type}, {sum(v.numel() for v in mapped.values()):,} parameters) "
           f"as {saved}; continue training with --config {out / IMPORTED_CONFIG} --save {out}")
    return {"checkpoint": str(saved), "config": str(out / IMPORTED_CONFIG), "model": m.model_dump(mode="json")}


def _hf_names(m: ModelConfig) -> list[str]:
    """The HF tensor names of this architecture (what `megatron_to_hf` produces)."""
    names = ["model.embed_tokens.weight", "model.norm.weight"]
    if m.untie_embeddings_and_output_weights:
        names.append("lm_head.weight")
    kinds = ["weight"] + (["bias"] if m.add_bias_linear else [])
    mlp = ["gate_proj", "up_proj", "down_proj"] if m.swiglu else ["up_proj", "down_proj"]
    for i in range(m.num_layers):
        q = f"model.layers.{i}."
        names += [q + "input_layernorm.weight", q + "post_attention_layernorm.weight"]
        names += [f"{q}self_attn.{x}.{n}" for x in ("q_proj", "k_proj", "v_proj", "o_proj") for n in kinds]
        names += [f"{q}mlp.{x}.{n}" for x in mlp for n in kinds]
    return names
