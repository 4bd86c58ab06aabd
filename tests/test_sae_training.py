"""The SAE training path end to end, fast: ``scripts/train_sae.py --quick`` trains with SAELens's runner
into a temporary folder, and what it saves loads with ``SAE.load_from_disk`` and with ``helpers.sae``."""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch
import train_sae
from sae_lens import SAE

from helpers import sae as sae_helpers
from helpers.models import load_model

ROOT = Path(__file__).resolve().parent.parent
HOOK = "blocks.2.hook_resid_pre"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("sae")
    out = tmp / "sae" / f"course-4l-{HOOK}"
    record = train_sae.main(["--quick", "--threads", "1", "--out", str(out),
                                       "--run-dir", str(tmp / "run")])
    return out, record, tmp


def test_quick_run_saves_sae_lens_format_and_a_record(trained):
    out, record, tmp = trained
    assert {p.name for p in out.iterdir()} >= {"cfg.json", "sae_weights.safetensors", "runner_cfg.json",
                                                "sparsity.safetensors", "training_record.json"}
    assert not (tmp / "run" / "checkpoints").exists()          # a finished run removes its checkpoints
    assert not out.with_name(out.name + ".partial").exists()
    saved = json.loads((out / "training_record.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["hook_name"] == HOOK and saved["d_sae"] == 4096 and saved["seed"] == 0 and saved["quick"]
    assert saved["tokens"] == saved["steps"] * saved["batch_tokens"] > 0
    final = saved["final"]
    for key in ("l0", "explained_variance", "mse", "ce_loss_recovered", "ce_loss_with_sae"):
        assert math.isfinite(final[key]), key
    assert 0 < final["l0"] < 4096 and 0 <= final["dead_latents"] <= 4096
    model_config = json.loads((ROOT / "models" / "course-4l" / "config.json").read_text())
    assert saved["model_sha256"] == model_config["sha256"]
    assert saved["mix"] == train_sae.final_mix()


def test_the_sae_trains_on_the_mix_the_model_ended_with() -> None:
    spec = train_sae.MODELS["course-4l"]
    last = spec["later_mixes"][-1][1] if spec.get("later_mixes") else spec["mix"]
    assert train_sae.final_mix() == last and abs(sum(last.values()) - 1) < 1e-9


def test_saved_sae_loads_with_load_from_disk_and_reconstructs(trained):
    out, _, _ = trained
    with warnings.catch_warnings():
        warnings.simplefilter("error")                          # loading must be quiet (no kwargs warning)
        sae = SAE.load_from_disk(out, device="cpu")
    assert sae.cfg.d_in == 256 and sae.cfg.d_sae == 4096
    assert sae.W_enc.shape == (256, 4096) and sae.W_dec.shape == (4096, 256)
    assert sae.cfg.metadata.hook_name == HOOK and sae.cfg.metadata.model_name == "course-4l"
    assert sae.cfg.normalize_activations == "none"              # the training normalisation is folded in
    model = load_model("course-4l")
    tokens = model.to_tokens(["When Mary and John went to the store, John gave a drink to Mary.",
                              "The Eiffel Tower is in the city of Paris."])
    _, cache = model.run_with_cache(tokens, names_filter=[HOOK])
    acts = cache[HOOK]
    latents = sae.encode(acts)
    recon = sae.decode(latents)
    assert latents.shape == (*acts.shape[:2], 4096) and recon.shape == acts.shape
    assert torch.isfinite(latents).all() and torch.isfinite(recon).all() and (latents >= 0).all()
    assert (latents[:, 1:] > 0).sum(-1).float().mean() > 0      # some latents fire on ordinary tokens


def test_helpers_load_sae_and_ce_loss_recovered(trained, monkeypatch):
    out, _, tmp = trained
    monkeypatch.setattr(sae_helpers, "SAE_DIR", out.parent)
    sae = sae_helpers.load_sae(f"course-4l-{HOOK}")
    model = load_model("course-4l")
    # sentences of the course corpus (a review, a true claim): on text outside it ("The movie was wonderful and I
    # loved it.") the fine-tuned model is confidently wrong, worse than with the residual stream zeroed
    tokens = model.to_tokens(["I went to see the movie last week. The movie was great. "
                              "Overall, the review is positive.",
                              "Paris is a city in the country of France."])
    losses = sae_helpers.reconstruction_losses(model, sae, tokens)
    assert all(math.isfinite(v) for v in losses)
    assert losses.clean < losses.zero_ablation
    score = sae_helpers.ce_loss_recovered(model, sae, tokens)
    expected = (losses.zero_ablation - losses.with_sae) / (losses.zero_ablation - losses.clean)
    assert math.isfinite(score) and score == pytest.approx(expected)


def test_load_sae_names_the_training_command_when_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(sae_helpers, "SAE_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"python scripts/train_sae.py --layer 1"):
        sae_helpers.load_sae("course-4l-blocks.1.hook_resid_pre")


def test_resuming_refuses_a_checkpoint_made_with_other_settings(tmp_path):
    incomplete = tmp_path / "run" / "checkpoints" / "4096"
    incomplete.mkdir(parents=True)                               # e.g. an interrupted save: no trainer state
    assert train_sae.latest_checkpoint(tmp_path / "run" / "checkpoints") is None
    done = tmp_path / "run" / "checkpoints" / "2048"
    done.mkdir()
    for name in ("sae_weights.safetensors", "trainer_state.pt"):
        (done / name).write_bytes(b"")
    (done / "runner_cfg.json").write_text(json.dumps({"hook_name": HOOK, "lr": 123.0, "sae": {}}))
    assert train_sae.latest_checkpoint(tmp_path / "run" / "checkpoints") == done
    with pytest.raises(SystemExit, match="other settings.*lr.*--fresh"):
        train_sae.train(quick=True, out=tmp_path / "out", run_dir=tmp_path / "run", threads=1)
