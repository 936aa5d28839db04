"""llama.cpp's own log, cut to its errors.

llama-cpp-python maps the log levels of this ggml version wrongly and prints warnings
such as the SWA-cache note on every model load, in the middle of a user's output. The
in-process runtime and ``semql serve`` (unless --verbose) keep errors only;
SEMQL_LLAMA_LOG=1 shows everything.
"""

from __future__ import annotations

import ctypes
import os
import sys

import llama_cpp

_GGML_LOG_ERROR = 4  # ggml's levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation


@llama_cpp.llama_log_callback
def _errors_only(level: int, text: bytes, user_data) -> None:
    if level == _GGML_LOG_ERROR or os.environ.get("SEMQL_LLAMA_LOG"):
        sys.stderr.write(text.decode("utf-8", errors="replace"))


def errors_only() -> None:
    """Route llama.cpp's log through the filter above (for the whole process)."""
    llama_cpp.llama_log_set(_errors_only, ctypes.c_void_p(0))
