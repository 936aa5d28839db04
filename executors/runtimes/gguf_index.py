"""Where each tensor of a GGUF file lies: its shape, ggml type and byte offset.

The output head (output_head.py) reads a few rows of the model's output matrix straight
from the file, so it needs the tensor table that llama.cpp does not expose. The format
(GGUF v2/v3): a header, the metadata key-values, the tensor infos, then the data
section aligned to ``general.alignment`` (32 by default).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from semql.errors import ModelError

# GGUF metadata value types with a fixed size, as struct formats.
_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i",
    6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    dims: tuple[int, ...]  # ne[0] first: a row's length, then the number of rows
    ggml_type: int
    offset: int  # absolute byte offset in the file


def _read(f: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ModelError(f"truncated GGUF file: {f.name}")
    return struct.unpack(fmt, data)


def _string(f: BinaryIO) -> str:
    (n,) = _read(f, "<Q")
    return f.read(n).decode("utf-8", "replace")


def _value(f: BinaryIO, kind: int):
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item, n = _read(f, "<IQ")
        return [_value(f, item) for _ in range(n)]
    if kind not in _SCALARS:
        raise ModelError(f"unknown GGUF metadata type {kind} in {f.name}")
    return _read(f, _SCALARS[kind])[0]


def tensor_index(path: str) -> dict[str, TensorInfo]:
    """Every tensor of the GGUF file at ``path`` by name."""
    with open(path, "rb") as f:
        magic, version, n_tensors, n_kv = _read(f, "<4sIQQ")
        if magic != b"GGUF" or version < 2:
            raise ModelError(f"not a GGUF v2+ file: {path}")
        alignment = 32
        for _ in range(n_kv):
            key = _string(f)
            (kind,) = _read(f, "<I")
            value = _value(f, kind)
            if key == "general.alignment":
                alignment = int(value)
        infos = []
        for _ in range(n_tensors):
            name = _string(f)
            (n_dims,) = _read(f, "<I")
            dims = _read(f, f"<{n_dims}Q")
            ggml_type, offset = _read(f, "<IQ")
            infos.append((name, tuple(dims), ggml_type, offset))
        base = -(-f.tell() // alignment) * alignment
    return {name: TensorInfo(dims, t, base + off) for name, dims, t, off in infos}
