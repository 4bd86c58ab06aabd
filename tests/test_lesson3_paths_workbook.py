"""Workbook 3c (exercises 11 to 18): the checks catch wrong answers, the references agree with the libraries, and
the solved workbook's sentences agree with the model.

- Every check passes the reference and the solved workbook, and rejects the generated stub and the plausible
  wrong answers of ``WRONG_ANSWERS`` (written the way a learner might write them), each with its own message.
- The references reproduce ``transformer_lens.patching``'s entries, and path patching by adding the sender's change
  equals the three-run recipe (every other head and MLP frozen at clean).
- The claims of the solved workbook's "Try it" cells, on its own variables.
"""
from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from notebook_cells import assert_rejected, run_lesson, workbook_check_tests, wrong_answer_ids  # noqa: E402
from transformer_lens import patching  # noqa: E402
from transformer_lens.utils import get_act_name  # noqa: E402

from helpers import lesson3  # noqa: E402
from helpers.lesson3 import cases_paths  # noqa: E402
from helpers.lesson3.mistakes_paths import late_bound_names  # noqa: E402
from helpers.models import cached_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAME = "03c_paths_and_interventions.ipynb"
EXERCISES = ["patch_head_at_position", "patch_head_input", "path_patch", "logit_diff_direction", "direct_logit_diff",
             "denoising_effect", "noising_effect", "swap_carry_length"]
CHECKS = {name: getattr(lesson3, f"check_{name}") for name in EXERCISES}

test_reference_and_solved_workbook_pass, test_generated_stub_is_rejected = workbook_check_tests(
    NAME, lesson3, EXERCISES)


# ============================================================================ wrong answers, as a learner writes them
# --- exercise 11: patch_head_at_position
def _at_all_positions(model, corrupted_tokens, clean_cache, layer, head, pos, metric):
    def hook(z, hook):
        z[:, :, head] = clean_cache["z", layer][:, :, head]
        return z
    return metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])).item()


def _at_every_head(model, corrupted_tokens, clean_cache, layer, head, pos, metric):
    def hook(z, hook):
        z[:, pos] = clean_cache["z", layer][:, pos]
        return z
    return metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])).item()


def _at_swapped_indices(model, corrupted_tokens, clean_cache, layer, head, pos, metric):
    def hook(z, hook):
        z[:, head, pos] = clean_cache[hook.name][:, head, pos]
        return z
    return metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])).item()


def _at_last_position(model, corrupted_tokens, clean_cache, layer, head, pos, metric):
    def hook(z, hook):
        z[:, -1, head] = clean_cache["z", layer][:, -1, head]
        return z
    return metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])).item()


# --- exercise 12: patch_head_input
def _input(mode):
    def learner(model, corrupted_tokens, clean_cache, layer, head, component, metric):
        name = {"z": "z", "always_q": "q", "swap": {"q": "k", "k": "q", "v": "v"}[component]}.get(mode, component)

        def hook(act, hook):
            clean = clean_cache[hook.name]
            if mode == "all_heads":
                act[:] = clean
            elif mode == "position":
                act[:, head] = clean[:, head]
            else:
                act[:, :, head] = clean[:, :, head]
            return act
        return metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name(name, layer), hook)])).item()
    return learner


# --- exercise 13: path_patch
def _path_total(model, clean_tokens, corrupted_tokens, sender, receiver, component, metric):
    """The sender's whole output corrupted: its total effect."""
    _, corrupted = model.run_with_cache(corrupted_tokens)
    layer, head = sender

    def hook(z, hook):
        z[:, :, head] = corrupted[hook.name][:, :, head]
        return z
    return metric(model.run_with_hooks(clean_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])).item()


def _path_three_runs(freeze_heads: bool, freeze_mlps: bool):
    """The three-run recipe, freezing the other heads and the MLPs, or not."""
    def learner(model, clean_tokens, corrupted_tokens, sender, receiver, component, metric):
        (s_layer, s_head), (r_layer, r_head) = sender, receiver
        if r_layer <= s_layer:
            return metric(model(clean_tokens)).item()
        _, clean = model.run_with_cache(clean_tokens)
        _, corrupted = model.run_with_cache(corrupted_tokens)

        def heads(z, hook):
            if freeze_heads:
                z[:] = clean[hook.name]
            if hook.name == get_act_name("z", s_layer):
                z[:, :, s_head] = corrupted[hook.name][:, :, s_head]
            return z

        def mlps(out, hook):
            return clean[hook.name]
        saved = {}

        def save(resid, hook):
            saved["resid"] = resid.clone()
        hooks = [(lambda name: name.endswith("hook_z"), heads), (get_act_name("resid_pre", r_layer), save)]
        if freeze_mlps and not model.cfg.attn_only:
            hooks.append((lambda name: name.endswith("hook_mlp_out"), mlps))
        model.run_with_hooks(clean_tokens, fwd_hooks=hooks)
        model.set_use_split_qkv_input(True)
        try:
            def patch(act, hook):
                act[:, :, r_head] = saved["resid"]
                return act
            logits = model.run_with_hooks(clean_tokens, fwd_hooks=[(f"blocks.{r_layer}.hook_{component}_input", patch)])
        finally:
            model.set_use_split_qkv_input(False)
        return metric(logits).item()
    return learner


def _path_add(check_order: bool = True, whole_block: bool = False, reset: bool = True):
    """Add the sender's change to the receiver's input; without the layer check, into the whole block, or leaving
    the split inputs on."""
    def learner(model, clean_tokens, corrupted_tokens, sender, receiver, component, metric):
        (s_layer, s_head), (r_layer, r_head) = sender, receiver
        if check_order and r_layer <= s_layer:
            return metric(model(clean_tokens)).item()
        _, clean = model.run_with_cache(clean_tokens)
        _, corrupted = model.run_with_cache(corrupted_tokens)
        delta = (corrupted["z", s_layer][:, :, s_head] - clean["z", s_layer][:, :, s_head]) @ model.W_O[s_layer, s_head]
        resid = clean["resid_pre", r_layer] + delta
        if whole_block:
            return metric(model.run_with_hooks(clean_tokens, fwd_hooks=[
                (get_act_name("resid_pre", r_layer), lambda act, hook: resid)])).item()
        model.set_use_split_qkv_input(True)

        def patch(act, hook):
            act[:, :, r_head] = resid
            return act
        logits = model.run_with_hooks(clean_tokens, fwd_hooks=[(f"blocks.{r_layer}.hook_{component}_input", patch)])
        if reset:
            model.set_use_split_qkv_input(False)
        return metric(logits).item()
    return learner


def _path_late_binding(model, clean_tokens, corrupted_tokens, sender, receiver, component, metric):
    """The three-run recipe with freezing hooks defined in a loop that read ``layer`` when they run."""
    (s_layer, s_head), (r_layer, r_head) = sender, receiver
    if r_layer <= s_layer:
        return metric(model(clean_tokens)).item()
    _, clean = model.run_with_cache(clean_tokens)
    _, corrupted = model.run_with_cache(corrupted_tokens)
    hooks = []
    for layer in range(model.cfg.n_layers):
        def freeze(z, hook):
            z[:] = clean["z", layer]  # noqa: B023 - the mistake under test
            if layer == s_layer:  # noqa: B023
                z[:, :, s_head] = corrupted["z", layer][:, :, s_head]  # noqa: B023
            return z

        def freeze_mlp(out, hook):
            return clean["mlp_out", layer]  # noqa: B023
        hooks.append((get_act_name("z", layer), freeze))
        if not model.cfg.attn_only:
            hooks.append((get_act_name("mlp_out", layer), freeze_mlp))
    saved = {}
    hooks.append((get_act_name("resid_pre", r_layer), lambda resid, hook: saved.update(resid=resid.clone())))
    model.run_with_hooks(clean_tokens, fwd_hooks=hooks)
    model.set_use_split_qkv_input(True)
    try:
        def patch(act, hook):
            act[:, :, r_head] = saved["resid"]
            return act
        logits = model.run_with_hooks(clean_tokens, fwd_hooks=[(f"blocks.{r_layer}.hook_{component}_input", patch)])
    finally:
        model.set_use_split_qkv_input(False)
    return metric(logits).item()


# --- exercise 14: logit_diff_direction
def _direction_flipped(model, answer_tokens):
    return (model.W_U[:, answer_tokens[:, 1]] - model.W_U[:, answer_tokens[:, 0]]).T


def _direction_embedding(model, answer_tokens):
    return model.W_E[answer_tokens[:, 0]] - model.W_E[answer_tokens[:, 1]]


def _direction_not_transposed(model, answer_tokens):
    return model.W_U[:, answer_tokens[:, 0]] - model.W_U[:, answer_tokens[:, 1]]


def _direction_cross_batch(model, answer_tokens):
    """W_U[:, answer_tokens] is [d_model, batch, 2]; [:, 0] reads prompt 0's two answers."""
    return (model.W_U[:, answer_tokens][:, 0] - model.W_U[:, answer_tokens][:, 1]).T


def _direction_one_for_all(model, answer_tokens):
    return (model.W_U[:, answer_tokens[:, 0]] - model.W_U[:, answer_tokens[:, 1]]).mean(1)


# --- exercise 15: direct_logit_diff
def _direct(mode):
    def learner(model, final_resid, answer_tokens):
        x = final_resid[:, 0] if mode == "first" else final_resid[:, -1]
        x = x if mode == "no_ln" else model.ln_final(x)
        right, wrong = model.W_U[:, answer_tokens[:, 0]], model.W_U[:, answer_tokens[:, 1]]   # [d_model, batch]
        bias = model.b_U[answer_tokens[:, 0]] - model.b_U[answer_tokens[:, 1]]
        if mode == "cross_batch":
            return x @ (right - wrong) + bias                                                # [batch, batch]
        along = (x * (right - wrong).T).sum(-1)
        return along if mode == "no_bias" else along + bias
    return learner


# --- exercises 16 and 17: denoising_effect, noising_effect
def _effect(direction, mode=None):
    def learner(model, clean_tokens, corrupted_tokens, answer_tokens, heads):
        way = direction if mode != "swapped" else {"denoise": "noise", "noise": "denoise"}[direction]
        source, target = (clean_tokens, corrupted_tokens) if way == "denoise" else (corrupted_tokens, clean_tokens)
        _, cache = model.run_with_cache(source)
        hooks = []
        for layer, head in heads:
            def hook(z, hook, layer=layer, head=head):
                z[:, :, head] = cache["z", layer][:, :, head]
                return z
            hooks.append((get_act_name("z", layer), hook))
        clean = lesson3.logit_diff(model(clean_tokens), answer_tokens).item()
        corrupted = lesson3.logit_diff(model(corrupted_tokens), answer_tokens).item()
        patched = lesson3.logit_diff(model.run_with_hooks(target, fwd_hooks=hooks), answer_tokens).item()
        change = patched - corrupted if way == "denoise" else clean - patched
        if mode == "unnormalized":
            return change
        if mode == "kept":
            return (patched - corrupted) / (clean - corrupted)
        if mode == "sign":
            return -change / (clean - corrupted)
        return change / (clean - corrupted)
    return learner


def _denoise_late_binding(model, clean_tokens, corrupted_tokens, answer_tokens, heads):
    _, cache = model.run_with_cache(clean_tokens)
    hooks = []
    for layer, head in heads:
        def hook(z, hook):
            z[:, :, head] = cache["z", layer][:, :, head]  # noqa: B023 - the mistake under test
            return z
        hooks.append((get_act_name("z", layer), hook))
    clean = lesson3.logit_diff(model(clean_tokens), answer_tokens).item()
    corrupted = lesson3.logit_diff(model(corrupted_tokens), answer_tokens).item()
    patched = lesson3.logit_diff(model.run_with_hooks(corrupted_tokens, fwd_hooks=hooks), answer_tokens).item()
    return (patched - corrupted) / (clean - corrupted)


def _noise_late_binding_lambda(model, clean_tokens, corrupted_tokens, answer_tokens, heads):
    """Late binding in a list of lambdas, and a noising sum written another way: the source names it."""
    _, cache = model.run_with_cache(corrupted_tokens)
    hooks = [(get_act_name("z", layer), lambda z, hook: z.index_copy_(  # noqa: B023 - the mistake under test
        2, torch.tensor([head]), cache["z", layer][:, :, [head]]))  # noqa: B023
             for layer, head in heads]
    clean = lesson3.logit_diff(model(clean_tokens), answer_tokens).item()
    corrupted = lesson3.logit_diff(model(corrupted_tokens), answer_tokens).item()
    patched = lesson3.logit_diff(model.run_with_hooks(clean_tokens, fwd_hooks=hooks), answer_tokens).item()
    return 1 - (patched - corrupted) / (clean - corrupted)


# --- exercise 18: swap_carry_length
def _carry_ignores_the_answer(sides):
    for i, side in enumerate(sides):
        if i > 0 and side == "source":
            return i
    return len(sides)


def _carry_while_target(sides):
    count = 0
    for side in sides:
        if side != "target":
            break
        count += 1
    return count


def _carry_none_when_kept(sides):
    if not sides or sides[0] != "target":
        return 0
    for i, side in enumerate(sides):
        if i > 0 and side == "source":
            return i
    return None


def _carry_any_other_place_ends(sides):
    if not sides or sides[0] != "target":
        return 0
    return next((i for i, side in enumerate(sides) if i > 0 and side != "target" and side is not None), len(sides))


def _carry_counts_the_reverting_word(sides):
    if not sides or sides[0] != "target":
        return 0
    return next((i + 1 for i, side in enumerate(sides) if i > 0 and side == "source"), len(sides))


WRONG_ANSWERS = [
    ("patch_head_at_position", _at_all_positions, ["you patched every position", "z[:, pos, head]"]),
    ("patch_head_at_position", _at_every_head, ["every head at that position"]),
    ("patch_head_at_position", _at_swapped_indices, ["swapped the two indices", "not z[:, head, pos]"]),
    ("patch_head_at_position", _at_last_position, ["the last position whatever pos is"]),
    ("patch_head_input", _input("z"), ["you patched the head's output (hook_z)"]),
    ("patch_head_input", _input("swap"), ["the keys when asked for the queries"]),
    ("patch_head_input", _input("all_heads"), ["every head of the layer"]),
    ("patch_head_input", _input("position"), ["you indexed a position, not a head"]),
    ("patch_head_input", _input("always_q"), ["patch_head_input: wrong values"]),
    ("path_patch", _path_total, ["its total effect"]),
    ("path_patch", _path_three_runs(freeze_heads=False, freeze_mlps=False), ["only the sender was patched",
                                                                            "heads and MLPs in between"]),
    ("path_patch", _path_three_runs(freeze_heads=True, freeze_mlps=False), ["let the MLPs recompute"]),
    ("path_patch", _path_add(check_order=False), ["there is no path and the run is the clean run"]),
    ("path_patch", _path_add(whole_block=True), ["the residual stream before the receiver's block"]),
    ("path_patch", _path_late_binding, ["late binding", "your hooks read layer when they run"]),
    ("path_patch", _path_add(reset=False), ["you left model.set_use_split_qkv_input(True) on"]),
    ("logit_diff_direction", _direction_flipped, ["the sign is flipped"]),
    ("logit_diff_direction", _direction_embedding, ["you used the embedding W_E"]),
    ("logit_diff_direction", _direction_not_transposed, ["[d_model, batch]", "transpose"]),
    ("logit_diff_direction", _direction_cross_batch, ["cross-batch fancy indexing", "prompt 0's two answers"]),
    ("logit_diff_direction", _direction_one_for_all, ["averaged the directions over the batch"]),
    ("direct_logit_diff", _direct("cross_batch"), ["[batch, batch]", "cross-batch fancy indexing"]),
    ("direct_logit_diff", _direct("no_ln"), ["apply the final LayerNorm first"]),
    ("direct_logit_diff", _direct("no_bias"), ["add the unembedding's bias"]),
    ("direct_logit_diff", _direct("first"), ["you read position 0"]),
    ("denoising_effect", _effect("denoise", "swapped"), ["the noising way round"]),
    ("denoising_effect", _effect("denoise", "unnormalized"), ["divide by clean - corrupted"]),
    ("denoising_effect", _effect("denoise", "sign"), ["the sign is flipped"]),
    ("denoising_effect", _denoise_late_binding, ["late binding", "the last head of the list"]),
    ("noising_effect", _effect("noise", "swapped"), ["the denoising way round"]),
    ("noising_effect", _effect("noise", "unnormalized"), ["divide by clean - corrupted"]),
    ("noising_effect", _effect("noise", "kept"), ["the share the clean run keeps"]),
    ("noising_effect", _effect("noise", "sign"), ["the sign is flipped"]),
    ("noising_effect", _noise_late_binding_lambda, ["the last head of the list", "late binding"]),
    ("swap_carry_length", _carry_ignores_the_answer, ["the answer itself is not the target's"]),
    ("swap_carry_length", _carry_while_target, ["only the unbroken run of target words"]),
    ("swap_carry_length", _carry_none_when_kept, ["return len(sides), not None"]),
    ("swap_carry_length", _carry_any_other_place_ends, ["another place does not end the carry"]),
    ("swap_carry_length", _carry_counts_the_reverting_word, ["one too many"]),
]


@pytest.mark.parametrize(("name", "learner", "parts"), WRONG_ANSWERS, ids=wrong_answer_ids(WRONG_ANSWERS))
def test_wrong_answer_is_rejected_with_its_message(name, learner, parts, capsys) -> None:
    assert_rejected(CHECKS[name](learner), name, parts, capsys.readouterr().out)


def test_checks_leave_the_models_as_they_were() -> None:
    """No hooks, no split q/k/v inputs, the grad mode unchanged, after every check on right and wrong answers."""
    grad_enabled = torch.is_grad_enabled()
    for name in EXERCISES:
        CHECKS[name](getattr(lesson3, name))
    lesson3.check_path_patch(_path_add(reset=False))
    assert torch.is_grad_enabled() == grad_enabled
    for model in {id(m): m for _, m, *_ in cases_paths.setups().values()}.values():
        assert not model.cfg.use_split_qkv_input
        assert not any(hp.fwd_hooks or hp.bwd_hooks for hp in model.hook_dict.values())


@pytest.mark.parametrize("name", [n for n in EXERCISES
                                  if n not in ("logit_diff_direction", "direct_logit_diff", "swap_carry_length")])
def test_a_wrong_answer_is_judged_about_as_fast_as_a_right_one(name, capsys) -> None:
    """'A check judges a wrong answer about as fast as a right one' (and none takes more than a few seconds)."""
    check = CHECKS[name]
    check(getattr(lesson3, name))                                   # builds the cached cases
    start = time.perf_counter()
    check(getattr(lesson3, name))
    right = time.perf_counter() - start
    for wrong_name, fn, _ in WRONG_ANSWERS:
        if wrong_name == name:
            start = time.perf_counter()
            assert not check(fn).passed
            assert time.perf_counter() - start <= 3 * right + 1.0, (wrong_name, fn)


# ============================================================================ the references agree with the libraries
def test_late_binding_is_read_from_the_source() -> None:
    assert late_bound_names(_denoise_late_binding) == ["head", "layer"]
    assert late_bound_names(_noise_late_binding_lambda) == ["head", "layer"]
    assert late_bound_names(_effect("denoise")) == []                   # frozen as default arguments
    assert late_bound_names(lesson3.denoising_effect) == []
    assert late_bound_names(len) == []                                 # no source to read


def test_references_are_the_libraries_entries() -> None:
    _, model, clean, corrupted, answers = cases_paths.setups()["four"]
    metric = lesson3.cases.NormalizedMetric(model, clean, corrupted, answers)
    with torch.no_grad():
        _, cache = model.run_with_cache(clean)
        by_pos = patching.get_act_patch_attn_head_out_by_pos(model, corrupted, cache, metric)
        every = patching.get_act_patch_attn_head_all_pos_every(model, corrupted, cache, metric)
        for layer, head, pos in [(0, 4, 14), (1, 1, 10), (3, 0, 2)]:
            mine = lesson3.patch_head_at_position(model, corrupted, cache, layer, head, pos, metric)
            assert mine == pytest.approx(by_pos[layer, pos, head].item(), abs=1e-5)
        for index, component in enumerate("qkv", start=1):
            for layer, head in [(0, 4), (2, 5)]:
                mine = lesson3.patch_head_input(model, corrupted, cache, layer, head, component, metric)
                assert mine == pytest.approx(every[index, layer, head].item(), abs=1e-5)


@pytest.mark.parametrize("key", ["four", "tiny", "two"])
def test_path_patch_is_the_three_run_recipe_with_everything_else_frozen(key) -> None:
    _, model, clean, corrupted, answers = cases_paths.setups()[key]
    metric = lesson3.cases.NormalizedMetric(model, clean, corrupted, answers)
    three_runs = _path_three_runs(freeze_heads=True, freeze_mlps=True)
    edges = {"four": [((0, 4), (2, 1)), ((1, 3), (3, 0))], "tiny": [((0, 1), (2, 3))], "two": [((0, 5), (1, 2))]}
    with torch.no_grad():
        for sender, receiver in edges[key]:
            for component in "qkv":
                mine = lesson3.path_patch(model, clean, corrupted, sender, receiver, component, metric)
                assert mine == pytest.approx(three_runs(model, clean, corrupted, sender, receiver, component, metric),
                                             abs=1e-4)


def test_direct_logit_diff_is_the_models_logit_difference() -> None:
    model = cached_model("course-4l")
    _, _, clean, _, answers = cases_paths.setups()["four_b"]
    with torch.no_grad():
        logits, cache = model.run_with_cache(clean)
        picked = logits[:, -1].gather(-1, answers)
        mine = lesson3.direct_logit_diff(model, cache["resid_post", 3], answers)
    torch.testing.assert_close(mine, picked[:, 0] - picked[:, 1], atol=1e-4, rtol=1e-5)


# ============================================================================ the solved workbook's sentences
@pytest.fixture(scope="module")
def workbook() -> dict:
    """The namespace left by running every code cell of the solved workbook."""
    return run_lesson(ROOT / "solutions" / NAME)


@pytest.mark.claim
def test_claim_head_04_acts_at_the_last_position_through_its_values(workbook) -> None:
    """'Head 0.4's effect sits at the last position ...: every other position stays near 0'; 'Head 0.4 needs its
    clean values: the clean queries and keys alone bring back almost nothing'."""
    by_position = workbook["by_position"]
    assert by_position[-1] > 0.3
    assert max(abs(v) for v in by_position[:-1]) < 0.05
    assert torch.allclose(torch.tensor(by_position), workbook["library_row"].float(), atol=1e-5)
    inputs = workbook["inputs_04"]
    assert inputs["v"] > 0.3 and abs(inputs["q"]) < 0.05 and abs(inputs["k"]) < 0.05


@pytest.mark.claim
def test_claim_no_path_from_04_into_block_1_values_matters(workbook) -> None:
    """'No path from head 0.4 into a value input of block 1 moves the metric by more than 0.05, while corrupting
    0.4's whole output drops it to about 0.3'."""
    assert max(abs(1 - v) for v in workbook["paths_from_04"].values()) < 0.05
    assert round(workbook["total_04"], 1) == 0.3


@pytest.mark.claim
def test_claim_denoising_and_noising_disagree(workbook) -> None:
    """'Head 0.4 alone restores about 0.45 ... its corruption destroys about 0.7'; blocks 1 to 3 'restore nothing
    (under 0.05), yet corrupting them destroys about 0.4'; '3.0 and 3.2 do nothing either way'."""
    effects = workbook["effects"]
    restored, destroyed = effects["0.4"]
    assert 0.4 < restored < 0.5 and 0.65 < destroyed < 0.75
    restored, destroyed = effects["every head of blocks 1-3"]
    assert restored < 0.05 and 0.35 < destroyed < 0.5
    assert all(abs(v) < 0.05 for v in effects["3.0, 3.2"])
