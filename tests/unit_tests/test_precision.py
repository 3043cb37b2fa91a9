"""MiniLMEmbeddings(precision=...): the option's checks, the embedding ids, the quality bar and
the measured choice of ``auto`` (with stand-in encoders; the real model is exercised in
tests/integration_tests/test_precision_minilm.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from langchain_stepback_profile import InvalidArgumentError, MiniLMEmbeddings
from langchain_stepback_profile import precision as prec
from langchain_stepback_profile.embeddings import (
    DEFAULT_EMBEDDING_ID,
    INT8_EMBEDDING_ID,
    embedding_id,
)
from langchain_stepback_profile.errors import MissingExtraError


@pytest.mark.parametrize("bad", ["fp16", "FP32", "", "int4"])
def test_unknown_precision_is_refused_naming_the_choices(bad: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        MiniLMEmbeddings(precision=bad)  # type: ignore[arg-type]
    message = str(err.value)
    assert repr(bad) in message
    for choice in ("'auto'", "'fp32'", "'bf16'", "'int8'", "'onnx'"):
        assert choice in message


@pytest.mark.parametrize("variant", ["bf16", "int8", "onnx"])
def test_cpu_variants_need_the_cpu(variant: str) -> None:
    with pytest.raises(InvalidArgumentError, match="device='cpu'"):
        MiniLMEmbeddings(device="cuda", precision=variant)  # type: ignore[arg-type]


def test_default_is_auto_and_nothing_loads_before_use() -> None:
    emb = MiniLMEmbeddings()
    assert emb.precision == "auto"
    assert emb._model is None  # the choice is made (and the model loaded) on first use


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("auto", DEFAULT_EMBEDDING_ID),
        ("fp32", DEFAULT_EMBEDDING_ID),
        ("bf16", DEFAULT_EMBEDDING_ID),
        ("int8", INT8_EMBEDDING_ID),
        ("onnx", DEFAULT_EMBEDDING_ID),
    ],
)
def test_embedding_id_separates_only_variants_beyond_the_bar(variant: str, expected: str) -> None:
    emb = MiniLMEmbeddings(precision=variant)  # type: ignore[arg-type]
    assert embedding_id(emb) == expected
    assert emb._model is None  # the id needs no model
    assert INT8_EMBEDDING_ID != DEFAULT_EMBEDDING_ID


# --------------------------------------------------------------------------- the quality bar
def _unit(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_identical_vectors_hold_the_bar() -> None:
    rng = np.random.default_rng(0)
    q, d = _unit(rng, 20), _unit(rng, 200)
    quality = prec.vector_quality(q, d, q.copy(), d.copy())
    assert quality.top10_overlap_mean == quality.top10_overlap_min == 1.0
    assert quality.cosine_min == pytest.approx(1.0, abs=1e-5)
    assert quality.holds()


def test_noisy_vectors_fail_the_bar() -> None:
    rng = np.random.default_rng(1)
    q, d = _unit(rng, 20), _unit(rng, 200)
    noisy_d = d + 0.2 * _unit(rng, 200)
    noisy_d /= np.linalg.norm(noisy_d, axis=1, keepdims=True)
    quality = prec.vector_quality(q, d, q, noisy_d)
    assert quality.cosine_min < prec.MIN_COSINE
    assert not quality.holds()


def test_overlap_counts_shared_neighbours() -> None:
    # 12 documents on the unit circle; the query's fp32 top-10 are all but the two farthest.
    angles = np.linspace(0, np.pi, 12, dtype=np.float32)
    d = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    flipped = np.array([[-1.0, 0.0]], dtype=np.float32)  # the variant's top-10: the other end
    quality = prec.vector_quality(q, d, flipped, d)
    assert quality.top10_overlap_mean == pytest.approx(8 / 10)


# --------------------------------------------------------------------------- the choice
def _encoder(seed: int, noise: float, delay: float) -> prec.Encoder:
    """Deterministic unit vectors per text, optionally perturbed, after ``delay`` seconds."""

    def encode(texts: list[str]) -> np.ndarray:
        time.sleep(delay)
        rows = []
        for text in texts:
            rng = np.random.default_rng(abs(hash(text)) % 2**32)
            v = rng.standard_normal(64)
            if noise:
                v = v + noise * np.random.default_rng(seed + len(text)).standard_normal(64)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32)

    return encode


def test_auto_takes_the_fastest_variant_within_the_bar() -> None:
    reference = _encoder(0, 0.0, 0.004)
    choice = prec.choose(
        reference,
        {
            "bf16": _encoder(1, 0.001, 0.002),  # within the bar, 2x
            "int8": _encoder(2, 0.5, 0.0),  # faster, but beyond the bar
        },
    )
    assert choice.variant == "bf16"
    by_name = {c.variant: c for c in choice.checks}
    assert by_name["bf16"].passed and not by_name["int8"].passed
    assert by_name["int8"].quality is not None and not by_name["int8"].quality.holds()
    assert "int8 beyond the bar" in choice.reason and "bf16 within the bar" in choice.reason


def test_auto_falls_back_to_fp32() -> None:
    reference = _encoder(0, 0.0, 0.0)

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("no kernel")

    choice = prec.choose(
        reference,
        {"int8": _encoder(2, 0.5, 0.0), "bf16": broken},
        skipped=["bf16 not tried"],
    )
    assert choice.variant == "fp32"
    assert "bf16 failed to run (RuntimeError: no kernel)" in choice.reason
    assert "bf16 not tried" in choice.reason


def test_a_variant_within_the_bar_but_not_faster_is_not_taken() -> None:
    choice = prec.choose(_encoder(0, 0.0, 0.0), {"bf16": _encoder(1, 0.0, 0.003)})
    assert choice.variant == "fp32"
    assert choice.checks[0].quality is not None and choice.checks[0].quality.holds()


def test_the_verdict_is_cached_per_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPBACK_PROFILE_CACHE", str(tmp_path))
    pytest.importorskip("torch")
    key = prec.machine_key(1, ["int8"])
    assert prec.cached_choice(key) is None
    choice = prec.choose(_encoder(0, 0.0, 0.0), {"int8": _encoder(2, 0.5, 0.0)})
    prec.store_choice(key, choice)
    again = prec.cached_choice(key)
    assert again is not None and again.cached
    assert (again.variant, again.reason) == (choice.variant, choice.reason)
    assert again.checks[0].quality == choice.checks[0].quality
    assert prec.cached_choice(prec.machine_key(2, ["int8"])) is None  # other threads
    assert key in json.loads((tmp_path / "embedding-precision.json").read_text())


def test_a_broken_cache_file_means_measuring_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPBACK_PROFILE_CACHE", str(tmp_path))
    (tmp_path / "embedding-precision.json").write_text("{not json")
    assert prec.cached_choice("any") is None
    prec.store_choice("any", prec.Choice("fp32", "test"))
    assert prec.cached_choice("any") == prec.Choice("fp32", "test", cached=True)


def test_the_onnx_export_lives_in_the_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPBACK_PROFILE_CACHE", str(tmp_path))
    assert prec.cache_dir() == tmp_path
    assert prec.cache_file().parent == tmp_path
    monkeypatch.delenv("STEPBACK_PROFILE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert prec.cache_dir() == tmp_path / "xdg" / "langchain-stepback-profile"


def test_onnx_without_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from langchain_stepback_profile import embeddings as emb_module

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real(name, *a),
    )
    assert not emb_module.onnx_available()
    with pytest.raises(MissingExtraError) as err:
        MiniLMEmbeddings(precision="onnx")
    assert err.value.extra == "local" and err.value.missing == ("onnxruntime",)


def test_calibration_texts_are_built_in() -> None:
    queries, docs = prec.calibration_texts()
    assert len(queries) >= 20 and len(docs) == 2 * len(queries)
    assert all(q.strip() for q in queries + docs)
