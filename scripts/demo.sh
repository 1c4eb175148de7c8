#!/usr/bin/env bash
# The main job on an embedded default, offline: generation through lm-eval (SmolLM2-135M-Instruct GGUF, K=4, all 15
# tasks on the shipped prompt sets), diversity + quality scoring, report with a plot in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/lm-eval-diversity demo --output_path out/demo "$@"
