"""`pretrain export` / `pretrain import`: HF transformers models from babelmill checkpoints and back.

- the tiny model trained by the session fixture, exported: AutoModelForCausalLM/AutoTokenizer
  load it without trust_remote_code, its logits equal megatron-core's (fp32, 1e-4), it generates;
- export -> import -> export gives bitwise the same tensors, and training continues from the import;
- checkpoints saved with tensor or pipeline parallelism 2 export to the same tensors (resharded);
- independent HF models (Llama with GQA, untied, biases; Arcee = GeLU MLP + biases + RMSNorm +
  RoPE, the FuxiTranyu-like shape) import with equal logits and export back bitwise;
- unmappable configs and pickled HF weights are refused with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from babelmill.pretrain.distributed import free_port
from tests.pretrain.conftest import N_STEPS, ROOT, cli_json, run_cli

TEXTS = ["the river water report committee", "la maison est grande et le chat dort",
         "河 水 报告", "der Ausschuss veröffentlichte den Bericht"]


def _tensors(hf_dir):
    from safetensors.torch import load_file

    return load_file(str(hf_dir / "model.safetensors"))


def _assert_same(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def _megatron_logits(lm, ids):
    t = torch.tensor([ids])
    with torch.no_grad():
        return lm.model(t, torch.arange(len(ids)).unsqueeze(0), None)[0]


@pytest.fixture(scope="module")
def exported(straight_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf") / "tiny-hf"
    proc = run_cli("export", "--checkpoint", str(straight_run), "--output", str(out))
    return out, cli_json(proc)


def test_export_loads_in_transformers_with_equal_logits_and_generates(straight_run, exported):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from babelmill.pretrain.inference import MegatronLM

    hf_dir, summary = exported
    assert summary["architecture"] == "LlamaForCausalLM" and summary["iteration"] == N_STEPS
    names = sorted(p.name for p in hf_dir.iterdir())
    for f in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
              "tokenizer_config.json"):
        assert f in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth"))]  # safetensors only
    cfg = json.loads((hf_dir / "config.json").read_text())
    assert cfg["model_type"] == "llama" and "auto_map" not in cfg  # no remote code anywhere

    lm = MegatronLM(str(straight_run))
    tok = AutoTokenizer.from_pretrained(str(hf_dir), trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), trust_remote_code=False,
                                                 dtype=torch.float32).eval()
    assert tok.eos_token_id == lm.eos_id
    worst = 0.0
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        assert ids == lm.tokenizer.encode(text, add_special_tokens=False).ids  # same tokens as training
        with torch.no_grad():
            hf_logits = model(torch.tensor([ids])).logits[0]
        worst = max(worst, (hf_logits - _megatron_logits(lm, ids)).abs().max().item())
    print(f"max |logit diff| HF vs megatron-core: {worst:.3e}")
    assert worst < 1e-4
    # a padded batch too (the padding is on the left, as generate() pads)
    enc = tok(TEXTS[:2], return_tensors="pt", padding=True, padding_side="left")
    out = model.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    width = enc["input_ids"].shape[1]
    assert out.shape[0] == 2 and width < out.shape[1] <= width + 6
    assert isinstance(tok.decode(out[0], skip_special_tokens=True), str)


def test_export_import_export_roundtrips_and_training_continues(exported, data_dir, small_config,
                                                               straight_run, tmp_path):
    from babelmill.pretrain.inference import MegatronLM
    from tests.pretrain.conftest import losses

    hf_dir, _ = exported
    ckpt = tmp_path / "imported"
    run_cli("import", "--hf", str(hf_dir), "--output", str(ckpt))
    assert (ckpt / "babelmill_run.json").is_file() and (ckpt / "latest").read_text().strip() == "iter_0000000"
    again = tmp_path / "again"
    from babelmill.pretrain.hf_export import export_if_changed

    assert export_if_changed(ckpt, again, report=lambda *_: None) == (again, True)
    assert export_if_changed(ckpt, again, report=lambda *_: None) == (again, False)  # the demo's rerun
    _assert_same(_tensors(hf_dir), _tensors(again))
    assert json.loads((again / "config.json").read_text()) == json.loads((hf_dir / "config.json").read_text())
    assert (again / "tokenizer.json").read_bytes() == (hf_dir / "tokenizer.json").read_bytes()

    lm = MegatronLM(str(ckpt))  # the audit's loader reads the imported checkpoint
    ref = MegatronLM(str(straight_run))
    ids = lm.tokenizer.encode(TEXTS[0]).ids
    assert torch.equal(_megatron_logits(lm, ids), _megatron_logits(ref, ids))

    # training continues from the imported weights (fresh optimizer, iteration 0)
    r = cli_json(run_cli("train", "--config", str(ckpt / "imported_config.yaml"), "--data", str(data_dir),
                         "--save", str(ckpt), "--train-iters", "20", "--exit-after", "2"))
    assert r["resumed_from"] == str(ckpt / "iter_0000000") and r["iteration"] == 2
    assert losses(ckpt)[1] < losses(straight_run)[1] - 0.3  # starts from trained weights, not from scratch


def test_tensor_and_pipeline_parallel_checkpoints_export_resharded(straight_run, exported, tmp_path):
    from babelmill.pretrain.hf_export import export

    src = straight_run / f"iter_{N_STEPS:07d}"
    layouts = {"tp2": (2, 1), "pp2": (1, 2)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           "-m", "tests.pretrain.reshard_helper", str(src),
           *(f"{tmp_path / name}:{tp}:{pp}" for name, (tp, pp) in layouts.items())]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, f"reshard helper failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    for name, (tp, pp) in layouts.items():
        ranks = {p.name.split("_")[2] for p in (tmp_path / name / src.name).glob("__*_*.distcp")}
        assert len(ranks) == 2  # both ranks wrote their shards
        s = export(tmp_path / name, tmp_path / f"hf-{name}", report=lambda *_: None)
        assert s["saved_with"] == {"tensor": tp, "pipeline": pp}
        _assert_same(_tensors(exported[0]), _tensors(tmp_path / f"hf-{name}"))


def _random_hf_model(arch: str, tmp_path, tokenizer_json):
    """A small random HF model (every weight, biases and norms included, non-trivial), saved with
    the project tokenizer."""
    from transformers import AutoModelForCausalLM

    from babelmill.pretrain.config import ModelConfig
    from babelmill.pretrain.hf_export import hf_config, write_tokenizer

    m = ModelConfig(num_layers=2, hidden_size=64, num_attention_heads=4, num_query_groups=2,
                    ffn_hidden_size=96, seq_length=48, max_position_embeddings=64, rotary_base=20000,
                    swiglu=arch == "llama", add_bias_linear=True, untie_embeddings_and_output_weights=True,
                    norm_epsilon=1e-6, vocab_size=512)
    cfg = hf_config(m, 512, eos_id=0, pad_id=1)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.05 + (1.0 if p.ndim == 1 and p.shape[0] == 64 else 0.0))
    out = tmp_path / f"hf-{arch}"
    model.save_pretrained(str(out))
    write_tokenizer(tokenizer_json, out, eos_id=0, max_len=64)
    return out, model.eval()


@pytest.mark.parametrize("arch", ["llama", "arcee"])
def test_hf_models_import_with_equal_logits_and_export_back(arch, tmp_path, tokenizer_json):
    from babelmill.pretrain.hf_export import export
    from babelmill.pretrain.hf_import import import_hf
    from babelmill.pretrain.inference import MegatronLM

    src, model = _random_hf_model(arch, tmp_path, tokenizer_json)
    assert type(model).__name__ == ("LlamaForCausalLM" if arch == "llama" else "ArceeForCausalLM")
    ckpt = tmp_path / "ckpt"
    import_hf(src, ckpt, seq_length=48, report=lambda *_: None)
    lm = MegatronLM(str(ckpt))
    m = lm.config.model
    assert (m.swiglu, m.add_bias_linear, m.untie_embeddings_and_output_weights) == (arch == "llama", True, True)
    assert (m.seq_length, m.max_position_embeddings, m.norm_epsilon, m.rotary_base) == (48, 64, 1e-6, 20000)
    ids = lm.tokenizer.encode(" ".join(TEXTS)).ids[:48]
    with torch.no_grad():
        hf_logits = model(torch.tensor([ids])).logits[0]
    diff = (hf_logits - _megatron_logits(lm, ids)).abs().max().item()
    print(f"{arch}: max |logit diff| HF vs megatron-core: {diff:.3e}")
    assert diff < 1e-4
    back = tmp_path / "back"
    s = export(ckpt, back, report=lambda *_: None)
    assert s["model_type"] == arch
    _assert_same(_tensors(src), _tensors(back))


def test_refuses_what_it_cannot_map(straight_run, tmp_path):
    import shutil

    from transformers import LlamaConfig

    from babelmill.pretrain.config import ModelConfig
    from babelmill.pretrain.hf_export import ExportError, export, hf_architecture
    from babelmill.pretrain.hf_import import model_config_from_hf, read_safetensors

    base = dict(num_layers=2, hidden_size=64, num_attention_heads=4, seq_length=64)
    with pytest.raises(ExportError, match="LayerNorm"):
        hf_architecture(ModelConfig(**base, normalization="LayerNorm"))
    with pytest.raises(ExportError, match="learned_absolute"):
        hf_architecture(ModelConfig(**base, position_embedding_type="learned_absolute"))
    # a real checkpoint whose config does not map: refused before any weight is read
    ck = tmp_path / "iter_0000012"
    shutil.copytree(straight_run / "iter_0000012", ck)
    state = json.loads((ck / "trainer_state.json").read_text())
    state["config"]["model"]["normalization"] = "LayerNorm"
    (ck / "trainer_state.json").write_text(json.dumps(state))
    with pytest.raises(ExportError, match="cannot export .*LayerNorm"):
        export(ck, tmp_path / "out")
    assert not (tmp_path / "out").exists()

    llama = dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2, intermediate_size=96, vocab_size=512)
    with pytest.raises(ExportError, match="RoPE scaling 'llama3'"):
        model_config_from_hf(LlamaConfig(**llama, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}))
    with pytest.raises(ExportError, match="hidden_act"):
        model_config_from_hf(LlamaConfig(**llama, hidden_act="gelu"))
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ExportError, match="pickles"):
        read_safetensors(tmp_path / "pickled")


def test_old_run_config_without_new_model_fields_still_resumes(tmp_path):
    from babelmill.pretrain.savedir import RUN_CONFIG, check_same_run

    model = {"num_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "seq_length": 64}
    old = {"config": {"model": dict(model)}, "vocab_size": 512, "tokenizer_sha256": "x"}
    (tmp_path / RUN_CONFIG).write_text(json.dumps(old))
    check_same_run(tmp_path, {"config": {"model": {**model, "add_bias_linear": False, "norm_epsilon": 1e-5}},
                              "vocab_size": 512, "tokenizer_sha256": "x"})
    from babelmill.pretrain.savedir import SaveDirError

    with pytest.raises(SaveDirError, match="add_bias_linear"):
        check_same_run(tmp_path, {"config": {"model": {**model, "add_bias_linear": True}},
                                  "vocab_size": 512, "tokenizer_sha256": "x"})


def test_bias_and_gelu_parameter_count_matches_megatron_model():
    from babelmill.pretrain.config import ModelConfig
    from babelmill.pretrain.sizing import count_parameters, meta_parameter_count

    m = ModelConfig(num_layers=2, hidden_size=64, num_attention_heads=4, num_query_groups=2, ffn_hidden_size=96,
                    seq_length=64, swiglu=False, add_bias_linear=True, untie_embeddings_and_output_weights=True)
    assert meta_parameter_count(m, 512) == count_parameters(m, 512)[0]
