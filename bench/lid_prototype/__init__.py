"""Issue-13 research: a language-ID decision rule evaluated by bench/langid_tatoeba.py, not yet
part of the `langid` stage (uz, ms and id stay below the per-language floors; see resolve.py)."""
