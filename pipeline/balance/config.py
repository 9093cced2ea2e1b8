"""The `balance:` section of a pipeline config (or a standalone YAML for `babelmill balance`).

All of the balancing policy is data: which policy, its exponent or shares, the token budget,
the epoch cap, the minimum share, rehydration and the seed. Nothing about a language is code.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RehydrateConfig(_Strict):
    """FineWeb-2's rehydration: documents that had many near/exact duplicates before dedup are
    repeated more often (a cluster of size k gets weight min(k, max_weight))."""

    enabled: bool = Field(False, description="weight documents by min(cluster_size, max_weight)")
    max_weight: float = Field(5.0, ge=1.0, description="cap on a document's sampling weight")


class BalanceConfig(_Strict):
    """Balance the kept corpus across languages (README: Balancing across languages)."""

    policy: Literal["temperature", "unimax", "shares"] = Field("temperature", description="temperature: share ∝ tokens^alpha; unimax: as uniform as the epoch cap allows; shares: explicit")
    alpha: float = Field(0.3, gt=0, le=1, description="temperature policy: share ∝ tokens^alpha (alpha = 1/T)")
    shares: dict[str, float] = Field(default_factory=dict, description="shares policy: target share per language")
    budget_tokens: int | None = Field(None, gt=0, description="tokens in the balanced corpus (default: all kept tokens)")
    max_epochs: float = Field(4.0, ge=1.0, description="no language is repeated more than this; no document appears more than ceil(max_epochs) times")
    min_share: float = Field(0.0, ge=0, lt=1, description="raise every language to at least this share (before the epoch cap)")
    languages: list[str] | None = Field(None, description="languages to balance (default: every language of the registry)")
    tokenizer: str = Field("proxy", description="'proxy' (words / characters by script) or a tokenizer.json path")
    rehydrate: RehydrateConfig = Field(default_factory=RehydrateConfig, description="up-weight documents that had duplicates")
    seed: int = Field(0, description="sampler seed")
    output_subdir: str = Field("balanced", description="folder under the run directory", pattern=r"^[A-Za-z0-9_.-]+$")

    @model_validator(mode="after")
    def _shares_valid(self):
        if self.policy == "shares":
            if not self.shares:
                raise ValueError("policy 'shares' needs a 'shares' mapping (language -> share)")
            bad = {k: v for k, v in self.shares.items() if v < 0}
            if bad:
                raise ValueError(f"negative shares: {bad}")
            if sum(self.shares.values()) <= 0:
                raise ValueError("shares sum to zero")
        if self.min_share and self.languages and self.min_share * len(self.languages) > 1:
            raise ValueError(f"min_share {self.min_share} x {len(self.languages)} languages exceeds 1")
        return self

    def fingerprint(self) -> str:
        d = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
