"""Ship a few training checkpoints of attn-only-2l's recipe, and the curve of every snapshot, for lesson 1b.

Run after a training run that saved snapshots::

    python scripts/train_models.py attn-only-2l --snapshot-every 50      # writes runs/attn-only-2l/snapshots/
    python scripts/export_checkpoints.py                                 # writes models/attn-only-2l-checkpoints/
    python -m tooling.preflight --write-checksums

It loads every snapshot (``step_NNNNN.safetensors``, float16 state dicts) as ``helpers.models.load_model``
loads the finished model, measures it with ``helpers.lesson1.training.measure_checkpoint`` (loss on each copy
of repeated random tokens, best induction and previous-token scores) and records that curve. It then picks a
handful of steps around the phase change (unless ``--steps`` names them) and writes each as a small
safetensors file: the embedding, unembedding and attention matrices as int8 with a float16 scale per row
(``helpers.models.decode_state`` undoes it), the rest float16. It re-measures each shipped file and records
how far its scores moved from the snapshot's. The same snapshots always give the same files, byte for byte.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.lesson1.training import MEASURE, CheckpointScores, measure_checkpoint  # noqa: E402
from helpers.models import CHECKPOINTS_DIR, MODELS_DIR, SCALE_SUFFIX, decode_state, model_from_state  # noqa: E402

# name -> the axis whose entries share one scale (the scale is taken over the other axis: one per token for
# the embedding and the unembedding, one per output column of each head's matrix for the attention weights)
INT8 = {"embed.W_E": -1, "unembed.W_U": 0, "attn.W_Q": -2, "attn.W_K": -2, "attn.W_V": -2, "attn.W_O": -2}
HOW = ("A second run of scripts/train_models.py attn-only-2l (same recipe and seed, with --snapshot-every 50; "
       "the corpus changed since the shipped models/attn-only-2l was trained, so this run is not the shipped "
       "model, and its heads may be numbered differently). Each snapshot is a float16 state dict before any "
       "LayerNorm folding; the shipped files store the embedding, unembedding and attention matrices as int8 "
       "with a float16 absmax scale per row (helpers.models.decode_state), everything else float16.")


def encode_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The matrices named in ``INT8`` as int8 times a float16 scale; every other tensor as float16."""
    out = {}
    for name, tensor in sorted(state.items()):
        axis = next((a for key, a in INT8.items() if name.endswith(key)), None)
        tensor = tensor.to(torch.float32)
        if axis is None:
            out[name] = tensor.to(torch.float16).contiguous()
            continue
        scale = (tensor.abs().amax(dim=axis, keepdim=True) / 127).clamp(min=1e-8).to(torch.float16)
        out[name] = (tensor / scale.to(torch.float32)).round().clamp(-127, 127).to(torch.int8).contiguous()
        out[name + SCALE_SUFFIX] = scale.contiguous()
    return out


def snapshot_steps(snapshots: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in snapshots.glob("step_*.safetensors"))


def scores_row(step: int, scores: CheckpointScores) -> dict:
    return dict(step=step, repeated_loss=round(scores.repeated_loss, 4), first_loss=round(scores.first_loss, 4),
                best_induction=round(scores.best_induction, 4), best_prev_token=round(scores.best_prev_token, 4),
                induction_head=f"{scores.induction_head.layer}.{scores.induction_head.head}",
                prev_token_head=f"{scores.prev_token_head.layer}.{scores.prev_token_head.head}")


def pick_steps(curve: list[dict], steps: list[int]) -> tuple[int, list[int]]:
    """The phase change (first step at half the final best induction score) and steps around it, plus the last."""
    final = curve[-1]["best_induction"]
    phase = next(r["step"] for r in curve if r["best_induction"] >= 0.5 * final)
    wanted = [phase - 200, phase - 50, phase + 100, steps[-1]]
    return phase, sorted({min(steps, key=lambda s: abs(s - w)) for w in wanted})


def export_checkpoints(snapshots: Path, out: Path, hooked_config: dict, steps: list[int] | None = None,
                       training: dict | None = None) -> dict:
    """Measure every snapshot, write the chosen ones encoded, and ``checkpoints.json``; return that record."""
    available = snapshot_steps(snapshots)
    if not available:
        raise FileNotFoundError(f"No step_*.safetensors in {snapshots}: train with --snapshot-every first.")
    torch.manual_seed(0)
    curve = []
    for step in available:
        model = model_from_state(hooked_config, load_file(snapshots / f"step_{step:05d}.safetensors"))
        curve.append(scores_row(step, measure_checkpoint(model)))
        print(f"step {step:5d}: " + ", ".join(f"{k} {v}" for k, v in curve[-1].items() if k != "step"), flush=True)
    phase, chosen = pick_steps(curve, available)
    if steps:
        chosen = sorted(steps)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("step_*.safetensors"):
        old.unlink()
    files = {}
    for step in chosen:
        encoded = encode_state(load_file(snapshots / f"step_{step:05d}.safetensors"))
        path = out / f"step_{step:05d}.safetensors"
        save_file(encoded, path)          # no metadata: safetensors writes its keys in no fixed order
        shipped = scores_row(step, measure_checkpoint(model_from_state(hooked_config, decode_state(encoded))))
        recorded = next(r for r in curve if r["step"] == step)
        moved = max(abs(shipped[k] - recorded[k]) for k in ("repeated_loss", "best_induction", "best_prev_token"))
        files[str(step)] = dict(file=path.name, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                                bytes=path.stat().st_size, scores_moved_by_encoding=round(moved, 4))
    record = dict(model="attn-only-2l", how=HOW, made_by="scripts/export_checkpoints.py",
                  measured_with=dict(MEASURE, what="helpers.lesson1.training.measure_checkpoint on the folded model"),
                  phase_change_step=phase,
                  phase_change_rule="first snapshot whose best induction score is at least half the last one's",
                  training=training or {}, hooked_transformer_config=hooked_config, files=files, curve=curve)
    (out / "checkpoints.json").write_text(json.dumps(record, indent=1) + "\n")
    total = sum(f["bytes"] for f in files.values())
    print(f"Wrote {len(files)} checkpoints ({total / 1e6:.1f} MB) and the curve of {len(curve)} snapshots to {out}")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=Path, default=ROOT / "runs" / "attn-only-2l" / "snapshots")
    parser.add_argument("--out", type=Path, default=CHECKPOINTS_DIR)
    parser.add_argument("--steps", type=int, nargs="*", help="the steps to ship (default: around the phase change)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    config = json.loads((MODELS_DIR / "attn-only-2l" / "config.json").read_text())["hooked_transformer_config"]
    training = {}
    checkpoint = args.snapshots.parent / "checkpoint.pt"
    if checkpoint.exists():
        record = torch.load(checkpoint, weights_only=False)["record"]
        training = {k: record[k] for k in ("seed", "step", "batch", "seq_len", "lr", "mix") if k in record}
    export_checkpoints(args.snapshots, args.out, config, args.steps, training)


if __name__ == "__main__":
    main()
