"""The same pipeline on the in-process, Ray Data and Beam engines gives identical results."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.layout import RunLayout
from babelmill.pipeline.runner.run import run_pipeline


def _cfg(corpus, out, engine):
    return PipelineConfig.model_validate(
        {
            "name": f"agree-{engine}",
            "input": {"paths": [str(corpus)], "extra_fields": ["meta"]},
            "output": {"dir": str(out)},
            "stages": ["langid"],
            "engine": {"name": engine},
        }
    )


def _read_all(d):
    tables = [pq.read_table(p) for p in sorted(d.glob("*.parquet"))]
    return pa.concat_tables(tables).sort_by("id") if tables else None


@pytest.mark.ray
@pytest.mark.beam
def test_local_ray_beam_identical(corpus, tmp_path, ray_session):
    results = {}
    for engine in ("local", "ray", "beam"):
        out = tmp_path / engine
        manifest = run_pipeline(_cfg(corpus, out, engine), quiet=True)
        lay = RunLayout(out)
        results[engine] = (
            _read_all(lay.output_dir),
            _read_all(lay.rejects_dir),
            manifest["counts"],
            sorted(p.name for p in lay.output_dir.iterdir()),
        )
    base = results["local"]
    assert base[0].num_rows > 0 and base[1].num_rows > 0
    for engine in ("ray", "beam"):
        out, rej, counts, names = results[engine]
        assert names == base[3], engine
        assert out.equals(base[0]), engine
        assert rej.equals(base[1]), engine
        assert counts == base[2], engine
    counts = base[2]
    assert counts["balanced"] and counts["docs_in"] == counts["kept"] + counts["dropped"]
    # 3 files x (11 langs x 2 docs + 1 malformed + 1 empty)
    assert counts["docs_in"] == 3 * (11 * 2 + 2)
    assert counts["by_stage"]["read"]["reasons"] == {"bad_json": 3, "empty_text": 3}
    # Swahili is not one of the 43 targets
    assert counts["by_stage"]["langid"]["reasons"].get("lang_other", 0) >= 6
