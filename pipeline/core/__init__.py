"""The stage contract shared by every engine: schemas, the Stage base class, stage chains."""

from babelmill.pipeline.core.schema import (
    DOC_COLUMNS,
    DROP_DETAIL,
    DROP_REASON,
    REJECT_SCHEMA,
    empty_rejects,
    make_rejects,
)
from babelmill.pipeline.core.stage import Stage, StageError, get_stage_class, register_stage, stage_names

__all__ = [
    "DOC_COLUMNS",
    "DROP_DETAIL",
    "DROP_REASON",
    "REJECT_SCHEMA",
    "Stage",
    "StageError",
    "empty_rejects",
    "get_stage_class",
    "make_rejects",
    "register_stage",
    "stage_names",
]
