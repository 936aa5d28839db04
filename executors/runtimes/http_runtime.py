"""LM runtime over an OpenAI-compatible HTTP endpoint (llama.cpp's server, vLLM, SGLang).

Same interface as the in-process runtime: ``generate(prompt, out_type)``. The output
grammar travels with each request, in the form the server understands:

* ``llama.cpp`` (llama.cpp's server and llama-cpp-python's ``llama_cpp.server``): a GBNF
  ``grammar``; JSON schemas are converted with llama.cpp's own schema converter;
* ``vllm``: ``guided_json`` / ``guided_regex`` / ``guided_grammar``;
* ``sglang``: ``json_schema`` / ``regex`` / ``ebnf``.

This is how SemQL goes past one machine: many GPUs behind one endpoint with prefix
caching. Prompts are the same completion-style prompts the local runtime uses.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import xgrammar as xgr

from semql.errors import ExecutionError
from semql.grammar.types import GrammarSpec, OutputType

from .runtime import Generation

FLAVORS = ("llama.cpp", "vllm", "sglang")


def gbnf(spec: GrammarSpec) -> str:
    """A spec as llama.cpp GBNF text (our EBNF is written in the GBNF subset)."""
    if spec.kind == "ebnf":
        return spec.source
    if spec.kind == "regex":
        return _xgrammar_ebnf_to_gbnf(str(xgr.Grammar.from_regex(spec.source)))
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    body = json_schema_to_gbnf(spec.source)
    lines = [
        ("json-root ::=" + line[len("root ::=") :]) if line.startswith("root ::=") else line
        for line in body.splitlines()
    ]
    return 'root ::= " " json-root\n' + "\n".join(lines)


def _xgrammar_ebnf_to_gbnf(text: str) -> str:
    """xgrammar prints EBNF with '_' in rule names and '{a, b}'; GBNF wants '-' and '{a,b}'."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"' or ch == "[":
            end = '"' if ch == '"' else "]"
            j = i + 1
            while j < n and text[j] != end:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
            continue
        if ch == "_":
            out.append("-")
        elif ch == "{":
            j = text.index("}", i)
            out.append(text[i : j + 1].replace(" ", ""))
            i = j + 1
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def grammar_fields(spec: GrammarSpec, flavor: str) -> dict:
    """The request fields that carry the grammar for one server flavour."""
    if flavor == "llama.cpp":
        return {"grammar": gbnf(spec)}
    if flavor == "vllm":
        if spec.kind == "json_schema":
            return {"guided_json": json.loads(spec.source)}
        if spec.kind == "regex":
            return {"guided_regex": spec.source}
        return {"guided_grammar": spec.source}
    if flavor == "sglang":
        if spec.kind == "json_schema":
            return {"json_schema": spec.source}
        if spec.kind == "regex":
            return {"regex": spec.source}
        return {"ebnf": spec.source}
    raise ValueError(f"unknown server flavor {flavor!r}; expected one of {FLAVORS}")


class HTTPRuntime:
    """Sends each prompt to ``{base_url}/completions`` with greedy decoding and a grammar
    (a :class:`~semql.executors.runtimes.runtime.Runtime`; the server owns the model, so no
    tokenizer, label scores or timings here)."""

    style = "completion"
    n_ctx = None  # the server's window is its own; prompts are not fitted here
    decoding = 0
    local = False

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        flavor: str = "llama.cpp",
        api_key: str | None = None,
        timeout: float = 120.0,
        seed: int = 0,
    ):
        if flavor not in FLAVORS:
            raise ValueError(f"unknown server flavor {flavor!r}; expected one of {FLAVORS}")
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v1") else base + "/v1"
        self.model = model
        self.flavor = flavor
        self.api_key = api_key
        self.timeout = timeout
        self.seed = seed
        self.path = self.base_url
        self.name = f"{model or 'default model'} at {self.base_url}"
        self.model_id = f"http|{self.base_url}|{model or ''}"

    def _post(self, route: str, payload: dict) -> dict:
        data = json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(self.base_url + route, data=data, method="POST")
        req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            body = err.read().decode("utf-8", errors="replace")[:300]
            raise ExecutionError(
                f"LM endpoint {self.base_url} answered {err.code}: {body}"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            raise ExecutionError(f"cannot reach LM endpoint {self.base_url}: {reason}") from None

    def generate(self, prompt: str, out_type: OutputType) -> Generation:
        payload = {
            "prompt": prompt,
            "max_tokens": out_type.token_budget(),
            "temperature": 0.0,
            "seed": self.seed,
            **grammar_fields(out_type.spec(), self.flavor),
        }
        if self.model:
            payload["model"] = self.model
        reply = self._post("/completions", payload)
        try:
            text = reply["choices"][0]["text"]
        except (KeyError, IndexError, TypeError):
            raise ExecutionError(f"LM endpoint {self.base_url} sent no completion") from None
        if not text.startswith(" "):
            text = " " + text
        try:
            out_type.parse(text)
        except (ValueError, TypeError) as err:
            raise ExecutionError(
                f"LM endpoint {self.base_url} returned {text!r}, not a valid {out_type}: {err}"
            ) from None
        usage = reply.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return Generation(
            text,
            int(usage.get("prompt_tokens", 0)),
            int(details.get("cached_tokens", 0) or 0),
            int(usage.get("completion_tokens", 0)),
        )

    def close(self) -> None:
        """Nothing to free: the server owns the model."""
