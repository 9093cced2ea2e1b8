"""Per-language heuristic quality filters (Gopher quality + repetition, C4, FineWeb).

    thresholds.py  the thresholds as data: configs/quality.yaml's schema and loading
    rules.py       the filters, in their fixed order, and per-language bounds and profiles
    stats.py       the per-document statistics, for a whole batch at once
    stage.py       the `quality` stage
    threshold_fit.py  `babelmill calibrate`: fits the thresholds to a sample of a corpus

Words are babelmill.text's (letters, marks, digits and `_`: a word keeps its vowel signs);
for languages with `space_delimited: false` in the registry (zh ja th lo km my) the unit is one
character and the thresholds come from the config's `unspaced:` section.

Importing this package registers the stage; the names below are its public interface.
"""

from babelmill.pipeline.stages.quality.rules import (
    FILTER_NAMES,
    FILTERS,
    REASONS,
    STAT_NAMES,
    Filter,
    QualityRules,
)
from babelmill.pipeline.stages.quality.stage import QualityParams, QualityStage
from babelmill.pipeline.stages.quality.stats import (
    BULLET_RE,
    DUP_NS,
    GROUPS,
    PARA_SEP,
    TOP_NS,
    LangProfile,
    compute_stats,
)
from babelmill.pipeline.stages.quality.thresholds import (
    DEFAULT_CONFIG,
    Punctuation,
    QualityFile,
    Thresholds,
    load_quality_config,
)
from babelmill.text import WORD_SEP

__all__ = [
    "BULLET_RE",
    "DEFAULT_CONFIG",
    "DUP_NS",
    "FILTERS",
    "FILTER_NAMES",
    "GROUPS",
    "PARA_SEP",
    "REASONS",
    "STAT_NAMES",
    "TOP_NS",
    "WORD_SEP",
    "Filter",
    "LangProfile",
    "Punctuation",
    "QualityFile",
    "QualityParams",
    "QualityRules",
    "QualityStage",
    "Thresholds",
    "compute_stats",
    "load_quality_config",
]
