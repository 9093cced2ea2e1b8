"""docs/config.md is generated from the schemas; this fails when someone changes a config
model without regenerating it (python -m babelmill.configref)."""

from babelmill.configref import DOC, render


def test_config_reference_is_current():
    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m babelmill.configref"


def test_reference_covers_every_stage_and_section():
    text = render()
    for heading in ("### PipelineConfig", "### BalanceConfig", "### `langid`", "### `quality`",
                    "### `dedup_exact`", "### `dedup_near`"):
        assert heading in text
    assert "| `max_epochs` | float | `4.0` |" in text
