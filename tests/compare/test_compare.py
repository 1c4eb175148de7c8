"""``lm-eval-diversity compare`` on hand-written lm-eval output folders and score JSONs."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pytest

from lm_eval_diversity.compare import load_lineages, run_compare

NAN = math.nan
STAMP = "2024-05-01T12-00-00.000000"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# per-doc values (5 docs per task), chosen so every mean is easy by hand
BASE_GSM = {
    "sbert": [0.5, 0.6, 0.4, 0.5, 0.5],  # mean 0.5
    "sbert_correct": [0.4, 0.5, NAN, 0.3, NAN],  # mean 0.4 over 3 computable
    "vendi": [3.0, 3.0, 3.0, 3.0, 3.0],
    "vendi_correct": [2.0, 2.0, NAN, 2.0, NAN],
    "ead": [0.8, 0.8, 0.8, 0.8, 0.8],
    "acc": [1.0, 1.0, 0.0, 1.0, 0.0],  # 0.6
    "k_correct": [3, 3, 1, 2, 0],
}
MODEL_GSM = {
    "sbert": [0.3, 0.3, 0.3, 0.3, 0.3],  # 0.3
    "sbert_correct": [0.2, NAN, NAN, 0.3, 0.25],  # 0.25
    "vendi": [2.0, 2.0, 2.0, 2.0, 2.0],
    "vendi_correct": [1.5, NAN, NAN, 1.5, 1.5],
    "ead": [0.6, 0.6, 0.6, 0.6, 0.6],
    "acc": [1.0, 1.0, 1.0, 1.0, 1.0],  # 1.0
    "k_correct": [4, 1, 0, 4, 2],
}
BASE_XSUM = {"sbert": [0.6, 0.7, 0.8, 0.7, 0.7], "vendi": [4.0] * 5, "ead": [0.9] * 5}  # sbert 0.7
MODEL_XSUM = {"sbert": [0.5] * 5, "vendi": [3.0] * 5, "ead": [0.7] * 5}  # sbert 0.5


def _mean(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else NAN


def write_run(
    root: Path,
    model: str,
    tasks: dict[str, dict[str, list[float]]],
    stamp: str = STAMP,
    samples: bool = True,
    temperature: float = 1.0,
    sbert_model: str = "sentence-transformers/all-mpnet-base-v2",
    repeats: int = 4,
) -> Path:
    """An lm-eval ``--output_path`` folder: ``root/<model>/results_<stamp>.json`` (+ samples files)."""
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    results, configs, hashes, nsamp = {}, {}, {}, {}
    for task, cols in tasks.items():
        entry = {"alias": task}
        for m, xs in cols.items():
            entry[f"{m},div"] = _mean(xs)
            entry[f"{m}_stderr,div"] = "N/A"
        results[task] = entry
        configs[task] = {
            "task": task,
            "repeats": repeats,
            "generation_kwargs": {"temperature": temperature, "top_p": 1.0, "do_sample": True},
            "metadata": {"diversity_settings": {"sbert_model": sbert_model, "vocab_size": 50257, "seed": 1234}},
        }
        hashes[task] = "hash-" + task
        n = len(next(iter(cols.values())))
        nsamp[task] = {"original": n, "effective": n}
        if samples:
            with open(folder / f"samples_{task}_{stamp}.jsonl", "w") as fh:
                for i in range(n):
                    line = {
                        "doc_id": i,
                        "doc": {"split_index": 100 + i},
                        "resps": [["a", "b", "c", "d"]],
                        "filtered_resps": ["x"],
                        "filter": "div",
                        "doc_hash": f"d{i}",
                        "prompt_hash": "p",
                    }
                    line.update({m: xs[i] for m, xs in cols.items()})
                    fh.write(json.dumps(line) + "\n")  # NaN written as NaN, as lm-eval does
    results["diversity"] = {"alias": "diversity", "sbert,div": 123.0}  # a group entry: must not count as a task
    data = {
        "results": results,
        "groups": {"diversity": results["diversity"]},
        "group_subtasks": {"diversity": list(tasks)},
        "configs": configs,
        "task_hashes": hashes,
        "n-samples": nsamp,
        "model_name": model,
        "model_name_sanitized": model,
    }
    (folder / f"results_{stamp}.json").write_text(json.dumps(data))
    return folder


@pytest.fixture
def two_runs(tmp_path):
    base = write_run(tmp_path / "base_out", "base", {"diversity_gsm8k": BASE_GSM, "diversity_xsum": BASE_XSUM})
    model = write_run(tmp_path / "sft_out", "sft", {"diversity_gsm8k": MODEL_GSM, "diversity_xsum": MODEL_XSUM})
    return tmp_path, base.parent, model.parent


def _json_report(argv, capsys):
    code = run_compare([*argv, "--format", "json", "--bootstrap_iters", "300"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def _cell(report, run, task, metric):
    return next(c for c in report["cells"] if (c["run"], c["task"], c["metric"]) == (run, task, metric))


def test_leaderboard_values_are_hand_means(two_runs, capsys):
    _, base, model = two_runs
    rep = _json_report([str(base), str(model)], capsys)
    assert [r["label"] for r in rep["runs"]] == ["base", "sft"]
    assert rep["tasks"] == ["diversity_gsm8k", "diversity_xsum"]
    assert _cell(rep, "base", "diversity_gsm8k", "sbert")["value"] == pytest.approx(0.5)
    assert _cell(rep, "sft", "diversity_xsum", "sbert")["value"] == pytest.approx(0.5)
    assert _cell(rep, "base", "diversity", "sbert")["value"] == pytest.approx(0.6)  # (0.5 + 0.7) / 2
    assert _cell(rep, "sft", "diversity", "sbert")["value"] == pytest.approx(0.4)
    assert _cell(rep, "base", "diversity", "acc")["value"] == pytest.approx(0.6)  # only gsm8k has acc
    assert _cell(rep, "base", "diversity", "acc")["tasks_used"] == ["diversity_gsm8k"]
    c = _cell(rep, "base", "diversity_gsm8k", "sbert")
    assert c["ci_low"] <= 0.5 <= c["ci_high"] and c["n"] == 5
    assert "change_pct" not in c  # no baseline given


def test_change_vs_baseline_and_labels(two_runs, capsys):
    _, base, model = two_runs
    rep = _json_report([str(model), "--baseline", str(base), "--labels", "SFT"], capsys)
    assert rep["baseline"] == "base" and [r["label"] for r in rep["runs"]] == ["base", "SFT"]
    g = _cell(rep, "SFT", "diversity", "sbert")
    assert g["change_pct"] == pytest.approx(-100 / 3)  # 0.6 -> 0.4
    assert g["diff"] == pytest.approx(-0.2)
    t = _cell(rep, "SFT", "diversity_gsm8k", "acc")
    assert t["change_pct"] == pytest.approx(100 * 0.4 / 0.6)
    assert t["diff"] == pytest.approx(0.4) and t["diff_method"] == "paired bootstrap"
    x = _cell(rep, "SFT", "diversity_xsum", "sbert")
    assert x["change_pct"] == pytest.approx(100 * (0.5 - 0.7) / 0.7)


def test_split_numbers_in_report(two_runs, capsys):
    _, base, model = two_runs
    rep = _json_report([str(base), str(model), "--baseline", "base"], capsys)
    splits = {(s["task"], s["metric"], s["matched"]): s for s in rep["splits"]}
    assert {t for t, _, _ in splits} == {"diversity_gsm8k"}  # xsum is not verifiable
    s = splits[("diversity_gsm8k", "sbert", False)]
    assert s["status"] == "ok"
    assert (s["loss"], s["residual"], s["qc"]) == pytest.approx((0.2, 0.15, 0.05))
    m = splits[("diversity_gsm8k", "sbert", True)]
    assert (m["loss"], m["residual"], m["qc"]) == pytest.approx((0.2, 0.1, 0.1))
    v = splits[("diversity_gsm8k", "vendi", False)]
    assert v["loss"] == pytest.approx(1.0) and v["residual"] == pytest.approx(0.5)


def test_missing_samples_split_unavailable_not_zero(tmp_path, capsys):
    base = write_run(tmp_path / "b", "base", {"diversity_gsm8k": BASE_GSM})
    model = write_run(tmp_path / "m", "sft", {"diversity_gsm8k": MODEL_GSM}, samples=False)
    rep = _json_report([str(base), str(model), "--baseline", "base"], capsys)
    for s in rep["splits"]:
        assert s["status"] == "unavailable" and "sft" in s["reason"]
        assert "loss" not in s and "qc" not in s
    c = _cell(rep, "sft", "diversity_gsm8k", "sbert")
    assert c["value"] == pytest.approx(0.3) and c["ci_low"] is None and "samples" in c["ci_note"]
    run_compare([str(base), str(model), "--baseline", "base", "--format", "table"])
    assert "unavailable" in capsys.readouterr().out


def test_settings_mismatch_reported(tmp_path, capsys):
    base = write_run(tmp_path / "b", "base", {"diversity_gsm8k": BASE_GSM})
    model = write_run(
        tmp_path / "m", "sft", {"diversity_gsm8k": MODEL_GSM}, temperature=0.7, sbert_model="other", repeats=8
    )
    rep = _json_report([str(base), str(model)], capsys)
    fields = {(c["task"], c["field"]): c for c in rep["checks"]}
    assert fields[("diversity_gsm8k", "temperature")]["value"] == 0.7
    assert fields[("diversity_gsm8k", "sbert_model")]["reference_value"].endswith("mpnet-base-v2")
    assert fields[("diversity_gsm8k", "K")]["value"] == 8
    assert ("diversity_gsm8k", "top_p") not in fields
    assert ("diversity_gsm8k", "task_hash") not in fields


def test_different_tasks_compare_overlap(tmp_path, capsys):
    base = write_run(tmp_path / "b", "base", {"diversity_gsm8k": BASE_GSM, "diversity_xsum": BASE_XSUM})
    model = write_run(tmp_path / "m", "sft", {"diversity_gsm8k": MODEL_GSM})
    rep = _json_report([str(base), str(model)], capsys)
    assert rep["tasks"] == ["diversity_gsm8k"]
    assert rep["missing_tasks"] == {"diversity_xsum": ["sft"]}
    assert any("diversity_xsum: missing in sft" in n for n in rep["notes"])
    assert _cell(rep, "base", "diversity", "sbert")["value"] == pytest.approx(0.5)  # overlap only


def test_directory_without_results_is_an_error(tmp_path, capsys):
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    assert run_compare([str(empty)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "results_" in err
    assert run_compare([str(tmp_path / "absent")]) == 2
    assert run_compare(["--fail_if_drop", "sbert"]) == 2


def test_merge_newest_results_file_wins(tmp_path, capsys):
    write_run(tmp_path, "m", {"diversity_gsm8k": BASE_GSM, "diversity_xsum": BASE_XSUM}, stamp="2024-01-01T00-00-00")
    write_run(tmp_path, "m", {"diversity_gsm8k": MODEL_GSM}, stamp="2024-02-01T00-00-00")
    rep = _json_report([str(tmp_path)], capsys)
    assert _cell(rep, "m", "diversity_gsm8k", "sbert")["value"] == pytest.approx(0.3)
    assert _cell(rep, "m", "diversity_xsum", "sbert")["value"] == pytest.approx(0.7)
    notes = rep["runs"][0]["notes"]
    assert any("merged 2 results files" in n for n in notes)
    assert any("diversity_gsm8k" in n and "replaces" in n for n in notes)


def write_score(path: Path, sbert: list[float], task: str = "diversity_gsm8k") -> Path:
    rows = [{"doc_id": i, "sbert": v, "acc": 1.0} for i, v in enumerate(sbert)]
    data = {
        "settings": {"sbert_model": "m", "seed": 1234, "vocab_size": 50257},
        "tasks": {
            task: {
                "n_prompts": len(sbert),
                "k": 4,
                "metrics": {"sbert": {"per_input_mean": _mean(sbert), "across_input": None, "overall": None}},
                "per_prompt": rows,
            }
        },
    }
    path.write_text(json.dumps(data))
    return path


def test_gate_fails_on_clear_drop_and_passes_without(tmp_path, capsys):
    base = write_score(tmp_path / "base.json", [0.5] * 10)
    tight = write_score(tmp_path / "tight.json", [0.4] * 10)  # -20 %, CI [-0.1, -0.1]
    noisy = write_score(tmp_path / "noisy.json", [0.8, 0.0] * 5)  # -20 % on average, CI wide and above -0.05
    same = write_score(tmp_path / "same.json", [0.5] * 10)
    gate = ["--fail_if_drop", "sbert=0.1", "--bootstrap_iters", "500", "--format", "json"]
    assert run_compare([str(base), str(tight), *gate]) == 1
    rep = json.loads(capsys.readouterr().out)
    g = rep["gate"][0]
    assert g["failed"] and g["threshold"] == pytest.approx(-0.05) and g["diff_high"] == pytest.approx(-0.1)
    assert run_compare([str(base), str(noisy), *gate]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert not rep["gate"][0]["failed"] and rep["gate"][0]["diff"] == pytest.approx(-0.1)
    assert rep["gate"][0]["diff_high"] > -0.05
    assert run_compare([str(base), str(same), *gate]) == 0
    capsys.readouterr()
    # task-level gate, and a drop smaller than the allowed fraction passes
    assert run_compare([str(base), str(tight), "--fail_if_drop", "gsm8k/sbert=0.3", "--format", "json"]) == 0
    capsys.readouterr()
    assert run_compare([str(base), str(tight), "--fail_if_drop", "diversity_gsm8k/sbert=0.1"]) == 1
    assert "GATE FAILED" in capsys.readouterr().err
    assert run_compare([str(base), str(tight), "--fail_if_drop", "nope/sbert=0.1"]) == 2
    assert run_compare([str(base), str(tight), "--fail_if_drop", "sbert=abc"]) == 2


def test_gate_on_group_average_of_lm_eval_runs(two_runs, capsys):
    _, base, model = two_runs
    assert run_compare([str(base), str(model), "--baseline", "base", "--fail_if_drop", "sbert=0.1"]) == 1
    capsys.readouterr()
    assert run_compare([str(base), str(model), "--baseline", "base", "--fail_if_drop", "acc=0.1"]) == 0


def test_all_output_formats(two_runs, capsys):
    tmp, base, model = two_runs
    common = [str(base), str(model), "--baseline", "base", "--bootstrap_iters", "200"]
    for fmt in ("table", "markdown", "csv", "json", "html"):
        out = tmp / f"report.{fmt}"
        assert run_compare([*common, "--format", fmt, "--output", str(out)]) == 0
        text = out.read_text()
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            r = next(r for r in rows if (r["run"], r["task"], r["metric"]) == ("sft", "diversity", "sbert"))
            assert float(r["value"]) == pytest.approx(0.4) and float(r["change_pct"]) == pytest.approx(-100 / 3)
        elif fmt == "json":
            assert json.loads(text)["baseline"] == "base"
        elif fmt == "html":
            assert text.startswith("<!DOCTYPE html>") and '<table class="board"' in text and "Leaderboard" in text
            assert not re.search(r"<[^>]*\s(src|href)\s*=", text)  # the page loads nothing (docs/report.md)
            assert "<link" not in text
        elif fmt == "markdown":
            assert "| task | category | prompts | base | sft | sft - base |" in text
            assert "## Leaderboard: sbert" in text
        else:
            # the group row of the sbert table: 0.6 -> 0.4, -0.2 (-33.3 %)
            row = next(line for line in text.splitlines() if line.startswith("diversity (mean)"))
            assert "0.6000 [" in row and "0.4000 [" in row and "-0.2000 [" in row and "(-33.3%) *" in row
    capsys.readouterr()


def test_lineage_plot_png_and_html_embed(tmp_path, capsys):
    b = write_run(tmp_path / "runs", "base", {"diversity_gsm8k": BASE_GSM})
    s = write_run(tmp_path / "runs", "sft", {"diversity_gsm8k": MODEL_GSM})
    lin = tmp_path / "lin.yaml"
    lin.write_text(
        f"lineages:\n  think:\n    Base: {b}\n    SFT: {s}\n  instruct:\n    - Base: {b}\n    - SFT: runs/sft\n"
    )
    png = tmp_path / "plot.png"
    html_out = tmp_path / "r.html"
    argv = ["--lineage", str(lin), "--plot", str(png), "--format", "html", "--output", str(html_out)]
    assert run_compare([*argv, "--bootstrap_iters", "100", "--metrics", "sbert,acc"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = html_out.read_text()
    assert "<figure><h3>Lineages</h3><svg" in page  # the lineage plot, inline in the page
    assert run_compare([*argv, "--tasks", "gsm8k", "--bootstrap_iters", "50"]) == 0
    capsys.readouterr()


def test_example_lineage_file_parses():
    lineages = dict(load_lineages(str(EXAMPLES / "lineage_olmo3.yaml")))
    assert set(lineages) >= {"Think", "Instruct"}
    assert [lbl for lbl, _ in lineages["Think"]] == ["Base", "Think-SFT", "Think-DPO", "Think"]
    assert [lbl for lbl, _ in lineages["Instruct"]] == ["Base", "Instruct-SFT", "Instruct-DPO", "Instruct"]


def test_doc_id_mismatch_reported_in_checks_and_split(tmp_path, capsys):
    base = write_run(tmp_path / "b", "base", {"diversity_gsm8k": BASE_GSM})
    short = {k: v[:4] for k, v in MODEL_GSM.items()}  # doc 4 missing in the candidate
    model = write_run(tmp_path / "m", "sft", {"diversity_gsm8k": short})
    rep = _json_report([str(base), str(model), "--baseline", "base"], capsys)
    fields = {c["field"]: c for c in rep["checks"]}
    assert fields["doc_ids"]["reference_value"] == "1 only here" and fields["n_docs"]["value"] == 4
    s = next(s for s in rep["splits"] if s["metric"] == "sbert" and not s["matched"])
    assert s["ids_only_base"] == [4] and s["ids_only_model"] == []
    # base over docs 0-3: D_all 0.5, D_corr (0.4 + 0.5 + 0.3) / 3; model D_corr (0.2 + 0.3) / 2
    assert s["d_corr_base"] == pytest.approx(0.4) and s["d_corr_model"] == pytest.approx(0.25)
    assert run_compare([str(base), "--fail_if_drop", "sbert=0.1"]) == 2


def test_corpus_level_metric_has_no_ci(tmp_path, capsys):
    cols = {**BASE_XSUM, "sbert_across_input": [0.9] * 5}
    base = write_run(tmp_path / "b", "base", {"diversity_xsum": cols})
    rep = _json_report([str(base), "--metrics", "sbert,sbert_across_input"], capsys)
    c = _cell(rep, "base", "diversity_xsum", "sbert_across_input")
    assert c["value"] == pytest.approx(0.9) and c["ci_low"] is None and "corpus-level" in c["ci_note"]


def test_strict_gate_refuses_runs_that_differ(tmp_path, capsys):
    base = write_run(tmp_path / "b", "base", {"diversity_gsm8k": BASE_GSM})
    same = write_run(tmp_path / "s", "same", {"diversity_gsm8k": BASE_GSM})
    other = write_run(tmp_path / "m", "sft", {"diversity_gsm8k": MODEL_GSM}, temperature=0.7, repeats=8)
    gate = ["--fail_if_drop", "sbert=5", "--strict", "--bootstrap_iters", "50"]
    assert run_compare([str(base), str(other), *gate]) == 2
    err = capsys.readouterr().err
    assert "--strict" in err and "K 4 != 8" in err and "temperature 1.0 != 0.7" in err
    # the same differences without --strict: reported, the gate still runs
    assert run_compare([str(base), str(other), "--fail_if_drop", "sbert=5", "--bootstrap_iters", "50"]) == 0
    capsys.readouterr()
    # comparable runs pass the strict gate
    assert run_compare([str(base), str(same), *gate]) == 0


def test_strict_gate_names_a_task_version_difference(tmp_path, capsys):
    base = write_run(tmp_path / "b", "base", {"diversity_gsm8k": BASE_GSM})
    other = write_run(tmp_path / "m", "sft", {"diversity_gsm8k": BASE_GSM})
    for folder, version in ((base, 1.0), (other, 2.0)):
        path = next(folder.glob("results_*.json"))
        data = json.loads(path.read_text())
        data["versions"] = {"diversity_gsm8k": version}
        path.write_text(json.dumps(data))
    assert run_compare([str(base), str(other), "--fail_if_drop", "sbert=5", "--strict"]) == 2
    assert "task_version 1.0 != 2.0" in capsys.readouterr().err


def test_labels_are_short_model_names_and_reports_hold_no_absolute_paths(tmp_path, capsys, monkeypatch):
    base = write_run(tmp_path / "b", "base", {"diversity_gsm8k": BASE_GSM})
    path = next(base.glob("results_*.json"))
    data = json.loads(path.read_text())
    data["model_name"], data["model_name_sanitized"] = "/ckpt/olmo/dpo-step-400/", "__ckpt__olmo__dpo-step-400"
    path.write_text(json.dumps(data))
    monkeypatch.chdir(tmp_path)
    rep = _json_report([str(base)], capsys)
    assert [r["label"] for r in rep["runs"]] == ["dpo-step-400"]
    assert rep["runs"][0]["path"] == "b/base"
    for fmt in ("markdown", "html"):
        assert run_compare([str(base), "--format", fmt]) == 0
        assert str(tmp_path) not in capsys.readouterr().out


def test_runs_scored_with_another_metric_backend_are_flagged(tmp_path, capsys):
    base = write_score(tmp_path / "torch.json", [0.5] * 4)
    other = write_score(tmp_path / "int8.json", [0.5] * 4)
    for path, backend in ((base, "torch"), (other, "onnx-int8")):
        data = json.loads(path.read_text())
        data["settings"]["backend"] = backend
        path.write_text(json.dumps(data))
    assert run_compare([str(base), str(other), "--format", "json"]) == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert [(c["field"], c["reference_value"], c["value"]) for c in checks] == [("backend", "torch", "onnx-int8")]
