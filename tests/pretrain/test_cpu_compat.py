"""The CPU shims check the installed megatron-core before patching it (issue 18, point 6)."""

from __future__ import annotations

import importlib
import re

import pytest

from babelmill.pretrain import cpu_compat


def test_the_installed_megatron_core_has_everything_the_shims_replace():
    cpu_compat.check_megatron()  # raises if anything is missing


@pytest.mark.parametrize("module, path", [cpu_compat.PATCHED[0], cpu_compat.PATCHED[2]])
def test_a_missing_patched_attribute_fails_loudly(monkeypatch, module, path):
    owner = importlib.import_module(module)
    *parents, attr = path.split(".")
    for p in parents:
        owner = getattr(owner, p)
    monkeypatch.delattr(owner, attr)
    with pytest.raises(RuntimeError, match=r"megatron-core .* lacks .*" + re.escape(f"{module}.{path}") + r".*0\.16\.x"):
        cpu_compat.check_megatron()


def test_a_proxied_module_without_torch_fails_loudly(monkeypatch):
    mod = importlib.import_module(cpu_compat._CUDA_LITERAL_MODULES[0])
    monkeypatch.delattr(mod, "torch")
    with pytest.raises(RuntimeError, match=rf"{cpu_compat._CUDA_LITERAL_MODULES[0]}\.torch"):
        cpu_compat.check_megatron()
