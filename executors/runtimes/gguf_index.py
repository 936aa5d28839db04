"""Where each tensor of a GGUF file lies: its shape, ggml type and byte offset.

The output head (output_head.py) reads a few rows of the model's output matrix straight
from the file, so it needs the tensor table that llama.cpp does not expose. The format
(GGUF v2/v3): a header, the metadata key-values, the tensor infos, then the data
section aligned to ``general.alignment`` (32 by default).
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

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


class _Reader:
    """A cursor over the file's bytes (mapped, not read): the tokenizer's 262k strings are
    stepped over, not decoded, since only the tensor table and the alignment are needed."""

    def __init__(self, data: mmap.mmap, name: str):
        self.data, self.name, self.pos = data, name, 0

    def read(self, fmt: str) -> tuple:
        start = self.pos
        self._advance(struct.calcsize(fmt))
        return struct.unpack_from(fmt, self.data, start)

    def string(self) -> str:
        (n,) = self.read("<Q")
        self._advance(n)
        return self.data[self.pos - n : self.pos].decode("utf-8", "replace")

    def scalar(self, kind: int):
        return self.read(self._scalar(kind))[0]

    def skip(self, kind: int) -> None:
        """Step over a value of ``kind`` without building it."""
        if kind == _STRING:
            self._advance(self.read("<Q")[0])
        elif kind == _ARRAY:
            item, n = self.read("<IQ")
            if item in _SCALARS:
                self._advance(n * struct.calcsize(_SCALARS[item]))
            else:
                for _ in range(n):
                    self.skip(item)
        else:
            self._advance(struct.calcsize(self._scalar(kind)))

    def _advance(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise ModelError(f"truncated GGUF file: {self.name}")
        self.pos += n

    def _scalar(self, kind: int) -> str:
        if kind not in _SCALARS:
            raise ModelError(f"unknown GGUF metadata type {kind} in {self.name}")
        return _SCALARS[kind]


def tensor_index(path: str) -> dict[str, TensorInfo]:
    """Every tensor of the GGUF file at ``path`` by name."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < 24:
            raise ModelError(f"truncated GGUF file: {path}")
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    with data:
        r = _Reader(data, path)
        magic, version, n_tensors, n_kv = r.read("<4sIQQ")
        if magic != b"GGUF" or version < 2:
            raise ModelError(f"not a GGUF v2+ file: {path}")
        alignment = 32
        for _ in range(n_kv):
            key = r.string()
            (kind,) = r.read("<I")
            if key == "general.alignment":
                alignment = int(r.scalar(kind))
            else:
                r.skip(kind)
        infos = []
        for _ in range(n_tensors):
            name = r.string()
            (n_dims,) = r.read("<I")
            dims = r.read(f"<{n_dims}Q")
            ggml_type, offset = r.read("<IQ")
            infos.append((name, tuple(dims), ggml_type, offset))
        base = -(-r.pos // alignment) * alignment
    return {name: TensorInfo(dims, t, base + off) for name, dims, t, off in infos}
