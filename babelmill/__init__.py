"""babelmill: multilingual data curation and pretraining pipeline."""

__version__ = "0.1.0"
