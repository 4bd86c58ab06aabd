"""Load the course's bundled sparse autoencoder (offline) and measure what it costs the model.

    >>> from helpers.sae import load_sae, ce_loss_recovered
    >>> sae = load_sae()                        # on course-4l's blocks.2.hook_resid_pre
    >>> sae.encode(acts)                        # [..., 256] -> [..., 4096] latent activations

The SAE is trained by ``scripts/train_sae.py`` with SAELens's own runner and saved in SAELens's
on-disk format under ``models/sae/<name>/``, so it is a real ``sae_lens.SAE``: everything SAELens
does with a pretrained SAE works on it. ``training_record.json`` beside it says how it was trained
and how well it reconstructs held-out activations.
"""
from __future__ import annotations

import json
import warnings
from typing import NamedTuple

import torch
from jaxtyping import Bool, Float, Int
from sae_lens import SAE
from sae_lens.evals import get_recons_loss
from sae_lens.training.activation_scaler import ActivationScaler
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers.fragility import perturb_if_asked
from helpers.models import MODELS_DIR

SAE_DIR = MODELS_DIR / "sae"
DEFAULT_SAE = "course-4l-blocks.2.hook_resid_pre"

__all__ = [
    "CrossEntropies", "ReconstructionStats", "SAE_DIR", "DEFAULT_SAE", "PUBLIC_SAES", "load_sae", "training_record",
    "reconstruction_losses", "ce_loss_recovered", "load_model_and_sae", "sae_latents", "generate_greedy",
    "reconstruction_stats"
]


def load_sae(name: str = DEFAULT_SAE, device: str = "cpu") -> SAE:
    """Return the bundled SAE called ``name`` (``"<model>-<hook name>"``), in eval mode, offline.

    Loaded with SAELens's ``SAE.load_from_disk``. Warns when the model's weights have changed
    since the SAE was trained (the SAE then reads a residual stream it was not trained on).
    """
    folder = SAE_DIR / name
    if not (folder / "cfg.json").exists() or not (folder / "sae_weights.safetensors").exists():
        available = sorted(p.name for p in SAE_DIR.iterdir() if (p / "cfg.json").exists()) if SAE_DIR.is_dir() else []
        layer = name.split("blocks.")[-1].split(".")[0] if "blocks." in name else "2"
        raise FileNotFoundError(
            f"No trained SAE at {folder}. Train it (about 10 to 15 minutes on a laptop CPU) with:\n"
            f"    python scripts/train_sae.py --layer {layer}\n"
            f"Bundled SAEs here: {', '.join(available) or 'none'}.")
    record = training_record(name)
    model_name = record.get("model")
    config = MODELS_DIR / str(model_name) / "config.json"
    if (record.get("model_sha256") and config.exists()
            and json.loads(config.read_text()).get("sha256") != record["model_sha256"]):
        warnings.warn(f"The SAE {name} was trained on other weights of {model_name} than those in "
                      f"{config.parent}; retrain it with scripts/train_sae.py.", stacklevel=2)
    return perturb_if_asked(SAE.load_from_disk(folder, device=device), tag=f"sae:{name}").eval()


def training_record(name: str = DEFAULT_SAE) -> dict:
    """The ``training_record.json`` of the bundled SAE ``name`` (empty if there is none)."""
    path = SAE_DIR / name / "training_record.json"
    return json.loads(path.read_text()) if path.exists() else {}


class CrossEntropies(NamedTuple):
    """Mean next-token cross-entropy three ways (:func:`reconstruction_losses`)."""

    clean: float               # the model as it is
    with_sae: float            # the SAE's reconstruction spliced in at its hook point
    zero_ablation: float       # that activation set to zero

    @property
    def recovered(self) -> float:
        """The share of the zero-ablation loss gap that the SAE closes (SAELens's ``ce_loss_score``)."""
        return (self.zero_ablation - self.with_sae) / (self.zero_ablation - self.clean)


class ReconstructionStats(NamedTuple):
    """How well the SAE rebuilds the residual stream (:func:`reconstruction_stats`), BOS left out."""

    l0: float                  # active latents per token
    explained_variance: float
    cosine_similarity: float


@torch.no_grad()
def reconstruction_losses(model: HookedTransformer, sae: SAE, tokens: Int[Tensor, "batch pos"],
                          skip_bos: bool = True) -> CrossEntropies:
    """Mean next-token cross-entropy of ``model`` on ``tokens`` ``[batch, pos]`` three ways: clean,
    with the SAE's reconstruction spliced in at ``sae.cfg.metadata.hook_name``, and with that
    activation zeroed. Computed by SAELens's ``sae_lens.evals.get_recons_loss``.

    With ``skip_bos`` (the default, as the SAE was trained) the BOS positions keep their own
    activation and are left out of the means.
    """
    ignore = [model.tokenizer.bos_token_id] if skip_bos else None
    losses = get_recons_loss(sae, model, ActivationScaler(), tokens, compute_kl=False,
                             compute_ce_loss=True, ignore_tokens=ignore)
    keep = torch.ones_like(tokens, dtype=torch.bool)
    if ignore:
        keep = ~torch.isin(tokens, torch.tensor(ignore, device=tokens.device))
    keep = keep[:, :-1]          # the loss at position i predicts token i + 1: no loss at the end
    mean = lambda t: t[keep.to(t.device)].mean().item()  # noqa: E731
    return CrossEntropies(clean=mean(losses["ce_loss_without_sae"]), with_sae=mean(losses["ce_loss_with_sae"]),
                          zero_ablation=mean(losses["ce_loss_with_ablation"]))


def ce_loss_recovered(model: HookedTransformer, sae: SAE, tokens: Int[Tensor, "batch pos"],
                      skip_bos: bool = True) -> float:
    """The fraction of the loss gap between zero-ablating the hook and the clean model that the SAE
    closes: ``(CE_zero - CE_sae) / (CE_zero - CE_clean)``, 1.0 for a perfect reconstruction.

    The same score as SAELens's ``ce_loss_score`` (``run_evals``), on the tokens ``[batch, pos]``
    you give it. Beware: zeroing the whole residual stream is a drastic baseline, so even a poor
    SAE can score high; read it together with the raw losses of :func:`reconstruction_losses`.
    """
    return reconstruction_losses(model, sae, tokens, skip_bos).recovered


# =====================================================================================
# The switch to GPT-2 small and a public SAE (online only)
# =====================================================================================

PUBLIC_SAES = {"gpt2-small": ("gpt2-small-res-jb", "blocks.7.hook_resid_pre")}


def load_model_and_sae(name: str = "course-4l") -> tuple[HookedTransformer, SAE]:
    """The model called ``name`` and an SAE on its residual stream, ready for lesson 2.

    ``"course-4l"`` (the default) is the bundled model with the bundled SAE (:func:`load_sae`),
    offline. ``"gpt2-small"`` is GPT-2 small with the public SAE ``gpt2-small-res-jb`` on
    ``blocks.7.hook_resid_pre``, loaded with ``SAE.from_pretrained``; it needs the model hub and
    fails fast offline (:class:`helpers.models.OfflineError`) with a message naming the default.
    The SAE's hook is ``sae.cfg.metadata.hook_name``.
    """
    from helpers.models import DEFAULT_MODEL, OfflineError, hub_reachable, load_model

    if name == DEFAULT_MODEL:
        return load_model(name), load_sae()
    if name not in PUBLIC_SAES:
        raise ValueError(f"No SAE for {name!r}: choose {DEFAULT_MODEL!r} (bundled) or one of {sorted(PUBLIC_SAES)}.")
    release, sae_id = PUBLIC_SAES[name]
    if not hub_reachable():
        raise OfflineError(
            f"{name!r} with the public SAE {release!r} ({sae_id}) has to be downloaded from huggingface.co, "
            f"which cannot be reached from this machine. Use the bundled default instead: "
            f"MODEL_NAME = {DEFAULT_MODEL!r}, i.e. load_model_and_sae({DEFAULT_MODEL!r}) "
            f"(the course's 4-layer model and its SAE {DEFAULT_SAE!r}, no network needed).")
    model = load_model(name)
    sae = SAE.from_pretrained(release, sae_id, device="cpu")   # SAELens 6: returns the SAE alone
    return model, sae.eval()


# =====================================================================================
# Latents of a batch of sequences, and greedy generation with hooks
# =====================================================================================

@torch.no_grad()
def sae_latents(model: HookedTransformer, sae: SAE, tokens: Int[Tensor, "batch pos"],
                mask: Bool[Tensor, "batch pos"] | None = None, batch_size: int = 64
                ) -> Float[Tensor, "batch pos d_sae"] | Float[Tensor, "example d_sae"]:
    """The SAE's latents on ``tokens`` ``[n_seq, pos]``: ``[n_seq, pos, d_sae]``, or, with a
    boolean ``mask`` ``[n_seq, pos]``, only the masked positions, flattened: ``[n_masked, d_sae]``.

    The residual stream is read at ``sae.cfg.metadata.hook_name``; the forward pass stops there.
    """
    hook = sae.cfg.metadata.hook_name
    layer = int(hook.split(".")[1])
    out = []
    for start in range(0, len(tokens), batch_size):
        chunk = tokens[start:start + batch_size]
        _, cache = model.run_with_cache(chunk, names_filter=[hook], stop_at_layer=layer + 1)
        latents = sae.encode(cache[hook])
        out.append(latents[mask[start:start + batch_size]] if mask is not None else latents)
    return torch.cat(out)


@torch.no_grad()
def generate_greedy(model: HookedTransformer, prompts: list[str], n_new: int = 10,
                    fwd_hooks: list | None = None) -> list[str]:
    """Greedy continuations (``n_new`` tokens each) of ``prompts``, with ``fwd_hooks`` attached
    throughout. Prompts of equal token length run as one batch; no KV cache, so hooks see every
    position at every step. Returns the new text only."""
    tokens = [model.to_tokens(p)[0] for p in prompts]
    out: list[str] = [""] * len(prompts)
    by_length: dict[int, list[int]] = {}
    for i, t in enumerate(tokens):
        by_length.setdefault(len(t), []).append(i)
    with model.hooks(fwd_hooks=fwd_hooks or []):
        for indices in by_length.values():
            batch = torch.stack([tokens[i] for i in indices])
            for _ in range(n_new):
                next_token = model(batch)[:, -1].argmax(-1, keepdim=True)
                batch = torch.cat([batch, next_token], dim=1)
            for row, i in zip(batch, indices):
                out[i] = model.tokenizer.decode(row[len(tokens[i]):])
    return out


@torch.no_grad()
def reconstruction_stats(model: HookedTransformer, sae: SAE, tokens: Int[Tensor, "batch pos"]) -> ReconstructionStats:
    """L0 (active latents per token), explained variance and cosine similarity of the SAE's
    reconstruction of the residual stream on ``tokens`` ``[batch, pos]``, BOS positions left out."""
    hook = sae.cfg.metadata.hook_name
    layer = int(hook.split(".")[1])
    _, cache = model.run_with_cache(tokens, names_filter=[hook], stop_at_layer=layer + 1)
    keep = tokens != model.tokenizer.bos_token_id
    x = cache[hook][keep]                                             # [n_tokens, d_in]
    latents = sae.encode(x)
    x_hat = sae.decode(latents)
    explained = 1 - ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    cosine = torch.nn.functional.cosine_similarity(x, x_hat, dim=-1).mean()
    return ReconstructionStats(l0=(latents > 0).float().sum(-1).mean().item(), explained_variance=explained.item(),
                               cosine_similarity=cosine.item())
