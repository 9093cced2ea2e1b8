"""Human-readable reports of a run: the per-language data card (HTML + JSON)."""
