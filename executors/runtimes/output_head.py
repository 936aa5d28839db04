"""The output layer for a few tokens: a closed set's label logits without the vocabulary's.

A closed-set row needs the logits of its labels' first tokens, two to a few entries, and
a generated step that cannot end the answer those of its allowed tokens (an int's digits,
greedy.py ``head_tokens``), but llama.cpp computes the whole vocabulary's output layer
for every token that asks for logits: 262,144 rows of 640 for Gemma 3; without it a
closed-set row alone ran 13-15% faster on an AMD EPYC with AVX-512 (bench/output_head.py,
results/throughput/output-head-20261207-112028). Here a row's last decode stops as soon
as the model's final norm (``result_norm``, the output layer's input) is computed: a
ggml scheduler callback (:class:`HiddenTap`) copies it and returns false, which ends the
graph's compute there.
Every layer has written its keys and values by then, so the KV cache is whole and the
next decode continues from it. :class:`OutputHead` then computes the few logits from that
hidden state with ggml's own CPU dot-product kernel for the output weight's type, on the
weight's rows read from the GGUF file (gguf_index.py), after quantizing the hidden state
as ggml's matrix product does.

Where a model does more after its final norm (a logit soft-cap, a scale), those logits
would be wrong, so the runtime compares them with the full layer's at load
(:func:`check`) and keeps the full layer unless they match.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from semql.errors import ExecutionError

from .gguf_index import tensor_index

GGML_F32 = 0
TAP_NODE = b"result_norm\0"  # llama.cpp's name for the final norm in every architecture
# How close the head's logits must be to the full layer's at load: a missed soft-cap or
# scale after the final norm moves them by far more.
CHECK_TOLERANCE = 1e-3
_CHECKED_TOKENS = 16


class _Tensor(ctypes.Structure):
    """``struct ggml_tensor`` (ggml.h, GGML_MAX_SRC 10, GGML_MAX_NAME 64)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
        ("extra", ctypes.c_void_p),
        ("padding", ctypes.c_char * 8),
    ]


class _CpuTraits(ctypes.Structure):
    """``struct ggml_type_traits_cpu`` (ggml-cpu.h)."""

    _fields_ = [
        ("from_float", ctypes.c_void_p),
        ("vec_dot", ctypes.c_void_p),
        ("vec_dot_type", ctypes.c_int),
        ("nrows", ctypes.c_int64),
    ]


_NAME_OFFSET = _Tensor.name.offset
_FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
_VEC_DOT = ctypes.CFUNCTYPE(
    None, ctypes.c_int, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
)  # fmt: skip
_EVAL_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_bool, ctypes.c_void_p)
_PATCH_LOCK = threading.Lock()


class HeadUnavailable(Exception):
    """Why the output head cannot serve this model or build (the full layer is kept)."""


def _ggml_libraries() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    import llama_cpp

    lib = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    try:
        base = ctypes.CDLL(os.path.join(lib, "libggml-base.so"))
        cpu = ctypes.CDLL(os.path.join(lib, "libggml-cpu.so"))
    except OSError as err:
        why = f"ggml's CPU library not found next to llama-cpp-python: {err}"
        raise HeadUnavailable(why) from None
    base.ggml_row_size.restype = ctypes.c_size_t
    base.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    cpu.ggml_get_type_traits_cpu.restype = ctypes.POINTER(_CpuTraits)
    cpu.ggml_get_type_traits_cpu.argtypes = [ctypes.c_int]
    cpu.ggml_cpu_init()
    return base, cpu


class OutputHead:
    """The model's output matrix, a row at a time from the GGUF file, and ggml's dot
    product for its type."""

    def __init__(self, path: str):
        index = tensor_index(path)
        info = index.get("output.weight") or index.get("token_embd.weight")
        if info is None or len(info.dims) != 2:
            raise HeadUnavailable("no output matrix in the GGUF file")
        base, cpu = _ggml_libraries()
        self.width, self.n_rows = int(info.dims[0]), int(info.dims[1])
        traits = cpu.ggml_get_type_traits_cpu(info.ggml_type).contents
        if not traits.vec_dot:
            raise HeadUnavailable(f"no CPU dot product for ggml type {info.ggml_type}")
        self._dot = _VEC_DOT(traits.vec_dot)
        self._act_type = traits.vec_dot_type
        quantize = cpu.ggml_get_type_traits_cpu(self._act_type).contents.from_float
        if not quantize and self._act_type != GGML_F32:
            raise HeadUnavailable(f"no conversion to ggml type {self._act_type}")
        self._quantize = _FROM_FLOAT(quantize) if quantize else None
        self._act_bytes = int(base.ggml_row_size(self._act_type, self.width))
        self._row_bytes = int(base.ggml_row_size(info.ggml_type, self.width))
        self._file = np.memmap(path, dtype=np.uint8, mode="r")  # mapped, read in place
        if info.offset + self._row_bytes * self.n_rows > self._file.size:
            raise HeadUnavailable("the output matrix runs past the end of the GGUF file")
        self._matrix = self._file.ctypes.data + info.offset

    def _row(self, token: int) -> int:
        """The address of ``token``'s row of the output matrix in the mapped file."""
        if not 0 <= token < self.n_rows:
            raise IndexError(f"token {token} outside the vocabulary of {self.n_rows}")
        return self._matrix + int(token) * self._row_bytes

    def logits(self, hidden: np.ndarray, tokens: Sequence[int]) -> np.ndarray:
        """The logits of ``tokens`` for one position's final-norm ``hidden`` state."""
        h = np.ascontiguousarray(hidden, dtype=np.float32)
        if self._quantize is None:
            act = h
        else:
            act = np.empty(self._act_bytes, dtype=np.uint8)
            self._quantize(h.ctypes.data, act.ctypes.data, self.width)
        out = np.empty(len(tokens), dtype=np.float32)
        s = ctypes.c_float()
        for i, token in enumerate(tokens):
            self._dot(self.width, ctypes.byref(s), 0, self._row(token), 0,
                      act.ctypes.data, 0, 1)  # fmt: skip
            out[i] = s.value
        return out


class HiddenTap:
    """A llama.cpp context's eval callback: while ``armed``, a decode stops after the final
    norm and leaves its rows (one per output token) in ``hidden``.

    The callback runs Python inside ``llama_decode``, so a Ctrl-C lands there, and ctypes
    would print the KeyboardInterrupt and drop it. :func:`_keep_tap_errors` keeps it in
    ``pending`` instead, and the decode's caller raises it (:meth:`raise_pending`) once
    llama.cpp returns: Ctrl-C still cancels a query, silently."""

    def __init__(self) -> None:
        self.armed = False
        # False: copy the final norm and let the graph go on to the output layer (a decode
        # some of whose rows need the whole vocabulary's logits and others only a few)
        self.stop = True
        self.hidden: np.ndarray | None = None
        self.pending: BaseException | None = None
        self.callback = _EVAL_CALLBACK(self._on_node)

    def raise_pending(self) -> None:
        """Raise what interrupted the last decode's callback (a Ctrl-C), if anything."""
        err, self.pending = self.pending, None
        if err is not None:
            raise err

    def _on_node(self, tensor: int, ask: bool, _user: int) -> bool:
        if ask:  # asked for every node of every decode: keep it cheap
            return self.armed and ctypes.string_at(tensor + _NAME_OFFSET, 12) == TAP_NODE
        t = _Tensor.from_address(tensor)
        width, rows = int(t.ne[0]), int(t.ne[1])
        if t.type == GGML_F32 and t.nb[1] == 4 * width and rows > 0:
            buf = (ctypes.c_float * (width * rows)).from_address(t.data)
            self.hidden = np.ctypeslib.as_array(buf).reshape(rows, width).copy()
        return not self.stop  # the rest of the graph is the output layer: skip it


def _keep_tap_errors(unraisable) -> None:
    """sys.unraisablehook: an exception out of a tap's callback (a Ctrl-C) is kept for its
    decode's caller; anything else goes to the hook installed before."""
    tap = getattr(unraisable.object, "__self__", None)
    if isinstance(tap, HiddenTap) and unraisable.exc_value is not None:
        tap.pending = unraisable.exc_value
        return
    _previous_hook(unraisable)


_previous_hook = sys.unraisablehook
sys.unraisablehook = _keep_tap_errors


@contextmanager
def tapped_contexts(tap: HiddenTap, seqs: int = 1) -> Iterator[None]:
    """Contexts that ``llama_cpp.Llama`` creates in this thread meanwhile call ``tap``,
    and hold ``seqs`` sequences in one unified KV cache (label_scores.py decodes a row's
    label prefixes as sequences that share the row's cells).

    ``Llama`` takes neither an eval callback nor a sequence count outside embedding mode,
    so its default-params function is wrapped for the duration of one load (as
    cpu_backend.model_params does for the model's)."""
    import llama_cpp.llama_cpp as raw

    me = threading.get_ident()
    with _PATCH_LOCK:
        original = raw.llama_context_default_params

        def params():
            p = original()
            if threading.get_ident() == me:
                p.cb_eval, p.cb_eval_user_data = tap.callback, None
                p.n_seq_max, p.kv_unified = seqs, True
            return p

        raw.llama_context_default_params = params
        try:
            yield
        finally:
            raw.llama_context_default_params = original


def check(head: OutputHead, full: np.ndarray, hidden: np.ndarray) -> str | None:
    """Why the head's logits cannot stand in for the full layer's ``full`` (None where
    they can): its ``_CHECKED_TOKENS`` highest entries and as many spread over the
    vocabulary, from the same position's ``hidden`` state."""
    top = np.argsort(-full)[:_CHECKED_TOKENS]
    spread = np.linspace(0, len(full) - 1, _CHECKED_TOKENS).astype(int)
    tokens = [int(t) for t in np.concatenate([top, spread])]
    diff = float(np.max(np.abs(head.logits(hidden, tokens) - full[tokens])))
    if not np.isfinite(diff) or diff > CHECK_TOLERANCE:
        return f"its logits differ from the full layer's by {diff:.3g} on a probe"
    return None


PROBE_TEXT = "Is this review positive? Answer:"


def full_and_hidden(rt, text: str) -> tuple[np.ndarray, np.ndarray]:
    """The whole layer's logits after ``text`` and the final-norm state they come from,
    each decoded from an empty cache in the runtime ``rt``'s context."""
    tokens = rt.tokenize(text)
    with rt._lock:
        try:
            rt._clear_cache()
            rt._prefill(tokens)
            full = rt._logits().copy()
            rt._clear_cache()
            rt._prefill(tokens, hidden=True)
            hidden = rt._tap.hidden[-1].copy()
        finally:
            rt._clear_cache()
    return full, hidden


def attach(rt) -> tuple[OutputHead | None, str]:
    """The head for the in-process runtime ``rt`` and how its closed sets are scored: the
    head where its logits match the full layer's on a probe decoded both ways, else None
    and why not."""
    try:
        head = OutputHead(rt.path)
    except (HeadUnavailable, OSError, ValueError) as err:
        return None, f"the whole vocabulary ({err})"
    try:
        why = check(head, *full_and_hidden(rt, PROBE_TEXT))
    except ExecutionError as err:  # no node named result_norm: another architecture
        why = str(err)
    if why is not None:
        return None, f"the whole vocabulary ({why})"
    few = "only the rows of the tokens a step can choose, where they are few"
    return head, f"{few} (matched the whole layer at load)"
