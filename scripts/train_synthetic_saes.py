"""Train the small SAEs that lesson 2b compares, on lesson 2's synthetic data with planted features, and save them.

    python scripts/train_synthetic_saes.py            # under a minute on 2 cores (idle); writes models/synthetic_saes/

Every SAE is one of SAELens's own training classes (``StandardTrainingSAE``: ReLU and an L1 penalty;
``TopKTrainingSAE``; ``JumpReLUTrainingSAE``), trained by SAELens's ``train_toy_sae`` exactly as lesson 2 trains
its ReLU SAE (1,500 batches of 512, learning rate 3e-3, ``torch.manual_seed(0)`` before each SAE), on the
``FeatureDictionary`` (32 features in 16 dimensions, seed 7) and ``ActivationGenerator`` (probability 0.05,
strength 1.0 ± 0.2) of lesson 2. Each is saved in SAELens's inference format (``save_inference_model``: a
``cfg.json`` and a few kB of safetensors) under ``models/synthetic_saes/<name>/``, so the notebook loads it with
``SAE.load_from_disk``. ``training_record.json`` lists them with their settings. Training in the notebook
would cost more than its time budget; the weights are tiny.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch
from sae_lens import (
    JumpReLUTrainingSAE,
    JumpReLUTrainingSAEConfig,
    StandardTrainingSAE,
    StandardTrainingSAEConfig,
    TopKTrainingSAE,
    TopKTrainingSAEConfig,
)
from sae_lens.synthetic import ActivationGenerator, FeatureDictionary, train_toy_sae

OUT = Path(__file__).resolve().parents[1] / "models" / "synthetic_saes"
STEPS, BATCH, LR = 1500, 512, 3e-3

# name -> (training SAE class, config class, config keywords); d_in 16 throughout
RUNS: dict[str, tuple[type, type, dict]] = {
    # section 3: three architectures at about the same L0, 32 latents for 32 planted features
    "relu": (StandardTrainingSAE, StandardTrainingSAEConfig, {"d_sae": 32, "l1_coefficient": 0.2}),
    "topk-2": (TopKTrainingSAE, TopKTrainingSAEConfig, {"d_sae": 32, "k": 2}),
    "topk-3": (TopKTrainingSAE, TopKTrainingSAEConfig, {"d_sae": 32, "k": 3}),
    "topk-4": (TopKTrainingSAE, TopKTrainingSAEConfig, {"d_sae": 32, "k": 4}),
    "jumprelu": (JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig, {"d_sae": 32, "l0_coefficient": 0.1}),
    # section 4: dead latents: a large L1 coefficient from the first step, or warmed up over half the run
    "relu-l1-2": (StandardTrainingSAE, StandardTrainingSAEConfig, {"d_sae": 32, "l1_coefficient": 2.0}),
    "relu-l1-2-warm-up": (StandardTrainingSAE, StandardTrainingSAEConfig,
                          {"d_sae": 32, "l1_coefficient": 2.0, "l1_warm_up_steps": 750}),
    "relu-wide": (StandardTrainingSAE, StandardTrainingSAEConfig, {"d_sae": 128, "l1_coefficient": 0.2}),
    "topk-wide": (TopKTrainingSAE, TopKTrainingSAEConfig, {"d_sae": 128, "k": 3, "aux_loss_coefficient": 0.0}),
    "topk-wide-aux": (TopKTrainingSAE, TopKTrainingSAEConfig, {"d_sae": 128, "k": 3, "aux_loss_coefficient": 1.0}),
}


def synthetic_data() -> tuple[FeatureDictionary, ActivationGenerator]:
    """Lesson 2's planted features: 32 directions in 16 dimensions, each firing with probability 0.05."""
    return (FeatureDictionary(num_features=32, hidden_dim=16, seed=7),
            ActivationGenerator(num_features=32, firing_probabilities=0.05, mean_firing_magnitudes=1.0,
                                std_firing_magnitudes=0.2))


def main() -> None:
    feature_dict, generator = synthetic_data()
    record: dict = {"steps": STEPS, "batch_size": BATCH, "lr": LR, "torch": torch.__version__,
                    "machine": platform.processor() or platform.machine(), "saes": {}}
    for name, (sae_class, cfg_class, kwargs) in RUNS.items():
        start = time.time()
        torch.manual_seed(0)
        sae = sae_class(cfg_class(d_in=16, **kwargs))
        train_toy_sae(sae, feature_dict, generator, training_samples=STEPS * BATCH, batch_size=BATCH, lr=LR)
        sae.save_inference_model(OUT / name)
        record["saes"][name] = {"class": sae_class.__name__, **kwargs, "seconds": round(time.time() - start, 1)}
        print(f"{name}: {record['saes'][name]}")
    (OUT / "training_record.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
