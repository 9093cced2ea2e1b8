"""SentencePiece unigram, for comparison with the byte-level BPE.

Choice: the trained SentencePiece model is *converted* (not wrapped) into a HF `tokenizers`
Unigram pipeline saved as tokenizer.json, so evaluation, count_tokens and transformers load
every tokenizer the same way and no sentencepiece runtime is needed downstream. The original
`spm.model` is kept next to it for reference.

SentencePiece is configured so the conversion is faithful and lossless:
  normalization  identity inside SentencePiece; NFC is applied to the training text here and
                 by the HF normalizer at encode time (same rule both sides).
  whitespace     no dummy prefix, no whitespace collapsing (both would break exact round-trip);
                 " " -> "▁", pieces split before "▁" (HF Metaspace, prepend_scheme="never").
  digits         split_digits, like the BPE.
  unknown text   byte_fallback: a character outside the vocabulary becomes its UTF-8 bytes
                 (<0xNN> pieces), so nothing decodes to <unk>.
The converted tokenizer runs the same Viterbi over the same pieces and scores; the test suite
checks that it agrees with SentencePiece on the fixture sentences. Limitation: a literal "▁"
(U+2581) in the input decodes as a space.

Memory: SentencePiece loads its whole input, so training is fed at most `max_sentences`
lines (SentencePiece's `input_sentence_size`, sampled by it) — the bound at scale.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import sentencepiece as spm
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

SPM_FILE = "spm.model"


def _lines(batches: Iterable[list[str]], max_line_bytes: int) -> Iterator[str]:
    for batch in batches:
        for doc in batch:
            for line in doc.split("\n"):
                if line.strip():
                    # SentencePiece drops over-long sentences; cut them instead of losing them
                    while len(line.encode()) > max_line_bytes:
                        cut = max_line_bytes // 4  # chars; <= max bytes for any UTF-8 text
                        yield line[:cut]
                        line = line[cut:]
                    yield line


def train_sentencepiece(
    batches: Iterable[list[str]],
    vocab_size: int,
    specials: list[str],
    character_coverage: float = 0.9995,
    max_sentences: int = 2_000_000,
    num_threads: int = 1,
    seed: int = 0,
) -> bytes:
    """Train a unigram model; returns the serialized model proto."""
    pad, bos, eos, unk, *reserved = specials
    max_line = 8192
    model = io.BytesIO()
    spm.set_random_generator_seed(seed)
    try:
        _train(model, _lines(batches, max_line), max_line, vocab_size, character_coverage, max_sentences,
               num_threads, pad, bos, eos, unk, reserved)
    except RuntimeError as e:
        if "smaller than required_chars" in str(e):
            m = re.search(r"(\d+) vs (\d+)", str(e))
            need = m.group(2) if m else "more"
            from babelmill.tokenizer.corpus import TokenizerError

            raise TokenizerError(
                f"--vocab-size {vocab_size} is too small for SentencePiece: the sample needs {need} pieces for "
                f"its characters at character_coverage={character_coverage} (plus specials); "
                "raise --vocab-size"
            ) from None
        raise
    return model.getvalue()


def _train(model, lines, max_line, vocab_size, character_coverage, max_sentences, num_threads,
           pad, bos, eos, unk, reserved) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=lines,
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=character_coverage,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        split_by_whitespace=True,
        max_sentence_length=max_line,
        input_sentence_size=max_sentences,
        shuffle_input_sentence=True,
        pad_id=0, bos_id=1, eos_id=2, unk_id=3,
        pad_piece=pad, bos_piece=bos, eos_piece=eos, unk_piece=unk,
        user_defined_symbols=reserved,
        hard_vocab_limit=False,  # tiny test corpora may not support the full vocab size
        num_threads=num_threads,
        minloglevel=2,
    )


def to_hf(model_proto: bytes) -> Tokenizer:
    """Convert a SentencePiece unigram model into an equivalent HF `tokenizers` pipeline."""
    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    vocab, specials = [], []
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        vocab.append((piece, sp.get_score(i)))
        if sp.is_control(i) or sp.is_unknown(i) or (
            not sp.is_byte(i) and piece.startswith("<|reserved_")
        ):
            specials.append(piece)
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=True))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def train_unigram(batches: Iterable[list[str]], vocab_size: int, specials: list[str], out_dir: str | Path,
                  seed: int = 0, **kw) -> Tokenizer:
    proto = train_sentencepiece(batches, vocab_size, specials, seed=seed, **kw)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(proto)
    os.replace(tmp, out / SPM_FILE)
    return to_hf(proto)
