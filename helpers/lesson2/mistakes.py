"""Natural wrong answers to workbook 2's exercises, for the checks to name, and the training check's grading.

Each builder computes what a learner who made one mistake would return, so that a check can tell the learner
which mistake their output matches. The tests (``tests/test_lesson2.py``) build their wrong answers from the
same functions. :func:`train_verdict` grades a training loop by what it learns (exercise 5).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float, Int
from sae_lens import SAE
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers.lesson2.cases import train_check_setup
from helpers.lesson2.reference import (
    Params,
    clamp_feature,
    init_sae_params,
    l0_norm,
    sae_forward,
    sae_loss,
    train_sae,
)

TrainVerdict = Literal["ok", "bad-params", "nan", "unchanged", "optimizer-in-loop", "poor-reconstruction",
                       "not-sparse"]

__all__ = ["NOT_APPLICABLE", "sae_forward_variant", "loss_from", "clamp_variant", "logits_with_clamp_at",
           "pairwise_auroc", "best_of", "mean_difference", "TRAIN_CHECK_EV", "TRAIN_CHECK_L0", "TRAIN_MESSAGES",
           "TRAIN_TRAJECTORY_STEPS", "TrainVerdict", "train_optimizer_in_loop", "rebuilds_optimizer", "train_verdict"]

NOT_APPLICABLE = object()
"""What a known mistake "returns" on a case where it cannot happen: it matches nothing."""


# ============================================================================ exercises 2 and 3
def sae_forward_variant(x: Float[Tensor, "batch d_model"], p: Params, relu: bool = True,
                        norm_dim: Literal[-1, 0] | None = -1, b_dec_in: bool = True, b_dec_out: bool = True,
                        decode: Literal["feature_acts", "hidden_pre"] = "feature_acts"
                        ) -> tuple[Float[Tensor, "batch d_sae"], Float[Tensor, "batch d_sae"],
                                   Float[Tensor, "batch d_model"]]:
    """``sae_forward`` without the ReLU, with the decoder normalised along ``norm_dim`` (None: not at all),
    without ``b_dec`` on the way in or out, or decoding ``hidden_pre`` (before the ReLU) instead of the latents."""
    hidden_pre = (x - p["b_dec"] * b_dec_in) @ p["W_enc"] + p["b_enc"]
    acts = torch.relu(hidden_pre) if relu else hidden_pre
    W_dec = p["W_dec"] if norm_dim is None else p["W_dec"] / p["W_dec"].norm(dim=norm_dim, keepdim=True)
    code = acts if decode == "feature_acts" else hidden_pre
    return acts, hidden_pre, code @ W_dec + p["b_dec"] * b_dec_out


def loss_from(reconstruction: Float[Tensor, ""], sparsity: Float[Tensor, ""], l1: float
              ) -> tuple[Float[Tensor, ""], Float[Tensor, ""], Float[Tensor, ""]]:
    """``(loss, reconstruction, sparsity)`` as ``sae_loss`` returns them, from a (wrong) reconstruction or sparsity."""
    return reconstruction + l1 * sparsity, reconstruction, sparsity


# ============================================================================ exercise 6
def clamp_variant(resid: Float[Tensor, "batch pos d_model"], sae: SAE, feature: int, value: float,
                  error: bool = True, mode: Literal["set", "scale"] = "set",
                  where: Literal["all", "last"] = "all") -> Float[Tensor, "batch pos d_model"]:
    """``clamp_feature`` without the error term, multiplying the latent instead of setting it (``mode="scale"``),
    or at the last position only (``where="last"``)."""
    latents = sae.encode(resid)
    new = latents.clone()
    if mode == "set":
        new[..., feature] = value
    else:
        new[..., feature] = latents[..., feature] * value
    out = sae.decode(new) + (resid - sae.decode(latents) if error else 0)
    if where == "last":
        out = torch.cat([resid[:, :-1], out[:, -1:]], dim=1)
    return out


def logits_with_clamp_at(model: HookedTransformer, sae: SAE, tokens: Int[Tensor, "batch pos"], feature: int,
                         value: float, hook_name: str) -> Float[Tensor, "batch pos d_vocab"]:
    """``run_with_clamp`` with the clamp at ``hook_name`` instead of the SAE's own hook."""
    def hook_fn(resid: Float[Tensor, "batch pos d_model"], hook: object) -> Float[Tensor, "batch pos d_model"]:
        return clamp_feature(resid, sae, feature, value)

    return model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook_fn)])


# ============================================================================ exercise 7
def pairwise_auroc(acts: Float[Tensor, "example feature"], labels: Bool[Tensor, "example label"], tie: float = 0.5,
                   flip: bool = False) -> Float[Tensor, "feature label"]:
    """AUROC by comparing every positive with every negative, a tie counting ``tie``; ``flip`` swaps the two sides."""
    out = torch.zeros(acts.shape[1], labels.shape[1])
    for f in range(acts.shape[1]):
        for j in range(labels.shape[1]):
            pos, neg = acts[labels[:, j], f], acts[~labels[:, j], f]
            if flip:
                pos, neg = neg, pos
            out[f, j] = ((pos[:, None] > neg[None, :]).float() + tie * (pos[:, None] == neg[None, :]).float()).mean()
    return out


def best_of(scores: Float[Tensor, "feature label"], lowest: bool = False
            ) -> tuple[Int[Tensor, "feature"], Float[Tensor, "feature"]]:
    """``(best_label, best_score)`` per row of ``scores``, the highest (or, ``lowest``, the lowest)."""
    value, index = (scores.min(-1) if lowest else scores.max(-1))
    return index, value


def mean_difference(acts: Float[Tensor, "example feature"], labels: Bool[Tensor, "example label"]
                    ) -> tuple[Int[Tensor, "feature"], Float[Tensor, "feature"]]:
    """The best label by the difference of mean activations with and without it, instead of the AUROC."""
    y = labels.float()
    return best_of((acts.T @ y) / y.sum(0).clamp(min=1) - (acts.T @ (1 - y)) / (1 - y).sum(0).clamp(min=1))


# ============================================================================ exercise 5: grading a training loop
TRAIN_CHECK_EV = 0.85      # the trained SAE must explain at least this fraction of the variance...
TRAIN_CHECK_L0 = 3.0       # ...with at most this many times the true number of active features per example
TRAIN_MESSAGES: dict[TrainVerdict, str] = {
    "bad-params": "return the dict of parameters you trained, with the keys and shapes that init_sae_params "
                  "gives (W_enc, b_enc, W_dec, b_dec)",
    "nan": "training produced NaN or inf parameters: check the learning rate and your loss",
    "unchanged": "the parameters never changed: in every step call loss.backward() and optimizer.step(), "
                 "with an optimizer built over these very tensors, torch.optim.Adam(params.values(), lr=lr)",
    "poor-reconstruction": f"the trained SAE reconstructs poorly (explained variance below {TRAIN_CHECK_EV}): "
                           "minimise the total loss from sae_loss, call optimizer.zero_grad() every step "
                           "(otherwise gradients pile up across steps), and run all n_steps steps on fresh "
                           "batches from sample_batch",
    "not-sparse": f"the codes are not sparse: more than {TRAIN_CHECK_L0:g} times as many latents fire per example "
                  "as there are true active features. The loss you call .backward() on must include "
                  "l1_coefficient * sparsity",
    "optimizer-in-loop": "you create the optimizer inside the loop: a new torch.optim.Adam every step forgets the "
                         "running averages of the gradients that Adam keeps, so each step starts from scratch. "
                         "Build it once, before the loop",
}
TRAIN_TRAJECTORY_STEPS = 10   # the first steps of training, compared with Adam built once and Adam built every step


def train_optimizer_in_loop(sample_batch: Callable[[int], Tensor], d_in: int, d_sae: int, l1_coefficient: float,
                            n_steps: int = 1000, batch_size: int = 256, lr: float = 3e-3, seed: int = 0) -> Params:
    """``train_sae`` with the mistake of building a new Adam every step (it never remembers past gradients)."""
    params = init_sae_params(d_in, d_sae, seed)
    for _ in range(n_steps):
        optimizer = torch.optim.Adam(params.values(), lr=lr)
        x = sample_batch(batch_size)
        loss, _, _ = sae_loss(x, *sae_forward(x, params), l1_coefficient)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return params


def _first_steps(train_fn: Callable, n_features: int, d_in: int, firing_probability: float, d_sae: int,
                 l1_coefficient: float, seed: int) -> Tensor | None:
    """Every parameter, flattened into one vector, after ``TRAIN_TRAJECTORY_STEPS`` steps of ``train_fn`` (None if
    it fails or returns something else than the parameters)."""
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            sample_batch, _ = train_check_setup(n_features, d_in, firing_probability, seed)
            params = train_fn(sample_batch, d_in, d_sae, l1_coefficient, n_steps=TRAIN_TRAJECTORY_STEPS,
                              batch_size=256, lr=3e-3, seed=seed)
        return torch.cat([params[k].detach().float().flatten() for k in ("W_enc", "b_enc", "W_dec", "b_dec")])
    except Exception:  # noqa: BLE001 - a loop that cannot run short is graded on its full run alone
        return None


def rebuilds_optimizer(train_fn: Callable, **case: Any) -> bool:
    """Whether the first steps of ``train_fn`` follow Adam rebuilt every step rather than Adam built once.

    A single step cannot tell them apart; from the second step on, Adam's running averages make the two
    trajectories part. The learner's must be much closer to the mistake's than to the reference's.
    """
    learner = _first_steps(train_fn, **case)
    if learner is None:
        return False
    right, wrong = _first_steps(train_sae, **case), _first_steps(train_optimizer_in_loop, **case)
    assert right is not None and wrong is not None, "the reference and the mistake always train"
    if learner.shape != right.shape:
        return False
    gap = (right - wrong).norm()
    return bool((learner - wrong).norm() < 0.1 * gap and (learner - right).norm() > 0.5 * gap)


def train_verdict(train_fn: Callable, n_features: int, d_in: int, firing_probability: float, d_sae: int,
                  l1_coefficient: float, seed: int, n_steps: int = 600) -> TrainVerdict | None:
    """Train ``train_fn`` on fresh seeded synthetic data and grade the result.

    ``None`` when ``train_fn`` returned None, ``"ok"`` when the trained SAE meets the targets (explained
    variance and L0 on held-out data) and its first steps follow Adam built once, else the key of what went
    wrong in :data:`TRAIN_MESSAGES`.
    """
    case = dict(n_features=n_features, d_in=d_in, firing_probability=firing_probability, d_sae=d_sae,
                l1_coefficient=l1_coefficient, seed=seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        sample_batch, true_l0 = train_check_setup(n_features, d_in, firing_probability, seed)
        params = train_fn(sample_batch, d_in, d_sae, l1_coefficient, n_steps=n_steps, batch_size=256,
                          lr=3e-3, seed=seed)
        x = sample_batch(4096)
    if params is None:
        return None
    init = init_sae_params(d_in, d_sae, seed)
    if not isinstance(params, dict) or set(params) != set(init) or any(
            not isinstance(params[k], torch.Tensor) or params[k].shape != init[k].shape for k in init):
        return "bad-params"
    params = {k: v.detach().float() for k, v in params.items()}
    if not all(torch.isfinite(v).all() for v in params.values()):
        return "nan"
    if all(torch.allclose(params[k], init[k].detach()) for k in init):
        return "unchanged"
    if rebuilds_optimizer(train_fn, **case):
        return "optimizer-in-loop"
    with torch.no_grad():
        feature_acts, _, x_hat = sae_forward(x, params)
        explained = 1 - ((x_hat - x) ** 2).sum(-1).mean() / ((x - x.mean(0)) ** 2).sum(-1).mean()
    if not explained >= TRAIN_CHECK_EV:
        return "poor-reconstruction"
    if l0_norm(feature_acts) > TRAIN_CHECK_L0 * true_l0:
        return "not-sparse"
    return "ok"
