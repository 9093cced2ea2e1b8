"""Score token sequences with a trained checkpoint (used by the contamination audit).

`MegatronLM(ckpt_dir)` takes a training save dir (it picks the newest complete, verified
checkpoint, as resume does) or one `iter_*` checkpoint dir. Checkpoints are self-describing:
each holds trainer_state.json (the full run config, vocab size) and a copy of tokenizer.json.
The weights are read through `safe_load`, which refuses checkpoints that would run code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from babelmill.pretrain import checkpoint as ck
from babelmill.pretrain import cpu_compat


class MegatronLM:
    """A GPT checkpoint in eval mode: `.token_logprobs(batch)` gives log p(t_i | t_<i) per sequence."""

    def __init__(self, ckpt_dir: str, batch_size: int = 8, report=None):
        """`report`: where the checkpoints passed over are reported (default: the checkpoint
        module's logger, as warnings; see checkpoint.say)."""
        from babelmill.pretrain.config import config_from_dict
        from babelmill.pretrain.data.tokenizer import eos_token_id, load_tokenizer
        from babelmill.pretrain.distributed import init_model_parallel, init_process_group
        from babelmill.pretrain.model import build_gpt
        from babelmill.pretrain.safe_load import safe_load

        cpu_compat.quiet_megatron_warnings()
        path = Path(ckpt_dir)
        if (path / ck.MANIFEST).is_file():
            reason = ck.verify(path)
            if reason:
                raise ck.CheckpointError(f"checkpoint {path} is corrupt or incomplete: {reason}")
            ckpt = path
        else:
            ckpt = ck.find_loadable(path, report=report)
            if ckpt is None:
                raise ck.CheckpointError(f"{path}: no complete checkpoint found")
        self.ckpt = ckpt
        state = ck.load_trainer_state(ckpt)
        self.config = config_from_dict(state["config"])
        self.iteration = state["iteration"]
        tok_path = ckpt / state.get("tokenizer", "tokenizer.json")
        if not tok_path.is_file():  # older layout: tokenizer next to the checkpoints
            tok_path = ckpt.parent / "tokenizer.json"
        self.tokenizer = load_tokenizer(tok_path)
        self.tokenizer_path = str(tok_path)
        self.eos_id = eos_token_id(self.tokenizer, tok_path)
        self.max_len = self.config.model.seq_length
        self.batch_size = batch_size

        self._dist = init_process_group()
        init_model_parallel(1, 1)
        self.device = self._dist.device
        chunks, _ = build_gpt(self.config.model, state["vocab_size"], None, "fp32", for_inference=True,
                              device=self.device)
        self.model = chunks[0]
        # never plain pickle: a checkpoint from elsewhere must not run code (see safe_load); an
        # unsafe or unloadable one raises a CheckpointError, never a fallback to another checkpoint
        loaded = safe_load({"model": self.model.sharded_state_dict()}, ckpt)
        self.model.load_state_dict(loaded["model"], strict=True)
        self.model.eval()

    @torch.no_grad()
    def token_logprobs(self, batch: list[list[int]]) -> list[np.ndarray]:
        """For each sequence t (len n >= 1): float64 array of log p(t[i] | t[:i]) for i = 1..n-1."""
        out: list[np.ndarray | None] = [None] * len(batch)
        for i, seq in enumerate(batch):
            if len(seq) > self.max_len:
                raise ValueError(f"sequence {i} has {len(seq)} tokens; the model's context is "
                                 f"{self.max_len} (truncate or window it)")
            if len(seq) <= 1:
                out[i] = np.zeros(0, dtype=np.float64)
        todo = sorted((i for i in range(len(batch)) if out[i] is None), key=lambda i: -len(batch[i]))
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start:start + self.batch_size]
            width = max(len(batch[i]) for i in idx)
            tokens = torch.full((len(idx), width), self.eos_id, dtype=torch.long)
            for r, i in enumerate(idx):  # right padding: causal attention never looks at it
                tokens[r, :len(batch[i])] = torch.as_tensor(batch[i], dtype=torch.long)
            tokens = tokens.to(self.device)
            pos = torch.arange(width, device=self.device).unsqueeze(0).expand(len(idx), -1)
            logits = self.model(tokens, pos, None)  # [b, s, vocab]
            logp = torch.log_softmax(logits.double(), dim=-1)
            nxt = logp[:, :-1].gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1).cpu().numpy()
            for r, i in enumerate(idx):
                out[i] = nxt[r, :len(batch[i]) - 1].astype(np.float64)
        return out  # type: ignore[return-value]

    def describe(self) -> str:
        return json.dumps({"checkpoint": str(self.ckpt), "iteration": self.iteration,
                           "max_len": self.max_len, "eos_id": self.eos_id})
