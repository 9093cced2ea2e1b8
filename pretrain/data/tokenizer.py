"""The HF `tokenizers` tokenizer.json, seen the way megatron's datasets want a tokenizer.

GPTDataset needs `.eod` (document separator, our EOS) and `.vocab_size`; it probes `.pad` and
falls back to "no pad" when it raises, which is what we want (documents are packed, not padded).
"""

from __future__ import annotations

from pathlib import Path

from babelmill.fileutil import sha256_file as file_sha256

EOS_CANDIDATES = ("</s>", "<|endoftext|>", "<eos>", "<|end_of_text|>", "<|eos|>", "[EOS]", "<|im_end|>")


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: tokenizer file not found")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001 - tokenizers raises plain Exception
        raise ValueError(f"{path}: not a HF tokenizers tokenizer.json ({e})") from None


def eos_token_id(tok, path: str | Path = "tokenizer") -> int:
    """The EOS token id: the first known EOS spelling present in the vocabulary."""
    for name in EOS_CANDIDATES:
        tid = tok.token_to_id(name)
        if tid is not None:
            return tid
    specials = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
    raise ValueError(f"{path}: no EOS token found (looked for {', '.join(EOS_CANDIDATES)}; "
                     f"special tokens are {specials})")


class MegatronTokenizerAdapter:
    """Duck-types the bits of MegatronTokenizerBase that GPTDataset uses."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.tok = load_tokenizer(path)
        self.eod = eos_token_id(self.tok, path)
        self.vocab_size = self.tok.get_vocab_size(with_added_tokens=True)
        # megatron hashes this into dataset cache names: same tokenizer file -> same cache
        self.unique_identifiers = {"class": "MegatronTokenizerAdapter", "sha256": file_sha256(self.path)}

    @property
    def pad(self) -> int:
        raise AttributeError("no pad token: documents are packed")

    def tokenize(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def detokenize(self, ids) -> str:
        return self.tok.decode(list(ids))
