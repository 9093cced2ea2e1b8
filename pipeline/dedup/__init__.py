"""Deduplication: exact (normalised-text hash) and near (MinHash LSH), as map computations
plus global shuffle/reduce phases run through the engine."""
