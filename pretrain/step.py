"""One training or evaluation step, apart from the trainer: batches, forward step, loss, schedule.

The shape is Megatron's (megatron/training/training.py, pretrain_gpt.py): a
`forward_step(data_iterator, model)` that returns the model output and a loss function, handed
to the forward/backward function `get_forward_backward_func()` picks for the pipeline layout
(no pipelining, 1F1B, interleaved), which runs it once per micro-batch. The trainer owns the run
(state, schedule of evals and checkpoints, logging); this module owns what one step computes, so
a benchmark or a new loop reuses exactly the step training uses.

Micro-batches are a pure function of the global sample offset (`microbatches`): step k reads
global samples [k*G, (k+1)*G), data-parallel rank r its slices of each micro-batch. That is what
makes a resumed run reproduce an uninterrupted one, and what lets the loop prefetch the next
step's batches without changing data order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BATCH_KEYS = ("tokens", "labels", "loss_mask", "position_ids")


# ------------------------------------------------------------------ micro-batches

def _collate(samples: list[dict]) -> dict:
    return {k: torch.stack([torch.as_tensor(s[k]) for s in samples]) for k in BATCH_KEYS}


def microbatches(dataset, start: int, num_micro: int, mbs: int, dp_size: int, dp_rank: int,
                 device: torch.device) -> list[dict]:
    """This rank's micro-batches of the global batch that starts at sample `start`."""
    out = []
    n = len(dataset)
    for m in range(num_micro):
        base = start + m * mbs * dp_size + dp_rank * mbs
        batch = _collate([dataset[(base + i) % n] for i in range(mbs)])
        if device.type == "cuda":
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        out.append(batch)
    return out


def data_iterators(batches: list[dict], model: list):
    """What the forward/backward function takes: one iterator, or one per virtual-pipeline chunk
    (interleaved schedules pull each chunk's micro-batches from its own iterator)."""
    if len(model) == 1:
        return iter(batches)
    return [iter(batches) for _ in model]


# ------------------------------------------------------------------ forward step and loss

def loss_func(loss_mask: torch.Tensor, output_tensor: torch.Tensor):
    """Masked mean of the per-token losses of one micro-batch.

    Also returns the (sum, token count) pair under "lm loss", so that `reduce_loss` can weight
    every micro-batch and rank by its tokens instead of averaging means."""
    mask = loss_mask.float().reshape(-1)
    losses = output_tensor.float().reshape(-1)
    denom = mask.sum().clamp(min=1.0)
    loss = (losses * mask).sum() / denom
    return loss, {"lm loss": torch.stack([(losses * mask).sum().detach(), denom.detach()])}


def forward_step(data_iterator, model):
    """megatron-core forward step: per-token loss -> masked mean over the micro-batch."""
    batch = next(data_iterator)
    output = model(batch["tokens"], batch["position_ids"], None, labels=batch["labels"])

    def _loss(output_tensor):
        return loss_func(batch["loss_mask"], output_tensor)

    return output, _loss


def reduce_loss(losses: list[dict]) -> float:
    """Token-weighted mean loss over micro-batches and all data-parallel ranks / last stage."""
    acc = torch.zeros(2, dtype=torch.float64)
    for d in losses:
        acc += d["lm loss"].double().cpu()
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        from megatron.core import parallel_state

        if not parallel_state.is_pipeline_last_stage(ignore_virtual=True):
            acc.zero_()
        if parallel_state.get_tensor_model_parallel_rank() != 0:
            acc.zero_()
        t = acc.to(torch.cuda.current_device()) if torch.cuda.is_available() else acc
        torch.distributed.all_reduce(t)
        acc = t.cpu()
    return (acc[0] / acc[1].clamp(min=1)).item()


# ------------------------------------------------------------------ steps

@dataclass
class StepSchedule:
    """How a global batch is cut and run: the forward/backward function megatron picked for this
    pipeline layout, and the micro-batch geometry it needs."""

    forward_backward: object
    num_microbatches: int
    micro_batch_size: int
    seq_length: int

    @classmethod
    def for_model(cls, num_microbatches: int, micro_batch_size: int, seq_length: int) -> StepSchedule:
        from megatron.core.pipeline_parallel import get_forward_backward_func

        return cls(get_forward_backward_func(), num_microbatches, micro_batch_size, seq_length)

    def run(self, model: list, batches: list[dict], forward_only: bool) -> list[dict]:
        """Forward (and backward unless `forward_only`) over every micro-batch; their loss dicts."""
        return self.forward_backward(
            forward_step_func=forward_step, data_iterator=data_iterators(batches, model), model=model,
            num_microbatches=self.num_microbatches, seq_length=self.seq_length,
            micro_batch_size=self.micro_batch_size, forward_only=forward_only)


def train_step(schedule: StepSchedule, batches: list[dict], model: list, optimizer,
               scheduler) -> tuple[float, float | None]:
    """One optimizer step on `batches` (this rank's micro-batches of one global batch).

    The LR scheduler steps only when the optimizer did (a skipped fp16 step leaves it). Returns
    the token-weighted loss over the global batch and the gradient norm."""
    for m in model:
        m.zero_grad_buffer()
    optimizer.zero_grad()
    losses = schedule.run(model, batches, forward_only=False)
    ok, grad_norm, _ = optimizer.step()
    if ok:
        scheduler.step(increment=1)
    return reduce_loss(losses), grad_norm


@torch.no_grad()
def eval_losses(schedule: StepSchedule, batches: list[dict], model: list) -> list[dict]:
    """Forward-only losses of one global batch, to be summed over batches with `reduce_loss`."""
    return schedule.run(model, batches, forward_only=True)
