"""Metric backends (docs/performance.md, "Metric backends"): the exported models give torch's numbers, the export is
cached on disk and reused offline, and a backend that cannot run is refused before any work."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lm_eval_diversity import models
from lm_eval_diversity.models import ModelUnavailableError, check_backend, load_nli_model, load_sentence_model
from lm_eval_diversity.scoring import MetricModels, PromptGroup, score_groups
from lm_eval_diversity.settings import DiversitySettings, resolve_settings

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
EXACT = 1e-5  # what "the same numbers" means for an fp32 backend: every value, every level


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory):
    """One export cache for the module (each model is exported once), never the user's own."""
    path = tmp_path_factory.mktemp("export_cache")
    mp = pytest.MonkeyPatch()
    mp.setenv(models.CACHE_ENV, str(path))
    yield path
    mp.undo()


def _needs(backend: str) -> None:
    """Skip (the optional extra is not installed) unless every package ``backend`` imports is there."""
    for module in models.BACKEND_PACKAGES[backend]:
        pytest.importorskip(module)


def _real_groups(data_dir, k: int, n: int) -> list[PromptGroup]:
    """TruthfulQA's reference answers (K related answers per question) and Alpaca outputs (K unrelated ones)."""
    tqa = [json.loads(x) for x in (data_dir / "truthfulqa" / "validation.jsonl").read_text("utf-8").splitlines() if x]
    sets = [s for s in ((d["correct_answers"] + d["incorrect_answers"])[:k] for d in tqa) if len(s) == k][:n]
    alp = [json.loads(x)["output"] for x in (data_dir / "alpaca" / "train.jsonl").read_text("utf-8").splitlines() if x]
    sets += [alp[i : i + k] for i in range(0, k * n, k)]
    return [PromptGroup(doc_id=i, outputs=list(s)) for i, s in enumerate(sets)]


def _every_value(scores) -> dict:
    out = {(m, lvl): v for m, levels in scores.metrics.items() for lvl, v in levels.items()}
    out.update({(r["doc_id"], m): v for r in scores.per_prompt for m, v in r.items() if isinstance(v, float)})
    return out


@pytest.mark.slow  # exports two models
def test_onnx_scores_equal_torch_on_real_texts(shared_data_dir, minilm, tiny_nli_dir, export_cache):
    _needs("onnx")
    groups = _real_groups(shared_data_dir, k=4, n=10)
    metrics = ("sbert", "vendi", "nli")
    settings = DiversitySettings(metrics=metrics, corpus_metrics=metrics, corpus_sample_size=30, device="cpu")
    torch_models = MetricModels(sbert=minilm, nli=load_nli_model(str(tiny_nli_dir), "cpu"))
    onnx_models = MetricModels(
        sbert=load_sentence_model(MINILM, "cpu", backend="onnx"),
        nli=load_nli_model(str(tiny_nli_dir), "cpu", backend="onnx"),
    )
    assert type(onnx_models.sbert[0].model).__name__ == "RuntimeModel"  # really the exported model
    expected = _every_value(score_groups(groups, settings, torch_models))
    got = _every_value(score_groups(groups, settings.replace(backend="onnx"), onnx_models))
    assert got.keys() == expected.keys() and len(expected) > 3 * len(groups)
    finite = [k for k, v in expected.items() if not math.isnan(v)]
    assert len(finite) > 2 * len(groups)  # the tiny NLI model and both embeddings really produced numbers
    worst = max(abs(got[k] - expected[k]) for k in finite)
    assert worst <= EXACT, worst
    assert all(math.isnan(got[k]) for k in expected.keys() - set(finite))


def test_export_is_cached_and_reused_without_the_torch_model(tiny_nli_dir, export_cache, monkeypatch):
    _needs("onnx")
    first = load_nli_model(str(tiny_nli_dir), "cpu", backend="onnx")  # exported (or cached by the test above)
    exports = sorted(p.name for p in (export_cache / "exports").iterdir())
    assert any(name.startswith("tiny_nli-onnx-") for name in exports)
    assert not any(name.startswith(".export-") for name in exports)  # no temporary directory left behind

    calls = []
    real = models.backend_model

    def spy(backend, source, load_torch, *args, **kwargs):
        def counted():
            calls.append(source)
            return load_torch()

        return real(backend, source, counted, *args, **kwargs)

    monkeypatch.setattr(models, "backend_model", spy)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = load_nli_model(str(tiny_nli_dir), "cpu", backend="onnx")
    assert calls == []  # the cached export was used: the torch weights were not even loaded
    pairs = [("A man is eating.", "Someone eats."), ("The sky is green.", "The sky is blue today.")]
    np.testing.assert_array_equal(first.class_probs(pairs), again.class_probs(pairs))
    assert sorted(p.name for p in (export_cache / "exports").iterdir()) == exports  # nothing new written


def test_cache_key_follows_the_model_files(tmp_path, tiny_nli_dir):
    import shutil

    copy = shutil.copytree(tiny_nli_dir, tmp_path / "copy")
    before = models.model_revision(str(copy))
    assert before == models.model_revision(str(copy))  # stable
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ", "utf-8")
    assert models.model_revision(str(copy)) != before  # a changed file is a new revision, hence a new export
    snap = tmp_path / "models--x--y" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    assert models.model_revision(str(snap)) == "0123abcd"  # a Hub snapshot: its commit


def test_backend_setting_is_validated_named_and_recorded():
    settings, sources = resolve_settings({"metric_backend": "onnx"})
    assert settings.backend == "onnx" and sources["backend"].startswith("--metric_backend")
    assert settings.to_dict()["backend"] == "onnx"
    with pytest.raises(ValueError, match="backend must be one of"):
        DiversitySettings(backend="tensorrt")
    with pytest.raises(ValueError, match="dtype 'bfloat16' is for the torch backend"):
        DiversitySettings(backend="onnx", dtype="bfloat16")
    # a bare `backend` in --metadata belongs to lm-eval's hf model (its model argument), not to us
    assert resolve_settings({"backend": "causal"})[0].backend == "torch"


def test_missing_runtime_is_refused_naming_the_extra(monkeypatch):
    # the extra not installed (whether or not this environment has it): every package it brings is missing
    real = models.importlib.util.find_spec
    missing = {"openvino", "onnx", "nncf"}
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda n, *a: None if n in missing else real(n, *a))
    with pytest.raises(
        ModelUnavailableError,
        match=r"^LM_EVAL_DIVERSITY_BACKEND='openvino-int8' needs openvino, onnx, nncf: "
        r"pip install 'lm-eval-diversity\[openvino\]'$",
    ):
        check_backend("openvino-int8", "cpu", "LM_EVAL_DIVERSITY_BACKEND")
    check_backend("torch", "cpu")  # torch needs nothing more


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "atol"), [("openvino", 1e-3), ("onnx-int8", 0.1), ("openvino-int8", 0.05)])
def test_other_backends_stay_within_their_stated_error(backend, atol, minilm, export_cache, shared_data_dir):
    """OpenVINO and the int8 backends are not exact (docs/performance.md gives their measured error); this checks
    they run, keep unit vectors, and stay within a bound well above what was measured (per component)."""
    _needs(backend)
    texts = [g.outputs[0] for g in _real_groups(shared_data_dir, k=4, n=15)]
    expected = models.embed_texts(minilm, texts)
    got = models.embed_texts(load_sentence_model(MINILM, "cpu", backend=backend), texts)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert 0 < np.abs(got - expected).max() <= atol


def test_reward_model_on_onnx_equals_single_torch_forwards(tiny_reward_model_dir, export_cache):
    """The reward model goes through the same backend choice: the exported forward (batched, right-padded, the
    head reading the last real token) gives each conversation's reward from a torch forward on it alone."""
    _needs("onnx")
    from helpers import single_reward_forwards

    from lm_eval_diversity.models import load_reward_model

    pairs = [("What is 2+2?", "4"), ("Name a colour.", "Blue, or perhaps a deep green like moss."),
             ("Say hi.", "Hello there! How are you doing on this fine day?")]  # fmt: skip
    rm = load_reward_model(str(tiny_reward_model_dir), "cpu", backend="onnx")
    assert type(rm.model).__name__ == "RuntimeModel"
    got = rm.rewards(pairs, batch_size=3)
    expected = single_reward_forwards(tiny_reward_model_dir, pairs)
    assert np.ptp(expected) > 0.01  # distinct rewards, so a mix-up between rows would show
    assert np.abs(got - expected).max() <= EXACT
