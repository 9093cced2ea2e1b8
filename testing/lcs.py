"""The textbook longest common subsequence, for tests that define "similar" independently of
the code under test (RapidFuzz in pipeline/dedup/near.py; difflib is not optimal on repetitive
text)."""

from __future__ import annotations

from collections.abc import Sequence


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence of `a` and `b` (O(len a x len b) dynamic programme)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]
