"""Load the course model's transcoders and circuit-tracer's replacement model, offline.

    >>> from helpers.transcoders import load_replacement_model
    >>> replacement = load_replacement_model()          # a circuit-tracer TransformerLensReplacementModel
    >>> graph = circuit_tracer.attribute(tokens, replacement)

The transcoders (one per layer, reading ``hook_resid_mid`` and writing ``hook_mlp_out``) are trained
by ``scripts/train_transcoders.py`` and stored under ``models/transcoders/course-4l/`` in
circuit-tracer's own safetensors format. Nothing here touches a model hub: the replacement model is
built with ``TransformerLensReplacementModel.from_config`` from the bundled config, weights and
tokenizer, exactly as ``load_model`` loads them (LayerNorm folded), so its activations are the ones
the transcoders were trained on.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from circuit_tracer.replacement_model.replacement_model_transformerlens import TransformerLensReplacementModel
from circuit_tracer.transcoder import TranscoderSet, load_transcoder_set

from helpers.fragility import perturb_if_asked
from helpers.models import MODELS_DIR, load_model

# circuit-tracer's backward passes start from activations, not inputs; torch warns about it every time
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")

TRANSCODER_DIR = MODELS_DIR / "transcoders"
DEFAULT_TRANSCODERS = "course-4l"

__all__ = ["TRANSCODER_DIR", "load_transcoders", "load_replacement_model", "training_record"]


def training_record(name: str = DEFAULT_TRANSCODERS) -> dict:
    """The ``training_record.json`` of the bundled transcoders ``name`` (empty if there is none)."""
    path = TRANSCODER_DIR / name / "training_record.json"
    return json.loads(path.read_text()) if path.exists() else {}


def load_transcoders(name: str = DEFAULT_TRANSCODERS, folder: Path | None = None) -> TranscoderSet:
    """circuit-tracer's ``TranscoderSet`` for the model ``name``, loaded from the repository."""
    folder = Path(folder) if folder is not None else TRANSCODER_DIR / name
    config_path = folder / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(
            f"No transcoders at {folder}. Train them (about 10 minutes on 2 CPU cores) with:\n"
            f"    python scripts/train_transcoders.py")
    config = json.loads(config_path.read_text())
    record_path = folder / "training_record.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    model_config = MODELS_DIR / config["model"] / "config.json"
    if record.get("model_sha256") and json.loads(model_config.read_text())["sha256"] != record["model_sha256"]:
        warnings.warn(f"The transcoders in {folder} were trained on other weights of {config['model']}; "
                      f"retrain them with scripts/train_transcoders.py.", stacklevel=2)
    paths = {int(layer): str(folder / file) for layer, file in config["files"].items()}
    transcoders = load_transcoder_set(paths, scan=config["scan"], feature_input_hook=config["feature_input_hook"],
                                      feature_output_hook=config["feature_output_hook"], device=torch.device("cpu"),
                                      dtype=torch.float32, lazy_encoder=False, lazy_decoder=False)
    return perturb_if_asked(transcoders, tag=f"transcoders:{name}")


def load_replacement_model(name: str = DEFAULT_TRANSCODERS, transcoders: TranscoderSet | None = None
                           ) -> TransformerLensReplacementModel:
    """circuit-tracer's replacement model of the bundled model ``name``: its MLPs read by
    transcoders, attention patterns and LayerNorm scales frozen during attribution. Offline."""
    model = load_model(name)
    transcoders = transcoders if transcoders is not None else load_transcoders(name)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Dd]eprecat.*")
        replacement = TransformerLensReplacementModel.from_config(
            model.cfg, transcoders, tokenizer=model.tokenizer, move_to_device=False)
    # from_config wraps each MLP and the unembedding (``blocks.L.mlp`` -> ``blocks.L.mlp.old_mlp``,
    # ``unembed`` -> ``unembed.old_unembed``) before any weights are loaded
    state = {key.replace(".mlp.", ".mlp.old_mlp.").replace("unembed.", "unembed.old_unembed."): value
             for key, value in model.state_dict().items()}
    missing, unexpected = replacement.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("transcoders.") and not k.endswith(("IGNORE", ".mask"))]
    if missing or unexpected:
        raise ValueError(f"The replacement model does not match {name}: missing {missing}, unexpected {unexpected}.")
    return replacement.eval()
