import numpy as np
import pytest

from babelmill.contamination.backends import MegatronBackend, is_megatron_checkpoint, load_backend
from babelmill.contamination.items import MCItem
from babelmill.contamination.scoring import context_of, score_items, summarize


class CharBackend:
    """Token = character code; log p(t | prefix) depends on the previous token only."""

    eos_id = 0
    max_len = 10_000

    def __init__(self):
        self.calls = 0

    def encode(self, text):
        return [ord(c) for c in text]

    def lp(self, prev, tok):
        return -1.0 - ((prev * 31 + tok) % 13) / 4.0

    def token_logprobs(self, batch):
        self.calls += 1
        return [np.array([self.lp(a, b) for a, b in zip(s[:-1], s[1:], strict=True)]) for s in batch]


def _expected(item, be):
    ctx = context_of(item)
    lls = []
    for c in item.choices:
        seq = be.encode(ctx + " " + c)
        n = len(" " + c)
        lls.append(sum(be.lp(a, b) for a, b in zip(seq[-n - 1 : -1], seq[-n:], strict=True)))
    return lls


ITEMS = [MCItem(str(i), "en", f"question number {i}?", ("a", "bb bb", "ccc", f"d{i}" * (i % 3 + 1)), i % 4)
         for i in range(11)]


def test_loglik_acc_and_acc_norm_match_a_direct_computation():
    be = CharBackend()
    scores = score_items(be, ITEMS, batch_size=5)
    for it, s in zip(ITEMS, scores, strict=True):
        exp = _expected(it, be)
        assert np.allclose(s.loglik, exp)
        assert s.pred == int(np.argmax(exp))
        assert s.pred_norm == int(np.argmax(np.array(exp) / np.array([len(c) for c in it.choices])))
    s = summarize(scores)
    assert s["n"] == 11 and s["acc"] == np.mean([x.pred == it.gold for x, it in zip(scores, ITEMS, strict=True)])


def test_independent_of_batch_size():
    a = score_items(CharBackend(), ITEMS, batch_size=1)
    b = score_items(CharBackend(), ITEMS, batch_size=64)
    assert [x.loglik for x in a] == [x.loglik for x in b]


def test_left_truncation_keeps_continuation():
    be = CharBackend()
    be.max_len = 12
    s = score_items(be, ITEMS[:2])
    assert all(len(x.loglik) == 4 and np.isfinite(x.loglik).all() for x in s)


class FakeMegatronLM:
    """The interface of babelmill.pretrain.inference.MegatronLM, over a char tokenizer."""

    def __init__(self):
        from tokenizers import Tokenizer, models, pre_tokenizers

        vocab = {chr(i): i - 31 for i in range(32, 127)} | {"<unk>": 0}
        self.tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        self.tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
        self.eos_id, self.max_len = 0, 512
        self.inner = CharBackend()

    def token_logprobs(self, batch):
        if any(len(s) > self.max_len for s in batch):  # as the real one does
            raise ValueError("sequence longer than the model's context")
        return self.inner.token_logprobs(batch)


def test_megatron_adapter_and_detection(tmp_path):
    be = MegatronBackend(lm=FakeMegatronLM())
    assert be.encode("ab") == [ord("a") - 31, ord("b") - 31]
    s = score_items(be, ITEMS[:3])
    assert len(s) == 3 and all(isinstance(v, float) for v in s[0].loglik)
    be.lm.max_len = 16
    be.max_len = 15
    s = score_items(be, ITEMS[:3])  # long prompts are left-truncated to fit the window
    assert all(np.isfinite(x.loglik).all() for x in s)

    (tmp_path / "m1").mkdir()
    (tmp_path / "m1" / "latest_checkpointed_iteration.txt").write_text("100")
    (tmp_path / "m2").mkdir()
    (tmp_path / "m2" / "latest").write_text("iter_0000010")
    (tmp_path / "m3").mkdir()
    (tmp_path / "m3" / "trainer_state.json").write_text("{}")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    (tmp_path / "hf" / "latest_notes.txt").write_text("")
    assert all(is_megatron_checkpoint(tmp_path / m) for m in ("m1", "m2", "m3"))
    assert not is_megatron_checkpoint(tmp_path / "hf") and not is_megatron_checkpoint(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        load_backend(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither"):
        load_backend(tmp_path / "empty")


def test_hf_prefix_reuse_matches_full_forward(tiny_models, synth):
    """The KV-cache fast path gives the same log-likelihoods as scoring context+option in full."""
    be = load_backend(tiny_models["clean"])

    class Plain:  # the generic path over the same model
        eos_id, max_len = be.eos_id, be.max_len
        encode = staticmethod(be.encode)
        token_logprobs = staticmethod(be.token_logprobs)

    items = synth["items"][:24] + [MCItem("long", "en", "x " * 40, ("a", "a much longer option here", "b"), 1),
                                   MCItem("window", "en", "y " * 600, ("c " * 30, "d"), 0)]  # > n_positions
    fast = score_items(be, items, batch_size=16)
    slow = score_items(Plain(), items, batch_size=7)
    for f, s in zip(fast, slow, strict=True):
        assert np.allclose(f.loglik, s.loglik, atol=1e-4), f.id
