"""Model backends behind one small interface, so scoring does not care where the weights live.

The interface (duck-typed):
    encode(text) -> list[int]                                 # tokens as the model saw text in training
    token_logprobs(batch: list[list[int]]) -> list[np.ndarray]  # log p(tokens[1:] | prefix), float64;
                                                              # sequences have up to max_len + 1 tokens (the last is only a target)
    eos_id: int | None, max_len: int                          # context used for an empty prompt / truncation
A backend may also offer `score_items(requests)` (see HFBackend) to reuse each item's context
across its options; the scorer uses it when present and falls back to token_logprobs otherwise.

Backends: a local Hugging Face causal LM directory (HFBackend) and a megatron-core checkpoint
written by `pretrain/` (MegatronBackend, an adapter over babelmill.pretrain.inference.MegatronLM,
imported lazily so the audit does not need megatron installed to score HF models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from babelmill.errors import BabelmillError

# a megatron save dir (`latest` tracker, babelmill's pretrain/ or megatron's own name), a babelmill
# model card, or one `iter_*` checkpoint of pretrain/ (trainer_state.json)
MEGATRON_MARKERS = ("latest_checkpointed_iteration.txt", "latest", "babelmill_model.json", "trainer_state.json")


class ModelError(BabelmillError, ValueError):
    """The model path is neither a Hugging Face model dir nor a megatron checkpoint, or its
    Hugging Face files cannot be loaded; the message names the path."""


class Backend(Protocol):
    eos_id: int | None
    max_len: int

    def encode(self, text: str) -> list[int]: ...

    def token_logprobs(self, batch: list[list[int]]) -> list[np.ndarray]: ...


def is_megatron_checkpoint(path: str | Path) -> bool:
    """A megatron-core checkpoint dir: has a known marker file, or has no HF `config.json` but a
    `latest*` file (megatron's tracker file names vary across versions)."""
    p = Path(path)
    if not p.is_dir():
        return False
    if any((p / m).is_file() for m in MEGATRON_MARKERS):
        return True
    if (p / "config.json").is_file():
        return False
    return any(child.name.startswith("latest") for child in p.iterdir())


def load_backend(path: str | Path, **kw) -> Backend:
    """HFBackend or MegatronBackend for a model directory."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: model directory not found")
    if is_megatron_checkpoint(p):
        return MegatronBackend(p)
    if not (p / "config.json").is_file():
        raise ModelError(f"{p}: neither a Hugging Face model dir (config.json) nor a megatron checkpoint "
                         f"({' / '.join(MEGATRON_MARKERS)})")
    return HFBackend(p, **kw)


class MegatronBackend:
    """Adapter over `babelmill.pretrain.inference.MegatronLM` (or any object with its interface:
    `.tokenizer` a tokenizers.Tokenizer, `.eos_id`, `.max_len`, `.token_logprobs(batch)`)."""

    def __init__(self, ckpt_dir: str | Path | None = None, lm=None):
        if lm is None:
            from babelmill.pretrain.inference import MegatronLM  # lazy: megatron is heavy and optional

            lm = MegatronLM(str(ckpt_dir))
        self.lm = lm
        self.name = str(ckpt_dir) if ckpt_dir is not None else type(lm).__name__
        self.eos_id = lm.eos_id
        # MegatronLM refuses sequences longer than its window; the scorer sends up to max_len + 1
        # tokens (the last one only a target), so announce one less
        self.max_len = int(lm.max_len) - 1

    def encode(self, text: str) -> list[int]:
        return list(self.lm.tokenizer.encode(text, add_special_tokens=False).ids)

    def token_logprobs(self, batch: list[list[int]]) -> list[np.ndarray]:
        return [np.asarray(x, dtype=np.float64) for x in self.lm.token_logprobs(batch)]


class HFBackend:
    """A local transformers causal LM (AutoModelForCausalLM + AutoTokenizer, local_files_only), on CPU
    by default, float32, eval mode, no gradients."""

    def __init__(self, path: str | Path, device: str = "cpu", dtype: str = "float32"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.name = str(path)
        try:
            self.tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=getattr(torch, dtype))
        except (OSError, ValueError) as e:  # transformers' errors for missing / unreadable model files
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ModelError(f"{path}: cannot load the Hugging Face model: {first}") from e
        self.model = model.to(device).eval()
        self.device = device
        cfg = self.model.config
        self.eos_id = self.tok.eos_token_id
        self.max_len = int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
                           or min(self.tok.model_max_length, 2048))
        self._pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else (self.eos_id or 0)

    def encode(self, text: str) -> list[int]:
        # the tokenizer's own default for special tokens, as lm-eval 0.4 does for `hf` models (a
        # Llama tokenizer prepends BOS to the context and to context + option alike, so the
        # option's tokens are unaffected; GPT-2's adds nothing)
        return list(self.tok(text)["input_ids"])

    # -- the generic interface -------------------------------------------------------------
    def token_logprobs(self, batch: list[list[int]]) -> list[np.ndarray]:
        """The model sees each sequence without its last token (only a target), so a sequence of
        max_len + 1 tokens fits the window, as in lm-eval."""
        torch = self.torch
        if not batch:
            return []
        width = max(len(s) for s in batch) - 1
        if width < 1:
            return [np.zeros(0) for _ in batch]
        ids = torch.full((len(batch), width), self._pad, dtype=torch.long)
        tgt = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, s in enumerate(batch):
            if len(s) > 1:
                ids[i, : len(s) - 1] = torch.tensor(s[:-1], dtype=torch.long)
                tgt[i, : len(s) - 1] = torch.tensor(s[1:], dtype=torch.long)
                mask[i, : len(s) - 1] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits.float()
            lp = torch.log_softmax(logits, dim=-1).gather(-1, tgt[..., None].to(self.device))[..., 0]
        lp = lp.double().cpu().numpy()
        return [lp[i, : max(0, len(s) - 1)].copy() for i, s in enumerate(batch)]

    # -- the fast path: each item's context runs once, its options reuse the KV cache ---------
    def score_items(self, requests: list[tuple[list[int], list[list[int]]]]) -> list[list[float]]:
        """Summed log p of each continuation given its item's context, for a batch of items.

        Pass 1 runs the (right-padded) contexts once with a KV cache; pass 2 repeats each item's
        cache once per option and runs all options together, masking the context padding and
        giving explicit positions, and applies the LM head only where a log-probability is needed.
        """
        torch = self.torch
        if not requests:
            return []
        ctxs = [c for c, _ in requests]
        B, Lc = len(ctxs), max(len(c) for c in ctxs)
        ctx_ids = torch.full((B, Lc), self._pad, dtype=torch.long)
        ctx_mask = torch.zeros((B, Lc), dtype=torch.long)
        for i, c in enumerate(ctxs):
            ctx_ids[i, : len(c)] = torch.tensor(c)
            ctx_mask[i, : len(c)] = 1
        ctx_len = torch.tensor([len(c) for c in ctxs])
        rows = [(i, cont) for i, (_, conts) in enumerate(requests) for cont in conts]
        item_of = torch.tensor([i for i, _ in rows])
        with torch.inference_mode():
            out = self.model.base_model(input_ids=ctx_ids, attention_mask=ctx_mask, use_cache=True)
            head = self.model.get_output_embeddings()
            last_h = out.last_hidden_state[torch.arange(B), ctx_len - 1]  # the LM head only where needed
            last = head(last_h).float().log_softmax(-1)  # (B, V)
            first_tok = torch.tensor([cont[0] for _, cont in rows])
            totals = last[item_of, first_tok].double()
            M = max(len(cont) for _, cont in rows) - 1
            if M > 0:
                cache = out.past_key_values
                cache.batch_select_indices(item_of)
                R = len(rows)
                inp = torch.full((R, M), self._pad, dtype=torch.long)
                tgt = torch.zeros((R, M), dtype=torch.long)
                m = torch.zeros((R, M), dtype=torch.bool)
                for r, (_, cont) in enumerate(rows):
                    k = len(cont) - 1
                    if k > 0:
                        inp[r, :k] = torch.tensor(cont[:-1])
                        tgt[r, :k] = torch.tensor(cont[1:])
                        m[r, :k] = True
                attn = torch.cat([ctx_mask[item_of], torch.ones((R, M), dtype=torch.long)], dim=1)
                # padding positions of short options may run past the model's window: clamp them
                # (they are never scored; real positions stay < max_len thanks to the scorer's truncation)
                pos = (ctx_len[item_of, None] + torch.arange(M)[None, :]).clamp(max=self.max_len - 1)
                body = self.model.base_model(input_ids=inp, attention_mask=attn, position_ids=pos,
                                             past_key_values=cache, use_cache=False).last_hidden_state
                hs = body[m]  # only the positions whose next token is scored
                lp = head(hs).float().log_softmax(-1)
                lp = lp.gather(-1, tgt[m][:, None])[:, 0].double()
                row_idx = torch.arange(R)[:, None].expand(R, M)[m]
                totals = totals.index_add(0, row_idx, lp)
        totals = totals.cpu().numpy()
        res, r = [], 0
        for _, conts in requests:
            res.append([float(x) for x in totals[r : r + len(conts)]])
            r += len(conts)
        return res
