"""Built-in stages. Importing this package registers them (see core.stage.register_stage)."""

import importlib

for _mod in ("langid", "quality", "perplexity", "quality_classifier", "dedup", "decontaminate"):
    try:
        importlib.import_module(f"babelmill.pipeline.stages.{_mod}")
    except ModuleNotFoundError as _e:  # a stage module not written yet
        if _e.name != f"babelmill.pipeline.stages.{_mod}":
            raise
