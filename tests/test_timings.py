"""The timing table: one source (docs/timings.json) rendered into docs/timings.md and the README."""
from __future__ import annotations

import json
from pathlib import Path

import patching_cost
import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from tooling import timings

ROOT = Path(__file__).resolve().parent.parent
DATA = json.loads(timings.DATA.read_text(encoding="utf-8"))



def test_rendered_files_match_timings_json() -> None:
    stale = timings.stale(DATA)
    assert not stale, f"{[str(p.relative_to(ROOT)) for p in stale]} differ from docs/timings.json: " \
                      "run `python -m tooling.timings --render` (or `python3 course.py timings` to measure again)"


def test_readme_block_is_the_timings_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    page = timings.PAGE.read_text(encoding="utf-8")
    assert "# Timings\n\n" + timings.readme_block(readme) == page


def test_every_notebook_is_timed_and_ran() -> None:
    timed = {row["notebook"]: row for row in DATA["notebooks"]}
    expected = {str(p.relative_to(ROOT)) for p in timings.timed_notebooks()}
    assert set(timed) == expected, "notebooks were added or renamed: run `python3 course.py timings`"
    for name, row in timed.items():
        assert row["ran"], f"{name} did not run through when timed: {row['error']}"
        assert row["seconds"] > 0 and row["peak_mb"] and row["peak_mb"] > 100
    for name, row in timed.items():
        kind = name.split("/")[0]
        if kind == "solutions":
            assert row["checks_passed"] > 0 and row["checks_failed"] == 0, name
        if kind == "exercises":
            assert row["checks_failed"] > 0, f"{name}: blank exercises should fail their checks"


def test_machine_and_ratio_are_recorded() -> None:
    machine, cost = DATA["machine"], DATA["patching_cost"]
    assert machine["logical_cores"] and machine["ram_gb"] and machine["cpu"] and machine["date"]
    assert cost["gpt2_small_shape"]["forward_passes"] == 3 * cost["course_4l"]["forward_passes"]  # 12 vs 4 layers
    assert cost["ratio"] == pytest.approx(cost["gpt2_small_shape"]["seconds"] / cost["course_4l"]["seconds"], rel=0.02)
    assert cost["ratio"] > 1
    body = timings.render_body(DATA)
    assert f"{cost['ratio']:g} times" in body and machine["cpu"] in body


def test_readme_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="markers"):
        timings.readme_with_block("# A README without the block\n", "table\n")


def test_gpt2_shape_is_gpt2_small() -> None:
    shape = patching_cost.GPT2_SMALL_SHAPE
    assert (shape["n_layers"], shape["d_model"], shape["n_heads"], shape["d_head"], shape["d_mlp"],
            shape["d_vocab"], shape["n_ctx"], shape["act_fn"]) == (12, 768, 12, 64, 3072, 50257, 1024, "gelu_new")


def test_sweep_runs_on_seeded_random_tokens() -> None:
    """The timed code path, on a tiny random model: same shapes in, the same patch count, repeatable tokens."""
    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=50, n_ctx=16,
                                  act_fn="gelu_new", normalization_type="LN", seed=0)
    model = HookedTransformer(cfg)
    like = torch.zeros(1, 6, dtype=torch.long)
    differ = torch.tensor([[False, True, True, False, False, False]])
    clean, corrupt, answers = patching_cost.random_sweep_inputs(model, like, differ, seed=0)
    again = patching_cost.random_sweep_inputs(model, like, differ, seed=0)
    assert all(torch.equal(a, b) for a, b in zip((clean, corrupt, answers), again))
    assert clean.shape == corrupt.shape == (1, 6) and answers.shape == (1, 2) and clean[0, 0] == 49
    assert torch.equal(clean[~differ], corrupt[~differ])
    with torch.no_grad():
        assert patching_cost.sweep(model, clean, corrupt, answers) > 0


def test_only_remeasures_the_named_rows_and_keeps_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = DATA["notebooks"][0], DATA["notebooks"][1]
    target = ROOT / first["notebook"]
    fresh = {**first, "seconds": 1234.5}
    monkeypatch.setattr(timings, "measure_notebooks", lambda paths, log=print: [fresh] if paths == [target] else [])
    data = {**DATA, "notebooks": [r for r in DATA["notebooks"] if r["notebook"] != first["notebook"]] + [first]}
    out = timings.measure_only(data, [target])
    assert [r["notebook"] for r in out["notebooks"]] == [str(p.relative_to(ROOT)) for p in timings.timed_notebooks()]
    assert out["notebooks"][0]["seconds"] == 1234.5 and out["notebooks"][1] == second
    assert out["remeasured"][-1]["notebooks"] == [first["notebook"]]
    assert "Re-timed on" in timings.render_body(out) and f"`{first['notebook']}`" in timings.render_body(out)
    without = {**DATA, "notebooks": DATA["notebooks"][1:]}
    monkeypatch.setattr(timings, "measure_notebooks", lambda paths, log=print: [])
    with pytest.raises(SystemExit, match="never timed"):
        timings.measure_only(without, [])
