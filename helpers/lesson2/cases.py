"""The inputs the checks of workbook 2 run the learner's functions on: small seeded tensors, tiny SAEs,
fresh synthetic data for the training check, and prompts of the bundled model for the hooked run."""
from __future__ import annotations

import math

import torch
from jaxtyping import Float
from sae_lens import SAE
from torch import Tensor
from transformer_lens import HookedTransformer

from helpers.checks import Case
from helpers.lesson2.reference import Params, SampleFn
from helpers.lesson2.synthetic import synthetic_sampler

__all__ = ["gen", "toy_forward_cases", "toy_loss_cases", "sae_params_case", "sae_forward_cases", "sae_loss_cases",
           "acts_cases", "TRAIN_CASES", "train_check_setup", "tiny_sae", "clamp_cases", "run_with_clamp_cases",
           "match_cases"]


def gen(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (the cases never touch torch's global random state)."""
    return torch.Generator().manual_seed(seed)


def toy_forward_cases() -> list[Case]:
    """Exercise 1a: three toy models, the last with a square ``W`` (where ``W`` and ``W.T`` have one shape)."""
    cases = []
    for seed, (batch, n_features, n_hidden) in enumerate([(4, 5, 2), (3, 6, 3), (2, 3, 3)]):
        g = gen(100 + seed)
        x = torch.rand(batch, n_features, generator=g) * (torch.rand(batch, n_features, generator=g) < 0.6)
        W = torch.randn(n_hidden, n_features, generator=g)
        b = 0.5 * torch.randn(n_features, generator=g) - 0.2
        cases.append(Case((x, W, b), label=f"batch {batch}, {n_features} features, {n_hidden} hidden"))
    return cases


def toy_loss_cases() -> list[Case]:
    """Exercise 1b: inputs, noisy reconstructions and importances, down to a batch of one."""
    cases = []
    for seed, (batch, n_features) in enumerate([(8, 5), (3, 20), (1, 4)]):
        g = gen(200 + seed)
        x = torch.rand(batch, n_features, generator=g)
        x_hat = (x + 0.3 * torch.randn(batch, n_features, generator=g)).relu()
        importance = 0.2 + 1.3 * torch.rand(n_features, generator=g)
        cases.append(Case((x, x_hat, importance), label=f"batch {batch}, {n_features} features"))
    return cases


def sae_params_case(batch: int, d_in: int, d_sae: int, seed: int) -> tuple[Float[Tensor, "batch d_model"], Params]:
    """Activations and SAE parameters whose decoder rows have assorted lengths (so normalising them matters)."""
    g = gen(seed)
    W_dec = torch.randn(d_sae, d_in, generator=g)
    W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True) * (0.3 + 2.7 * torch.rand(d_sae, 1, generator=g))
    params = {"W_enc": torch.randn(d_in, d_sae, generator=g), "b_enc": torch.randn(d_sae, generator=g) - 0.3,
              "W_dec": W_dec, "b_dec": 0.5 * torch.randn(d_in, generator=g)}
    return torch.randn(batch, d_in, generator=g), params


def sae_forward_cases() -> list[Case]:
    """Exercise 2: three SAEs, one square and one wider than its input."""
    return [Case(sae_params_case(b, d, s, 300 + i), label=f"batch {b}, d_in {d}, d_sae {s}")
            for i, (b, d, s) in enumerate([(5, 4, 6), (3, 3, 3), (1, 8, 16)])]


def sae_loss_cases() -> list[Case]:
    """Exercise 3: what ``sae_forward`` returns, with negative ``hidden_pre`` entries, and three coefficients."""
    cases = []
    for i, (batch, d_in, d_sae, l1) in enumerate([(6, 4, 8, 0.3), (2, 5, 3, 2.0), (1, 3, 6, 0.05)]):
        g = gen(400 + i)
        x = torch.randn(batch, d_in, generator=g)
        hidden_pre = torch.randn(batch, d_sae, generator=g) - 0.2
        x_hat = x + 0.4 * torch.randn(batch, d_in, generator=g)
        cases.append(Case((x, torch.relu(hidden_pre), hidden_pre, x_hat, l1),
                          label=f"batch {batch}, d_in {d_in}, d_sae {d_sae}, l1_coefficient {l1}"))
    return cases


def acts_cases() -> list[Case]:
    """Exercise 4: latent activations with dead latents and an example where nothing fires; all zeros; one row."""
    g = gen(500)
    acts = torch.rand(6, 7, generator=g) * (torch.rand(6, 7, generator=g) < 0.6)
    acts[:, 0] = torch.tensor([0.5, 0.0, 1.2, 0.3, 0.0, 0.7])   # latent 0 always has some activity...
    acts[:, [2, 5]] = 0.0                                          # ...latents 2 and 5 never fire...
    acts[3] = 0.0                                                  # ...and example 3 has no active latent
    single = torch.tensor([[0.0, 2.0, 0.0, 0.5, 0.0, 1.0, 0.1]])
    return [Case((acts,), label="6 examples, 7 latents"), Case((torch.zeros(3, 4),), label="all zero, 3 x 4"),
            Case((single,), label="1 example, 7 latents")]


# Exercise 5: the training loop is trained on fresh, seeded synthetic data, and graded on what it learned.
TRAIN_CASES = [
    Case(kwargs=dict(n_features=12, d_in=8, firing_probability=0.08, d_sae=12, l1_coefficient=0.3, seed=0),
         label="12 features in 8 dims, 12 latents"),
    Case(kwargs=dict(n_features=16, d_in=10, firing_probability=0.06, d_sae=20, l1_coefficient=0.3, seed=1),
         label="16 features in 10 dims, 20 latents"),
]


def train_check_setup(n_features: int, d_in: int, firing_probability: float, seed: int) -> tuple[SampleFn, float]:
    """Synthetic activations for the training check: ``sample_batch`` and the true L0 (mean active features).

    Call inside ``torch.random.fork_rng()`` after ``torch.manual_seed(seed)``.
    """
    from sae_lens.synthetic import ActivationGenerator, FeatureDictionary

    feature_dict = FeatureDictionary(num_features=n_features, hidden_dim=d_in, seed=1000 + seed)
    generator = ActivationGenerator(num_features=n_features, firing_probabilities=firing_probability,
                                    std_firing_magnitudes=0.2, mean_firing_magnitudes=1.0)
    return synthetic_sampler(feature_dict, generator), n_features * firing_probability


def tiny_sae(d_in: int = 8, d_sae: int = 16, seed: int = 0) -> SAE:
    """A small SAELens ``StandardSAE`` with random weights (decoder rows of assorted lengths), for checks."""
    from sae_lens import StandardSAE, StandardSAEConfig

    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae)).eval()
    g = gen(seed)
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(d_in, d_sae, generator=g) / math.sqrt(d_in))
        sae.b_enc.copy_(0.1 * torch.randn(d_sae, generator=g))
        W_dec = torch.randn(d_sae, d_in, generator=g)
        sae.W_dec.copy_(W_dec / W_dec.norm(dim=-1, keepdim=True) * (0.5 + 1.5 * torch.rand(d_sae, 1, generator=g)))
        sae.b_dec.copy_(0.2 * torch.randn(d_in, generator=g))
    return sae


def clamp_cases() -> list[Case]:
    """Exercise 6a: residual streams of tiny SAEs, one latent clamped, once to 0 (switched off)."""
    cases = []
    for i, (batch, pos, feature, value) in enumerate([(2, 5, 3, 4.0), (1, 4, 0, 0.0), (3, 3, 11, 1.5)]):
        sae = tiny_sae(seed=600 + i)
        resid = 2 * torch.randn(batch, pos, sae.cfg.d_in, generator=gen(610 + i))
        what = "switched off (value 0)" if value == 0 else f"clamped to {value:g}"
        cases.append(Case((resid, sae, feature, value), label=f"[{batch}, {pos}, 8] residual, latent {feature} {what}"))
    return cases


def run_with_clamp_cases(model: HookedTransformer, sae: SAE) -> list[Case]:
    """Exercise 6b: two prompts of the bundled model, three latents (one switched off)."""
    prompts = ["The Golden Gate Bridge is", "When Mary and John went to the store, John gave a drink to"]
    return [Case((model, sae, model.to_tokens(p), f, v), label=f'"{p}", latent {f} at {v:g}')
            for p, f, v in [(prompts[0], 7, 20.0), (prompts[1], 100, 0.0), (prompts[1], 2049, 15.0)]]


def match_cases() -> list[Case]:
    """Exercise 7: features that follow one label each, with noise, many ties at 0, and one that avoids label 0."""
    cases = []
    for i, (n_tokens, n_features, n_labels) in enumerate([(40, 5, 4), (60, 6, 6), (25, 3, 5)]):
        g = gen(700 + i)
        labels = torch.rand(n_tokens, n_labels, generator=g) < torch.linspace(0.15, 0.5, n_labels)
        acts = torch.zeros(n_tokens, n_features)
        for f in range(n_features):
            target = f % n_labels
            hits = labels[:, target] & (torch.rand(n_tokens, generator=g) < 0.7)
            noise = torch.rand(n_tokens, generator=g) < 0.1
            acts[:, f] = (hits | noise) * (0.5 + torch.rand(n_tokens, generator=g))
        acts[:, -1] = ~labels[:, 0] * torch.rand(n_tokens, generator=g)     # a feature that avoids label 0
        cases.append(Case((acts, labels), label=f"{n_tokens} tokens, {n_features} features, {n_labels} labels"))
    return cases
