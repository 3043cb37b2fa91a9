"""Optional extras: one check names the install command, and nothing optional is imported
before a feature needs it.

A missing package is simulated with ``sys.modules[name] = None``, which makes both the check
and an import of it fail as if it were not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_stepback_profile import (
    MiniLMEmbeddings,
    MissingExtraError,
    ProfileMemory,
    StepBackProfileError,
    llms,
)
from langchain_stepback_profile.cli import main
from langchain_stepback_profile.distill import _transient_errors
from langchain_stepback_profile.extras import EXTRAS, install_command, require_extra

ROOT = Path(__file__).resolve().parents[2]
LOCAL = 'pip install "langchain-stepback-profile[local]"'
OPTIONAL = (
    "torch",
    "sentence_transformers",
    "transformers",
    "llama_cpp",
    "rouge_score",
    "matplotlib",
    "scipy",
    "rich",
    "langchain",
    "langgraph",
    "llama_index",
    "openai",
)


def block(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


# --------------------------------------------------------------------------- the check
def test_installed_modules_pass_and_missing_ones_name_the_command() -> None:
    require_extra("eval", "json", "sqlite3", feature="X")

    with pytest.raises(MissingExtraError) as caught:
        require_extra("local", "json", "no_such_module_a", "no_such_module_b", feature="the thing")

    err = caught.value
    assert isinstance(err, StepBackProfileError) and isinstance(err, ImportError)
    assert (err.extra, err.missing, err.name) == (
        "local",
        ("no_such_module_a", "no_such_module_b"),
        "no_such_module_a",
    )
    assert str(err) == (
        "the thing needs the optional packages no_such_module_a, no_such_module_b, which are "
        f"not installed: {LOCAL}"
    )


def test_an_alternative_fix_follows_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    block(monkeypatch, "rouge_score")
    with pytest.raises(MissingExtraError, match=r'\[eval\]", or score it yourself$'):
        require_extra("eval", "rouge_score", feature="ROUGE", alternative="score it yourself")


def test_without_modules_every_module_of_the_extra_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    block(monkeypatch, "scipy")
    with pytest.raises(MissingExtraError) as caught:
        require_extra("eval", feature="the harness")
    assert caught.value.missing == ("scipy",)


def test_an_unknown_extra_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown extra 'gpu'"):
        require_extra("gpu", "json", feature="X")


def test_the_extras_are_those_of_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(extras) == {*EXTRAS, "server", "all", "test"}
    assert extras["all"] == [f"langchain-stepback-profile[{','.join([*EXTRAS, 'server'])}]"]
    assert install_command("eval") == 'pip install "langchain-stepback-profile[eval]"'
    core = " ".join(project["dependencies"])
    for heavy in ("torch", "sentence-transformers", "llama-cpp-python", "rouge-score"):
        assert heavy not in core


# --------------------------------------------------------------------------- the defaults
def test_minilm_without_the_local_extra_names_both_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    block(monkeypatch, "torch", "sentence_transformers")
    with pytest.raises(MissingExtraError) as caught:
        MiniLMEmbeddings()
    assert caught.value.extra == "local"
    assert LOCAL in str(caught.value) and "pass embeddings=" in str(caught.value)


def test_profile_memory_without_embeddings_or_the_extra_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    block(monkeypatch, "torch")
    with pytest.raises(MissingExtraError, match=r"pass embeddings=.*to ProfileMemory"):
        ProfileMemory(tmp_path / "store")
    assert not (tmp_path / "store").exists()

    with ProfileMemory(tmp_path / "store", embeddings=DeterministicFakeEmbedding(size=8)) as mem:
        mem.add("alice", ["Neural MT for everyone."])  # any Embeddings: no extra needed
        assert mem.users() == ["alice"]


def test_the_embedded_chat_model_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    block(monkeypatch, "llama_cpp")
    with pytest.raises(MissingExtraError, match=r"\[local\]\", or pass any LangChain chat model"):
        llms.__getattr__("default_chat_model")  # what `from ...llms import` calls first
    with pytest.raises(AttributeError):
        llms.__getattr__("no_such_name")
    from langchain_stepback_profile.llms import llama_build, with_max_tokens  # no llama.cpp

    assert callable(with_max_tokens) and llama_build.__name__.endswith("llama_build")


def test_the_command_line_names_the_extra_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps({"user_id": "alice", "text": "Neural MT."}) + "\n")
    block(monkeypatch, "sentence_transformers")
    assert main(["ingest", str(history), "--store", str(tmp_path / "store")]) == 2
    stderr = capsys.readouterr().err
    assert LOCAL in stderr and "--embeddings openai:MODEL" in stderr
    assert len(stderr.strip().splitlines()) == 1

    block(monkeypatch, "matplotlib")
    assert main(["eval", "--task", "LaMP-7", "--data", str(tmp_path)]) == 2
    assert '[eval]"' in capsys.readouterr().err


# --------------------------------------------------------------------------- lazy imports
def test_importing_the_package_imports_nothing_optional() -> None:
    code = (
        "import json, sys\n"
        "import langchain_stepback_profile\n"
        "import langchain_stepback_profile.evaluation\n"
        f"print(json.dumps(sorted(m for m in {OPTIONAL!r} if m in sys.modules)))\n"
        "import langchain_stepback_profile.cli\n"
        "print(json.dumps(sorted(m for m in ('torch', 'llama_cpp', 'rouge_score') "
        "if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    package, cli = (json.loads(line) for line in result.stdout.splitlines())
    assert package == []
    assert cli == []


def test_the_bare_package_import_loads_only_its_errors() -> None:
    """``import langchain_stepback_profile`` is cheap: FAISS, numpy and LangChain load with the
    first name that needs them, and every public name still resolves."""
    code = (
        "import json, sys\n"
        "import langchain_stepback_profile as p\n"
        "heavy = ('faiss', 'numpy', 'langchain_core', 'langsmith', 'tqdm')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
        "print(json.dumps([n for n in p.__all__ if getattr(p, n, None) is None]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded, unresolved = (json.loads(line) for line in result.stdout.splitlines())
    assert loaded == [] and unresolved == []


def test_client_errors_are_retried_once_their_library_is_loaded() -> None:
    import httpx
    import openai

    errors = _transient_errors()
    assert {ConnectionError, TimeoutError, openai.RateLimitError, httpx.TransportError} <= set(
        errors
    )
