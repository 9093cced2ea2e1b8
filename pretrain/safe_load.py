"""Load megatron dist_checkpointing checkpoints without letting the checkpoint run code.

The threat: a checkpoint directory is data somebody else may have written (a model shared for
an audit, a --save directory on a shared file system). megatron-core's `dist_checkpointing.load`
reads, per checkpoint:

    metadata.json        json -> CheckpointingConfig (names the load strategies)   - data only
    common.pt            torch.load without weights_only (so torch's default applies)
    .metadata            torch.distributed.checkpoint's FileSystemReader: plain `pickle.load`
    __<r>_<n>.distcp     tensors: torch.load(weights_only=True); "bytes" items (ShardedObjects,
                         e.g. `_extra_state`): DefaultLoadPlanner.load_bytes, which is
                         torch.load(weights_only=False)

A plain pickle runs whatever callable the file names (`os.system`, `builtins.exec`, ...), so a
crafted `.metadata`, or a tensor entry re-declared as a bytes item in it, executes code the
moment the checkpoint is opened - and the load then carries on normally. The sha256 manifest
does not help: whoever crafts the checkpoint writes a matching manifest.

So every read goes through a loader that cannot execute code:

- `.metadata`: `MetadataUnpickler`, a `pickle.Unpickler` whose `find_class` resolves only the
  classes torch.distributed.checkpoint's `Metadata` is made of (its dataclasses, torch.Size,
  dtypes, layouts, two enums, OrderedDict); anything else is refused before it is imported.
  The result is then checked (a `Metadata`, file names inside the checkpoint directory).
- bytes items: `torch.load(weights_only=True)`, torch's restricted unpickler.
- common.pt: `torch.load(weights_only=True)`, explicitly (not torch's default, which
  TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD can turn off).
- `_extra_state` values: must be empty. Transformer Engine layers `pickle.loads` a non-empty
  extra state in `set_extra_state` (it holds FP8 scaling state, and babelmill never trains
  in FP8), so a non-empty one is refused before it reaches the model.

megatron offers no hook for the metadata reader: its torch_dist strategy builds the reader with
the module-level `_get_filesystem_reader`. `SafeTorchDistLoadStrategy` swaps that function for
the duration of its own calls and records that the safe reader was used; if a megatron upgrade
renames the function, loading stops (fail closed) instead of falling back to pickle. As a second
line, `safe_load` also parses `.metadata` with the restricted unpickler before megatron opens it.

A refused checkpoint raises `UnsafeCheckpointError` (a `CheckpointError`): callers stop with it;
it is never "corrupt, try the previous checkpoint".
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
from pathlib import Path

import torch

from babelmill.pretrain.checkpoint import CheckpointError

log = logging.getLogger(__name__)

METADATA_FILE = ".metadata"
COMMON_FILE = "common.pt"


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint holds data that could run code when loaded; nothing was executed."""


class CheckpointLoadError(CheckpointError):
    """The checkpoint could not be loaded (unreadable shard, mismatched model, ...)."""


# ---------------------------------------------------------------- .metadata: a restricted unpickler

def _dtype_names() -> set[str]:
    return {n for n in dir(torch) if isinstance(getattr(torch, n, None), torch.dtype)}


# (module, name) pairs a torch.distributed.checkpoint Metadata pickle refers to (torch 2.x), and
# megatron's empty placeholder classes for older checkpoints. Each is a dataclass/enum/plain
# constructor: building one from pickle data cannot reach the file system or run code.
_ALLOWED = {
    "torch.distributed.checkpoint.metadata": {
        "Metadata", "TensorStorageMetadata", "BytesStorageMetadata", "ChunkStorageMetadata",
        "TensorProperties", "MetadataIndex", "StorageMeta", "_MEM_FORMAT_ENCODING"},
    "torch.distributed.checkpoint.filesystem": {"_StorageInfo"},
    "torch.distributed.checkpoint.planner": {
        "SavePlan", "WriteItem", "WriteItemType", "TensorWriteData", "LoadItemType"},
    "torch.serialization": {"_get_layout"},
    "torch": {"Size", *_dtype_names()},
    "collections": {"OrderedDict"},
    "builtins": {"set", "frozenset"},
    "megatron.core.dist_checkpointing.strategies.torch": {"MCoreMetadata", "MCoreSavePlan"},
}


class MetadataUnpickler(pickle.Unpickler):
    """Unpickles torch.distributed.checkpoint metadata and nothing else."""

    def __init__(self, file, where: str):
        super().__init__(file)
        self.where = where

    def find_class(self, module: str, name: str):
        if name in _ALLOWED.get(module, ()):
            return super().find_class(module, name)
        raise UnsafeCheckpointError(
            f"unsafe checkpoint: {self.where} refers to {module}.{name}, which is not part of "
            "torch.distributed.checkpoint metadata (loading it could run code); refused, nothing "
            "was loaded")

    def persistent_load(self, pid):
        raise UnsafeCheckpointError(f"unsafe checkpoint: {self.where} uses persistent ids; refused")


def _check_metadata(md, where: str):
    from torch.distributed.checkpoint.metadata import Metadata

    if not isinstance(md, Metadata):
        raise UnsafeCheckpointError(f"unsafe checkpoint: {where} holds a {type(md).__name__}, "
                                    "not torch.distributed.checkpoint Metadata; refused")
    for info in (md.storage_data or {}).values():
        rel = getattr(info, "relative_path", None)
        if not isinstance(rel, str) or rel in ("", ".", "..") or os.path.basename(rel) != rel \
                or "\\" in rel:
            raise UnsafeCheckpointError(f"unsafe checkpoint: {where} points at data file {rel!r} "
                                        "outside the checkpoint directory; refused")
    return md


def read_metadata_file(path: str | Path):
    """The `Metadata` in a `.metadata` file, read with `MetadataUnpickler` and checked."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointLoadError(f"{path} is missing") from None
    return loads_metadata(data, str(path))


def loads_metadata(data: bytes, where: str):
    try:
        md = MetadataUnpickler(io.BytesIO(data), where).load()
    except UnsafeCheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - a truncated/garbled pickle: a corrupt checkpoint
        raise CheckpointLoadError(f"{where} is unreadable ({type(e).__name__}: {e})") from None
    return _check_metadata(md, where)


# ---------------------------------------------------------------- torch.load, weights only

def torch_load_weights_only(f, where: str, **kw):
    """torch.load(weights_only=True); a pickle it refuses is reported as unsafe.

    The files reach here only after their manifest (size/sha256) matched, so a pickle torch's
    restricted unpickler rejects is one that asks for something other than plain data."""
    try:
        return torch.load(f, weights_only=True, **kw)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsafeCheckpointError(f"unsafe checkpoint: {where} is not a plain-data torch file "
                                    f"({first[:200]}); refused, nothing was executed") from None


def check_extra_state(state: dict, where: str) -> None:
    """Refuse non-empty `_extra_state` values (Transformer Engine unpickles them, see above)."""
    def walk(node, key=""):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif key.rsplit(".", 1)[-1].startswith("_extra_state"):
            empty = node is None or (isinstance(node, torch.Tensor) and node.numel() == 0) or \
                (isinstance(node, io.BytesIO) and not node.getbuffer().nbytes)
            if not empty:
                raise UnsafeCheckpointError(
                    f"unsafe checkpoint: {where} has a non-empty {key} (Transformer Engine would "
                    "unpickle it; babelmill checkpoints never carry one); refused")
    walk(state)


# ---------------------------------------------------------------- megatron strategies

def _reader_class():
    from megatron.core.dist_checkpointing.strategies.cached_metadata_filesystem_reader import (
        CachedMetadataFileSystemReader,
    )
    from torch.distributed.checkpoint._traverse import set_element
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner

    class SafeFileSystemReader(CachedMetadataFileSystemReader):
        """FileSystemReader that reads `.metadata` with MetadataUnpickler and bytes items with
        torch.load(weights_only=True)."""

        used = 0  # how many readers were created by megatron's load path (tests check it)

        def __init__(self, path):
            super().__init__(path)
            type(self).used += 1

        def read_metadata(self, *args, **kwargs):
            if self._cached_metadata is None:
                rank = kwargs.get("rank")
                name = METADATA_FILE if rank is None else f"__{rank}{METADATA_FILE}"
                path = os.path.join(str(self.path), name)
                if not os.path.isfile(path):
                    raise FileNotFoundError(path)  # torch's rank-local fallback expects this
                md = read_metadata_file(path)
                from torch.distributed.checkpoint.metadata import StorageMeta

                if getattr(md, "storage_meta", None) is None:
                    md.storage_meta = StorageMeta()
                md.storage_meta.load_id = self.load_id
                self._cached_metadata = md
            return self._cached_metadata

        def read_data(self, plan, planner):
            if not isinstance(planner, DefaultLoadPlanner) or \
                    type(planner).load_bytes is not DefaultLoadPlanner.load_bytes:
                raise UnsafeCheckpointError(
                    f"{self.path}: unexpected load planner {type(planner).__name__}; babelmill "
                    "cannot vouch for how it unpickles; refused")
            root = str(self.path)

            def load_bytes(read_item, value: io.BytesIO) -> None:
                # DefaultLoadPlanner.load_bytes with weights_only=True instead of False
                obj = torch_load_weights_only(value, f"{root} (item {read_item.dest_index.fqn})")
                if planner.flatten_state_dict:
                    set_element(planner.original_state_dict, planner.mappings[read_item.dest_index.fqn],
                                obj)
                else:
                    planner.state_dict[read_item.dest_index.fqn] = obj

            planner.load_bytes = load_bytes
            try:
                return super().read_data(plan, planner)
            finally:
                del planner.load_bytes

    return SafeFileSystemReader


_READER = None


def safe_reader_class():
    global _READER
    if _READER is None:
        _READER = _reader_class()
    return _READER


@contextlib.contextmanager
def _safe_readers():
    """megatron's torch_dist strategy builds its readers with this module-level function."""
    from megatron.core.dist_checkpointing.strategies import torch as mstrat

    original = getattr(mstrat, "_get_filesystem_reader", None)
    if original is None:
        raise UnsafeCheckpointError(
            "this megatron-core has no strategies.torch._get_filesystem_reader: babelmill cannot "
            "load its checkpoints with a safe metadata reader; refusing to load")
    reader = safe_reader_class()

    def get_reader(checkpoint_dir, cache_metadata: bool = False):
        return reader(checkpoint_dir)

    mstrat._get_filesystem_reader = get_reader
    try:
        yield reader
    finally:
        mstrat._get_filesystem_reader = original


def strategies():
    """(sharded, common) load strategies for `dist_checkpointing.load` that never run pickled code."""
    from megatron.core.dist_checkpointing.core import CheckpointingException
    from megatron.core.dist_checkpointing.strategies.common import TorchCommonLoadStrategy
    from megatron.core.dist_checkpointing.strategies.torch import TorchDistLoadShardedStrategy

    class SafeTorchDistLoadStrategy(TorchDistLoadShardedStrategy):
        def _guarded(self, fn, *args):
            with _safe_readers() as reader:
                before = reader.used
                out = fn(*args)
                if reader.used == before:
                    raise UnsafeCheckpointError(
                        "megatron-core loaded the checkpoint without babelmill's safe reader "
                        "(its load path changed); refusing the result")
            return out

        def load(self, sharded_state_dict, checkpoint_dir):
            return self._guarded(super().load, sharded_state_dict, checkpoint_dir)

        def load_tensors_metadata(self, checkpoint_dir, metadata=None):
            if metadata is None:
                metadata = safe_reader_class()(checkpoint_dir).read_metadata()
            return super().load_tensors_metadata(checkpoint_dir, metadata)

        def load_sharded_metadata(self, checkpoint_dir):
            return self._guarded(super().load_sharded_metadata, checkpoint_dir)

        def check_backend_compatibility(self, loaded_backend):
            if loaded_backend != "torch_dist":
                raise CheckpointingException(f"sharded backend {loaded_backend!r}, expected torch_dist")

    class SafeTorchCommonLoadStrategy(TorchCommonLoadStrategy):
        def load_common(self, checkpoint_dir):
            path = os.path.join(str(checkpoint_dir), COMMON_FILE)
            if not os.path.isfile(path):
                raise CheckpointingException(f"Common file {path} does not exist")
            return torch_load_weights_only(path, path, map_location="cpu")

        def load_sharded_objects(self, sharded_objects_state_dict, checkpoint_dir):
            raise CheckpointingException("sharded objects are read by the torch_dist strategy")

        def check_backend_compatibility(self, loaded_backend):
            if loaded_backend != "torch":
                raise CheckpointingException(f"common backend {loaded_backend!r}, expected torch")

    return SafeTorchDistLoadStrategy(), SafeTorchCommonLoadStrategy()


# ---------------------------------------------------------------- the one entry point

def _failures(exc: BaseException) -> list[BaseException]:
    """The per-rank exceptions inside a torch CheckpointException (or just `exc`)."""
    failures = getattr(exc, "failures", None)
    if isinstance(failures, dict):
        return [f[0] if isinstance(f, tuple) else f for f in failures.values()]
    return [exc]


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"[:300]


def safe_load(sharded_state_dict: dict, ckpt_dir: str | Path) -> dict:
    """`dist_checkpointing.load` through the safe strategies; the checked state dict.

    Raises UnsafeCheckpointError (refused, stop) or CheckpointLoadError (could not be loaded:
    a caller may try an older checkpoint). torch's CheckpointException, a BaseException, is
    turned into one of the two, so callers need not catch BaseException."""
    from megatron.core import dist_checkpointing
    from torch.distributed.checkpoint.api import CheckpointException

    ckpt_dir = Path(ckpt_dir)
    # second line of defence: the metadata must parse with the restricted unpickler before
    # megatron opens the directory at all
    read_metadata_file(ckpt_dir / METADATA_FILE)
    sharded, common = strategies()
    try:
        state = dist_checkpointing.load(sharded_state_dict, str(ckpt_dir), sharded_strategy=sharded,
                                        common_strategy=common)
    except (Exception, CheckpointException) as e:  # noqa: BLE001 - sorted into unsafe / unloadable
        inner = _failures(e)
        unsafe = next((x for x in inner if isinstance(x, UnsafeCheckpointError)), None)
        if unsafe is not None:
            raise UnsafeCheckpointError(str(unsafe)) from None
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointLoadError(f"checkpoint {ckpt_dir} could not be loaded ("
                                  + "; ".join(_one_line(x) for x in inner) + ")") from None
    check_extra_state(state, str(ckpt_dir))
    return state
