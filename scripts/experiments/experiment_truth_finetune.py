"""Experiment: can more training teach course-4l the true/false task? (It led to the fine-tuning
phase of ``scripts/train_models.py``; the committed course-4l includes that phase, so the figures
below come from the main-phase weights, ``git show c8a40b9:models/course-4l/model.safetensors``.)

    python scripts/experiments/experiment_truth_finetune.py --steps 1200      # resumable; runs/truth-finetune/

The model-organism issue asks for at least 90% on held-out true/false statements
("<fact> <city>. This statement is" -> " true" / " false"); course-4l after its main phase was near chance
(about 57%): it says " true" on about 80% of statements, and recalls the fact on 95% of the training
templates, so what it lacks is the comparison of the stated city with the one it recalls.

This script continues training the committed weights (LayerNorm not folded) on a mix with more
true/false statements, with a fresh AdamW at a constant learning rate after a short warm-up, and
every ``--measure-every`` steps prints: true/false accuracy on training and held-out templates
(with the share answered " true"), fact recall, and IOI on held-out templates. Nothing here
touches ``models/``; the checkpoint and a JSON log go to ``runs/truth-finetune/<name>/``.

Measured 2026-12-02 with the defaults (1 thread, about 1.1 s a step on a shared machine), true/false
accuracy on 400 statements, training templates / held-out templates:

    step     0: 0.60 / 0.57   (answers " true" on 81% / 83%)
    step   500: 0.65 / 0.65
    step  1000: 0.77 / 0.71
    step  1600: 0.91 / 0.85
    step  2000: 0.97 / 0.91
    step  2300: 0.97 / 0.97
    step  2400: 0.97 / 0.87   (the constant learning rate makes the held-out figure swing)

Facts on training templates stay at 0.95 to 0.99 and IOI on held-out templates at 0.91 to 0.965. At
step 2400 ``helpers.evaluation.evaluate`` gives true/false 0.895, IOI 0.92 (mean logit difference
7.9), facts 0.91 (held-out paraphrases 0.77), sentiment 1.0, induction 0.96. So the comparison *is*
learnable at this size: it needs about 1,500 steps with 40% of the mix true/false before it appears.
The previous session's run (half true/false, 800 steps) stopped just before that point.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from train_models import batches, repeat_words, train_step  # noqa: E402

from helpers import corpus  # noqa: E402
from helpers.evaluation import binary_accuracy, first_token_ids, ioi_logit_diffs, last_token_logits, top1_accuracy  # noqa: E402
from helpers.models import load_model, load_tokenizer  # noqa: E402

MIX = dict(ioi=0.2, fact=0.15, truth=0.4, review=0.04, repeat=0.03, random_repeat=0.08, short_repeat=0.02,
           narrative=0.08)


@torch.no_grad()
def measure(model) -> dict:
    model.eval()
    out = {}
    for split in ("train", "test"):
        examples = corpus.truth_examples(400, split, seed=7)
        out[f"truth_{split}"] = round(binary_accuracy(model, examples, " true", " false", "true"), 3)
        logits = last_token_logits(model, [e.prompt for e in examples])
        yes, no = first_token_ids(model, [" true", " false"]).tolist()
        out[f"says_true_{split}"] = round((logits[:, yes] > logits[:, no]).float().mean().item(), 3)
    out["fact_train"] = round(top1_accuracy(model, corpus.fact_examples("train", "city")), 3)
    out["fact_test"] = round(top1_accuracy(model, corpus.fact_examples("test", "city") +
                                           corpus.fact_examples("test", "country")), 3)
    ioi = ioi_logit_diffs(model, corpus.ioi_examples(200, "test", 123))
    out["ioi_test"] = round((ioi > 0).float().mean().item(), 3)
    model.train()
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--mix", type=json.loads, default=MIX)
    parser.add_argument("--name", default="default")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--measure-every", type=int, default=100)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    run_dir = ROOT / "runs" / "truth-finetune" / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    model = load_model("course-4l", fold_ln=False)
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    log = dict(args=vars(args), rows=[])
    step = 0
    if (run_dir / "checkpoint.pt").exists():
        state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, log = state["step"], state["log"]
        print(f"resumed at step {step}", flush=True)
    else:
        log["rows"].append(dict(step=0, **measure(model)))
        print(log["rows"][-1], flush=True)
    tokenizer = load_tokenizer()
    stream = batches(tokenizer, args.mix, 96, args.batch, 5_000, step, repeat_words(tokenizer))
    started = time.time()
    while step < args.steps:
        loss = train_step(model, optimizer, next(stream), args.lr * min(1.0, (step + 1) / 50))
        step += 1
        if step % args.measure_every == 0:
            row = dict(step=step, loss=round(loss.item(), 3), seconds=round(time.time() - started), **measure(model))
            log["rows"].append(row)
            print(row, flush=True)
            torch.save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(), step=step, log=log),
                       run_dir / "checkpoint.pt")
            (run_dir / "log.json").write_text(json.dumps(log, indent=1) + "\n")


if __name__ == "__main__":
    main()
