"""LM runtime over an OpenAI-compatible HTTP endpoint (llama.cpp's server, vLLM, SGLang).

Same interface as the in-process runtime: ``generate(prompt, out_type)``. The output
grammar travels with each request, in the form the server understands:

* ``llama.cpp`` (llama.cpp's server and llama-cpp-python's ``llama_cpp.server``): a GBNF
  ``grammar``; JSON schemas are converted with llama.cpp's own schema converter;
* ``vllm`` (0.10.2 and newer): ``structured_outputs`` with ``json`` / ``regex`` / ``grammar``;
* ``sglang``: ``json_schema`` (in a chat request: ``response_format``) / ``regex`` / ``ebnf``.

This is how SemQL goes past one machine: several endpoints (``model=["http://a/v1",
"http://b/v1"]`` or the URLs comma-separated), each taking up to ``max_concurrency``
requests at once (the LM executor keeps that many in flight and reads the answers back in
row order, so they are those of sequential execution). Prompts are the same
completion-style prompts the local runtime uses.

Routing is prefix-aware with bounded loads: a prompt goes to the endpoint that rendezvous
hashing gives its shared prefix (the instruction and examples, and its first field: the
rows an operator asks in prefix order share those), so that endpoint's prefix cache
serves the rows that share it, unless that endpoint already has ``max_concurrency``
requests in flight; then to the next in its order with room, so no endpoint idles while
another queues. An endpoint that cannot be reached, times out or fails (HTTP 5xx) is set
aside for ``retry_after`` seconds and the prompt goes to the next endpoint in its order;
the query fails, with every endpoint's error, only when all of them failed. A 4xx answer
(a request the server refuses) is an error at once: another endpoint would refuse it too.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence

import xgrammar as xgr

from semql.errors import ExecutionError
from semql.grammar.types import GrammarSpec, OutputType

from .http_scores import TOP_LOGPROBS, chained_label_logprobs, label_logprobs, top_logprobs
from .runtime import Generation, Scored

FLAVORS = ("llama.cpp", "vllm", "sglang")
# what ``semql.connect(model=url, server={...})`` may set (the rest comes from connect)
SERVER_OPTIONS = ("flavor", "model", "chat", "api_key", "timeout", "label_scores", "retry_after")


def gbnf(spec: GrammarSpec) -> str:
    """A spec as llama.cpp GBNF text (our EBNF is written in the GBNF subset, except for
    the ``\\0`` escape, which llama.cpp's parser rejects, failing the request, and which
    GBNF writes ``\\x00``)."""
    if spec.kind == "ebnf":
        return re.sub(r"(?<!\\)\\0", r"\\x00", spec.source)
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


def grammar_fields(spec: GrammarSpec, flavor: str, chat: bool = False) -> dict:
    """The request fields that carry the grammar for one server flavour.

    * llama.cpp: GBNF ``grammar``, and no repeat penalty (its server applies 1.1 by
      default, so greedy decoding there would not be the model's greedy answer);
    * vLLM: ``structured_outputs`` (``json`` / ``regex`` / ``grammar``). vLLM 0.12 removed
      the older ``guided_*`` fields and ignores unknown fields, so those would come back
      unconstrained;
    * SGLang: ``json_schema`` / ``regex`` / ``ebnf``; its chat request has no
      ``json_schema`` field, so a chat turn's schema travels as ``response_format``.

    A server that drops the grammar anyway is caught by the runtime, which parses every
    answer as its type."""
    if flavor == "llama.cpp":
        return {"grammar": gbnf(spec), "repeat_penalty": 1.0}
    if flavor == "vllm":
        kind = {"json_schema": "json", "regex": "regex"}.get(spec.kind, "grammar")
        value = json.loads(spec.source) if spec.kind == "json_schema" else spec.source
        return {"structured_outputs": {kind: value}}
    if flavor == "sglang":
        if spec.kind == "json_schema" and chat:
            schema = {"name": "answer", "schema": json.loads(spec.source)}
            return {"response_format": {"type": "json_schema", "json_schema": schema}}
        kind = {"json_schema": "json_schema", "regex": "regex"}.get(spec.kind, "ebnf")
        return {kind: spec.source}
    raise ValueError(f"unknown server flavor {flavor!r}; expected one of {FLAVORS}")


def endpoint_urls(base_url: str | Sequence[str]) -> list[str]:
    """The endpoints' ``.../v1`` URLs, from one URL, a comma-separated list or a list."""
    urls = base_url.split(",") if isinstance(base_url, str) else list(base_url)
    out = []
    for url in (u.strip().rstrip("/") for u in urls):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url!r}")
        out.append(url if url.endswith("/v1") else url + "/v1")
    if not out or len(set(out)) != len(out):
        raise ValueError(f"endpoints must be distinct URLs, got {base_url!r}")
    return out


class EndpointFailed(Exception):
    """A request failed in a way another endpoint may not (unreachable, timeout, 5xx)."""


def chat_messages(prompt: str) -> list[dict]:
    """A completion-style prompt as chat messages for an instruct model's own template
    (applied by the server): the instruction and examples as the system message, the
    row's fields as the user's; the closing ``Answer:`` cue is the assistant's turn."""
    segments = getattr(prompt, "segments", None)
    if not segments or len(segments) < 3:
        return [{"role": "user", "content": prompt}]
    return [
        {"role": "system", "content": segments[0].strip()},
        {"role": "user", "content": "".join(segments[1:-1]).strip()},
    ]


def token_counts(reply: dict) -> tuple[int, int, int]:
    """Prompt tokens, those of them served from the server's cache, and generated tokens,
    from a reply's ``usage`` (zeros where a server leaves them out)."""
    usage = reply.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return (
        int(usage.get("prompt_tokens", 0)),
        int(details.get("cached_tokens", 0) or 0),
        int(usage.get("completion_tokens", 0)),
    )


def route_key(prompt: str) -> str:
    """The part of a prompt that rows sharing a prefix share: the head and first field
    of a segmented prompt (planner/prompt_format.Prompt), else its first 256 characters."""
    segments = getattr(prompt, "segments", None)
    return "".join(segments[:2]) if segments else prompt[:256]


class HTTPRuntime:
    """Sends each prompt to ``{endpoint}/completions`` (``chat=True``: to
    ``/chat/completions`` as messages, for instruct models, the template being the
    server's) with greedy decoding and a grammar (a
    :class:`~semql.executors.runtimes.runtime.Runtime`; the server owns the model, so no
    tokenizer, label scores or timings here). Thread-safe: the LM executor calls
    ``generate`` from up to ``concurrency`` threads."""

    style = "completion"
    n_ctx = None  # the server's window is its own; prompts are not fitted here
    decoding = 0
    local = False
    remote_speeds = True
    blocks = False
    batch_rows = 1  # concurrent requests instead (prefetch.py)

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        model: str | None = None,
        flavor: str = "llama.cpp",
        api_key: str | None = None,
        timeout: float = 120.0,
        seed: int = 0,
        max_concurrency: int = 4,
        retry_after: float = 30.0,
        chat: bool = False,
        label_scores: bool = True,
    ):
        if flavor not in FLAVORS:
            raise ValueError(f"unknown server flavor {flavor!r}; expected one of {FLAVORS}")
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            raise ValueError(f"max_concurrency must be a whole number, got {max_concurrency!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        for name, value in (("chat", chat), ("label_scores", label_scores)):
            if not isinstance(value, bool):
                raise ValueError(f"server option {name} must be true or false, got {value!r}")
        for name, value in (("timeout", timeout), ("retry_after", retry_after)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"server option {name} must be seconds > 0, got {value!r}")
        self.endpoints = endpoint_urls(base_url)
        self.model = model
        self.flavor = flavor
        self.api_key = api_key
        self.timeout = timeout
        self.seed = seed
        self.retry_after = retry_after
        self.chat = chat  # /chat/completions with the server's chat template
        # closed sets from the server's top log-probabilities (http_scores.py); where a
        # row's labels are not among them, that row is decoded greedily
        self.label_scores = label_scores
        self.unscored = 0  # rows of closed sets decoded greedily for want of log-probs
        self.max_concurrency = max_concurrency
        self.concurrency = max_concurrency * len(self.endpoints)
        self.path = ", ".join(self.endpoints)
        self.name = f"{model or 'default model'} at {self.path}"
        n = len(self.endpoints)
        each = f"{max_concurrency} requests each"
        self.placement = f"{n} server endpoint{'s' if n > 1 else ''}, {each}"
        # the weights are the servers' own; they must serve the same model
        self.model_id = f"http|{'|'.join(sorted(self.endpoints))}|{model or ''}"
        self.model_id += "|chat" if chat else ""
        self.model_id += "|label scores" if label_scores else ""
        self.requests: Counter = Counter()  # endpoint -> requests it answered
        self._down: dict[str, float] = {}  # endpoint -> set aside until
        self._flying: Counter = Counter()  # endpoint -> requests in flight
        self._lock = threading.Lock()

    def order(self, prompt: str) -> list[str]:
        """The endpoints to try for ``prompt``: by rendezvous hash of its shared prefix;
        those with ``max_concurrency`` requests already in flight after the others
        (bounded loads: a shared prefix stays on its endpoint while it has room, and
        distinct rows fill every endpoint), those set aside after a failure last."""
        key = route_key(prompt)
        ranked = sorted(
            self.endpoints,
            key=lambda url: hashlib.blake2b(f"{url}\x00{key}".encode(), digest_size=8).digest(),
        )
        now = time.monotonic()
        with self._lock:
            return sorted(
                ranked,
                key=lambda url: (
                    self._down.get(url, 0.0) > now,
                    self._flying[url] >= self.max_concurrency,
                ),
            )

    def _post(self, url: str, route: str, payload: dict) -> dict:
        data = json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(url + route, data=data, method="POST")
        req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            body = err.read().decode("utf-8", errors="replace")[:300]
            message = f"LM endpoint {url} answered {err.code}: {body}"
            if err.code >= 500:
                raise EndpointFailed(message) from None
            raise ExecutionError(message) from None
        except OSError as err:  # URLError, timeouts and connection errors are OSErrors
            reason = getattr(err, "reason", err)
            raise EndpointFailed(f"cannot reach LM endpoint {url}: {reason}") from None
        except json.JSONDecodeError:
            raise EndpointFailed(f"LM endpoint {url} sent a reply that is not JSON") from None

    def _complete(self, prompt: str, payload: dict) -> tuple[str, dict]:
        """(endpoint, reply) from the first endpoint of ``prompt``'s order that answers."""
        failures = []
        route = "/chat/completions" if self.chat else "/completions"
        for url in self.order(prompt):
            with self._lock:
                self._flying[url] += 1
            try:
                reply = self._post(url, route, payload)
            except EndpointFailed as err:
                failures.append(str(err))
                with self._lock:
                    self._down[url] = time.monotonic() + self.retry_after
                continue
            finally:
                with self._lock:
                    self._flying[url] -= 1
            with self._lock:
                self._down.pop(url, None)
                self.requests[url] += 1
            return url, reply
        if len(failures) == 1:
            raise ExecutionError(failures[0])
        raise ExecutionError("every LM endpoint failed: " + "; ".join(failures))

    def _payload(self, prompt: str, max_tokens: int) -> dict:
        payload = {
            **({"messages": chat_messages(prompt)} if self.chat else {"prompt": prompt}),
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "seed": self.seed,
        }
        if self.model:
            payload["model"] = self.model
        return payload

    def score_many(self, prompts: list[str], out_type: OutputType) -> list[Scored]:
        return [self.score(p, out_type) for p in prompts]  # batch_rows = 1: one at a time

    def generate_many(self, prompts: list[str], out_type: OutputType) -> list[Generation]:
        return [self.generate(p, out_type) for p in prompts]

    def score(self, prompt: str, out_type: OutputType) -> Scored:
        """Each label's log-probability from the server's top log-probabilities of the
        answer's first token (in a completion, of the tokens up to where the labels part:
        http_scores.py); where they cannot tell the labels apart, a greedy answer under
        the grammar, as log-probabilities 0 for it and -inf else."""
        labels = out_type.labels()
        used = [0, 0]  # prompt tokens, cached prompt tokens

        def top_after(written: str) -> dict[str, float] | None:
            # (the Prompt itself where nothing is appended: a chat request needs its parts)
            payload = self._payload(prompt + written if written else prompt, 1)
            if self.chat:
                payload |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
            else:
                payload["logprobs"] = TOP_LOGPROBS
            if self.flavor == "llama.cpp":
                payload["repeat_penalty"] = 1.0
            _, reply = self._complete(prompt, payload)  # routed by the row's own prompt
            prompt_tokens, cached, _ = token_counts(reply)
            used[0] += prompt_tokens
            used[1] += cached
            return top_logprobs((reply.get("choices") or [{}])[0])

        if self.chat:  # a chat turn cannot be continued: its first token only
            top = top_after("")
            scores = label_logprobs(top, labels, chat=True) if top else None
        else:
            scores = chained_label_logprobs(top_after, labels)
        if scores is None:
            with self._lock:
                self.unscored += 1
            gen = self.generate(prompt, out_type)
            answer = gen.text.strip()
            scores = [0.0 if label == answer else float("-inf") for label in labels]
            used[0] += gen.prompt_tokens
            used[1] += gen.cached_tokens
        return Scored(scores, used[0], used[1], 0)

    def generate(self, prompt: str, out_type: OutputType) -> Generation:
        payload = self._payload(prompt, out_type.token_budget())
        payload |= grammar_fields(out_type.spec(), self.flavor, self.chat)
        url, reply = self._complete(prompt, payload)
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] if self.chat else choice["text"]
        except (KeyError, IndexError, TypeError):
            raise ExecutionError(f"LM endpoint {url} sent no completion") from None
        if not text.startswith(" "):
            text = " " + text
        try:
            out_type.parse(text)
        except (ValueError, TypeError) as err:
            raise ExecutionError(
                f"LM endpoint {url} returned {text!r}, not a valid {out_type}: {err}"
            ) from None
        return Generation(text, *token_counts(reply))

    def close(self) -> None:
        """Nothing to free: the servers own the model."""
