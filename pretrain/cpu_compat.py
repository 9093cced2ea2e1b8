"""Everything megatron-core needs to run on a CPU-only host, in one place.

megatron-core is written for CUDA: a few of its modules create tensors with a literal
``device="cuda"`` or ``torch.cuda.current_device()``, call ``torch.cuda.synchronize()``, or
assert that gradients are ``torch.cuda.FloatTensor``. None of that matters for the maths, so on a
host without CUDA (tests, the demo, laptops) we:

1. make ``torch.cuda.current_device()`` return the CPU device and ``torch.cuda.synchronize()`` a
   no-op (the dist_checkpointing async writer and the p2p/grad-buffer code call them);
2. give the handful of megatron modules that hard-code ``device="cuda"`` a thin ``torch`` proxy
   whose tensor factories map a CUDA device to the CPU (their module global ``torch`` only);
3. replace the fp32 grad-norm / clip helpers used by the optimizer with plain torch versions
   (same L2 maths and the same all-reduce over the grad-stats group);
4. provide :class:`SDPAttention`, a core-attention module on ``torch.nn.functional.
   scaled_dot_product_attention`` (the local ``DotProductAttention`` allocates a CUDA buffer).

:func:`apply` is idempotent and does nothing when CUDA is available, so the GPU path runs the
unmodified megatron-core code. Nothing here changes numerics of the CPU path beyond the choice of
attention kernel.
"""

from __future__ import annotations

import importlib
import logging
import math
import types
import warnings

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

# megatron modules with literal CUDA devices on the code paths we use (fp32, no TE, no apex).
_CUDA_LITERAL_MODULES = (
    "megatron.core.pipeline_parallel.schedules",
    "megatron.core.pipeline_parallel.p2p_communication",
    "megatron.core.optimizer.optimizer",
    "megatron.core.optimizer.clip_grads",
    "megatron.core.distributed.param_and_grad_buffer",
    "megatron.core.distributed.distributed_data_parallel",
    "megatron.core.dist_checkpointing.strategies.state_dict_saver",
    "megatron.core.dist_checkpointing.strategies.async_utils",
    "megatron.core.dist_checkpointing.exchange_utils",
)

_applied = False


def needed() -> bool:
    return not torch.cuda.is_available()


def quiet_megatron_warnings() -> None:
    """Transformer Engine / Apex are GPU-only; their absence is expected on CPU."""
    for pat in (".*Transformer Engine.*", ".*[Aa]pex.*", ".*transformer_engine.*", ".*TE .*",
                ".*nvidia.*", ".*multi_tensor_applier.*", ".*fused.*", ".*torch.cuda.*"):
        warnings.filterwarnings("ignore", message=pat)
    for name in ("megatron", "megatron.core"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _to_cpu(device):
    if device is None:
        return None
    if isinstance(device, int):
        return torch.device("cpu")
    d = torch.device(device)
    return torch.device("cpu") if d.type == "cuda" else d


def _factory(fn):
    def wrapped(*args, **kwargs):
        if "device" in kwargs:
            kwargs["device"] = _to_cpu(kwargs["device"])
        return fn(*args, **kwargs)

    wrapped.__name__ = getattr(fn, "__name__", "factory")
    return wrapped


class _CpuTorch(types.ModuleType):
    """Stands in for ``torch`` inside a megatron module: same attributes, CPU factories."""

    _FACTORIES = ("zeros", "ones", "empty", "full", "tensor", "arange", "zeros_like",
                  "empty_like", "ones_like", "full_like", "randn", "rand")

    def __init__(self):
        super().__init__("torch")
        for name in self._FACTORIES:
            setattr(self, name, _factory(getattr(torch, name)))

    def __getattr__(self, name):  # only called for names not set in __init__
        return getattr(torch, name)


def _grad_norm_fp32(grads_for_norm, norm_type=2, grad_stats_parallel_group=None, **_):
    """CPU twin of megatron's get_grad_norm_fp32 (L2 or inf norm, reduced over the group)."""
    if isinstance(grads_for_norm, torch.Tensor):
        grads_for_norm = [grads_for_norm]
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = torch.zeros(1)
        for g in grads_for_norm:
            total = torch.maximum(total, g.detach().abs().max().float().reshape(1))
        if torch.distributed.is_initialized():
            torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.MAX,
                                         group=grad_stats_parallel_group)
        return total.item()
    total = torch.zeros(1, dtype=torch.float64)
    for g in grads_for_norm:
        total += torch.linalg.vector_norm(g.detach().float(), norm_type).double() ** norm_type
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(total, group=grad_stats_parallel_group)
    return total.item() ** (1.0 / norm_type)


@torch.no_grad()
def _clip_by_total_norm_fp32(parameters, max_norm, total_norm, use_decoupled_grad=False):
    """CPU twin of megatron's clip_grad_by_total_norm_fp32."""
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    coeff = max_norm / (total_norm + 1.0e-6)
    if coeff >= 1.0:
        return
    for p in parameters:
        g = getattr(p, "decoupled_grad", None) if use_decoupled_grad else p.grad
        if g is not None:
            g.mul_(coeff)


def _fp32_optimizer_init(self, optimizer, config, init_state_fn):
    from megatron.core.optimizer.optimizer import MegatronOptimizer

    MegatronOptimizer.__init__(self, optimizer, config, init_state_fn)
    self._scale = torch.tensor([1.0], dtype=torch.float)
    self.is_stub_optimizer = optimizer is None


#: what apply() replaces: (module, attribute path); each must exist in the installed megatron-core
PATCHED = (("megatron.core.optimizer.optimizer", "get_grad_norm_fp32"),
           ("megatron.core.optimizer.optimizer", "clip_grad_by_total_norm_fp32"),
           ("megatron.core.optimizer.optimizer", "FP32Optimizer.__init__"))
#: the megatron-core series these shims were written and tested against (requirements pin 0.16.x)
MEGATRON_SERIES = "0.16."


def check_megatron() -> None:
    """Fail loudly, before anything is patched, when the installed megatron-core lacks an
    attribute the shims replace or a module they proxy no longer has a module-level `torch`
    (a new megatron-core release moved it): silently patching nothing would let CUDA-only code
    run and fail later with an unrelated error."""
    import megatron.core

    version = getattr(megatron.core, "__version__", "?")
    missing = []
    for module, path in PATCHED:
        obj = importlib.import_module(module)
        for part in path.split("."):
            # a method must be the class's own: an inherited __init__ is not the one patched
            here = vars(obj) if isinstance(obj, type) else None
            obj = here.get(part) if here is not None else getattr(obj, part, None)
            if obj is None:
                missing.append(f"{module}.{path}")
                break
    for name in _CUDA_LITERAL_MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional megatron module (see apply)
            continue
        if not hasattr(mod, "torch"):
            missing.append(f"{name}.torch")
    if missing:
        raise RuntimeError(
            f"pretrain/cpu_compat.py: megatron-core {version} lacks what the CPU shims replace: "
            f"{', '.join(missing)}; they were written for megatron-core {MEGATRON_SERIES}x (requirements.txt): "
            "install that version, or update the shims")
    if not str(version).startswith(MEGATRON_SERIES):
        log.warning("cpu_compat: megatron-core %s, shims written for %sx: check the CPU path", version,
                    MEGATRON_SERIES)


def apply() -> bool:
    """Install the CPU shims if CUDA is unavailable. Returns True when the shims are active."""
    global _applied
    if not needed():
        return False
    if _applied:
        return True
    quiet_megatron_warnings()
    check_megatron()
    torch.cuda.current_device = lambda: torch.device("cpu")
    torch.cuda.synchronize = lambda *a, **k: None
    proxy = _CpuTorch()
    for name in _CUDA_LITERAL_MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - optional megatron module
            log.debug("cpu_compat: cannot import %s: %s", name, e)
            continue
        mod.torch = proxy
    from megatron.core.optimizer import optimizer as mopt

    mopt.get_grad_norm_fp32 = _grad_norm_fp32
    mopt.clip_grad_by_total_norm_fp32 = _clip_by_total_norm_fp32
    mopt.FP32Optimizer.__init__ = _fp32_optimizer_init
    _applied = True
    return True


class SDPAttention(torch.nn.Module):
    """Core attention on torch SDPA, with the constructor/forward of megatron's DotProductAttention.

    Inputs are megatron's ``[seq, batch, heads, head_dim]``; key/value may have fewer heads (GQA).
    Causal masking is done by SDPA (``is_causal``), so the attention mask must be the standard
    causal one (GPTDataset with ``reset_attention_mask=False``), which is what we train with.
    """

    def __init__(self, config, layer_number, attn_mask_type, attention_type, attention_dropout=None,
                 softmax_scale=None, cp_comm_type=None, pg_collection=None, **_):
        super().__init__()
        self.config = config
        self.dropout = config.attention_dropout if attention_dropout is None else attention_dropout
        head_dim = config.kv_channels
        self.scale = softmax_scale if softmax_scale is not None else 1.0 / math.sqrt(head_dim)

    def forward(self, query, key, value, attention_mask=None, attn_mask_type=None,
                attention_bias=None, packed_seq_params=None, **_):
        assert packed_seq_params is None and attention_bias is None, "not supported on CPU"
        q = query.permute(1, 2, 0, 3)
        k = key.permute(1, 2, 0, 3)
        v = value.permute(1, 2, 0, 3)
        if q.size(1) != k.size(1):
            rep = q.size(1) // k.size(1)
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        out = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=self.scale,
            dropout_p=self.dropout if self.training else 0.0)
        s, b = query.size(0), query.size(1)
        return out.permute(2, 0, 1, 3).reshape(s, b, -1)

    def sharded_state_dict(self, prefix="", sharded_offsets=(), metadata=None):
        return {}
