"""The choices of the mode-like settings, each declared once as a ``Literal`` type.

The settings object validates a field from its annotation (:mod:`lm_eval_diversity.settings`), and the code that
implements a mode reads the same type (``typing.get_args``), so a choice is added in one place. This module imports
nothing, so that reading the settings stays light.
"""

from __future__ import annotations

from typing import Literal, get_args

MathMode = Literal["math", "compat"]  # math-verify, or the reference's rule (docs/metrics.md, graders)
IFEvalMode = Literal["official", "compat"]  # lm-eval's checkers, or the reference's
CodeMode = Literal["official", "compat"]  # sandboxed with positive evidence, or the reference's program and exit status
LexicalMode = Literal["default", "compat"]  # corrected lexical measures, or the PyPI package `diversity` 0.3.x
SemanticRule = Literal["greedy", "closure"]  # semantic clusters: against representatives, or transitive closure
MetricDtype = Literal["float32", "bfloat16", "float16"]  # weights and activations of the metric models
# runtimes of the metric models (docs/performance.md, "Metric backends"): torch, or an exported model run by ONNX
# Runtime / OpenVINO, in float32 or int8 (one value per exported artifact, so int8 cannot be asked of torch)
MetricBackend = Literal["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"]
# request text (docs/tasks.md, "Prompt format"): "lighteval" = the reference's (the query stripped; without a chat
# template, "\n\n" before it), "plain" = the task template unchanged
PromptFormat = Literal["lighteval", "plain"]
StopSequences = Literal["auto", "task", "none"]  # the task's stop strings (docs/tasks.md)
SamplingPreset = Literal["paper", "hf_patch"]  # named sampling settings (SAMPLING_PRESETS)

# the sampling presets (docs/tasks.md): the experiment config, and what the reference's HF backend patch forces
SAMPLING_PRESETS: dict[str, dict[str, float]] = {
    "paper": {"temperature": 0.6, "top_p": 0.95},
    "hf_patch": {"temperature": 1.0, "top_p": 1.0},
}


def choices(mode: object) -> tuple[str, ...]:
    """The values of a ``Literal`` mode type, in declaration order."""
    return tuple(get_args(mode))

# the reference's two grading paths, reproduced in compat modes (docs/metrics.md, "Graders: default and compat")
CompatPath = Literal["accuracy", "subsets"]
COMPAT_PATHS: dict[str, str] = {
    "accuracy": "the reference's compute_*_quality.py scripts (acc, pass@k, maj@K, IFEval levels)",
    "subsets": "the reference's quality_filtered_diversity.py (k_correct, the correct subsets, computable)",
}
