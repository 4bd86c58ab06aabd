"""The dimension names of every tensor shape in the course, one list for all of it.

Public functions that take or return tensors say their shapes in the signature with jaxtyping, using
these names, the same as TransformerLens's own signatures::

    from jaxtyping import Float, Int
    def induction_scores(cache: ActivationCache, n_layers: int, half_len: int) -> Float[Tensor, "layer head_index"]: ...
    def repeated_random_tokens(model, n_seqs: int, half_len: int) -> Int[Tensor, "batch pos"]: ...

The tests run with jaxtyping's runtime checker (beartype) on every module of ``helpers`` (the
``--jaxtyping-packages`` option in ``pyproject.toml``), so a shape that disagrees with its signature fails
there, and names shared by two arguments must agree in size within a call.

=================  =====================================================================================
name               what it counts
=================  =====================================================================================
``batch``          prompts or sequences run together
``pos``            token positions of a sequence (``query_pos`` and ``key_pos`` inside attention)
``layer``          transformer blocks, from 0 as TransformerLens does; lesson 4's residual-stream entries
                   (``n_layers + 1``: the embeddings, then after each block) count with it too
``head_index``     attention heads of one layer
``d_model``        the residual stream's width
``d_head``         one head's query, key and value width
``d_mlp``          an MLP's hidden width
``d_vocab``        tokens of the vocabulary (the logits)
``d_sae``          latents of a sparse autoencoder or transcoder
``feature``        features compared with ground truth: lesson 2's planted features, or the SAE
                   latents it scores against labels (a latent read as a feature)
``d_hidden``       the hidden width of lesson 2's toy models
``instance``       toy models trained side by side, one per sparsity
``example``        rows of a probing or scoring dataset (one activation vector each)
``label``          the classes a probe or a latent's score is measured against
``direction``      directions removed or compared (INLP's rank, a set of probe directions)
``node``           nodes of a circuit-tracer attribution graph (features, error nodes, tokens, logits)
``pair``           pairs of features that fire together or apart (lesson 2b's correlated toy models)
=================  =====================================================================================

A dimension whose size is fixed by the data rather than by the model (``example``, ``label``) is named all
the same. ``*batch`` (or ``*instance``) means any number of leading dimensions; ``_example`` is an
``example`` whose size need not match the other arguments'; digits are fixed sizes. A test
(``tests/test_exercise_checklist.py``) fails on any other name in a shape under ``helpers/``.
"""
from __future__ import annotations

DIMENSIONS: tuple[str, ...] = ("batch", "pos", "query_pos", "key_pos", "layer", "head_index", "d_model", "d_head",
                               "d_mlp", "d_vocab", "d_sae", "feature", "d_hidden", "instance", "example", "label",
                               "direction", "node", "pair")

__all__ = ["DIMENSIONS"]
