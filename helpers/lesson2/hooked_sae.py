"""Lesson 2b, section 1: the bundled model as SAELens's ``HookedSAETransformer``, with no download.

``HookedSAETransformer`` is a ``HookedTransformer`` subclass that can splice SAEs into its forward pass. SAELens
builds one with ``HookedSAETransformer.from_pretrained(...)`` from the hub; :func:`load_hooked_sae_model` builds it
from the course's own model instead, with the same config and the same (processed) weights.
"""
from __future__ import annotations

import torch
from sae_lens import HookedSAETransformer

from helpers.models import load_model

__all__ = ["load_hooked_sae_model"]


def load_hooked_sae_model(name: str = "course-4l") -> HookedSAETransformer:
    """The bundled model ``name`` as a ``HookedSAETransformer``: ``load_model(name)``'s config and state dict.

    The weights are those :func:`helpers.models.load_model` returns (LayerNorms folded, as in lesson 2), so the
    logits are the same, to the last bit.
    """
    base = load_model(name)
    model = HookedSAETransformer(base.cfg, tokenizer=base.tokenizer, move_to_device=False)
    model.load_state_dict(base.state_dict(), strict=False)   # the masks and IGNORE buffers are rebuilt by the config
    if not all(torch.equal(mine, theirs) for mine, theirs in zip(model.parameters(), base.parameters())):
        raise ValueError(f"The HookedSAETransformer's weights differ from {name}'s.")
    return model.eval()
