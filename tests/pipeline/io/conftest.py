"""Shared by the reader tests: read every unit of an input, checking the batch schemas."""

from __future__ import annotations

import pyarrow as pa
import pytest

from babelmill.pipeline.core.schema import DOC_COLUMNS, REJECT_SCHEMA
from babelmill.pipeline.io.readers import ReadOptions, plan_units, read_unit


def _read_all(path, **kw):
    opts = ReadOptions(**kw)
    docs, rejects = [], []
    for unit in plan_units([str(path)], opts):
        for d, r in read_unit(unit, opts):
            assert d.schema.names[:4] == list(DOC_COLUMNS) and d.schema.field("text").type == pa.large_string()
            assert r.schema == REJECT_SCHEMA
            docs.extend(d.to_pylist())
            rejects.extend(r.to_pylist())
    return docs, rejects


@pytest.fixture
def read_all():
    """read_all(path, **ReadOptions) -> (documents, rejects) as lists of dicts."""
    return _read_all
