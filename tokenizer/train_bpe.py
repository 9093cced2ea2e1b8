"""Byte-level BPE with HF `tokenizers`: the pipeline's main tokenizer.

Pipeline (all in tokenizer.json, so every consumer applies the same steps):
  normalizer     NFC: the same text in NFD or NFC gets the same tokens (NFC text round-trips
                 exactly; NFD text comes back as NFC).
  pre-tokenizer  one regex split (PRETOKENIZE_PATTERN), then byte-level mapping. Unlike the GPT-2
                 regex, a "word" is a run of letters *and combining marks* (\\p{L}\\p{M}, plus
                 ZWJ/ZWNJ): Thai, Lao, Khmer, Myanmar and Indic vowel signs are marks, and the GPT-2
                 class \\p{L}+ cuts a word at every one of them, so merges could never form
                 syllables. Unspaced scripts (zh, ja, th, lo, km, my) therefore stay whole runs
                 between spaces/punctuation, like the cl100k/Llama-3 patterns; BPE finds the units
                 inside them. No English contraction rules (they are language-specific).
                 Digits are split one by one (\\p{N}, any script): numbers get consistent
                 tokenization and arithmetic-friendly tokens.
  model          BPE over the 256 byte symbols (initial alphabet): no text is ever unknown.
  decoder        byte-level: decode(encode(x)) == x for NFC x.
No post-processor: bos/eos are added by the packing stage, not on every encode.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

_WORD = r"[\p{L}\p{M}\x{200C}\x{200D}]"
PRETOKENIZE_PATTERN = (
    rf"[^\r\n\p{{L}}\p{{M}}\p{{N}}]?{_WORD}+"  # a word, with at most one leading space/punct char
    r"|\p{N}"  # one digit
    r"| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"  # punctuation/symbols/emoji run
    r"|\s*[\r\n]+"  # newlines (with preceding spaces)
    r"|\s+(?!\S)"  # spaces not followed by a word (a word takes one leading space)
    r"|\s+"
)


def build_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def train_bpe(
    batches: Iterable[list[str]],
    vocab_size: int,
    specials: list[str],
    min_frequency: int = 2,
    max_token_bytes: int | None = 32,
) -> Tokenizer:
    """Train on an iterator of text batches. The trainer keeps one count per distinct pre-token
    (plus pair statistics over them), so memory grows with the sample's distinct words, not its
    length; the sample itself is bounded by sample.plan_sample(max_sample_chars)."""
    tok = build_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        max_token_length=max_token_bytes,
    )
    tok.train_from_iterator(batches, trainer=trainer)
    return tok
