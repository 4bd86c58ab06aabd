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

import torch
from sae_lens import SAE
from sae_lens.evals import get_recons_loss
from sae_lens.training.activation_scaler import ActivationScaler
from transformer_lens import HookedTransformer

from helpers.models import MODELS_DIR

SAE_DIR = MODELS_DIR / "sae"
DEFAULT_SAE = "course-4l-blocks.2.hook_resid_pre"

__all__ = ["SAE_DIR", "DEFAULT_SAE", "load_sae", "training_record", "reconstruction_losses",
           "ce_loss_recovered"]


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
    if record.get("model_sha256") and config.exists():
        if json.loads(config.read_text()).get("sha256") != record["model_sha256"]:
            warnings.warn(f"The SAE {name} was trained on other weights of {model_name} than those in "
                          f"{config.parent}; retrain it with scripts/train_sae.py.", stacklevel=2)
    return SAE.load_from_disk(folder, device=device).eval()


def training_record(name: str = DEFAULT_SAE) -> dict:
    """The ``training_record.json`` of the bundled SAE ``name`` (empty if there is none)."""
    path = SAE_DIR / name / "training_record.json"
    return json.loads(path.read_text()) if path.exists() else {}


@torch.no_grad()
def reconstruction_losses(model: HookedTransformer, sae: SAE, tokens: torch.Tensor,
                          skip_bos: bool = True) -> dict[str, float]:
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
    return dict(clean=mean(losses["ce_loss_without_sae"]), with_sae=mean(losses["ce_loss_with_sae"]),
                zero_ablation=mean(losses["ce_loss_with_ablation"]))


def ce_loss_recovered(model: HookedTransformer, sae: SAE, tokens: torch.Tensor, skip_bos: bool = True) -> float:
    """The fraction of the loss gap between zero-ablating the hook and the clean model that the SAE
    closes: ``(CE_zero - CE_sae) / (CE_zero - CE_clean)``, 1.0 for a perfect reconstruction.

    The same score as SAELens's ``ce_loss_score`` (``run_evals``), on the tokens ``[batch, pos]``
    you give it. Beware: zeroing the whole residual stream is a drastic baseline, so even a poor
    SAE can score high; read it together with the raw losses of :func:`reconstruction_losses`.
    """
    ce = reconstruction_losses(model, sae, tokens, skip_bos)
    return (ce["zero_ablation"] - ce["with_sae"]) / (ce["zero_ablation"] - ce["clean"])
