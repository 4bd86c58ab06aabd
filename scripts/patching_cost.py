#!/usr/bin/env python3
"""Time lesson 3's residual-stream patching sweep on the course model and on a GPT-2-small-sized one.

    python scripts/patching_cost.py            # one run, prints a table and a JSON line
    python scripts/patching_cost.py --json     # only the JSON line (what ``course.py timings`` reads)

The sweep is the lesson's own call, ``transformer_lens.patching.get_act_patch_resid_pre``, on the
lesson's fact prompts ("The Eiffel Tower is in the city of" patched into "The Trevi Fountain is in the
city of", every layer's input at every position, one forward pass per (layer, position)):

* on ``course-4l``, the bundled 4-layer model the lessons use;
* on a randomly initialised ``HookedTransformer`` with GPT-2 small's shape (12 layers, d_model 768,
  12 heads of 64, d_mlp 3072, vocabulary 50,257, LayerNorm folded as ``from_pretrained`` folds it),
  built here, nothing downloaded. Its weights are random, so only its cost means anything: it gets
  seeded random token ids of the same length, and two random answer tokens.

Both run in the same process, alternating, ``--repeats`` rounds, after one warm-up forward pass each;
a round runs the course model's sweep ``COURSE_RUNS_PER_ROUND`` times (it lasts a fraction of a
second, so one run is at the mercy of anything else on the machine) and the GPT-2-sized one once.
The fastest run of each is reported, as ``timeit`` does: the slower ones were slowed by something else.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")                  # the patching utilities' progress bars

import torch
import transformer_lens.patching as patching
from transformer_lens import HookedTransformer, HookedTransformerConfig

from helpers import lesson3, load_model
from helpers.lesson3 import logit_diff

SEED = 0
COURSE_RUNS_PER_ROUND = 5
GPT2_SMALL_SHAPE = dict(n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, d_vocab=50257, n_ctx=1024,
                        act_fn="gelu_new", normalization_type="LN")


def gpt2_shaped_model(seed: int = SEED) -> HookedTransformer:
    """A randomly initialised model with GPT-2 small's shape, LayerNorm folded as ``load_model`` folds it."""
    cfg = HookedTransformerConfig(**GPT2_SMALL_SHAPE, seed=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        model = HookedTransformer(cfg, move_to_device=False)
        model.process_weights_(fold_ln=True, center_writing_weights=True, center_unembed=True)
        model.setup()
    return model.eval()


def course_sweep_inputs(model: HookedTransformer):
    """The lesson's fact prompts on the course model.

    Clean tokens and corrupted tokens ``[1, pos]``, and the answers ``[1, 2]``.
    """
    clean, corrupt = model.to_tokens(lesson3.FACT_CLEAN), model.to_tokens(lesson3.FACT_CORRUPT)
    answers = torch.tensor([[model.to_single_token(" Paris"), model.to_single_token(" Rome")]])
    return clean, corrupt, answers


def random_sweep_inputs(model: HookedTransformer, like: torch.Tensor, differ: torch.Tensor, seed: int = SEED):
    """Seeded random ids shaped like ``like``.

    The corrupted copy differs where ``differ`` (bool ``[batch, pos]``) is set.
    """
    generator = torch.Generator().manual_seed(seed)
    vocab = model.cfg.d_vocab
    clean = torch.randint(0, vocab, like.shape, generator=generator)
    clean[:, 0] = vocab - 1                                          # GPT-2's BOS is its last token
    corrupt = torch.where(differ, torch.randint(0, vocab, like.shape, generator=generator), clean)
    answers = torch.randint(0, vocab, (like.shape[0], 2), generator=generator)
    return clean, corrupt, answers


def sweep(model: HookedTransformer, clean: torch.Tensor, corrupt: torch.Tensor, answers: torch.Tensor) -> float:
    """Seconds for one clean ``run_with_cache`` plus the lesson's residual sweep (``[n_layers, pos]`` patches)."""
    started = time.perf_counter()
    _, cache = model.run_with_cache(clean)
    patching.get_act_patch_resid_pre(model, corrupt, cache, lambda logits: logit_diff(logits, answers))
    return time.perf_counter() - started


def measure(repeats: int = 3, seed: int = SEED) -> dict:
    torch.manual_seed(seed)
    torch.set_grad_enabled(False)
    course = load_model("course-4l")
    gpt2 = gpt2_shaped_model(seed)
    course_inputs = course_sweep_inputs(course)
    gpt2_inputs = random_sweep_inputs(gpt2, course_inputs[0], course_inputs[0] != course_inputs[1], seed)
    course(course_inputs[0]), gpt2(gpt2_inputs[0])                     # warm-up: the first call allocates
    times: dict[str, list[float]] = {"course-4l": [], "gpt2-small-shape": []}
    for _ in range(repeats):
        times["course-4l"] += [sweep(course, *course_inputs) for _ in range(COURSE_RUNS_PER_ROUND)]
        times["gpt2-small-shape"].append(sweep(gpt2, *gpt2_inputs))
    course_s, gpt2_s = (min(times[k]) for k in times)
    n_pos = course_inputs[0].shape[1]
    return {
        "sweep": "transformer_lens.patching.get_act_patch_resid_pre",
        "clean": lesson3.FACT_CLEAN,
        "corrupted": lesson3.FACT_CORRUPT,
        "prompts": course_inputs[0].shape[0],
        "positions": n_pos,
        "course_4l": {"layers": course.cfg.n_layers,
                      "params_m": round(sum(p.numel() for p in course.parameters()) / 1e6, 1),
                      "forward_passes": course.cfg.n_layers * n_pos, "seconds": round(course_s, 3)},
        "gpt2_small_shape": {"layers": gpt2.cfg.n_layers,
                             "params_m": round(sum(p.numel() for p in gpt2.parameters()) / 1e6, 1),
                             "forward_passes": gpt2.cfg.n_layers * n_pos, "seconds": round(gpt2_s, 3)},
        "ratio": round(gpt2_s / course_s, 1),
        "runs": {"course_4l": len(times["course-4l"]), "gpt2_small_shape": len(times["gpt2-small-shape"])},
        "torch_threads": torch.get_num_threads(),
        "seed": seed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    result = measure(args.repeats)
    if not args.json:
        print(f"{result['sweep']}: {result['clean']!r} patched into {result['corrupted']!r}, "
              f"{result['prompts']} prompt of {result['positions']} tokens")
        for key in ("course_4l", "gpt2_small_shape"):
            r = result[key]
            print(f"  {key:17s} {r['params_m']:6.1f} M parameters, {r['forward_passes']:3d} patched runs: "
                  f"{r['seconds']:.2f} s")
        print(f"  ratio: {result['ratio']}x ({result['torch_threads']} torch threads; fastest of "
              f"{result['runs']['course_4l']} and {result['runs']['gpt2_small_shape']} runs)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
