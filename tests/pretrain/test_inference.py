"""MegatronLM scores sequences from a checkpoint dir, in a process without torch.distributed."""

from __future__ import annotations

import numpy as np


def test_token_logprobs_shapes_values_and_batching(straight_run):
    from babelmill.pretrain.inference import MegatronLM

    lm = MegatronLM(str(straight_run))
    assert lm.ckpt.name == "iter_0000012"
    assert lm.max_len == 64 and lm.eos_id == lm.tokenizer.token_to_id("</s>")
    a = lm.tokenizer.encode("the river water report committee").ids + [lm.eos_id]
    b = lm.tokenizer.encode("河 水 报告").ids
    out = lm.token_logprobs([a, b, [a[0]]])
    assert [o.shape for o in out] == [(len(a) - 1,), (len(b) - 1,), (0,)]
    assert all(o.dtype == np.float64 for o in out)
    assert all((o <= 0).all() and np.isfinite(o).all() for o in out)
    # same inputs -> same outputs; padding/batching changes nothing beyond fp32 rounding
    again = lm.token_logprobs([a, b, [a[0]]])
    assert all(np.array_equal(x, y) for x, y in zip(out, again, strict=True))
    alone = lm.token_logprobs([b])[0]
    np.testing.assert_allclose(alone, out[1], rtol=0, atol=1e-5)
    # a trained model prefers real text over a shuffled version of it
    rng = np.random.default_rng(0)
    shuffled = [a[0], *rng.permutation(a[1:-1]).tolist(), a[-1]]
    assert lm.token_logprobs([a])[0].sum() > lm.token_logprobs([shuffled])[0].sum()
