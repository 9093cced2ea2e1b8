"""Where a run puts its files. One place, so engines, reports and tests agree.

RUN_DIR/
  run_config.yaml        the validated config the run was made with
  manifest.json          versions, input fingerprints, counts (in = kept + dropped)
  output/<unit>.parquet  kept documents, one shard per work unit
  rejects/<unit>.parquet dropped/quarantined documents with stage, reason, detail
  units/<unit>.json      per-unit counts; written last, so its presence marks the unit done
  .lock                  flock'ed by the process using the directory (pid, host, since: a hint)

With global stages (deduplication) the map phase writes to staged/ instead, the global phases
write dedup/<stage>/ (rounds/NN-<name>/ with each round's part files and _SUCCESS, drops/ keyed
by unit, a _SUCCESS marker with the rounds' statistics), dedup/resolved/ (root ids and cluster
sizes, keyed by unit) and dedup/_inputs.json (the units and config they were computed over),
and an apply phase turns each staged shard into output/ + rejects/<unit>-dedup.parquet +
units/<unit>.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    root: Path
    fmt: str = "parquet"

    @property
    def ext(self) -> str:
        return "parquet" if self.fmt == "parquet" else "jsonl"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def rejects_dir(self) -> Path:
        return self.root / "rejects"

    @property
    def units_dir(self) -> Path:
        return self.root / "units"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def config(self) -> Path:
        return self.root / "run_config.yaml"

    @property
    def staged_dir(self) -> Path:
        return self.root / "staged"

    def staged(self, unit_id: str) -> Path:
        return self.staged_dir / f"{unit_id}.parquet"

    def staged_stats(self, unit_id: str) -> Path:
        return self.staged_dir / "_units" / f"{unit_id}.json"

    def dedup_dir(self, stage: str) -> Path:
        return self.root / "dedup" / stage

    def dedup_rejects(self, unit_id: str) -> Path:
        return self.rejects_dir / f"{unit_id}-dedup.parquet"

    def output(self, unit_id: str) -> Path:
        return self.output_dir / f"{unit_id}.{self.ext}"

    def rejects(self, unit_id: str) -> Path:
        return self.rejects_dir / f"{unit_id}.parquet"

    def unit_stats(self, unit_id: str) -> Path:
        return self.units_dir / f"{unit_id}.json"
