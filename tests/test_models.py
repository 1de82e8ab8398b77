"""Training, bundles and scoring: loss falls, bundles round-trip exactly, bad bundles fail clearly, resume works."""
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from clickbait.bundle import dequantize_state, load_bundle, quantize_state, round_weights, save_bundle
from clickbait.errors import BundleError
from clickbait.generate import score_headlines
from clickbait.models import PRESETS, build_lm, count_params, lm_forward

HEADLINES = ["17 Things You Will Only Understand If You Love Dogs", "Obama signs the budget bill",
             "This Cat Did Something Amazing And You Won't Believe It", "xyzzy plugh frobnicate"]


def test_presets_sizes(slice_tokenizer):
    assert count_params(build_lm(10_008, PRESETS["small"])) in range(3_000_000, 6_000_001)
    assert count_params(build_lm(len(slice_tokenizer), PRESETS["tiny"])) < 300_000


def test_tiny_lm_validation_loss_falls(tiny_learner):
    after = float(tiny_learner.validate()[0])
    assert after < tiny_learner.loss_before - 1.0


def test_scores_are_log_probs_with_end_of_headline(tiny_bundle):
    scores = score_headlines(HEADLINES, tiny_bundle)
    assert len(scores) == len(HEADLINES) and all(s < 0 for s in scores)
    # scoring one at a time equals batched scoring (padding never leaks into a score)
    assert [score_headlines([h], tiny_bundle)[0] for h in HEADLINES] == pytest.approx(scores, abs=1e-4)
    # the LM reads `xxeos xxbos` and then the words, as in its training stream; every token after xxbos is scored
    model, tok = tiny_bundle.model, tiny_bundle.tokenizer
    for headline, score in zip(HEADLINES, scores):
        ids = torch.tensor([tok.numericalize(["xxeos"]) + tok.encode(headline)])
        with torch.no_grad():
            logp = lm_forward(model, ids[:, :-1])[0].float().log_softmax(-1)[0, 1:]
        assert logp.gather(-1, ids[0, 2:, None]).sum().item() == pytest.approx(score, abs=1e-4)


def test_bundle_roundtrip_identical_scores(tiny_bundle, tiny_bundle_path, tmp_path):
    copy = save_bundle(tmp_path / "copy", tiny_bundle.model, tiny_bundle.tokenizer,
                       {"kind": "lm", "preset": "tiny"}, dtype="float32")
    assert score_headlines(HEADLINES, load_bundle(copy)) == score_headlines(HEADLINES, tiny_bundle)
    files = sorted(p.name for p in Path(tiny_bundle_path).iterdir())
    # no pickles: JSON, safetensors, and (LMs trained on headlines) the JSON rare-word table
    assert files == ["config.json", "model.safetensors", "novelty.safetensors", "rare_contexts.safetensors",
                     "rare_words.json", "vocab.json"]
    config = json.loads((Path(tiny_bundle_path) / "config.json").read_text())
    assert config["data_fingerprint"] and config["versions"]["fastai"].startswith("2.8")
    assert config["tokenizer"]["min_freq"] == 2 and config["tokenizer"]["max_vocab"] == 3000


def test_save_never_overwrites_silently(tiny_bundle, tiny_bundle_path):
    before = (Path(tiny_bundle_path) / "model.safetensors").read_bytes()
    with pytest.raises(BundleError, match="already exists"):
        save_bundle(tiny_bundle_path, tiny_bundle.model, tiny_bundle.tokenizer, {"kind": "lm", "preset": "tiny"})
    assert (Path(tiny_bundle_path) / "model.safetensors").read_bytes() == before


@pytest.fixture
def bundle_copy(tiny_bundle_path, tmp_path):
    return Path(shutil.copytree(tiny_bundle_path, tmp_path / "b"))


def test_corrupted_weights(bundle_copy):
    weights = bundle_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(BundleError, match=r"model.safetensors: corrupt or truncated"):
        load_bundle(bundle_copy)
    weights.write_bytes(b"\x00" * 100)
    with pytest.raises(BundleError, match=r"model.safetensors: corrupt or truncated"):
        load_bundle(bundle_copy)


def test_int8_weights_round_within_half_a_step_and_load_as_saved(tiny_bundle, tmp_path):
    state = {"w": torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [3.0, 1.5, -0.01]]), "b": torch.tensor([0.1, 2.0])}
    stored = quantize_state(state, "int8")
    assert stored["w"].dtype == torch.int8 and stored["b"].dtype == torch.float16  # vectors stay float16
    back = dequantize_state(stored, Path("x"))
    assert set(back) == {"w", "b"}
    step = state["w"].abs().amax(1, keepdim=True) / 127
    assert ((back["w"] - state["w"]).abs() <= step / 2 + 1e-7).all() and back["w"][1].eq(0).all()

    path = save_bundle(tmp_path / "int8", tiny_bundle.model, tiny_bundle.tokenizer,
                       {"kind": "lm", "preset": "tiny"}, dtype="int8")
    fp16 = (Path(tiny_bundle.path) / "model.safetensors").stat().st_size
    assert (path / "model.safetensors").stat().st_size < 0.6 * fp16
    loaded = load_bundle(path)
    assert loaded.config["dtype"] == "int8" and loaded.config["n_params"] == tiny_bundle.config["n_params"]
    rounded = round_weights(copy.deepcopy(tiny_bundle.model), "int8")
    for name, tensor in loaded.model.state_dict().items():  # the loaded model is the rounded one, exactly
        assert torch.equal(tensor, rounded.state_dict()[name]), name
    drift = np.abs(np.array(score_headlines(HEADLINES, loaded)) - np.array(score_headlines(HEADLINES, tiny_bundle)))
    assert drift.max() < 0.5  # nats per headline: rounding moves a score a little, not a lot


def test_corrupt_int8_weights(tiny_bundle, tmp_path):
    path = save_bundle(tmp_path / "int8", tiny_bundle.model, tiny_bundle.tokenizer,
                       {"kind": "lm", "preset": "tiny"}, dtype="int8")
    weights = path / "model.safetensors"
    tensors = load_file(str(weights))
    name = next(k for k in tensors if k.endswith(":int8_scale"))
    save_file({**tensors, name: tensors[name][:-1].contiguous()}, str(weights))
    with pytest.raises(BundleError, match=r"int8_scale must be float32 of shape \(\d+,\), one scale per row"):
        load_bundle(path)
    save_file({k: v for k, v in tensors.items() if k != name}, str(weights))  # a matrix without its scale
    with pytest.raises(BundleError, match="must hold finite floating-point weights .*int8"):
        load_bundle(path)
    with pytest.raises(BundleError, match="weights dtype must be one of"):
        save_bundle(tmp_path / "bf", tiny_bundle.model, tiny_bundle.tokenizer, {"kind": "lm", "preset": "tiny"},
                    dtype="bfloat16")
    assert not (tmp_path / "bf").exists()


def test_vocab_weights_mismatch(bundle_copy, tiny_bundle):
    vocab = json.loads((bundle_copy / "vocab.json").read_text())
    vocab["vocab"] += [f"extra{i}" for i in range(8)]
    (bundle_copy / "vocab.json").write_text(json.dumps(vocab))
    config = json.loads((bundle_copy / "config.json").read_text())
    config["vocab_size"] += 8
    (bundle_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"model.safetensors: 0.encoder.weight has shape \(3008, 32\).*vocabulary or preset mismatch"):
        load_bundle(bundle_copy)
    config["vocab_size"] -= 8
    (bundle_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"vocab.json: \d+ tokens, but config.json says"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("name", ["config.json", "vocab.json", "model.safetensors", "novelty.safetensors"])
def test_missing_file(bundle_copy, name):
    (bundle_copy / name).unlink()
    with pytest.raises(BundleError, match=name):
        load_bundle(bundle_copy)


def test_unknown_bundle_path(tmp_path):
    with pytest.raises(BundleError, match="no such bundle directory"):
        score_headlines(["x"], tmp_path / "nowhere")


def test_resume_after_kill(shared_dir, tmp_path):
    """SIGKILL the recipe after its first checkpoint; the rerun continues from that epoch, not from zero."""
    work, out = tmp_path / "work", tmp_path / "bundle"
    cmd = [sys.executable, "-m", "clickbait.cli", "train", "lm", "--data", str(shared_dir), "--out", str(out),
           "--work", str(work),
           "--preset", "tiny", "--sample", "800", "--general-epochs", "4", "--target-epochs", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = work / "progress.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if progress.exists() and json.loads(progress.read_text()).get("general/0", {}).get("epochs", 0) >= 1:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(progress.read_text())["general/0"]["epochs"]
    assert 1 <= done < 4, "the kill should land mid-stage"
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming general phase 0 at epoch {done}/4" in result.stdout
    history = (work / "general_history.csv").read_text().splitlines()
    epochs = [int(line.split(",")[1]) for line in history if line.startswith("general/0,")]
    assert epochs == list(range(4)), history  # each epoch trained once: the rerun skipped the finished ones
    assert load_bundle(out).config["kind"] == "lm"


def test_a_stage_keeps_its_best_phase(slice_df, slice_tokenizer, tmp_path):
    """A last phase that validates worse than an earlier one does not get the last word."""
    from clickbait.datablocks import lm_dataloaders
    from clickbait.fit import Phase, fit_phases
    from clickbait.train import lm_learner
    preset = PRESETS["tiny"]
    dls = lm_dataloaders(slice_df.head(600), slice_tokenizer, bs=preset.bs, seq_len=preset.seq_len, seed=0)
    learn = lm_learner(dls, preset, path=tmp_path)
    logs = []
    with learn.no_bar(), learn.no_logging():
        fit_phases(learn, [Phase(1, 1e-2), Phase(1, 5.0)], "general", tmp_path, log=logs.append)  # 5.0: ruinous
    progress = json.loads((tmp_path / "progress.json").read_text())
    good, ruined = progress["general/0"]["best"], progress["general/1"]["best"]
    assert ruined > good + 0.1
    assert float(learn.validate()[0]) == pytest.approx(good, abs=1e-4)
    assert "keeping phase 0" in logs[-1]


def test_a_rerun_with_other_settings_is_refused_before_it_mixes_two_recipes(slice_df, slice_tokenizer, tmp_path):
    from clickbait.datablocks import lm_dataloaders
    from clickbait.errors import CheckpointError
    from clickbait.fit import Phase, fit_phases
    from clickbait.train import lm_learner
    preset = PRESETS["tiny"]
    dls = lm_dataloaders(slice_df.head(300), slice_tokenizer, bs=preset.bs, seq_len=preset.seq_len, seed=0)
    learn = lm_learner(dls, preset, path=tmp_path)
    settings = {"preset": preset.to_dict(), "headlines": 300}
    with learn.no_bar(), learn.no_logging():
        fit_phases(learn, [Phase(1, 1e-2)], "general", tmp_path, log=lambda _: None, settings=settings)
        before = (tmp_path / "progress.json").read_text()
        with pytest.raises(CheckpointError, match=r"general/0 was started with other settings \(epochs: 1 then, 2 now"):
            fit_phases(learn, [Phase(2, 1e-2)], "general", tmp_path, log=lambda _: None, settings=settings)
        with pytest.raises(CheckpointError, match=r"headlines: 300 then, 400 now"):
            fit_phases(learn, [Phase(1, 1e-2)], "general", tmp_path, log=lambda _: None,
                       settings={**settings, "headlines": 400})
        assert (tmp_path / "progress.json").read_text() == before
        fit_phases(learn, [Phase(1, 1e-2)], "general", tmp_path, log=lambda _: None, settings=settings)  # same: resumes
    assert json.loads(before)["general/0"]["plan"]["epochs"] == 1


def test_every_fit_hands_freed_memory_back_on_schedule(slice_df, slice_tokenizer, tmp_path, monkeypatch):
    # Without trimming, glibc kept ~1.8 MB per batch of the small LM and a 15-epoch recipe was killed for memory.
    from clickbait import fit
    from clickbait.datablocks import lm_dataloaders
    from clickbait.train import lm_learner
    calls = []
    monkeypatch.setattr(fit, "_glibc_malloc_trim", lambda: calls.append)
    preset = PRESETS["tiny"]
    dls = lm_dataloaders(slice_df.head(600), slice_tokenizer, bs=preset.bs, seq_len=preset.seq_len, seed=0)
    learn = lm_learner(dls, preset, path=tmp_path)
    monkeypatch.setattr(fit, "TRIM_EVERY", 2)
    with learn.no_bar(), learn.no_logging():
        fit.fit_phases(learn, [fit.Phase(2, 1e-2)], "general", tmp_path, log=lambda _: None)
    train_batches = len(learn.dls.train)
    assert train_batches >= 2
    assert len(calls) == 2 * (train_batches // 2 + 1)  # every 2nd training batch, and at each epoch's end
    assert calls and set(calls) == {0}


def test_lm_encode_reads_the_raw_recurrent_weights_exactly_as_fastai_does(tiny_bundle):
    # lm_encode skips WeightDropout's per-call copy in eval mode: same outputs as fastai's own forward, also after
    # a training forward left dropped-out weights in the LSTM, and training still drops them.
    import torch

    from clickbait.models import lm_encode
    model, tokens = tiny_bundle.model, torch.tensor([tiny_bundle.tokenizer.encode("17 Things Only Dog Owners Know")])
    model.eval()
    model.reset()
    fastai_out = model[0](tokens)
    assert torch.equal(lm_encode(model, tokens)[0], fastai_out)
    try:
        model.train()
        torch.manual_seed(0)
        lm_encode(model, tokens)
        rnn = model[0].rnns[0]
        assert not torch.equal(rnn.module.weight_hh_l0, rnn.weight_hh_l0_raw)  # weight dropout still applies
    finally:
        model.eval()
    assert torch.equal(lm_encode(model, tokens)[0], fastai_out)
