"""Balance a curated corpus across its target languages: count, plan, sample, write."""
