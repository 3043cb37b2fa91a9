"""The core install: the wheel installed without extras into a fresh venv.

``pip install langchain-stepback-profile`` must install no torch, no compiled llama.cpp and
none of the extras' libraries, run the README quick start with any LangChain chat model and
``Embeddings``, import nothing optional, and name the ``[local]`` extra where the embedded
defaults are asked for. The core dependencies come from the package index (pip's cache makes
a second run fast); the install time is printed (``pytest -s``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(__file__).with_name("light_install_check.py")
SOURCES = ("pyproject.toml", "README.md", "langchain_stepback_profile", "llamaindex_integration")
NOT_IN_CORE = ("torch", "sentence-transformers", "transformers", "llama-cpp-python")
NOT_IMPORTED = ("torch", "sentence_transformers", "llama_cpp")
LOCAL = 'pip install "langchain-stepback-profile[local]"'


def run(command: list[str], timeout: float, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command with a bounded time, outside the project's venv and source tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def light_venv() -> Iterator[tuple[Path, float]]:
    """A fresh venv holding the wheel without extras, and the install's seconds."""
    work = Path(tempfile.mkdtemp(prefix="stepback-light-"))
    try:
        src = work / "src"
        for name in SOURCES:  # a copy: the build writes build/ and egg-info beside the sources
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(
                    source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                src.mkdir(exist_ok=True)
                shutil.copy2(source, src / name)
        isolation = (
            [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
        )
        wheel_cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q"]
        ok(run([*wheel_cmd, str(src), "-w", str(work / "dist")], timeout=300, cwd=work))
        (wheel,) = (work / "dist").glob("langchain_stepback_profile-*.whl")
        ok(run([sys.executable, "-m", "venv", str(work / "venv")], timeout=120, cwd=work))
        python = work / "venv" / "bin" / "python"
        started = time.perf_counter()
        ok(run([str(python), "-m", "pip", "install", "-q", str(wheel)], timeout=600, cwd=work))
        seconds = time.perf_counter() - started
        print(f"\ncore install of {wheel.name} into a fresh venv: {seconds:.1f} s")
        yield work / "venv", seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_the_core_install_has_no_torch_and_no_extras(light_venv: tuple[Path, float]) -> None:
    venv, _ = light_venv
    listing = ok(
        run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], 120, venv)
    )
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listing.stdout)}
    assert "langchain-stepback-profile" in installed
    assert not installed & set(NOT_IN_CORE)
    assert {"faiss-cpu", "langchain-core", "langchain-openai", "nltk", "pysbd"} <= installed


def test_quick_start_runs_with_any_models_and_imports_nothing_optional(
    light_venv: tuple[Path, float],
) -> None:
    venv, _ = light_venv
    result = ok(run([str(venv / "bin" / "python"), str(CHECK)], timeout=300, cwd=venv))
    findings = json.loads(result.stdout.strip().splitlines()[-1])

    assert findings["after_import"] == []  # nothing of any extra, nor rich
    assert findings["answer"] == "Neural Discourse Models for Low-Resource Translation"
    for stage in ("after_quick_start", "after_errors"):
        assert not set(findings[stage]) & set(NOT_IMPORTED), (stage, findings[stage])

    errors = findings["errors"]
    for name in ("MiniLMEmbeddings()", "ProfileMemory(path)", "default_chat_model()"):
        assert errors[name]["extra"] == "local", (name, errors[name])
        assert errors[name]["import_error"]
        assert LOCAL in errors[name]["message"]
    assert "embeddings=" in errors["ProfileMemory(path)"]["message"]  # the other fix
    assert not errors["ProfileMemory(path)"]["folder_created"]


def test_the_command_line_works_and_names_the_extras(
    light_venv: tuple[Path, float], tmp_path: Path
) -> None:
    venv, _ = light_venv
    command = str(venv / "bin" / "stepback-profile")
    assert "ingest" in ok(run([command, "--help"], timeout=120, cwd=tmp_path)).stdout

    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps({"user_id": "alice", "text": "Neural MT for all."}) + "\n")
    ingest = run([command, "ingest", str(history), "--store", "store"], timeout=120, cwd=tmp_path)
    assert ingest.returncode == 2, ingest.stderr
    assert LOCAL in ingest.stderr and "--embeddings openai:MODEL" in ingest.stderr
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())

    evaluate = run(
        [command, "eval", "--task", "LaMP-7", "--data", str(tmp_path)], timeout=120, cwd=tmp_path
    )
    assert evaluate.returncode == 2, evaluate.stderr
    assert 'pip install "langchain-stepback-profile[eval]"' in evaluate.stderr
