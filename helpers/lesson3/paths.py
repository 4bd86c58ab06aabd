"""Lesson 3c, section 1: the plumbing of path patching (which hook a sender writes from, which a receiver reads).

The notebook writes the path-patching hook itself; this module only names the two ends of an edge:

- a :class:`Sender` is a head (its ``hook_z`` times ``W_O``) or a block's MLP (its ``hook_mlp_out``);
  :func:`sender_output` is what it adds to the residual stream, ``[batch, pos, d_model]``;
- a :class:`Receiver` is one head's query, key or value input (``hook_q_input`` / ``hook_k_input`` /
  ``hook_v_input``, which exist once ``model.set_use_split_qkv_input(True)``), a block's MLP input
  (``hook_mlp_in``, after ``model.set_use_hook_mlp_in(True)``), or the logits (the residual stream
  after the last block, the unembedding's input).

Every receiver's hook sits *before* its LayerNorm, so adding a difference there is adding it to what
that one component reads from the residual stream, and to nothing else.
"""
from __future__ import annotations

from typing import Literal, NamedTuple

from jaxtyping import Float
from torch import Tensor
from transformer_lens import ActivationCache, HookedTransformer

__all__ = ["SenderKind", "ReceiverKind", "Sender", "Receiver", "sender_output", "receiver_hook", "later_heads",
           "enable_path_hooks"]

SenderKind = Literal["head", "mlp"]
ReceiverKind = Literal["q", "k", "v", "mlp", "logits"]


class Sender(NamedTuple):
    """The start of an edge: head ``layer.head`` (``kind="head"``) or block ``layer``'s MLP (``kind="mlp"``)."""

    kind: SenderKind
    layer: int
    head: int | None = None

    @property
    def label(self) -> str:
        return f"{self.layer}.{self.head}" if self.kind == "head" else f"MLP {self.layer}"


class Receiver(NamedTuple):
    """The end of an edge: head ``layer.head``'s query, key or value input, block ``layer``'s MLP, or the logits."""

    kind: ReceiverKind
    layer: int = -1
    head: int | None = None

    @property
    def label(self) -> str:
        if self.kind == "logits":
            return "logits"
        if self.kind == "mlp":
            return f"MLP {self.layer}"
        return f"{self.layer}.{self.head} {self.kind}"


def sender_output(cache: ActivationCache, model: HookedTransformer, sender: Sender
                  ) -> Float[Tensor, "batch pos d_model"]:
    """What ``sender`` adds to the residual stream in the run of ``cache``: a head's ``z @ W_O``, or an MLP's output."""
    if sender.kind == "mlp":
        return cache["mlp_out", sender.layer]
    if sender.head is None:
        raise ValueError("a head sender needs its head index")
    return cache["z", sender.layer][:, :, sender.head] @ model.W_O[sender.layer, sender.head]


def receiver_hook(model: HookedTransformer, receiver: Receiver) -> str:
    """The hook point whose value ``receiver`` reads (before its LayerNorm)."""
    if receiver.kind == "logits":
        return f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    if receiver.kind == "mlp":
        return f"blocks.{receiver.layer}.hook_mlp_in"
    return f"blocks.{receiver.layer}.hook_{receiver.kind}_input"


def later_heads(model: HookedTransformer, after_layer: int, kind: Literal["q", "k", "v"]) -> list[Receiver]:
    """The ``kind`` input of every head in the blocks after ``after_layer``."""
    return [Receiver(kind, layer, head) for layer in range(after_layer + 1, model.cfg.n_layers)
            for head in range(model.cfg.n_heads)]


def enable_path_hooks(model: HookedTransformer) -> None:
    """Turn on the hook points a receiver needs: one copy of the residual stream per head (``hook_q_input``,
    ``hook_k_input``, ``hook_v_input``) and the MLP's own input (``hook_mlp_in``). The model computes the
    same logits; it is a little slower."""
    model.set_use_split_qkv_input(True)
    model.set_use_hook_mlp_in(True)


def downstream(model: HookedTransformer, sender: Sender) -> list[Receiver]:
    """Every receiver that reads what ``sender`` writes: the q, k and v of every head in a later block, every
    later MLP (a head's own block's MLP included), and the logits. Patching the path into all of them at once
    is patching the sender's whole output."""
    first_mlp = sender.layer if sender.kind == "head" else sender.layer + 1
    heads = [r for kind in ("q", "k", "v") for r in later_heads(model, sender.layer, kind)]     # type: ignore[arg-type]
    return [Receiver("mlp", layer) for layer in range(first_mlp, model.cfg.n_layers)] + heads + [Receiver("logits")]


__all__ += ["downstream"]
