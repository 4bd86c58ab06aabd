"""Stand-ins for other CPUs: the bundled weights nudged by a few float32 rounding steps.

A forward pass on another CPU, or with another thread count, differs from this one in the last bits
of its float32 sums. A figure the lessons quote must not depend on those bits. To test that on one
machine, every loader of a bundled network (``load_model``, ``load_sae``, ``load_transcoders``) calls
:func:`perturb_if_asked`, which does nothing unless the environment variable ``COURSE_WEIGHT_NOISE``
holds a seed. With a seed, each floating-point parameter ``w`` becomes ``w * (1 + 3e-7 * noise)``,
``noise`` drawn from a standard normal with a generator seeded by the seed and the parameter's name.

    COURSE_WEIGHT_NOISE=1 COURSE_TORCH_THREADS=1 pytest -m claim      # one "other machine"
    python3 course.py fragility      # three seeds x 1 and 2 threads (tooling/fragility.py)

``COURSE_TORCH_THREADS`` (read by ``tests/conftest.py``) sets torch's thread count for the run.
"""
from __future__ import annotations

import os
import zlib
from typing import TypeVar

import torch

NOISE_ENV = "COURSE_WEIGHT_NOISE"
THREADS_ENV = "COURSE_TORCH_THREADS"
M = TypeVar("M", bound=torch.nn.Module)
RELATIVE_NOISE = 3e-7          # about 2.5 float32 rounding steps (float32's epsilon is 1.19e-7)

__all__ = ["NOISE_ENV", "THREADS_ENV", "RELATIVE_NOISE", "noise_seed", "perturb_", "perturb_if_asked"]


def noise_seed() -> int | None:
    """The seed in ``COURSE_WEIGHT_NOISE``, or None when the weights are to be left as stored."""
    value = os.environ.get(NOISE_ENV, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{NOISE_ENV}={value!r}: expected an integer seed, or unset it.") from None


@torch.no_grad()
def perturb_(module: M, seed: int, scale: float = RELATIVE_NOISE, tag: str = "") -> M:
    """Multiply every floating-point parameter of ``module`` in place by ``1 + scale * N(0, 1)``.

    The noise of a parameter depends only on ``seed``, ``tag`` and the parameter's name, so the same
    seed perturbs the same network the same way in every process.
    """
    for name, parameter in module.named_parameters():
        if not parameter.is_floating_point():
            continue
        generator = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{tag}:{name}".encode()))
        noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
        parameter.mul_(1 + scale * noise.to(parameter.dtype))
    return module


def perturb_if_asked(module: M, tag: str) -> M:
    """:func:`perturb_` with the seed of ``COURSE_WEIGHT_NOISE``; ``module`` unchanged when it is unset."""
    seed = noise_seed()
    return module if seed is None else perturb_(module, seed, tag=tag)
