"""The transcoder training path end to end, fast: ``scripts/train_transcoders.py --quick`` trains into a
temporary folder, what it writes loads with circuit-tracer's own loader, and the same command resumes."""
from __future__ import annotations

import json

import pytest
import torch
import train_transcoders

from helpers.transcoders import load_replacement_model, load_transcoders


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    threads = torch.get_num_threads()
    tmp = tmp_path_factory.mktemp("transcoders")
    args = ["--quick", "--threads", "1", "--out", str(tmp / "out"), "--run-dir", str(tmp / "runs")]
    try:
        record = train_transcoders.main(args)
    finally:
        torch.set_num_threads(threads)
    return tmp, args, record


def test_quick_run_writes_circuit_tracer_files_and_a_record(trained) -> None:
    tmp, _, record = trained
    out = tmp / "out"
    assert {p.name for p in out.iterdir()} == {"config.json", "training_record.json",
                                               *(f"layer_{i}.safetensors" for i in range(4))}
    saved = json.loads((out / "training_record.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["steps"] == 8 and saved["d_transcoder"] == 128 and len(saved["layers"]) == 4
    assert saved["loss_clean"] < saved["loss_all_mlps_zeroed"]
    transcoders = load_transcoders(folder=out)
    assert transcoders.d_transcoder == 128 and transcoders.feature_input_hook == "hook_resid_mid"
    replacement = load_replacement_model(transcoders=transcoders)
    tokens = replacement.to_tokens("The Eiffel Tower is in the city of")
    _, activations = replacement.get_activations(tokens)
    assert activations.shape == (4, tokens.shape[1], 128)


def test_the_same_command_resumes_from_its_checkpoint(trained, capsys) -> None:
    tmp, args, record = trained
    threads = torch.get_num_threads()
    try:
        again = train_transcoders.main(args)
    finally:
        torch.set_num_threads(threads)
    assert "Resuming from step 8" in capsys.readouterr().out
    assert again["layers"] == record["layers"]          # nothing trained twice: same weights, same figures


def test_a_checkpoint_with_other_settings_is_refused(trained) -> None:
    tmp, args, _ = trained
    with pytest.raises(SystemExit, match="other settings"):
        train_transcoders.main([*args, "--steps", "9"])
