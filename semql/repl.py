"""The interactive prompt: prompt_toolkit line editing, persistent history, Ctrl-C.

Enter runs the text once it is a complete statement (ends with ';' outside quotes and
comments) or a dot-command, and otherwise starts a new line, so a multi-line statement is
one history entry. Ctrl-C clears a half-typed statement; at an empty prompt it asks for a
second Ctrl-C to leave. While a statement runs, Ctrl-C cancels it (see Shell._run_one).
"""

from __future__ import annotations

import os
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings

from .shell import QuitShell, Shell, statement_complete


def history_path() -> Path:
    """``$SEMQL_HISTORY``, else ~/.semql_history."""
    return Path(os.environ.get("SEMQL_HISTORY") or Path.home() / ".semql_history")


def _key_bindings() -> KeyBindings:
    kb = KeyBindings()

    @kb.add("enter")
    def _enter(event) -> None:
        buffer = event.current_buffer
        if statement_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    @kb.add("c-c")
    def _interrupt(event) -> None:
        buffer = event.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt())

    return kb


def run(shell: Shell, banner: str) -> None:
    """Read and run statements until .quit, Ctrl-D or a second Ctrl-C."""
    path = history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    session = PromptSession(
        history=FileHistory(str(path)),
        multiline=True,
        key_bindings=_key_bindings(),
        prompt_continuation=lambda width, line, wrap: "   ...> ",
    )
    shell.err.write(banner)
    armed = False  # a Ctrl-C at an empty prompt was pressed: the next one exits
    while True:
        try:
            text = session.prompt("semql> ")
        except KeyboardInterrupt:
            if armed:
                break
            shell.err.write("(press Ctrl-C again to exit, or type .quit)\n")
            armed = True
            continue
        except EOFError:
            break
        armed = False
        try:
            shell.run_text(text, stop_on_error=False)
        except QuitShell:
            break
    shell.close()
