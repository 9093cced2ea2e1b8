"""Exact resume: a run stopped half-way (in its own process) and resumed matches a straight run."""

from __future__ import annotations

from tests.pretrain.conftest import N_STEPS, cli_json, losses, run_cli

N = N_STEPS


def test_stop_and_resume_reproduces_every_loss(tmp_path, data_dir, small_config, straight_run):
    split = tmp_path / "split"
    common = ["--config", str(small_config), "--data", str(data_dir), "--save", str(split)]
    first = cli_json(run_cli("train", *common, "--exit-after", str(N // 2)))
    assert first["iteration"] == N // 2 and first["resumed_from"] is None
    second = cli_json(run_cli("train", *common))
    assert second["resumed_from"].endswith(f"iter_{N // 2:07d}")
    assert second["iteration"] == N

    a, b = losses(straight_run), losses(split)
    assert sorted(a) == list(range(1, N + 1))
    assert sorted(b) == list(range(1, N + 1))  # each step logged once despite the restart
    for it in range(1, N + 1):
        assert a[it] == b[it], f"loss differs at iteration {it}: {a[it]} vs {b[it]}"
    assert a[N] < a[1]  # it learned something
    # keep_last=3 pruned the oldest; `latest` names the final checkpoint
    assert sorted(p.name for p in split.glob("iter_*")) == [f"iter_{i:07d}" for i in (4, 6, 8, 12)][-3:]
    assert (split / "latest").read_text().strip() == f"iter_{N:07d}"
