"""Config/preset loading: presets merge, and mistakes are reported with file:line."""

from __future__ import annotations

import pytest

from babelmill.pretrain.config import load_config
from babelmill.pretrain.sizing import count_parameters, plan
from babelmill.yamlconf import ConfigError
from tests.pretrain.conftest import ROOT


@pytest.mark.parametrize("name", ["tiny", "125m", "1.3b", "8b"])
def test_shipped_configs_load(name):
    cfg = load_config(ROOT / "configs" / "pretrain" / f"{name}.yaml")
    assert cfg.model.preset == name
    assert cfg.train.global_batch_size % cfg.train.micro_batch_size == 0


def test_8b_preset_is_fuxitranyu_like():
    cfg = load_config(ROOT / "configs" / "pretrain" / "8b.yaml")
    m = cfg.model
    assert (m.position_embedding_type, m.normalization, m.swiglu, m.seq_length) == ("rope", "RMSNorm", True, 4096)
    assert m.num_query_groups < m.num_attention_heads  # GQA
    p = plan(cfg, world_size=64)
    assert 7.5e9 < p.params_total < 8.5e9
    assert p.data == 64 // (cfg.parallel.tensor * cfg.parallel.pipeline)
    assert p.gib_total < 80  # fits an 80 GB GPU with this parallel layout


def test_tiny_count_matches_megatron_model():
    cfg = load_config(ROOT / "configs" / "pretrain" / "tiny.yaml")
    from babelmill.pretrain.sizing import meta_parameter_count

    assert meta_parameter_count(cfg.model, 512) == count_parameters(cfg.model, 512)[0]


def _write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_unknown_key_has_file_and_line(tmp_path):
    p = _write(tmp_path, "model:\n  preset: tiny\ntrain:\n  micro_batch_size: 2\n  global_batch_size: 4\n"
                         "  train_iters: 10\n  lerning_rate: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:7: train\.lerning_rate: unknown key"):
        load_config(p)


def test_unknown_preset_names_known_ones(tmp_path):
    p = _write(tmp_path, "model:\n  preset: 70b\ntrain:\n  micro_batch_size: 1\n  global_batch_size: 1\n  train_iters: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:2: model\.preset: unknown model preset '70b'; known: tiny"):
        load_config(p)


def test_inconsistent_values(tmp_path):
    p = _write(tmp_path, "model:\n  preset: tiny\n  num_attention_heads: 3\ntrain:\n  micro_batch_size: 3\n"
                         "  global_batch_size: 8\n  train_iters: 10\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "not divisible by num_attention_heads 3" in str(e.value)
    p = _write(tmp_path, "model:\n  preset: tiny\ntrain:\n  micro_batch_size: 3\n  global_batch_size: 8\n  train_iters: 10\n")
    with pytest.raises(ConfigError, match="not a multiple of micro_batch_size 3"):
        load_config(p)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


# ---------------------------------------------------------------- `auto` settings, resolved

def test_auto_settings_resolve_per_world():
    from babelmill.pretrain.config import World, resolve

    cfg = load_config(ROOT / "configs" / "pretrain" / "tiny.yaml")
    assert (cfg.train.precision, cfg.parallel.distributed_optimizer, cfg.checkpoint.async_save,
            cfg.train.prefetch) == ("auto",) * 4
    cpu = resolve(cfg, World(data_parallel_size=1, cuda=False))
    assert (cpu.precision, cpu.distributed_optimizer, cpu.async_save, cpu.prefetch) == ("fp32", False, False, False)
    gpu = resolve(cfg, World(data_parallel_size=1, cuda=True))
    assert (gpu.precision, gpu.distributed_optimizer, gpu.async_save, gpu.prefetch) == ("bf16", True, True, True)
    assert cpu.lr_decay_iters == cfg.train.train_iters and cpu.num_microbatches == 1
    assert cpu.vocab_size is None  # until the tokenizer is known
    assert cpu.with_tokenizer(cfg, 400).vocab_size == 512  # padded to make_vocab_size_divisible_by


def test_resolve_refuses_what_the_world_cannot_run():
    from babelmill.pretrain.config import World, config_with_overrides, resolve

    cfg = load_config(ROOT / "configs" / "pretrain" / "tiny.yaml")
    with pytest.raises(ValueError, match="distributed_optimizer needs GPUs"):
        resolve(config_with_overrides(cfg, {"parallel.distributed_optimizer": True}), World(1, cuda=False))
    with pytest.raises(ConfigError, match="not divisible by micro_batch_size x data-parallel size = 24"):
        resolve(cfg, World(data_parallel_size=3, cuda=False))
    small = config_with_overrides(cfg, {"model.vocab_size": 256})
    with pytest.raises(ValueError, match="model.vocab_size 256 < tokenizer vocab 400"):
        resolve(small, World(1, cuda=False)).with_tokenizer(small, 400)


def test_run_config_records_resolved_values(straight_run):
    """The straight run's config leaves precision, distributed optimizer, async saves and
    prefetch to `auto` and the vocabulary to the tokenizer: run_config.json says what ran."""
    import json

    import torch

    run = json.loads((straight_run / "run_config.json").read_text())
    assert run["config"]["train"]["precision"] == "auto"  # the config as given stays beside it
    r = run["resolved"]
    assert "auto" not in r.values() and None not in (r["precision"], r["vocab_size"])
    on_gpu = ("bf16", True, True, True) if torch.cuda.is_available() else ("fp32", False, False, False)
    assert (r["precision"], r["distributed_optimizer"], r["async_save"], r["prefetch"]) == on_gpu
    assert r["vocab_size"] == run["vocab_size"] == 512
    assert r["num_microbatches"] == 1 and r["data_parallel_size"] == 1
    assert r["lr_decay_iters"] == run["config"]["train"]["train_iters"]


def test_train_set_overrides_are_validated_like_the_file(tmp_path, capsys):
    """`babelmill pretrain train --set KEY=VALUE` goes through the same override code as
    `babelmill run --set` (yamlconf.apply_overrides): an unknown key is one line, exit 2,
    before any data or checkpoint is touched; a known key reaches the validated config."""
    from babelmill.cli import main
    from babelmill.paths import config_file
    from babelmill.pretrain.config import load_config
    from babelmill.yamlconf import parse_set

    tiny = config_file("pretrain", "tiny.yaml")
    rc = main(["pretrain", "train", "--config", str(tiny), "--data", str(tmp_path / "data"),
               "--save", str(tmp_path / "save"), "--set", "train.no_such_key=1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("babelmill: error: ") and "train.no_such_key" in err and "\n" not in err, err
    assert not (tmp_path / "save").exists()
    cfg = load_config(tiny, parse_set(["train.train_iters=70", "optimizer.lr=0.002"]))
    assert cfg.train.train_iters == 70 and cfg.optimizer.lr == 0.002
