"""The plumbing of shared profile builds that needs no database: a folder store refuses with
the fix, the stored settings round-trip, the report of a shared build keeps the JSON shape of
``profile build`` and adds the workers."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_stepback_profile import InvalidArgumentError, ProfileMemory
from langchain_stepback_profile.build_jobs import WORKER_ENV, BuildSettings, worker_name
from langchain_stepback_profile.cli import Session, main
from langchain_stepback_profile.cli.render import report_dict
from langchain_stepback_profile.errors import BuildFailure, BuildJobError
from langchain_stepback_profile.memory import RefreshReport


@pytest.fixture
def folder_memory(tmp_path: Path):
    with ProfileMemory(tmp_path / "store", embeddings=DeterministicFakeEmbedding(size=8)) as m:
        m.add("alice", ["Alice writes about parsing."])
        yield m


def test_a_folder_store_cannot_share_a_build_and_names_the_fix(
    folder_memory: ProfileMemory,
) -> None:
    assert not folder_memory.supports_build_jobs
    for call in (
        folder_memory.enqueue_build,
        folder_memory.run_build_worker,
        folder_memory.build_job_report,
    ):
        with pytest.raises(BuildJobError) as caught:
            call()
        message = str(caught.value)
        assert "cannot split a profile build between processes" in message
        assert "postgresql://" in message and "without --workers" in message
        assert caught.value.user_error and isinstance(caught.value, InvalidArgumentError)


def test_profile_build_with_workers_on_a_folder_store_exits_2(
    folder_memory: ProfileMemory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder_memory.close()
    monkeypatch.setattr(Session, "embeddings", lambda self: DeterministicFakeEmbedding(size=8))
    store = str(tmp_path / "store")
    args = ["profile", "build", "--profile-strategy", "extractive", "--store", store]
    for extra in (["--workers", "2"], ["--job", "nightly"]):
        assert main([*args, *extra]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "use a postgresql:// store" in captured.err
    assert main([*args, "--workers", "1", "--json"]) == 0  # one process: the ordinary build
    assert '"built": 1' in capsys.readouterr().out


def test_build_settings_round_trip_and_the_worker_name(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = BuildSettings("tweet_paraphrase", "llm", True)
    assert BuildSettings.from_json(settings.to_json()) == settings
    assert BuildSettings.from_json('{"task": null}') == BuildSettings()
    monkeypatch.setenv(WORKER_ENV, "machine-a")
    assert worker_name().startswith("machine-a:")
    monkeypatch.delenv(WORKER_ENV)
    assert worker_name().rsplit(":", 1)[1].isdigit()


def test_a_shared_report_adds_the_workers_to_the_same_json(
    folder_memory: ProfileMemory,
) -> None:
    report = folder_memory.refresh(strategy="extractive")
    plain = report_dict(report, "generic")
    assert "built_by" not in plain and "workers" not in plain
    report.built_by = {"alice": "machine-a:11", "bob": "machine-b:12"}
    report.errors = {"bob": BuildFailure("ProfileModelError: the server is down")}
    shared = report_dict(report, "generic")
    assert {k: shared[k] for k in plain} == {**plain, "failed": shared["failed"]}
    assert shared["failed"] == {"bob": "ProfileModelError: the server is down"}
    assert shared["built_by"] == report.built_by
    assert shared["workers"] == {
        "machine-a:11": {"built": 1, "updated": 0, "unchanged": 0},
        "machine-b:12": {"built": 0, "updated": 0, "unchanged": 0, "failed": 1},
    }
    assert RefreshReport().pending == []
