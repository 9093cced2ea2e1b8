"""Tiny GPT-2 models trained on CPU in seconds: the test bed for the audit, the speed benchmark and
the demo. A byte-level BPE tokenizer is trained on the corpus itself, the model is a 2-layer GPT-2,
and training is plain torch (AdamW on random windows of the packed corpus), seeded.

Why here and not in tests/: bench/audit_speed.py needs the same models outside pytest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

EOS = "<|endoftext|>"


def train_tokenizer(texts: Sequence[str], vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS)


def build_model(vocab_size: int, n_layer: int = 2, n_embd: int = 64, n_head: int = 2, n_positions: int = 256,
                seed: int = 0):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=n_positions,
                     bos_token_id=0, eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(cfg)


def train_lm(model, tokenizer, docs: Sequence[str], steps: int = 300, seq_len: int = 64, batch_size: int = 16,
             lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Train on random windows of the docs packed with EOS between them; returns the loss curve."""
    import torch

    ids: list[int] = []
    for d in docs:
        ids.extend(tokenizer(d, add_special_tokens=False)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    data = torch.tensor(ids, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    losses = []
    span = max(1, len(data) - seq_len - 1)
    for _ in range(steps):
        starts = torch.randint(0, span, (batch_size,), generator=g)
        x = torch.stack([data[s : s + seq_len] for s in starts])
        out = model(input_ids=x, labels=x)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(out.loss.detach()))
    model.eval()
    return losses


def make_tiny_lm(out_dir: str | Path, docs: Sequence[str], tokenizer=None, steps: int = 300, seed: int = 0,
                 **model_kw) -> Path:
    """Train a tokenizer (unless given), a tiny GPT-2 on `docs`, save both to `out_dir` (HF layout)."""
    import torch

    torch.manual_seed(seed)
    tok = tokenizer if tokenizer is not None else train_tokenizer(docs)
    model = build_model(len(tok), seed=seed, **model_kw)
    train_lm(model, tok, docs, steps=steps, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
