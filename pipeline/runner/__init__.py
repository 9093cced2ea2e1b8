"""Run a pipeline: plan work units, process each one atomically on an engine, write a manifest."""
