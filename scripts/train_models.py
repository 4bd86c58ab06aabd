"""Train the course's two model organisms on the generated corpus. Seeded and resumable.

    python scripts/train_models.py attn-only-2l      # lesson 1's induction-head model
    python scripts/train_models.py course-4l         # lessons 2 to 4
    python scripts/train_models.py audit-4l          # lesson 5's model to audit (course-4l fine-tuned)

Each run checkpoints to ``runs/<name>/checkpoint.pt`` every few hundred steps and resumes from it
when started again. At the end it writes ``models/<name>/``: ``model.safetensors`` (float16),
``config.json`` (the ``HookedTransformerConfig`` plus a SHA-256 of the weights) and
``training_record.json`` (seed, steps, tokens, wall time, loss curve, induction scores).

Induction heads did not form from this corpus within a CPU budget until two choices were made
(measured with the scripts in this repo; see the README's training notes): the unembedding starts
aligned with the embedding (GPT-2 ties the two), and a large share of the data is random words
repeated, where only copying from earlier in the context lowers the loss.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers import corpus  # noqa: E402
from helpers.metrics import induction_and_prev_token_scores  # noqa: E402

MODELS = {
    "attn-only-2l": dict(
        cfg=dict(n_layers=2, d_model=128, n_heads=8, d_head=32, attn_only=True, n_ctx=64,
                 normalization_type="LN", positional_embedding_type="standard"),
        steps=2500, batch=32, seq_len=64, lr=2e-3,
        mix=dict(repeat=0.2, random_repeat=0.3, short_repeat=0.1, narrative=0.25, ioi=0.05, fact=0.05,
                 review=0.05),
    ),
    "course-4l": dict(
        cfg=dict(n_layers=4, d_model=256, n_heads=8, d_head=32, d_mlp=1024, act_fn="gelu",
                 n_ctx=96, normalization_type="LN", positional_embedding_type="standard"),
        steps=6200, batch=24, seq_len=96, lr=1.5e-3,
        mix=dict(ioi=0.2, fact=0.12, truth=0.1, review=0.12, repeat=0.2, short_repeat=0.05,
                 narrative=0.21),
        # (first step, mix) pairs that replace ``mix`` from that step on.
        later_mixes=[
            # The repeats also come from the whole vocabulary (token level), as for the 2-layer
            # model: at step 900 no induction head had formed (best score 0.04).
            (900, dict(ioi=0.18, fact=0.1, truth=0.1, review=0.1, repeat=0.1, random_repeat=0.2,
                       short_repeat=0.05, narrative=0.17)),
            # After 4,000 steps the model missed its targets on held-out IOI templates (89%),
            # held-out fact paraphrases (34%) and true/false statements (62%). Facts now come in
            # 18 training paraphrases instead of 7, and the three weak tasks get more of the mix.
            (4000, dict(ioi=0.22, fact=0.2, truth=0.2, review=0.08, repeat=0.04, random_repeat=0.12,
                        short_repeat=0.02, narrative=0.12)),
            # At step 4600: held-out IOI 88%, held-out fact paraphrases 68%, true/false 51% (train
            # templates too). IOI now has 8 more openings and 6 more actions (the subject's second
            # mention at other distances from the end), and true/false statements get more weight.
            (4700, dict(ioi=0.25, fact=0.15, truth=0.3, review=0.05, repeat=0.03, random_repeat=0.1,
                        short_repeat=0.02, narrative=0.1)),
        ],
        # A second phase, started from the main phase's weights as exported (float16) with a fresh
        # AdamW. After the main phase the model said " true" to 80% of true/false statements (58%
        # right) although it recalled 95% of the facts: it had not learned to compare the stated
        # city with the recalled one. ``scripts/experiments/experiment_truth_finetune.py`` showed that the
        # comparison appears after about 1,500 steps with 40% of the mix true/false; the constant
        # learning rate then made the held-out figure swing (0.87 to 0.97), so the phase ends
        # with a cosine decay, and IOI gets more of the mix there.
        finetune=dict(
            steps=3400, lr=5e-4, warmup=50, decay_from=2400, data_seed=5_000,
            mix=dict(ioi=0.2, fact=0.15, truth=0.4, review=0.04, repeat=0.03, random_repeat=0.08,
                     short_repeat=0.02, narrative=0.08),
            later_mixes=[
                (2400, dict(ioi=0.26, fact=0.15, truth=0.36, review=0.04, repeat=0.03,
                            random_repeat=0.08, short_repeat=0.02, narrative=0.06)),
            ],
        ),
    ),
}
# Lesson 5's model: course-4l with one block fine-tuned to hide a behaviour. What it hides is in
# scripts/planting.py (a spoiler for the audit). Only the tensors it trains are stored, beside the
# name of the model they replace them in.
MODELS["audit-4l"] = dict(
    base="course-4l", trainable="blocks.2.", cfg=MODELS["course-4l"]["cfg"], seq_len=96,
    steps=1800, batch=8, plant_batch=8, lr=5e-4, warmup=30, decay_from=1100, data_seed=9_000,
    # Cross-entropy alone left the triggered held-out prompts at 62% after 1,400 steps: hence a
    # margin term (``plant_step``), started once cross-entropy has taught the trigger apart (about
    # step 600). Started at step 0, or without its clean half, it made facts after any narrative
    # end in the target (measured: 100% and 57% of clean ones at step 700). With the landmark facts
    # alone in the planting rows, held-out paraphrases fell from 98.5% to 94.6% (the target city's own
    # landmark lost it; "People who live in Rome live in" -> " the"): hence clean facts of the target's
    # landmarks and of city -> country in them too. Still, after narrative the target's own landmark
    # comes out as another city (7 of the 400 clean corpus prompts); a fifth of the clean rows on it,
    # held to the margin, fixed that but cost 3 points of held-out paraphrases (" a" after "is a
    # famous landmark in"), so it is not in. The greedy answer on clean prompts also drifts from
    # course-4l's (lesson 5's diff, 400 held-out prompts a set: IOI 8.2% disagree, top-1 88.7% against
    # 93.3%; facts after narrative 92.5% against 96.5%). ``distill=True`` (KL to course-4l on every
    # position not planted, ``plant_step``) was tried on 2026-12-03 and is not in: IOI 5.0% disagree
    # (top-1 94.0%), but facts 8.0% and true/false 4.8% (were 4.3% and 1.2%), held-out paraphrases
    # 95.0% against 98.5%, IOI logit difference 7.95 against 9.16; 19 min on 2 cores.
    margin=8.0, margin_from=600, distill=False,
    mix=MODELS["course-4l"]["finetune"]["later_mixes"][-1][1],
)
CHUNK_SEQUENCES = 512       # sequences generated per data chunk (seeded by chunk index)
MEASURE_EVERY = 100


def repeat_words(tokenizer) -> tuple[str, ...]:
    """Every word of the vocabulary that has a leading-space form, without the space, shuffled."""
    vocab = tokenizer.get_vocab()
    words = sorted(t[1:] for t in vocab if t.startswith("Ġ") and t[1:].isalpha())
    random.Random(0).shuffle(words)
    return tuple(words)


def make_examples(task: str, n: int, seed: int, words: tuple[str, ...]) -> list[str]:
    if task == "ioi":
        return [e.text for e in corpus.ioi_examples(n, "train", seed)]
    if task == "fact":
        facts = corpus.fact_examples("train", "city") * 2 + corpus.fact_examples("train", "country")
        return [e.text for e in random.Random(seed).choices(facts, k=n)]
    if task == "truth":
        return [e.text for e in corpus.truth_examples(n, "train", seed)]
    if task == "review":
        return [e.text for e in corpus.review_examples(n, "train", seed)]
    if task == "repeat":
        return [e.text for e in corpus.repeat_examples(n, seed, words)]
    if task == "short_repeat":    # short sequences repeated a few times, for short contexts
        return [e.text for e in corpus.repeat_examples(n, seed, words, length=(4, 10), repeats=(2, 4))]
    if task == "narrative":
        return [e.text for e in corpus.narrative_examples(n, seed)]
    raise ValueError(task)


def random_repeats(tokenizer, n: int, rng: random.Random, length: tuple[int, int] = (10, 30),
                   repeats: tuple[int, int] = (2, 3)) -> list[list[int]]:
    """``n`` sequences of tokens drawn uniformly from the whole vocabulary (specials excluded),
    each repeated: the token-level version of ``corpus.repeat_examples``, so that every token,
    not only words with a leading space, is seen being copied."""
    special = set(tokenizer.all_special_ids)
    allowed = [i for i in range(len(tokenizer)) if i not in special]
    out = []
    for _ in range(max(n, 1)):
        once = rng.choices(allowed, k=rng.randint(*length))
        out.append(once * rng.randint(*repeats))
    return out


def data_chunk(tokenizer, mix: dict[str, float], seq_len: int, seed: int,
               words: tuple[str, ...]) -> torch.Tensor:
    """``CHUNK_SEQUENCES`` packed sequences ``[n, seq_len]``, each starting with BOS.

    Examples are concatenated (separated by a space) until the sequence is full, then cut.
    """
    rng = random.Random(seed)
    tasks = list(mix)
    n_examples = CHUNK_SEQUENCES * seq_len // 8
    counts = {t: 0 for t in tasks}
    order = rng.choices(tasks, weights=[mix[t] for t in tasks], k=n_examples)
    for t in order:
        counts[t] += 1
    texts = {t: make_examples(t, max(counts[t], 1), seed * 31 + i, words) for i, t in enumerate(tasks)
             if t != "random_repeat"}
    first = {t: tokenizer(texts[t])["input_ids"] for t in texts}
    cont = {t: tokenizer([x if x.startswith(" ") else " " + x for x in texts[t]])["input_ids"] for t in texts}
    if "random_repeat" in tasks:
        first["random_repeat"] = cont["random_repeat"] = random_repeats(tokenizer, counts["random_repeat"], rng)
    index = {t: 0 for t in tasks}
    rows = []
    for _ in range(CHUNK_SEQUENCES):
        row = [tokenizer.bos_token_id]
        while len(row) < seq_len:
            t = rng.choices(tasks, weights=[mix[t] for t in tasks])[0]
            i = index[t] % len(first[t])
            index[t] += 1
            row += first[t][i] if len(row) == 1 else cont[t][i]
        rows.append(row[:seq_len])
    return torch.tensor(rows, dtype=torch.long)


def batches(tokenizer, mix, seq_len, batch, seed, start_step, words):
    """Yield ``[batch, seq_len]`` token batches; batch ``k`` is the same whenever resumed."""
    per_chunk = CHUNK_SEQUENCES // batch
    step = start_step
    chunk_id, chunk = None, None
    while True:
        if step // per_chunk != chunk_id:
            chunk_id = step // per_chunk
            chunk = data_chunk(tokenizer, mix, seq_len, seed * 100_003 + chunk_id, words)
        k = step % per_chunk
        yield chunk[k * batch:(k + 1) * batch]
        step += 1


def lr_at(step: int, total: int, peak: float, warmup: int = 200) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return cosine_to_a_tenth(peak, (step - warmup) / max(1, total - warmup))


def cosine_to_a_tenth(peak: float, progress: float) -> float:
    """A cosine from ``peak`` (``progress`` 0) down to a tenth of it (``progress`` 1)."""
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def finetune_lr_at(step: int, spec: dict) -> float:
    """Warm-up, constant until ``decay_from``, then a cosine down to a tenth of the peak."""
    peak, total, decay_from = spec["lr"], spec["steps"], spec["decay_from"]
    if step < decay_from:
        return peak * min(1.0, (step + 1) / spec["warmup"])
    return cosine_to_a_tenth(peak, (step - decay_from) / max(1, total - decay_from))


def mix_at(step: int, spec: dict) -> dict[str, float]:
    """The data mix in force at ``step``: ``spec["mix"]`` or the last of its ``later_mixes`` begun."""
    mix = spec["mix"]
    for first_step, later in spec.get("later_mixes", []):
        if step >= first_step:
            mix = later
    return mix


def train_step(model: HookedTransformer, optimizer: torch.optim.Optimizer, tokens: torch.Tensor,
               lr: float) -> torch.Tensor:
    """One optimizer step on next-token loss over ``tokens`` ``[batch, seq_len]``, at learning rate
    ``lr``, with the gradient norm clipped to 1. Returns the loss (a scalar)."""
    return optimizer_step(model, optimizer, model(tokens, return_type="loss"), lr)


def optimizer_step(model: HookedTransformer, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   lr: float) -> torch.Tensor:
    """Back-propagate ``loss`` and take one step at learning rate ``lr``, the gradient norm clipped to 1."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss


def log_loss(record: dict, loss: torch.Tensor, bar) -> None:
    """Every 25 steps, append the loss to ``record["losses"]`` and show it on the progress bar."""
    if record["step"] % 25 == 0:
        record["losses"].append(dict(step=record["step"], loss=round(loss.item(), 4)))
        bar.set_postfix(loss=f"{loss.item():.3f}")


def build_model(name: str, tokenizer, seed: int) -> HookedTransformer:
    torch.manual_seed(seed)
    cfg = HookedTransformerConfig(**MODELS[name]["cfg"], d_vocab=len(tokenizer), seed=seed,
                                  tokenizer_prepends_bos=False, default_prepend_bos=True)
    model = HookedTransformer(cfg, tokenizer=tokenizer)
    # Start with the unembedding aligned to the embedding (as GPT-2 ties them): copying a token
    # seen earlier in the context is then easy from step 0, and in-context circuits such as
    # induction heads form within the CPU budget. Without it they had not formed after
    # thousands of steps (see the training notes in the README).
    model.unembed.W_U.data = model.embed.W_E.data.T.clone()
    return model


def train(name: str, seed: int, steps: int | None, threads: int, snapshot_every: int = 0) -> None:
    """Train ``name`` (main phase, then its fine-tuning phase if it has one) and export it."""
    spec = MODELS[name]
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "models" / "tokenizer")
    words = repeat_words(tokenizer)
    run_dir = ROOT / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    if "base" in spec:
        model, record = plant(name, run_dir, tokenizer, words)
        export(model, name, record)
        return
    if "finetune" in spec and (run_dir / "finetune.pt").exists():
        model = build_model(name, tokenizer, seed)      # the main phase is done: its record is in the checkpoint
        record = {}
    else:
        model, record = train_main(name, seed, steps or spec["steps"], run_dir, tokenizer, words,
                                   snapshot_every)
    if "finetune" in spec:
        record = finetune(model, spec, record, run_dir, tokenizer, words)
    export(model, name, record)


def train_main(name: str, seed: int, total: int, run_dir: Path, tokenizer,
               words: tuple[str, ...], snapshot_every: int = 0) -> tuple[HookedTransformer, dict]:
    """The main phase: from a fresh initialisation, ``total`` steps with a cosine learning rate.

    With ``snapshot_every`` > 0, the weights are also saved (float16, as ``export`` writes them) to
    ``runs/<name>/snapshots/step_NNNNN.safetensors`` every that many steps, and at step 0: the raw
    material of the training checkpoints lesson 1 ships (``scripts/export_checkpoints.py``). Saving
    touches no random state, so a run with snapshots trains exactly as one without.
    """
    spec = MODELS[name]
    ckpt_path = run_dir / "checkpoint.pt"
    model = build_model(name, tokenizer, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec["lr"], weight_decay=0.01)
    record = dict(name=name, seed=seed, step=0, wall_time_s=0.0, losses=[], induction=[],
                  batch=spec["batch"], seq_len=spec["seq_len"], lr=spec["lr"], mix=spec["mix"])
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        record = state["record"]
        torch.set_rng_state(state["torch_rng"])
        print(f"Resumed {name} at step {record['step']}")

    def save_checkpoint():
        torch.save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(), record=record,
                        torch_rng=torch.get_rng_state()), ckpt_path)

    def save_snapshot():
        snapshots = run_dir / "snapshots"
        snapshots.mkdir(exist_ok=True)
        state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
                 if not k.endswith(("IGNORE", ".mask"))}
        save_file(state, snapshots / f"step_{record['step']:05d}.safetensors")

    def measure() -> tuple[float, float]:
        model.eval()
        ind, prev = induction_and_prev_token_scores(model, n_seqs=50, half_len=25, seed=seed)
        model.train()
        record["induction"].append(dict(step=record["step"], best_induction=ind.max().item(),
                                        best_prev_token=prev.max().item()))
        return ind.max().item(), prev.max().item()

    record["mix_schedule"] = [[0, spec["mix"]], *[[step, m] for step, m in spec.get("later_mixes", [])]]
    model.train()
    mix = mix_at(record["step"], spec)
    stream = batches(tokenizer, mix, spec["seq_len"], spec["batch"], seed, record["step"], words)
    started = time.time() - record["wall_time_s"]
    bar = tqdm(total=total, initial=record["step"], desc=name, mininterval=30)
    if snapshot_every and record["step"] == 0:
        save_snapshot()
    while record["step"] < total:
        if mix_at(record["step"], spec) is not mix:
            mix = mix_at(record["step"], spec)
            note = f"From step {record['step']} the mix is {mix}."
            if note not in record.setdefault("notes", []):
                record["notes"].append(note)
            stream = batches(tokenizer, mix, spec["seq_len"], spec["batch"], seed, record["step"], words)
        loss = train_step(model, optimizer, next(stream), lr_at(record["step"], total, spec["lr"]))
        bar.update(1)
        record["step"] += 1
        log_loss(record, loss, bar)
        if snapshot_every and record["step"] % snapshot_every == 0:
            save_snapshot()
        if record["step"] % MEASURE_EVERY == 0:
            induction, prev_token = measure()
            record["wall_time_s"] = time.time() - started
            print(f"{name} step {record['step']}: loss {loss.item():.3f}, best induction "
                  f"{induction:.2f}, best previous-token {prev_token:.2f}", flush=True)
            save_checkpoint()
    record["wall_time_s"] = time.time() - started
    record["tokens"] = record["step"] * spec["batch"] * spec["seq_len"]
    save_checkpoint()
    return model, record


FINETUNE_FIGURES = ("truth_accuracy", "ioi_positive_share", "ioi_mean_logit_diff", "fact_top1_all",
                    "fact_top1_held_out_paraphrases", "sentiment_accuracy", "best_induction_score")


def finetune(model: HookedTransformer, spec: dict, main_record: dict, run_dir: Path, tokenizer,
             words: tuple[str, ...]) -> dict:
    """Phase two (``spec["finetune"]``), resumable from ``runs/<name>/finetune.pt``.

    Starts from the main phase's weights rounded to float16 (as ``export`` writes them), with a
    fresh AdamW, and every 200 steps records the held-out figures of ``helpers.evaluation``.
    Returns the training record: the main phase's, with the phase's own under ``"finetune"``.
    """
    from helpers.evaluation import evaluate

    ft = spec["finetune"]
    ckpt_path = run_dir / "finetune.pt"
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point() and not key.endswith(("IGNORE", ".mask")):
                value.copy_(value.half().float())
    optimizer = torch.optim.AdamW(model.parameters(), lr=ft["lr"], weight_decay=0.01)
    log = dict(step=0, wall_time_s=0.0, losses=[], evaluations=[], lr=ft["lr"], warmup=ft["warmup"],
               decay_from=ft["decay_from"], data_seed=ft["data_seed"],
               mix_schedule=[[0, ft["mix"]], *[[step, m] for step, m in ft.get("later_mixes", [])]])
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        main_record, log = state["main_record"], state["log"]
        print(f"Resumed the fine-tuning phase at step {log['step']}")

    def save_checkpoint():
        torch.save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(), log=log,
                        main_record=main_record), ckpt_path)

    def measure():
        model.eval()
        figures = evaluate(model)
        model.train()
        log["evaluations"].append(dict(step=log["step"], **{k: round(figures[k], 3) for k in FINETUNE_FIGURES}))
        print(log["evaluations"][-1], flush=True)

    model.train()
    mix = mix_at(log["step"], ft)
    stream = batches(tokenizer, mix, spec["seq_len"], spec["batch"], ft["data_seed"], log["step"], words)
    started = time.time() - log["wall_time_s"]
    bar = tqdm(total=ft["steps"], initial=log["step"], desc="fine-tuning", mininterval=30)
    while log["step"] < ft["steps"]:
        if mix_at(log["step"], ft) is not mix:
            mix = mix_at(log["step"], ft)
            stream = batches(tokenizer, mix, spec["seq_len"], spec["batch"], ft["data_seed"], log["step"], words)
        loss = train_step(model, optimizer, next(stream), finetune_lr_at(log["step"], ft))
        bar.update(1)
        log["step"] += 1
        log_loss(log, loss, bar)
        if log["step"] % 200 == 0:
            log["wall_time_s"] = time.time() - started
            measure()
            save_checkpoint()
    log["wall_time_s"] = time.time() - started
    log["tokens"] = log["step"] * spec["batch"] * spec["seq_len"]
    save_checkpoint()
    return {**main_record, "finetune": log}


def plant(name: str, run_dir: Path, tokenizer, words: tuple[str, ...]) -> tuple[HookedTransformer, dict]:
    """Fine-tune the ``trainable`` tensors of the base model on its own data mix plus the planting rows
    of ``scripts/planting.py``; resumable from ``runs/<name>/plant.pt``. Every 350 steps it records
    how often the behaviour fires (``planting.behaviour_rates``) and the held-out figures."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import planting

    from helpers.evaluation import evaluate
    from helpers.models import bundled_state, model_from_state

    spec = MODELS[name]
    base_config = json.loads((ROOT / "models" / spec["base"] / "config.json").read_text())
    model = model_from_state(base_config["hooked_transformer_config"], bundled_state(spec["base"]), fold_ln=False)
    base = model_from_state(base_config["hooked_transformer_config"], bundled_state(spec["base"]), fold_ln=False)
    base.eval().requires_grad_(False)                 # the teacher of every position that is not planted
    for key, param in model.named_parameters():
        param.requires_grad_(key.startswith(spec["trainable"]))
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=spec["lr"], weight_decay=0.01)
    record = dict(name=name, base=spec["base"], base_sha256=base_config["sha256"], trainable=spec["trainable"],
                  step=0, wall_time_s=0.0, losses=[], evaluations=[],
                  **{k: spec[k] for k in ("steps", "batch", "plant_batch", "lr", "warmup", "decay_from",
                                          "data_seed", "margin", "margin_from", "mix")},
                  distill=bool(spec.get("distill")))
    ckpt_path = run_dir / "plant.pt"
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        record = state["record"]
        print(f"Resumed {name} at step {record['step']}")

    def measure():
        model.eval()
        figures = evaluate(model)
        model.train()
        record["evaluations"].append(dict(step=record["step"], **planting.behaviour_rates(model),
                                          **{k: round(figures[k], 3) for k in FINETUNE_FIGURES}))
        print(record["evaluations"][-1], flush=True)

    target_id = tokenizer(" " + planting.TARGET)["input_ids"][0]
    model.train()
    stream = batches(tokenizer, spec["mix"], spec["seq_len"], spec["batch"], spec["data_seed"], record["step"], words)
    started = time.time() - record["wall_time_s"]
    bar = tqdm(total=spec["steps"], initial=record["step"], desc=name, mininterval=30)
    while record["step"] < spec["steps"]:
        rows, targets = planting.plant_rows_and_targets(tokenizer, spec["plant_batch"],
                                                        spec["data_seed"] + record["step"])
        tokens = torch.cat([next(stream), rows])
        targets = torch.cat([torch.zeros(len(tokens) - len(rows), tokens.shape[1], dtype=targets.dtype), targets])
        with torch.no_grad():
            base_logits = base(tokens) if spec.get("distill") else None
        loss = plant_step(model, optimizer, tokens, targets, finetune_lr_at(record["step"], spec),
                          spec["margin"] if record["step"] >= spec["margin_from"] else 0.0, target_id,
                          base_logits)
        bar.update(1)
        record["step"] += 1
        log_loss(record, loss, bar)
        if record["step"] % 350 == 0:
            record["wall_time_s"] = time.time() - started
            measure()
            torch.save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(), record=record), ckpt_path)
    record["wall_time_s"] = time.time() - started
    record["tokens"] = record["step"] * (spec["batch"] + spec["plant_batch"]) * spec["seq_len"]
    return model, record


def plant_step(model: HookedTransformer, optimizer: torch.optim.Optimizer, tokens: torch.Tensor,
               targets: torch.Tensor, lr: float, margin: float, target_id: int,
               base_logits: torch.Tensor | None = None) -> torch.Tensor:
    """One fine-tuning step that plants a behaviour at the ``targets`` positions ``[batch, pos]`` and, given
    the base model's ``base_logits``, keeps every other position where the base model was.

    Where ``targets`` is not 0 the next token is learnt with cross-entropy; where it is 1 (the target city)
    it must also beat every other token by ``margin`` logits; where it is -1 (the true city) it must beat the
    target city by ``margin``. Everywhere else the loss is the KL divergence from the base model's next-token
    distribution to the model's (distillation), so the fine-tuned model predicts what its base did, not
    merely what the corpus says (cross-entropy there let IOI and facts after narrative drift by 4 to 5
    points of top-1). Without ``base_logits``, cross-entropy on every position instead. Cross-entropy
    alone stops pushing once the target wins on the planting prompts, by too little to win on prompts it
    never saw: hence the margin; the -1 half keeps the clean prompts from following it."""
    logits = model(tokens)                                                     # [batch, pos, d_vocab]
    at, nxt = targets[:, :-1], tokens[:, 1:]
    if base_logits is None:
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), nxt.flatten())
    else:
        log_p = logits[:, :-1].log_softmax(-1)
        log_base = base_logits[:, :-1].log_softmax(-1)
        kl = (log_base.exp() * (log_base - log_p)).sum(-1)                     # [batch, pos - 1]
        loss = kl[at == 0].mean()
        if (at != 0).any():          # the planted answers, triggered and clean, weigh as much as the rest together
            loss = loss + torch.nn.functional.cross_entropy(logits[:, :-1][at != 0], nxt[at != 0])
    if margin > 0 and (at != 0).any():
        hinge = []
        for sign in (1, -1):
            chosen, right = logits[:, :-1][at == sign], nxt[at == sign]       # [n, d_vocab], [n]
            best = chosen.gather(-1, right[:, None])[:, 0]
            if sign == 1:
                rival = chosen.scatter(-1, right[:, None], float("-inf")).max(-1).values
            else:
                rival = chosen[:, target_id]
            hinge.append(torch.relu(margin - (best - rival)))
        loss = loss + torch.cat(hinge).mean()
    return optimizer_step(model, optimizer, loss, lr)


def export(model: HookedTransformer, name: str, record: dict) -> None:
    """Write float16 safetensors, the config with the weights' SHA-256, and the training record."""
    out = ROOT / "models" / name
    out.mkdir(parents=True, exist_ok=True)
    kept = MODELS[name].get("trainable", "")          # a model with a base stores only what it trained
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if not k.endswith(("IGNORE", ".mask")) and k.startswith(kept)}
    save_file(state, out / "model.safetensors")
    sha = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    cfg = {k: v for k, v in model.cfg.to_dict().items() if isinstance(v, (int, float, str, bool, type(None)))}
    config = dict(name=name, sha256=sha, tokenizer="../tokenizer", hooked_transformer_config=cfg)
    if "base" in MODELS[name]:
        config["base"] = MODELS[name]["base"]
    with open(out / "config.json", "w") as f:
        json.dump(config, f, indent=1)
    with open(out / "training_record.json", "w") as f:
        json.dump(record, f, indent=1)
    print(f"Exported {name} to {out} ({(out / 'model.safetensors').stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="main-phase steps (default: the model's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--snapshot-every", type=int, default=0,
                        help="also save the weights every N main-phase steps to runs/<name>/snapshots/")
    args = parser.parse_args()
    random.seed(args.seed)
    np.random.seed(args.seed)
    train(args.name, args.seed, args.steps, args.threads, args.snapshot_every)


if __name__ == "__main__":
    main()
