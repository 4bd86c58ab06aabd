"""Load the course's bundled model organisms (offline) or, as an opt-in, GPT-2 small.

    >>> model = load_model("attn-only-2l")     # lesson 1's 2-layer attention-only model
    >>> model = load_model("course-4l")        # lessons 2 to 4
    >>> model = load_model("gpt2-small")       # online only; fails fast and clearly offline
    >>> model = load_checkpoint(1000)          # attn-only-2l's recipe, re-run, after 1000 training steps
    >>> checkpoint_steps()                     # the steps shipped under models/attn-only-2l-checkpoints/

The bundled weights are float16 safetensors under ``models/<name>/``, checked against the
SHA-256 recorded in their ``config.json`` before they are loaded. The training checkpoints are
stored smaller (:func:`decode_state`: the larger matrices as int8 with a float16 scale per row),
each checked against the SHA-256 that ``checkpoints.json`` records.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformers import AutoTokenizer

from helpers.fragility import perturb_if_asked

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
CHECKPOINTS_DIR = MODELS_DIR / "attn-only-2l-checkpoints"
SCALE_SUFFIX = ".int8_scale"      # a tensor stored as int8 has its float16 scale beside it, under name + suffix
BUNDLED = {
    "attn-only-2l": "2-layer attention-only transformer (lesson 1: induction heads)",
    "course-4l": "4-layer transformer with MLPs (lessons 2 to 4)",
    "audit-4l": "course-4l fine-tuned to hide a behaviour (the capstone audit)",
}
ONLINE = {"gpt2-small": "GPT-2 small from the Hugging Face hub (needs internet the first time)"}
DEFAULT_MODEL = "course-4l"


class OfflineError(RuntimeError):
    """Raised when an online-only model is requested without network access."""


@cache
def cached_model(name: str = DEFAULT_MODEL) -> HookedTransformer:
    """One shared copy of a bundled model per process, for the checks and the reference answers.

    Loading it leaves the global random states as they were (:func:`random_states_kept`), so a check
    never changes the numbers a learner's notebook draws next. Callers must leave it as they found it:
    hooks added with ``model.hooks(...)`` or ``run_with_hooks``, never ``add_hook`` without a reset.
    """
    with random_states_kept():
        return load_model(name)


@contextmanager
def random_states_kept() -> Iterator[None]:
    """Run the block with torch's, numpy's and Python's global random states restored afterwards.

    Building a ``HookedTransformer`` re-seeds all three (TransformerLens's ``set_seed_everywhere``).
    """
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@cache
def tiny_random_model() -> HookedTransformer:
    """A small random model shaped like GPT-2 (learned positions, MLPs, LayerNorm; 3 layers of 4 heads, 50 tokens).

    The checks run learners' code on it besides the course models, so that an answer that only fits the
    bundled shapes fails. One shared copy per process, built with the global random states left alone.
    """
    cfg = HookedTransformerConfig(n_layers=3, d_model=32, n_ctx=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=50,
                                  act_fn="gelu", normalization_type="LN", positional_embedding_type="standard",
                                  seed=1, device="cpu")
    with random_states_kept():
        return HookedTransformer(cfg).eval()


def load_tokenizer():
    """The course's word-level tokenizer (GPT-2 conventions: leading spaces, ``<|endoftext|>`` BOS)."""
    return AutoTokenizer.from_pretrained(MODELS_DIR / "tokenizer")


def load_model(name: str = DEFAULT_MODEL, device: str = "cpu", fold_ln: bool = True) -> HookedTransformer:
    """Return the ``HookedTransformer`` called ``name``, in eval mode.

    Bundled names load from this repository with no network access. ``"gpt2-small"`` uses
    TransformerLens's own ``from_pretrained`` and needs the hub unless it is already cached.
    With ``fold_ln`` (the default, as in ``from_pretrained``) the weights are processed the way
    TransformerLens processes GPT-2: each LayerNorm's scale and bias folded into the weights that
    read from it, and the weights that write to the residual stream centred. Predictions do not
    change; a component's effect on the logits becomes a plain product with ``model.W_U``.
    """
    if name in ONLINE:
        return _load_online(name, device, fold_ln)
    if name not in BUNDLED:
        valid = ", ".join(repr(n) for n in [*BUNDLED, *ONLINE])
        raise ValueError(f"Unknown model {name!r}. Valid names: {valid}.")
    config = json.loads((MODELS_DIR / name / "config.json").read_text())
    weights = MODELS_DIR / name / "model.safetensors"
    model = model_from_state(config["hooked_transformer_config"], bundled_state(name), fold_ln=fold_ln,
                             tag=name, source=str(weights))
    if device != "cpu":
        model = model.to(device)
    return model.eval()


def bundled_state(name: str) -> dict[str, torch.Tensor]:
    """The stored state dict of bundled model ``name`` (float16), each file checked against its SHA-256.

    A model whose ``config.json`` names a ``base`` stores only the tensors it changed: the rest are
    the base model's (``audit-4l`` is ``course-4l`` with a few tensors fine-tuned).
    """
    folder = MODELS_DIR / name
    config = json.loads((folder / "config.json").read_text())
    weights = folder / "model.safetensors"
    verify_checksum(weights, config["sha256"])
    state = bundled_state(config["base"]) if "base" in config else {}
    return {**state, **load_file(weights)}


def model_from_state(hooked_config: dict[str, Any], state: dict[str, torch.Tensor], fold_ln: bool = True,
                     tag: str = "", source: str = "the state dict") -> HookedTransformer:
    """A ``HookedTransformer`` built from a config dict and a state dict, processed as :func:`load_model` does.

    The weights are cast to float32; with ``fold_ln`` the LayerNorms are folded and the writing weights
    centred; a fragility run (``helpers.fragility``) nudges them under ``tag``; ``to_tokens`` warns on
    words outside the vocabulary.
    """
    cfg = HookedTransformerConfig(**hooked_config)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Dd]eprecat.*")
        model = HookedTransformer(cfg, tokenizer=load_tokenizer(), move_to_device=False)
    missing, unexpected = model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=False)
    missing = [k for k in missing if not k.endswith(("IGNORE", ".mask"))]
    if missing or unexpected:
        raise ValueError(f"{source} does not match its config: missing {missing}, unexpected {unexpected}.")
    if fold_ln:
        model.process_weights_(fold_ln=True, center_writing_weights=True, center_unembed=True)
        model.setup()  # re-register the hook points of the LayerNorms that process_weights_ replaced
    perturb_if_asked(model, tag=tag)      # a no-op unless a fragility run asks for it (helpers.fragility)
    _warn_on_unknown_words(model)
    return model.eval()


def checkpoint_index(folder: Path = CHECKPOINTS_DIR) -> dict[str, Any]:
    """The record ``checkpoints.json`` of the shipped training checkpoints (steps, files, checksums, curve)."""
    path = folder / "checkpoints.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing. Restore it with: git checkout -- {folder}")
    return json.loads(path.read_text())


def checkpoint_steps(folder: Path = CHECKPOINTS_DIR) -> list[int]:
    """The training steps of the shipped checkpoints of ``attn-only-2l``'s recipe, in order."""
    return sorted(int(step) for step in checkpoint_index(folder)["files"])


def load_checkpoint(step: int, fold_ln: bool = True, folder: Path = CHECKPOINTS_DIR) -> HookedTransformer:
    """``attn-only-2l``'s recipe after ``step`` training steps (a second run, saved as it trained), in eval mode.

    Processed as :func:`load_model` processes the finished model (LayerNorm folded unless ``fold_ln`` is
    false). The file is checked against the SHA-256 in ``checkpoints.json`` before it is read.
    """
    index = checkpoint_index(folder)
    files = {int(s): entry for s, entry in index["files"].items()}
    if step not in files:
        raise ValueError(f"No checkpoint at step {step}. Shipped steps: {sorted(files)} (checkpoint_steps()).")
    path = folder / files[step]["file"]
    verify_checksum(path, files[step]["sha256"])
    return model_from_state(index["hooked_transformer_config"], decode_state(load_file(path)), fold_ln=fold_ln,
                            tag=f"attn-only-2l-step{step}", source=str(path))


def decode_state(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Undo ``scripts/export_checkpoints.py``'s encoding: each int8 tensor times its float16 scale, in float32.

    A tensor ``name`` stored as int8 comes with ``name + SCALE_SUFFIX``, broadcastable to it; every
    other tensor is returned as float32.
    """
    state = {}
    for name, tensor in stored.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        if tensor.dtype == torch.int8:
            state[name] = tensor.to(torch.float32) * stored[name + SCALE_SUFFIX].to(torch.float32)
        else:
            state[name] = tensor.to(torch.float32)
    return state


def verify_checksum(path: Path, expected_sha256: str) -> None:
    """Refuse a weights file whose SHA-256 differs from the one recorded in its config."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing. Restore it with: git checkout -- {path}")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected_sha256:
        raise ValueError(
            f"{path} is truncated or was modified (SHA-256 {actual[:12]}…, expected "
            f"{expected_sha256[:12]}…). Restore it with: git checkout -- {path}")


def _warn_on_unknown_words(model: HookedTransformer) -> None:
    """Make ``model.to_tokens`` (used by ``model(str)`` and ``run_with_cache(str)``) warn on unknown words."""
    to_tokens = model.to_tokens
    unk_id = model.tokenizer.unk_token_id

    def checked_to_tokens(input, *args, **kwargs):
        tokens = to_tokens(input, *args, **kwargs)
        if unk_id is not None and (tokens == unk_id).any():
            texts = [input] if isinstance(input, str) else list(input)
            unknown = sorted({piece for text in texts for piece in unknown_words(model.tokenizer, text)})
            warnings.warn(f"These words are not in the course model's vocabulary and became [UNK]: "
                          f"{', '.join(unknown)}. Rephrase with common English words.", stacklevel=2)
        return tokens

    model.to_tokens = checked_to_tokens


def unknown_words(tokenizer, text: str) -> list[str]:
    """The words of ``text`` that the tokenizer turns into its unknown token."""
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    return [text[s:e].strip() for token, (s, e) in zip(encoding["input_ids"], encoding["offset_mapping"])
            if token == tokenizer.unk_token_id]


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the model hub opens within ``timeout`` seconds."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _load_online(name: str, device: str, fold_ln: bool = True) -> HookedTransformer:
    if not hub_reachable():
        raise OfflineError(
            f"load_model({name!r}) needs to download {ONLINE[name]} from huggingface.co, which "
            f"cannot be reached from this machine. Work offline with the bundled default instead: "
            f"load_model({DEFAULT_MODEL!r}) ({BUNDLED[DEFAULT_MODEL]}).")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Dd]eprecat.*")
        return HookedTransformer.from_pretrained(name, device=device, fold_ln=fold_ln,
                                                 center_writing_weights=fold_ln,
                                                 center_unembed=fold_ln).eval()
