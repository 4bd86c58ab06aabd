"""Lesson 1b: its helpers, the checkpoint export, and the claims of ``notebooks/01b_weights_and_training.ipynb``.

Part 1 tests ``helpers.lesson1.weights`` / ``training`` and ``helpers.models.load_checkpoint`` on small cases.
Part 2 tests ``scripts/export_checkpoints.py``: on a tiny model it writes the same bytes twice, and the shipped
checkpoints are small and match the curve they record. Part 3 runs the lesson's code cells and asserts every
figure its prose quotes, on the very variables the lesson prints.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import export_checkpoints  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from notebook_cells import run_lesson  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformer_lens import FactoredMatrix, HookedTransformer, HookedTransformerConfig, utils  # noqa: E402

from helpers.lesson1.analysis import Head  # noqa: E402
from helpers.lesson1.training import phase_change_step, training_curve  # noqa: E402
from helpers.lesson1.weights import (  # noqa: E402
    copying_scores,
    effective_embedding,
    position_only_pattern,
    random_composition_baseline,
    random_ov_circuit,
    repeated_random_words,
    self_attention_share,
)
from helpers.models import (  # noqa: E402
    CHECKPOINTS_DIR,
    MODELS_DIR,
    cached_model,
    checkpoint_index,
    checkpoint_steps,
    decode_state,
    load_checkpoint,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01b_weights_and_training.ipynb"


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


# ============================================================================ part 1: the helpers
def test_copying_scores_are_one_for_a_copier_and_minus_one_for_an_anti_copier() -> None:
    eye = torch.eye(6)
    copier = copying_scores(FactoredMatrix(eye, 2 * eye))
    assert copier.top1_share == 1.0 and copier.positivity == pytest.approx(1.0)
    anti = copying_scores(FactoredMatrix(eye, -eye))
    assert anti.top1_share == 0.0 and anti.positivity == pytest.approx(-1.0)


def test_a_random_head_neither_copies_nor_anti_copies() -> None:
    model = cached_model("attn-only-2l")
    circuit = random_ov_circuit(model, seed=3)
    assert tuple(circuit.shape) == (model.cfg.d_vocab, model.cfg.d_vocab)
    scores = copying_scores(circuit)
    assert scores.top1_share < 0.005 and abs(scores.positivity) < 0.2


def test_effective_embedding_adds_what_each_block_0_head_writes_at_its_own_position() -> None:
    model = cached_model("attn-only-2l")
    assert torch.equal(effective_embedding(model, torch.zeros(model.cfg.n_heads)), model.W_E)
    share = torch.zeros(model.cfg.n_heads)
    share[3] = 0.5
    expected = model.W_E + 0.5 * model.W_E @ model.W_V[0, 3] @ model.W_O[0, 3]
    assert torch.allclose(effective_embedding(model, share), expected, atol=1e-5)


def test_self_attention_share_reads_the_diagonal_without_bos() -> None:
    pattern = torch.eye(5).expand(2, 3, 5, 5).clone()
    pattern[..., 0, 0] = 0.0                         # BOS is left out, so this changes nothing
    assert torch.allclose(self_attention_share(pattern), torch.ones(3))


def test_position_only_pattern_is_workbook_exercise_11s_reference() -> None:
    from helpers.lesson1.reference_weights import positional_attention_pattern
    model = cached_model("attn-only-2l")
    for layer, head, ln_scale in [(0, 5, 1.0), (0, 5, 0.14), (1, 3, 0.5)]:
        pattern = position_only_pattern(model, layer, head, ln_scale)
        assert pattern.shape == (model.cfg.n_ctx, model.cfg.n_ctx)
        assert torch.allclose(pattern, positional_attention_pattern(model, layer, head, ln_scale), atol=1e-5)
        assert torch.allclose(pattern.sum(-1), torch.ones(model.cfg.n_ctx)) and pattern.triu(1).eq(0).all()


def test_random_composition_baseline_is_lesson_1s() -> None:
    model = cached_model("attn-only-2l")
    g = torch.Generator().manual_seed(0)
    d, dh = model.cfg.d_model, model.cfg.d_head

    def rand(*shape):
        return torch.randn(*shape, generator=g)

    lesson_1 = torch.stack([utils.composition_scores(FactoredMatrix(rand(d, dh), rand(dh, d)),
                                                     FactoredMatrix(rand(d, dh), rand(dh, d))) for _ in range(20)])
    assert torch.allclose(random_composition_baseline(model, n=20, seed=0), lesson_1)


def test_repeated_random_words_tokenize_back_to_themselves() -> None:
    model = cached_model("attn-only-2l")
    words = repeated_random_words(model, n_seqs=4, half_len=6, seed=2)
    assert words.tokens.shape == (4, 13) and len(words.texts) == 4
    assert torch.equal(words.tokens[:, 1:7], words.tokens[:, 7:])
    assert torch.equal(model.to_tokens(words.texts), words.tokens)


def test_phase_change_step_is_the_first_step_at_half_the_final_score() -> None:
    from helpers.lesson1.training import TrainingCurve
    curve = TrainingCurve([0, 50, 100, 150], [9.0] * 4, [9.0] * 4, [0.0, 0.3, 0.5, 0.9], [0.1] * 4)
    assert phase_change_step(curve) == 100


# ============================================================================ part 2: the checkpoints
TINY = dict(n_layers=2, d_model=16, n_ctx=64, d_head=8, n_heads=2, d_vocab=4150, attn_only=True,
            normalization_type="LN", positional_embedding_type="standard", seed=0, act_fn=None, d_mlp=None)


def _tiny_snapshots(folder: Path, steps: list[int]) -> None:
    folder.mkdir()
    for step in steps:
        torch.manual_seed(step)
        model = HookedTransformer(HookedTransformerConfig(**{**TINY, "seed": step}))
        state = {k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()
                 if not k.endswith(("IGNORE", ".mask"))}
        save_file(state, folder / f"step_{step:05d}.safetensors")


def test_export_writes_the_same_bytes_twice_and_the_files_load(tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    _tiny_snapshots(snapshots, [0, 50, 100, 150, 200])
    records = [export_checkpoints.export_checkpoints(snapshots, tmp_path / name, dict(TINY), steps=[50, 200])
               for name in ("a", "b")]
    assert records[0] == records[1]
    for name in ("checkpoints.json", "step_00050.safetensors", "step_00200.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert [r["step"] for r in records[0]["curve"]] == [0, 50, 100, 150, 200]
    assert checkpoint_steps(tmp_path / "a") == [50, 200]
    model = load_checkpoint(200, folder=tmp_path / "a")
    assert model.cfg.d_model == 16 and not model.training
    with pytest.raises(ValueError, match=r"Shipped steps: \[50, 200\]"):
        load_checkpoint(100, folder=tmp_path / "a")
    path = tmp_path / "a" / "step_00050.safetensors"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match="truncated or was modified"):
        load_checkpoint(50, folder=tmp_path / "a")


def test_encoding_keeps_every_weight_within_half_a_step_of_its_row_scale() -> None:
    generator = torch.Generator().manual_seed(0)
    state = {"embed.W_E": torch.randn(50, 16, generator=generator).half(),
             "unembed.W_U": torch.randn(16, 50, generator=generator).half(),
             "blocks.0.attn.W_Q": torch.randn(2, 16, 8, generator=generator).half(),
             "blocks.0.ln1.w": torch.randn(16, generator=generator).half()}
    encoded = export_checkpoints.encode_state(state)
    assert encoded["embed.W_E"].dtype == torch.int8 and encoded["blocks.0.ln1.w"].dtype == torch.float16
    assert encoded["embed.W_E.int8_scale"].shape == (50, 1) and encoded["unembed.W_U.int8_scale"].shape == (1, 50)
    decoded = decode_state(encoded)
    for name, tensor in state.items():
        step = encoded[name + ".int8_scale"].float() if name + ".int8_scale" in encoded else torch.tensor(0.0)
        assert ((decoded[name] - tensor.float()).abs() <= step / 2 + 1e-3).all(), name


def test_shipped_checkpoints_are_small_and_checked() -> None:
    index = checkpoint_index()
    files = sorted(CHECKPOINTS_DIR.glob("step_*.safetensors"))
    assert len(files) == len(checkpoint_steps()) >= 3
    assert sum(f.stat().st_size for f in files) <= 6_000_000
    for step, entry in index["files"].items():
        path = CHECKPOINTS_DIR / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], step
        assert entry["scores_moved_by_encoding"] <= 0.005, step
    shipped_config = json.loads((MODELS_DIR / "attn-only-2l" / "config.json").read_text())["hooked_transformer_config"]
    assert index["hooked_transformer_config"] == shipped_config
    steps = [row["step"] for row in index["curve"]]
    assert steps == list(range(0, steps[-1] + 1, 50))


# ============================================================================ part 3: the lesson's claims
@pytest.fixture(scope="module")
def lesson() -> dict:
    with torch.no_grad():
        return run_lesson(NOTEBOOK)


def test_claim_the_lesson_reads_lesson_1s_heads(lesson: dict) -> None:
    assert lesson["IND"] == Head(1, 1) and lesson["PREV"] == Head(0, 5)
    assert round(lesson["induction"][lesson["IND"]].item(), 2) == 0.98           # self-test 3
    assert round(lesson["prev_token"][lesson["PREV"]].item(), 2) == 0.83


def test_claim_induction_heads_ov_circuits_lean_to_copying_and_the_previous_token_heads_do_not(lesson: dict) -> None:
    copying, random_copying = lesson["copying"], lesson["random_copying"]
    assert round(lesson["top1"], 3) == 0.017 and round(lesson["positivity"], 2) == 0.68   # head 1.1, printed first
    assert round(copying[1, 1].min().item(), 2) == 0.53 and round(copying[1, 1].max().item(), 2) == 0.73
    assert random_copying[:, 1].abs().max() < 0.1
    assert [round(copying[1, 0, h].item(), 2) for h in (4, 5, 6)] == [-0.90, -0.89, -0.84]
    assert copying[0, 1].max() < 0.02
    chance = 1 / lesson["cfg"].d_vocab
    assert 20 * chance < copying[0, 1].min() and copying[0, 1].max() < 75 * chance
    times_chance = copying[0, 1] * lesson["cfg"].d_vocab                          # "about 20 to 70 times chance"
    assert round(times_chance.min().item(), -1) == 20 and round(times_chance.max().item(), -1) == 70
    assert random_copying[:, 0].max() < 5 * chance


def test_claim_with_block_0s_self_attending_heads_the_team_copies_almost_every_token(lesson: dict) -> None:
    share = lesson["self_share"]
    assert [round(share[h].item(), 2) for h in (0, 7)] == [0.84, 0.95]
    assert 0.5 < share[2] < 0.55 and 0.6 < share[3] < 0.65 and share[[1, 4, 5, 6]].max() < 0.3
    assert torch.allclose(lesson["team_ov"].AB, lesson["head_sum"], atol=1e-5)  # [A1 ... A8][B1; ...; B8] = sum of AhBh
    assert lesson["team_raw"].top1_share < 0.2
    assert lesson["team_eff"].top1_share > 0.99
    single = lesson["single_eff"]
    assert single[:, 1].min() > 0.96 and single[:, 0].min() > 0.2 and single[:, 0].max() < 0.45
    assert lesson["random_eff"].top1_share < 0.001


def test_claim_the_previous_token_heads_positional_qk_circuit_is_a_stripe(lesson: dict) -> None:
    assert round(lesson["ln_scale"], 2) == 0.14
    raw, scaled, other = (lesson["stripe"][k] for k in ("W_pos as stored", "W_pos / LayerNorm scale",
                                                        "W_pos / scale, head 0.7"))
    assert round(raw[0], 2) == 0.07 and round(scaled[0], 2) == 0.66
    assert round(raw[1], 2) == round(scaled[1], 2) == 0.87
    assert other[1] == 0.0
    assert 40 < 1 / lesson["ln_scale"] ** 2 < 60                  # "about 50 times smaller"


def test_claim_composition_scores_k_singles_out_previous_token_heads_v_barely_shows(lesson: dict) -> None:
    high, baseline = lesson["high"], lesson["baseline"]
    assert round(baseline.mean().item(), 3) == 0.088 and round(high, 3) == 0.092
    rows = {mode: scores.mean(1) for mode, scores in lesson["composition"].items()}
    assert rows["K"].argsort(descending=True)[:3].tolist() == [5, 4, 6]
    assert [round(rows["K"][h].item(), 2) for h in (5, 4, 6)] == [0.16, 0.15, 0.13]
    assert rows["Q"].argsort(descending=True)[:3].tolist() == [7, 0, 2] and round(rows["Q"][7].item(), 2) == 0.11
    assert (rows["Q"][[0, 2]] > high).all()                        # 0.0 and 0.2 each above the random line
    assert rows["V"].max() < 0.10 and round(rows["V"][7].item(), 3) == 0.091 and rows["V"][7] < high


def test_claim_detect_head_is_our_score_times_the_share_of_positions_with_a_target(lesson: dict) -> None:
    ours, theirs = lesson["ours"], lesson["theirs"]
    assert round(lesson["ratio"].min().item(), 2) == round(lesson["ratio"].max().item(), 2) == 0.49
    assert lesson["gap"] < 0.02
    assert lesson["best_head"](ours["previous_token_head"]) == lesson["best_head"](theirs["previous_token_head"])
    assert lesson["best_head"](ours["induction_head"])[0] == lesson["best_head"](theirs["induction_head"])[0] == 1
    assert theirs["duplicate_token_head"].max() < 0.01
    assert lesson["abs_scores"].max() < 0.5
    assert round(theirs["induction_head"][lesson["IND"]].item(), 2) == 0.48     # self-test 3
    assert round(theirs["induction_head"].max().item(), 2) == 0.48
    assert torch.allclose(lesson["list_scores"], theirs["induction_head"])    # a list drops error_measure


def test_claim_the_shipped_checkpoints_measure_as_recorded(lesson: dict) -> None:
    for step, scores in lesson["measured"].items():
        row = lesson["recorded"][step]
        assert abs(scores.best_induction - row["best_induction"]) < 0.01, step
        assert abs(scores.best_prev_token - row["best_prev_token"]) < 0.01, step
        assert abs(scores.repeated_loss - row["repeated_loss"]) < 0.02, step


def test_claim_the_phase_change(lesson: dict) -> None:
    curve = training_curve()
    assert lesson["PHASE"] == phase_change_step(curve)
    assert 900 <= lesson["PHASE"] <= 1200


def test_claim_the_curve_around_the_phase_change(lesson: dict) -> None:
    curve = lesson["curve"]
    at = {step: i for i, step in enumerate(curve.steps)}
    assert lesson["PHASE"] == 1050 and curve.steps[-1] == 2500 and len(curve.steps) == 51
    assert round(curve.best_induction[-1], 2) == 0.98
    assert [round(curve.best_induction[at[s]], 2) for s in (800, 1200)] == [0.06, 0.85]
    assert [round(curve.repeated_loss[at[s]], 2) for s in (0, 800, 1200)] == [8.65, 6.51, 0.63]
    assert min(curve.first_loss) > 8.4 and max(curve.first_loss) < 8.9
    prev = [round(curve.best_prev_token[at[s]], 2) for s in (800, 1050, 1200, 1500, 2500)]
    assert prev == [0.14, 0.27, 0.50, 0.89, 0.96]
    assert lesson["shipped"] == [850, 1000, 1150, 2500]


def test_claim_the_run_and_the_shipped_model_share_the_circuit_not_the_numbering(lesson: dict) -> None:
    from helpers.lesson1.analysis import best_head, heads_above
    heads = [s.induction_head for s in lesson["measured"].values()]
    assert heads == [Head(1, 1), Head(1, 6), Head(1, 6), Head(1, 2)]
    run_ind, run_prev = lesson["final_induction"], lesson["final_prev"]
    for induction, prev in [(run_ind, run_prev), (lesson["induction"], lesson["prev_token"])]:
        assert sorted(heads_above(induction, 0.3)) == [Head(1, h) for h in range(8)]
        assert all(h.layer == 0 for h in heads_above(prev, 0.3))
    assert best_head(run_ind) == Head(1, 2) and best_head(run_prev) == Head(0, 4)
    assert round(run_prev.max().item(), 2) == 0.96
