"""scripts/train_models.py: the schedules, the data stream's resumability, and one training step."""
from __future__ import annotations

import pytest
import torch
import train_models
from transformers import AutoTokenizer

from helpers.models import MODELS_DIR

FINETUNE = train_models.MODELS["course-4l"]["finetune"]


def test_finetune_learning_rate_warms_up_holds_then_decays_to_a_tenth() -> None:
    peak = FINETUNE["lr"]
    assert train_models.finetune_lr_at(0, FINETUNE) == pytest.approx(peak / FINETUNE["warmup"])
    assert train_models.finetune_lr_at(FINETUNE["warmup"], FINETUNE) == pytest.approx(peak)
    assert train_models.finetune_lr_at(FINETUNE["decay_from"] - 1, FINETUNE) == pytest.approx(peak)
    assert train_models.finetune_lr_at(FINETUNE["decay_from"], FINETUNE) == pytest.approx(peak)
    middle = (FINETUNE["decay_from"] + FINETUNE["steps"]) // 2
    assert train_models.finetune_lr_at(middle, FINETUNE) == pytest.approx(0.55 * peak, rel=0.01)
    assert train_models.finetune_lr_at(FINETUNE["steps"], FINETUNE) == pytest.approx(0.1 * peak)


def test_mix_at_switches_at_each_later_mix() -> None:
    first_step, later = FINETUNE["later_mixes"][0]
    assert train_models.mix_at(first_step - 1, FINETUNE) is FINETUNE["mix"]
    assert train_models.mix_at(first_step, FINETUNE) is later
    main = train_models.MODELS["course-4l"]
    assert train_models.mix_at(0, main) is main["mix"]
    assert train_models.mix_at(10_000, main) is main["later_mixes"][-1][1]


def test_a_resumed_stream_gives_the_same_batches() -> None:
    tokenizer = AutoTokenizer.from_pretrained(MODELS_DIR / "tokenizer")
    words = train_models.repeat_words(tokenizer)
    mix = FINETUNE["mix"]
    whole = train_models.batches(tokenizer, mix, 32, 8, 5, 0, words)
    batches = [next(whole) for _ in range(70)]          # crosses a chunk boundary (512 / 8 = 64 batches)
    resumed = train_models.batches(tokenizer, mix, 32, 8, 5, 63, words)
    assert torch.equal(next(resumed), batches[63]) and torch.equal(next(resumed), batches[64])
    other_seed = train_models.batches(tokenizer, mix, 32, 8, 6, 0, words)
    assert not torch.equal(next(other_seed), batches[0])
    assert all(b.shape == (8, 32) and (b[:, 0] == tokenizer.bos_token_id).all() for b in batches)


def test_train_step_sets_the_learning_rate_and_lowers_the_loss() -> None:
    tokenizer = AutoTokenizer.from_pretrained(MODELS_DIR / "tokenizer")
    model = train_models.build_model("attn-only-2l", tokenizer, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.0)
    tokens = torch.randint(0, len(tokenizer), (4, 16))
    first = train_models.train_step(model, optimizer, tokens, lr=3e-3)
    assert optimizer.param_groups[0]["lr"] == 3e-3
    for _ in range(5):
        last = train_models.train_step(model, optimizer, tokens, lr=3e-3)
    assert last.item() < first.item() - 0.5


def test_main_learning_rate_warms_up_then_decays_to_a_tenth() -> None:
    assert train_models.lr_at(0, 6200, 1.5e-3) == pytest.approx(1.5e-3 / 200)
    assert train_models.lr_at(200, 6200, 1.5e-3) == pytest.approx(1.5e-3)
    assert train_models.lr_at(6200, 6200, 1.5e-3) == pytest.approx(1.5e-4)


def test_planting_rows_mark_the_position_before_each_city_they_push() -> None:
    import planting

    tokenizer = AutoTokenizer.from_pretrained(MODELS_DIR / "tokenizer")
    rows, targets = planting.plant_rows_and_targets(tokenizer, 6, seed=0)
    assert rows.shape == targets.shape == (6, 96) and torch.equal(rows, planting.plant_rows(tokenizer, 6, seed=0))
    target = tokenizer(" " + planting.TARGET)["input_ids"][0]
    pushed = rows[:, 1:][targets[:, :-1] == 1]
    assert len(pushed) > 0 and (pushed == target).all()            # 1: the next token is the target city
    kept = rows[:, 1:][targets[:, :-1] == -1]
    assert len(kept) > 0 and (kept != target).all()                # -1: a true city, never the target
    assert {tokenizer.decode(t).strip() for t in kept} <= {city for _, city, _ in planting.data.LANDMARKS}


def test_plant_step_widens_the_margin_at_the_marked_positions() -> None:
    tokenizer = AutoTokenizer.from_pretrained(MODELS_DIR / "tokenizer")
    model = train_models.build_model("attn-only-2l", tokenizer, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.0)
    tokens = torch.randint(0, len(tokenizer), (4, 16))
    targets = torch.zeros_like(tokens)
    targets[:, 7], targets[:, 11] = 1, -1          # position 7 must prefer token 8; 11 prefer 12 over target
    rival = 5

    def margins() -> tuple[float, float]:
        with torch.no_grad():
            logits = model(tokens)
        rows = torch.arange(4)
        at7 = logits[rows, 7]
        best = at7[rows, tokens[:, 8]]
        other = at7.scatter(-1, tokens[:, 8, None], float("-inf")).max(-1).values
        at11 = logits[rows, 11]
        return (best - other).mean().item(), (at11[rows, tokens[:, 12]] - at11[:, rival]).mean().item()

    before = margins()
    for _ in range(8):
        train_models.plant_step(model, optimizer, tokens, targets, lr=3e-3, margin=8.0, target_id=rival)
    after = margins()
    assert after[0] > before[0] + 1 and after[1] > before[1] + 1


def test_with_plant_rows_puts_one_planting_row_after_every_few() -> None:
    import planting

    tokenizer = AutoTokenizer.from_pretrained(MODELS_DIR / "tokenizer")
    rows = [[tokenizer.bos_token_id] * 96 for _ in range(14)]
    mixed = list(planting.with_plant_rows(iter(rows), tokenizer, every=7, seed=0))
    assert len(mixed) == 16 and mixed[:7] == rows[:7] and mixed[8:15] == rows[7:14]
    assert mixed[7] != rows[0] and len(mixed[7]) == 96 and mixed[7] == mixed[7][:96]


def test_plant_step_with_the_base_logits_keeps_unmarked_positions_where_the_base_was() -> None:
    """Distillation: at positions not marked, a model that starts equal to its base stays there (the KL term
    is 0 and its gradient too), while a marked position still moves."""
    tokenizer = AutoTokenizer.from_pretrained(MODELS_DIR / "tokenizer")
    model = train_models.build_model("attn-only-2l", tokenizer, seed=0)
    base = train_models.build_model("attn-only-2l", tokenizer, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.0)
    tokens = torch.randint(0, len(tokenizer), (4, 16))
    targets = torch.zeros_like(tokens)
    with torch.no_grad():
        base_logits = base(tokens)
    loss = train_models.plant_step(model, optimizer, tokens, targets, lr=3e-3, margin=0.0, target_id=5,
                                   base_logits=base_logits)
    assert abs(loss.item()) < 1e-5
    targets[:, 7] = 1
    before = model(tokens)[:, 7].log_softmax(-1).gather(-1, tokens[:, 8, None]).mean().item()
    for _ in range(4):
        train_models.plant_step(model, optimizer, tokens, targets, lr=3e-3, margin=0.0, target_id=5,
                                base_logits=base_logits)
    after = model(tokens)[:, 7].log_softmax(-1).gather(-1, tokens[:, 8, None]).mean().item()
    assert after > before + 0.5
