"""Document references for global phases: one int64 per document, (unit index << 32) | row,
so that every document of a run has a small, sortable, engine-independent identity, and the
"first" document of a duplicate group (the kept one) is simply the smallest reference: the
earliest in input order, whatever engine or parallelism ran the job."""

from __future__ import annotations

import numpy as np

ROW_BITS = 32


def make_refs(unit_index: int, n: int) -> np.ndarray:
    return (np.int64(unit_index) << np.int64(ROW_BITS)) + np.arange(n, dtype=np.int64)


def unit_of(refs: np.ndarray) -> np.ndarray:
    return refs >> np.int64(ROW_BITS)
