"""Model-based quality scoring: KenLM perplexity (CCNet-style) and fastText quality classifiers.

- `text`: the text preparation both scorers and both trainers share (CCNet normalisation,
  SentencePiece / word / character tokens, fastText input lines), so a model always sees text
  prepared the way it was trained on;
- `kenlm_models`: a directory of per-language KenLM models (`<lang>.arpa`, `<lang>.bin`,
  CCNet's `<lang>.arpa.bin` + `<lang>.sp.model`), found, checked and loaded;
- `ngram`: a pure-Python interpolated modified Kneser-Ney trainer that writes ARPA (what KenLM's
  `lmplz` computes, for users without a KenLM build; small corpora only);
- `classifier`: fastText quality classifiers per language (or one multilingual one): training
  with held-out precision/recall, loading, scoring;
- `scoring`: the part both stages share (model directory, per-language bounds from the quality
  configuration layers, missing-model warnings, score-only mode);
- `cli`: `babelmill quality-model train` and `babelmill quality-model train-lm`.

The stages themselves are `perplexity` (pipeline/stages/perplexity.py) and
`quality_classifier` (pipeline/stages/quality_classifier.py).
"""
