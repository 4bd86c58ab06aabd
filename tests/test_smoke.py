"""Every key pinned library imports, and TransformerLens runs a tiny model on this machine."""
from __future__ import annotations

import importlib

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

LIBRARIES = ["torch", "transformer_lens", "sae_lens", "circuit_tracer", "circuitsvis", "sklearn", "matplotlib",
             "ipywidgets", "tokenizers", "safetensors", "wordfreq"]


@pytest.mark.parametrize("module", LIBRARIES)
def test_library_imports(module: str) -> None:
    importlib.import_module(module)


def test_tiny_hooked_transformer_forward_and_cache() -> None:
    cfg = HookedTransformerConfig(n_layers=1, d_model=16, n_ctx=8, d_head=4, n_heads=4, d_mlp=32, d_vocab=20,
                                  act_fn="gelu", normalization_type="LN", device="cpu", seed=0)
    model = HookedTransformer(cfg)
    tokens = torch.randint(0, cfg.d_vocab, (2, 6), generator=torch.Generator().manual_seed(0))
    logits = model(tokens)
    assert logits.shape == (2, 6, cfg.d_vocab) and torch.isfinite(logits).all()
    cached_logits, cache = model.run_with_cache(tokens)
    assert torch.allclose(cached_logits, logits)
    assert cache["blocks.0.attn.hook_pattern"].shape == (2, 4, 6, 6)
    assert cache["resid_post", 0].shape == (2, 6, 16)
