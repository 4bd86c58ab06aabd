"""Train lesson 2's sparse autoencoder on the 4-layer model's residual stream, with SAELens's own runner.

    python scripts/train_sae.py                  # blocks.2.hook_resid_pre, into
                                                 # models/sae/course-4l-blocks.2.hook_resid_pre/
    python scripts/train_sae.py --layer 1        # another layer's residual stream
    python scripts/train_sae.py --quick          # about a minute, into runs/sae/quick/ (for testing)

Everything is offline. SAELens's ``LanguageModelSAETrainingRunner`` is handed the bundled model
(``override_model``: ``load_model("course-4l")``, LayerNorm folded as the lessons load it) and a
local stream of pre-tokenized sequences (``override_dataset``): the course corpus of
``helpers/corpus.py``, packed into ``n_ctx``-token sequences by the very code that trained the model
(``batches`` in ``scripts/train_models.py``), but from other seeds than the model saw. No hub, no
wandb. The BOS position is left out of training and evaluation (its residual stream is an outlier).

The output folder is SAELens's own on-disk format, so ``SAE.load_from_disk(folder)`` loads it
(``helpers.sae.load_sae`` does): ``cfg.json``, ``sae_weights.safetensors``, ``sparsity.safetensors``
and ``runner_cfg.json``, plus ``training_record.json`` (seed, steps, tokens, wall time, and
held-out metrics computed with ``sae_lens.evals.run_evals``: L0, explained variance, MSE, dead
latents, CE loss recovered).

The SAE shipped in ``models/sae/`` was trained with ``--tokens 1500000`` (24 minutes at about 1,000
tokens/s on 2 shared CPU cores); its ``training_record.json`` says so.

Seeded: the same command on the same machine gives the same SAE. Resumable: the runner
checkpoints to ``runs/sae/<name>/checkpoints/`` a few times per run (and on Ctrl-C); starting the
same command again resumes from the latest checkpoint (``--fresh`` starts over). A resumed run
continues the same data stream but not the same shuffling, so it is close to, not bit-identical
with, an uninterrupted one. A finished run deletes its checkpoints.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")        # nothing here may touch the hub
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import numpy as np  # noqa: E402
import sae_lens  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset, Features, IterableDataset, Sequence, Value  # noqa: E402
from sae_lens import (  # noqa: E402
    SAE,
    LanguageModelSAERunnerConfig,
    LanguageModelSAETrainingRunner,
    LoggingConfig,
    StandardTrainingSAEConfig,  # noqa: E402
)
from sae_lens.evals import EvalConfig, run_evals  # noqa: E402
from sae_lens.training._interruption import InterruptedException  # noqa: E402
from sae_lens.training.activation_scaler import ActivationScaler  # noqa: E402
from sae_lens.training.activations_store import ActivationsStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from train_models import CHUNK_SEQUENCES, MODELS, batches, repeat_words  # noqa: E402

from helpers.models import MODELS_DIR, load_model, load_tokenizer  # noqa: E402

MODEL = "course-4l"
DEFAULT_LAYER = 2
TRAIN_DATA_SEED = 1_000     # the corpus stream's seed is this plus --seed; the model trained on seed 0
EVAL_DATA_SEED = 2_000      # held-out sequences for the final evaluation

# The full run, sized for about 10 to 15 minutes on 2 free CPU cores. Measured on a busy 2-core
# machine with 1 thread: one SAELens training step of 2048 tokens with 4096 latents took 0.46 s
# (0.22 s with 2048 latents), and the whole pipeline (corpus generation, the model up to the hook,
# the SAE step) ran at about 3,000 tokens/s.
FULL = dict(expansion=16, tokens=5_000_000, batch_tokens=2048, lr=4e-4, l1=5.0,
            norm_batches=25, eval_batches=10, n_checkpoints=8)
# --quick: a smoke test of the whole path, well under a minute of training.
QUICK = dict(expansion=16, tokens=60 * 1024, batch_tokens=1024, lr=4e-4, l1=5.0,
             norm_batches=2, eval_batches=1, n_checkpoints=1)
PLANT_EVERY = 7            # for a model with a base: one row of its fine-tuning data after every 7
STORE_BATCH_PROMPTS = 32    # sequences per forward pass of the model when collecting activations
BUFFER_SEQUENCES = 256      # activations of this many sequences are shuffled together


def sae_name(layer: int) -> str:
    return f"{MODEL}-{hook_name(layer)}"


def hook_name(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_pre"


def final_mix() -> dict[str, float]:
    """The task mix the model was trained on last (its final ``later_mixes`` entry, else ``mix``)."""
    spec = MODELS[MODEL]
    later = spec.get("later_mixes") or ([spec["later_mix"]] if "later_mix" in spec else [])
    return dict(later[-1][1]) if later else dict(spec["mix"])


def corpus_rows(seed: int, seq_len: int):
    """Endless ``{"input_ids": [seq_len ints]}`` rows, each starting with BOS: the mix the model was
    trained on last (:func:`final_mix`), packed by ``train_models.batches`` (one 512-sequence chunk
    at a time, seeded per chunk)."""
    tokenizer = load_tokenizer()
    words = repeat_words(tokenizer)
    mix = final_mix()
    chunks = batches(tokenizer, mix, seq_len, CHUNK_SEQUENCES, seed, 0, words)
    rows = (row for chunk in chunks for row in chunk.tolist())
    if "base" in MODELS[MODEL]:           # a fine-tuned model: its fine-tuning rows too (scripts/planting.py)
        import planting
        rows = planting.with_plant_rows(rows, tokenizer, PLANT_EVERY, seed, seq_len)
    for row in rows:
        yield {"input_ids": row}


def corpus_stream(seed: int, seq_len: int) -> IterableDataset:
    """The training data as a local streaming ``datasets.IterableDataset`` (generated on the fly)."""
    features = Features({"input_ids": Sequence(Value("int32"))})
    return IterableDataset.from_generator(corpus_rows, gen_kwargs=dict(seed=seed, seq_len=seq_len),
                                          features=features)


def corpus_sample(seed: int, seq_len: int, n_sequences: int) -> Dataset:
    """``n_sequences`` rows of the same stream, in memory (for evaluation)."""
    rows = corpus_rows(seed, seq_len)
    return Dataset.from_dict({"input_ids": [next(rows)["input_ids"] for _ in range(n_sequences)]})


class CourseSAERunner(LanguageModelSAETrainingRunner):
    """SAELens's runner with two changes to checkpointing: only the latest checkpoint is kept, and
    Ctrl-C saves a complete checkpoint (the stock runner then saves only the data position)."""

    started: float = 0.0      # time.time() at the start, less the wall time of earlier sessions

    def run_trainer_with_interruption_handling(self, trainer):
        self._trainer = trainer
        return super().run_trainer_with_interruption_handling(trainer)

    def save_checkpoint(self, checkpoint_path: Path | None) -> None:
        if checkpoint_path is None:
            return
        path = Path(checkpoint_path)
        if not (path / "trainer_state.pt").exists():      # the stock save on Ctrl-C: make it complete
            self._trainer.save_checkpoint(checkpoint_name=path.name)   # calls back here with the state
            print(f"\nInterrupted: checkpoint saved at {int(path.name):,} tokens. "
                  f"Run the same command again to resume.", flush=True)
            return
        super().save_checkpoint(path)
        (path / "wall_time.json").write_text(json.dumps({"wall_time_s": time.time() - self.started}))
        for old in path.parent.iterdir():
            if old != path and old.name.isdigit():
                shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The newest complete checkpoint (weights and trainer state) under ``checkpoints``, if any."""
    if not checkpoints.is_dir():
        return None
    done = [p for p in checkpoints.iterdir() if p.name.isdigit()
            and (p / "sae_weights.safetensors").exists() and (p / "trainer_state.pt").exists()]
    return max(done, key=lambda p: int(p.name), default=None)


def build_config(layer: int, spec: dict, seed: int, out_dir: Path, checkpoints: Path,
                 bos: int) -> LanguageModelSAERunnerConfig:
    d_in = MODELS[MODEL]["cfg"]["d_model"]
    seq_len = MODELS[MODEL]["seq_len"]
    steps = spec["tokens"] // spec["batch_tokens"]
    cfg = LanguageModelSAERunnerConfig(
        sae=StandardTrainingSAEConfig(
            d_in=d_in, d_sae=spec["expansion"] * d_in,
            l1_coefficient=spec["l1"], l1_warm_up_steps=steps // 20,
            # inputs scaled to mean norm sqrt(d_in) while training; folded back into the saved weights
            normalize_activations="expected_average_only_in",
        ),
        model_name=MODEL,
        model_class_name="HookedTransformer",
        # empty: the model is passed in (load_model folds LayerNorm), and SAELens warns on every
        # load of an SAE whose metadata has these kwargs; `model_load` in the metadata says it instead
        model_from_pretrained_kwargs={},
        hook_name=hook_name(layer),
        dataset_path=(f"local: helpers/corpus.py packed by scripts/train_models.py (seed {TRAIN_DATA_SEED + seed}, "
                      f"the model's final mix)"),
        is_dataset_tokenized=True,
        streaming=True,
        context_size=seq_len,
        prepend_bos=True,                    # every packed sequence starts with BOS
        exclude_special_tokens=[bos],        # BOS only occurs at position 0; its activations are outliers
        training_tokens=spec["tokens"],
        train_batch_size_tokens=spec["batch_tokens"],
        store_batch_size_prompts=STORE_BATCH_PROMPTS,
        n_batches_in_buffer=BUFFER_SEQUENCES,  # buffer = n_batches_in_buffer * context_size tokens in 6.x
        n_batches_for_norm_estimate=spec["norm_batches"],
        lr=spec["lr"], lr_scheduler_name="constant",
        lr_warm_up_steps=steps // 20, lr_decay_steps=steps // 5,
        dead_feature_window=max(1, min(1000, steps // 4)),
        feature_sampling_window=max(1, min(2000, steps // 2)),
        device="cpu", dtype="float32", seed=seed,
        logger=LoggingConfig(log_to_wandb=False),
        n_checkpoints=spec["n_checkpoints"],
        checkpoint_path=str(checkpoints),
        output_path=str(out_dir),
        verbose=False,
    )
    cfg.checkpoint_path = str(checkpoints)   # __post_init__ appends a random id; resuming needs a fixed path
    return cfg


def _relative(value: Any) -> Any:
    """Paths under the repository written relative to it (the records are committed)."""
    if isinstance(value, str) and value.startswith(str(ROOT) + os.sep):
        return os.path.relpath(value, ROOT)
    return value


def evaluate(sae: SAE, model, seed: int, eval_batches: int, bos: int) -> dict:
    """Held-out metrics with SAELens's ``run_evals`` (BOS positions left out)."""
    seq_len = MODELS[MODEL]["seq_len"]
    n_seqs = 2 * eval_batches * STORE_BATCH_PROMPTS   # reconstruction batches, then sparsity batches
    data = corpus_sample(EVAL_DATA_SEED + seed, seq_len, n_seqs)
    eval_cfg = EvalConfig(batch_size_prompts=STORE_BATCH_PROMPTS,
                          n_eval_reconstruction_batches=eval_batches, compute_ce_loss=True,
                          compute_kl=True, n_eval_sparsity_variance_batches=eval_batches,
                          compute_l2_norms=True, compute_sparsity_metrics=True,
                          compute_variance_metrics=True, compute_featurewise_density_statistics=True)
    with warnings.catch_warnings():   # a "fewer samples than tokens" false alarm, and a copy notice
        warnings.filterwarnings("ignore", message=".*(fewer samples|copy construct from a tensor).*")
        store = ActivationsStore.from_sae(model, sae, dataset=data, context_size=seq_len, streaming=False,
                                          store_batch_size_prompts=STORE_BATCH_PROMPTS, device="cpu")
        metrics, features = run_evals(sae, store, model, ActivationScaler(), eval_cfg,
                                      exclude_special_tokens=[bos])
    density = torch.tensor(features["feature_density"])
    eval_tokens = eval_batches * STORE_BATCH_PROMPTS * (seq_len - 1)
    return dict(
        eval_tokens=eval_tokens,
        l0=metrics["sparsity"]["l0"],
        l1=metrics["sparsity"]["l1"],
        explained_variance=metrics["reconstruction_quality"]["explained_variance"],
        mse=metrics["reconstruction_quality"]["mse"],
        cosine_similarity=metrics["reconstruction_quality"]["cossim"],
        l2_ratio=metrics["shrinkage"]["l2_ratio"],
        ce_loss_recovered=metrics["model_performance_preservation"]["ce_loss_score"],
        ce_loss_without_sae=metrics["model_performance_preservation"]["ce_loss_without_sae"],
        ce_loss_with_sae=metrics["model_performance_preservation"]["ce_loss_with_sae"],
        ce_loss_with_zero_ablation=metrics["model_performance_preservation"]["ce_loss_with_ablation"],
        kl_div_with_sae=metrics["model_behavior_preservation"]["kl_div_with_sae"],
        dead_latents=int((density == 0).sum()),
        dense_latents=int((density > 0.1).sum()),
    )


def train(layer: int = DEFAULT_LAYER, quick: bool = False, seed: int = 0, out: Path | None = None,
          run_dir: Path | None = None, threads: int = 2, fresh: bool = False, **overrides) -> dict:
    """Train (or resume) the SAE on ``blocks.{layer}.hook_resid_pre``; return the training record."""
    spec = {**(QUICK if quick else FULL), **{k: v for k, v in overrides.items() if v is not None}}
    name = sae_name(layer)
    out = Path(out) if out else (ROOT / "runs" / "sae" / "quick" / name if quick else MODELS_DIR / "sae" / name)
    run_dir = Path(run_dir) if run_dir else ROOT / "runs" / "sae" / (name + ("-quick" if quick else ""))
    checkpoints = run_dir / "checkpoints"
    if fresh:
        shutil.rmtree(checkpoints, ignore_errors=True)
    partial = out.with_name(out.name + ".partial")     # written here, moved to `out` when complete
    shutil.rmtree(partial, ignore_errors=True)

    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)                           # the SAE's initial weights and the shuffling

    model = load_model(MODEL)                         # folded LayerNorm, as the lessons load it
    bos = model.tokenizer.bos_token_id
    model_sha = json.loads((MODELS_DIR / MODEL / "config.json").read_text())["sha256"]
    cfg = build_config(layer, spec, seed, partial, checkpoints, bos)

    resume = latest_checkpoint(checkpoints)
    wall_before = 0.0
    if resume is not None:
        saved = json.loads((resume / "runner_cfg.json").read_text())
        keys = ["hook_name", "training_tokens", "train_batch_size_tokens", "lr", "seed"]
        differ = [k for k in keys if saved.get(k) != getattr(cfg, k)]
        differ += [f"sae.{k}" for k in ("d_sae", "l1_coefficient") if saved["sae"].get(k) != getattr(cfg.sae, k)]
        if differ:
            raise SystemExit(f"The checkpoint {resume} was made with other settings ({', '.join(differ)}). "
                             f"Run with --fresh to start over, or with the same settings to resume.")
        wall_file = resume / "wall_time.json"
        wall_before = json.loads(wall_file.read_text())["wall_time_s"] if wall_file.exists() else 0.0
        cfg.resume_from_checkpoint = str(resume)
        print(f"Resuming {name} from {resume} ({int(resume.name):,} tokens done)", flush=True)

    runner = CourseSAERunner(cfg, override_dataset=corpus_stream(TRAIN_DATA_SEED + seed, cfg.context_size),
                             override_model=model)
    runner.started = time.time() - wall_before
    runner.sae.cfg.metadata.model_sha256 = model_sha   # saved in cfg.json: which weights it was trained on
    runner.sae.cfg.metadata.model_load = f"helpers.models.load_model({MODEL!r}) (fold_ln=True)"
    print(f"Training an SAE with {cfg.sae.d_sae} latents on {cfg.hook_name} of {MODEL}: "
          f"{cfg.training_tokens:,} tokens in {cfg.total_training_steps} steps of {cfg.train_batch_size_tokens}",
          flush=True)
    trained = runner.run()
    train_wall = time.time() - runner.started

    runner_cfg_path = partial / "runner_cfg.json"
    runner_cfg = json.loads(runner_cfg_path.read_text())
    runner_cfg.update({k: _relative(runner_cfg.get(k)) for k in ("checkpoint_path", "output_path",
                                                                 "resume_from_checkpoint")})
    runner_cfg["output_path"] = _relative(str(out))
    runner_cfg_path.write_text(json.dumps(runner_cfg, indent=1))

    sae = SAE.load_from_disk(partial, device="cpu")   # evaluate exactly what was saved
    metrics = evaluate(sae, model, seed, spec["eval_batches"], bos)
    record = dict(
        name=name, model=MODEL, model_sha256=model_sha, model_fold_ln=True, hook_name=cfg.hook_name,
        architecture="standard (ReLU, L1 penalty weighted by decoder norms)",
        d_in=cfg.sae.d_in, d_sae=cfg.sae.d_sae, seed=seed, quick=quick,
        steps=cfg.total_training_steps, tokens=cfg.training_tokens,
        batch_tokens=cfg.train_batch_size_tokens, context_size=cfg.context_size,
        lr=cfg.lr, lr_warm_up_steps=cfg.lr_warm_up_steps, lr_decay_steps=cfg.lr_decay_steps,
        l1_coefficient=cfg.sae.l1_coefficient, l1_warm_up_steps=cfg.sae.l1_warm_up_steps,
        normalize_activations=cfg.sae.normalize_activations,
        excluded_tokens=["BOS"], data=cfg.dataset_path, mix=final_mix(), eval_data_seed=EVAL_DATA_SEED + seed,
        resumed_from_tokens=int(resume.name) if resume is not None else None,
        wall_time_s=round(train_wall, 1), threads=threads,
        training_l0=trained.cfg.metadata.l0,
        training_dead_latents=trained.cfg.metadata.num_dead_features,
        dead_feature_window_steps=cfg.dead_feature_window,
        final=metrics,
        sae_lens=sae_lens.__version__, torch=torch.__version__, python=platform.python_version(),
    )
    (partial / "training_record.json").write_text(json.dumps(record, indent=1))
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(out)
    shutil.rmtree(checkpoints, ignore_errors=True)    # finished: a rerun starts from scratch
    m = metrics
    print(f"Saved {name} to {out} after {train_wall / 60:.1f} min: L0 {m['l0']:.1f}, explained variance "
          f"{m['explained_variance']:.3f}, CE loss recovered {m['ce_loss_recovered']:.3f}, "
          f"dead latents {m['dead_latents']}/{cfg.sae.d_sae}", flush=True)
    return record


def main(argv: list[str] | None = None) -> dict:
    global MODEL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, choices=["course-4l", "audit-4l"], help="the bundled model")
    parser.add_argument("--layer", type=int, default=DEFAULT_LAYER, help="residual stream before this block")
    parser.add_argument("--quick", action="store_true", help="a tiny run for testing (into runs/sae/quick/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=None, help=f"training tokens (default {FULL['tokens']:,})")
    parser.add_argument("--expansion", type=int, default=None, help="d_sae / d_model (default 16)")
    parser.add_argument("--l1", type=float, default=None, help=f"L1 coefficient (default {FULL['l1']})")
    parser.add_argument("--lr", type=float, default=None, help=f"learning rate (default {FULL['lr']})")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default models/sae/<name>/)")
    parser.add_argument("--run-dir", type=Path, default=None, help="checkpoints (default runs/sae/<name>/)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="ignore existing checkpoints and start over")
    args = parser.parse_args(argv)
    MODEL = args.model
    try:
        return train(args.layer, args.quick, args.seed, args.out, args.run_dir, args.threads, args.fresh,
                     tokens=args.tokens, expansion=args.expansion, l1=args.l1, lr=args.lr)
    except (KeyboardInterrupt, InterruptedException):   # SAELens turns SIGINT/SIGTERM into the latter
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
