"""The natural wrong answers of workbook 3c, each written as a learner might write it, for
:mod:`helpers.lesson3.checks_paths` to recognise (it names the mistake whose output the learner's matches).

Each builder takes the mistake's mode and returns a function with the exercise's signature.
:func:`late_bound_names` reads a learner's source for hooks defined in a loop that read the loop's variable
when they run (late binding), a mistake whose numbers depend on how the loop was written.
"""
from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any, Literal

from torch import Tensor
from transformer_lens.utils import get_act_name

from helpers.lesson3.reference_paths import answer_logit_diff, logit_diff_direction, sender_output_change

__all__ = ["position_mistake", "input_mistake", "path_mistake", "direction_mistake", "direct_mistake",
           "effect_mistake", "carry_mistake", "late_bound_names"]


# ----------------------------------------------------------------------------- exercise 11
def position_mistake(mode: Literal["all_positions", "all_heads", "swapped", "last"]):
    """Exercise 11 patching every position, every head at the position, ``z[:, head, pos]`` (the two indices
    swapped), or the last position whatever ``pos`` is."""
    def wrong(model, corrupted_tokens, clean_cache, layer, head, pos, metric) -> float:
        def hook(z, hook):
            clean = clean_cache["z", layer]
            if mode == "all_positions":
                z[:, :, head] = clean[:, :, head]
            elif mode == "all_heads":
                z[:, pos] = clean[:, pos]
            elif mode == "swapped":
                z[:, head, pos] = clean[:, head, pos]
            else:
                z[:, -1, head] = clean[:, -1, head]
            return z
        logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name("z", layer), hook)])
        return metric(logits).item()
    return wrong


# ----------------------------------------------------------------------------- exercise 12
def input_mistake(mode: Literal["z", "swap_qk", "all_heads", "position", "pattern"]):
    """Exercise 12 patching the head's output (``hook_z``) instead, the keys for the queries (and back), every head
    of the layer, ``act[:, head]`` (a position, not a head), or the head's attention pattern."""
    def wrong(model, corrupted_tokens, clean_cache, layer, head, component, metric) -> float:
        name = {"z": "z", "pattern": "pattern", "swap_qk": {"q": "k", "k": "q", "v": "v"}[component]}.get(
            mode, component)

        def hook(act, hook):
            clean = clean_cache[name, layer]
            if mode == "all_heads":
                act[:] = clean
            elif mode in ("position", "pattern"):        # hook_pattern is [batch, head_index, query_pos, key_pos]
                act[:, head] = clean[:, head]
            else:
                act[:, :, head] = clean[:, :, head]
            return act
        logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(get_act_name(name, layer), hook)])
        return metric(logits).item()
    return wrong


# ----------------------------------------------------------------------------- exercise 13
PathMode = Literal["total", "no_freeze", "mlps_free", "backward", "receiver_block", "late_binding"]


def path_mistake(mode: PathMode):
    """Exercise 13 gone wrong:

    - ``"total"``: the sender's whole output patched from the corrupted run (its total effect, not one path);
    - ``"no_freeze"``: the receiver's input recorded on a run where only the sender was patched, so the change
      also reaches it through the MLPs and heads in between;
    - ``"mlps_free"``: the other heads frozen, the MLPs not;
    - ``"backward"``: the sender's change added to the receiver's input even where the receiver sits in the
      sender's block or an earlier one;
    - ``"receiver_block"``: the changed residual stream patched into the whole receiver block
      (``hook_resid_pre``: every head and the MLP read it), not into the receiver's one input;
    - ``"late_binding"``: the three-run recipe with its freezing hooks defined in a loop that reads ``layer``
      when they run: every hook freezes its layer to the *last* layer's clean output.
    """
    def wrong(model, clean_tokens, corrupted_tokens, sender, receiver, component, metric) -> float:
        (sender_layer, sender_head), (receiver_layer, receiver_head) = sender, receiver
        _, clean = model.run_with_cache(clean_tokens)
        _, corrupted = model.run_with_cache(corrupted_tokens)
        if mode == "total":
            def patch_sender(z, hook):
                z[:, :, sender_head] = corrupted["z", sender_layer][:, :, sender_head]
                return z
            return metric(model.run_with_hooks(clean_tokens, fwd_hooks=[(get_act_name("z", sender_layer),
                                                                          patch_sender)])).item()
        if mode in ("backward", "receiver_block"):
            resid = clean["resid_pre", receiver_layer] + sender_output_change(model, clean, corrupted, sender)
        elif receiver_layer <= sender_layer:
            return metric(model(clean_tokens)).item()
        else:
            resid = _receiver_input(model, clean_tokens, clean, corrupted, sender, receiver_layer, mode)
        if mode == "receiver_block":
            hooks = [(get_act_name("resid_pre", receiver_layer), lambda act, hook: resid)]
            return metric(model.run_with_hooks(clean_tokens, fwd_hooks=hooks)).item()
        model.set_use_split_qkv_input(True)
        try:
            def patch_input(act, hook):                  # act: [batch, pos, head_index, d_model]
                act[:, :, receiver_head] = resid
                return act
            logits = model.run_with_hooks(clean_tokens, fwd_hooks=[
                (f"blocks.{receiver_layer}.hook_{component}_input", patch_input)])
        finally:
            model.set_use_split_qkv_input(False)
        return metric(logits).item()
    return wrong


def _receiver_input(model, clean_tokens, clean, corrupted, sender, receiver_layer: int, mode: str) -> Tensor:
    """The residual stream before the receiver's block on the second run of a (mistaken) three-run recipe."""
    sender_layer, sender_head = sender
    hooks: list[tuple[str, Any]] = []
    if mode == "late_binding":
        for layer in range(model.cfg.n_layers):
            def freeze(z, hook):
                z[:] = clean["z", layer]  # noqa: B023 - the late-binding mistake itself
                if layer == sender_layer:  # noqa: B023
                    z[:, :, sender_head] = corrupted["z", layer][:, :, sender_head]  # noqa: B023
                return z
            hooks.append((get_act_name("z", layer), freeze))
            hooks.append((get_act_name("mlp_out", layer), lambda act, hook, layer=layer: clean["mlp_out", layer]))
    else:
        def patch_sender(z, hook):
            if mode != "no_freeze":
                z[:] = clean[hook.name]
            z[:, :, sender_head] = corrupted["z", sender_layer][:, :, sender_head]
            return z
        hooks.append((get_act_name("z", sender_layer), patch_sender))
        if mode != "no_freeze":
            hooks += [(get_act_name("z", layer), lambda z, hook: clean[hook.name])
                      for layer in range(model.cfg.n_layers) if layer != sender_layer]
    if model.cfg.attn_only:
        hooks = [(name, fn) for name, fn in hooks if "mlp" not in name]
    recorded: dict[str, Tensor] = {}

    def record(resid, hook):
        recorded["resid"] = resid.clone()
    model.run_with_hooks(clean_tokens, fwd_hooks=[*hooks, (get_act_name("resid_pre", receiver_layer), record)])
    return recorded["resid"]


# ----------------------------------------------------------------------------- exercise 14
def direction_mistake(mode: Literal["flipped", "embedding", "transposed", "cross_batch", "cross_batch_T",
                                    "mean"]):
    """Exercise 14 as S minus IO, from the embedding ``W_E`` instead of the unembedding, left ``[d_model, batch]``,
    indexed across the batch (``W_U[:, answer_tokens][:, 0]``: prompt 0's two answers, not every prompt's right
    answer; also transposed), or averaged into one direction for the whole batch."""
    def wrong(model, answer_tokens):
        right, wrong_ = answer_tokens[:, 0], answer_tokens[:, 1]
        if mode == "flipped":
            return (model.W_U[:, wrong_] - model.W_U[:, right]).T
        if mode == "embedding":
            return model.W_E[right] - model.W_E[wrong_]
        if mode == "transposed":
            return model.W_U[:, right] - model.W_U[:, wrong_]
        if mode in ("cross_batch", "cross_batch_T"):
            picked = model.W_U[:, answer_tokens]                  # [d_model, batch, 2]
            out = picked[:, 0] - picked[:, 1]                      # prompt 0's columns minus prompt 1's
            return out.T if mode == "cross_batch_T" else out
        return logit_diff_direction(model, answer_tokens).mean(0)
    return wrong


# ----------------------------------------------------------------------------- exercise 15
def direct_mistake(mode: Literal["cross_batch", "no_ln", "no_bias", "first_position", "flipped"]):
    """Exercise 15 with every prompt's residual read along every prompt's direction (``[batch, batch]``), without
    the final LayerNorm, without the unembedding's bias, at position 0, or as wrong minus right."""
    def wrong(model, final_resid, answer_tokens):
        x = final_resid[:, 0] if mode == "first_position" else final_resid[:, -1]
        x = x if mode == "no_ln" else model.ln_final(x)
        direction = logit_diff_direction(model, answer_tokens)
        bias = model.b_U[answer_tokens[:, 0]] - model.b_U[answer_tokens[:, 1]]
        if mode == "cross_batch":
            return x @ direction.T + bias
        out = (x * direction).sum(-1) + (0 if mode == "no_bias" else bias)
        return -out if mode == "flipped" else out
    return wrong


# ----------------------------------------------------------------------------- exercises 16 and 17
EffectMode = Literal["swapped", "unnormalized", "sign", "raw", "kept", "late_binding"]


def effect_mistake(direction: Literal["denoise", "noise"], mode: EffectMode):
    """Exercises 16 (``"denoise"``) and 17 (``"noise"``) gone wrong: the patch run the other way round
    (``"swapped"``), the change of the logit difference not divided by ``clean - corrupted``, its sign flipped,
    the patched run's logit difference itself (``"raw"``), the share kept instead of the share destroyed
    (``"kept"``, noising), or hooks built in a loop that read ``layer`` and ``head`` when they run (every hook
    patches the last head of the list)."""
    def wrong(model, clean_tokens, corrupted_tokens, answer_tokens, heads) -> float:
        patch_into = {"denoise": corrupted_tokens, "noise": clean_tokens}
        source = {"denoise": clean_tokens, "noise": corrupted_tokens}
        way = {"denoise": "noise", "noise": "denoise"}[direction] if mode == "swapped" else direction
        _, cache = model.run_with_cache(source[way])
        hooks = []
        for layer, head in heads:
            if mode == "late_binding":
                def late(z, hook):
                    z[:, :, head] = cache["z", layer][:, :, head]  # noqa: B023 - the late-binding mistake itself
                    return z
                hooks.append((get_act_name("z", layer), late))
            else:
                def hook(z, hook, layer=layer, head=head):
                    z[:, :, head] = cache["z", layer][:, :, head]
                    return z
                hooks.append((get_act_name("z", layer), hook))
        patched = answer_logit_diff(model.run_with_hooks(patch_into[way], fwd_hooks=hooks), answer_tokens)
        clean = answer_logit_diff(model(clean_tokens), answer_tokens)
        corrupted = answer_logit_diff(model(corrupted_tokens), answer_tokens)
        if mode == "raw":
            return patched
        change = patched - corrupted if way == "denoise" else clean - patched
        if mode == "unnormalized":
            return change
        if mode == "kept":
            return (patched - corrupted) / (clean - corrupted)
        share = change / (clean - corrupted)
        return -share if mode == "sign" else share
    return wrong


# ----------------------------------------------------------------------------- exercise 18
def carry_mistake(mode: Literal["no_answer_check", "other_place_ends", "target_run", "none_if_kept", "inclusive"]):
    """Exercise 18 counting on whether or not the answer moved, ending the carry at another place too, counting
    only the unbroken run of target words, returning ``None`` when the swap never reverts, or counting the
    reverting word."""
    def wrong(sides):
        sides = list(sides)
        if mode == "target_run":
            n = 0
            while n < len(sides) and sides[n] == "target":
                n += 1
            return n
        if mode != "no_answer_check" and (not sides or sides[0] != "target"):
            return 0
        ends = ("source", "other place") if mode == "other_place_ends" else ("source",)
        at = next((i for i, side in enumerate(sides) if i >= 1 and side in ends), None)
        if at is None:
            return None if mode == "none_if_kept" else len(sides)
        return at + 1 if mode == "inclusive" else at
    return wrong


# ----------------------------------------------------------------------------- late binding, from the source
def late_bound_names(learner_fn: object) -> list[str]:
    """Loop variables that a function defined inside a ``for`` loop of ``learner_fn`` reads when it runs (not frozen
    as a default argument): ``for layer in ...: def hook(z, hook): ... layer ...``. Empty when the source cannot be
    read (a function made by ``exec``) or nothing is late-bound."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(learner_fn)))  # type: ignore[arg-type]
    except (OSError, TypeError, SyntaxError):
        return []
    found: list[str] = []
    for loop in ast.walk(tree):
        body: list[ast.AST]
        if isinstance(loop, ast.For):
            targets, body = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}, list(loop.body)
        elif isinstance(loop, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            targets = {n.id for g in loop.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
            body = [loop.key, loop.value] if isinstance(loop, ast.DictComp) else [loop.elt]
        else:
            continue
        for inner in (n for part in body for n in ast.walk(part) if isinstance(n, (ast.FunctionDef, ast.Lambda))):
            arguments = inner.args
            bound = {a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]}
            reads = {n.id for n in ast.walk(inner) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            found += sorted((reads & targets) - bound - set(found))
    return found
