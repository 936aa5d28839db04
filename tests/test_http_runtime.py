"""The OpenAI-compatible HTTP runtime against llama-cpp-python's real server on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request

import polars as pl
import pytest
from llama_server import free_port, start_server, stop_server
from sampled_rows import SAMPLE_ROWS

import semql
from semql.executors.runtimes.http_runtime import gbnf, grammar_fields
from semql.grammar import types as T

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def server():
    from semql.executors.runtimes.model_files import default_model_path

    try:
        proc, url = start_server(default_model_path())
    except RuntimeError as err:
        pytest.fail(str(err))
    yield url
    stop_server(proc)


def test_query_through_the_server(server):
    with semql.connect(model=server, cache=False, calibration_rows=SAMPLE_ROWS) as con:
        semql.load_sample(con)
        df = con.query(
            "SELECT reviewId, "
            "LLMMap('Is the review positive?', reviewText) = TRUE AS pos, "
            "LLMMap('Sentiment?', reviewText, options=('POSITIVE','NEGATIVE')) AS s, "
            "LLMMap('Stars 1 to 5?', reviewText, return_type='int') AS n, "
            'LLMMap(\'Describe\', reviewText, return_type=\'{"type":"object","properties":'
            '{"ok":{"type":"boolean"}},"required":["ok"]}\') AS j '
            "FROM Reviews WHERE id = 'taken_3' ORDER BY reviewId LIMIT 3"
        )
        assert df.height == 3
        assert df.schema["pos"] == pl.Boolean and df.schema["n"] == pl.Int64
        assert set(df["s"]) <= {"POSITIVE", "NEGATIVE"}
        assert all(isinstance(json.loads(v)["ok"], bool) for v in df["j"])
        assert con.stats.lm_calls == 12
        assert con.runtime.model_id.startswith("http|")


def test_health_route_for_gateways(server):
    """Gateways (SMG) and Kubernetes probes register a worker only once GET /health
    answers; llama-cpp-python's own app has no such route."""
    with urllib.request.urlopen(server + "/health", timeout=5) as resp:
        assert resp.status == 200
        assert json.loads(resp.read()) == {"status": "ok"}


def test_unreachable_endpoint_is_a_clear_error():
    port = free_port()
    with semql.connect(model=f"http://127.0.0.1:{port}", cache=False) as con:
        con.register("t", pl.DataFrame({"a": ["x"]}))
        with pytest.raises(semql.ExecutionError, match=f"127.0.0.1:{port}"):
            con.query("SELECT LLMMap('q', a) FROM t")


def test_grammar_fields_per_flavor():
    spec = T.JsonType('{"type":"object"}').spec()
    # vLLM >= 0.12 ignores the removed guided_* fields: the grammar must be in
    # structured_outputs, a schema as an object
    assert grammar_fields(spec, "vllm") == {"structured_outputs": {"json": {"type": "object"}}}
    regex = T.IntType().spec()
    assert grammar_fields(regex, "vllm") == {"structured_outputs": {"regex": regex.source}}
    ebnf = T.BoolType().spec()
    assert grammar_fields(ebnf, "vllm") == {"structured_outputs": {"grammar": ebnf.source}}
    assert grammar_fields(spec, "sglang") == {"json_schema": spec.source}
    assert grammar_fields(ebnf, "sglang", chat=True) == {"ebnf": ebnf.source}
    # SGLang's chat request has no json_schema field: a schema goes in response_format
    chat = grammar_fields(spec, "sglang", chat=True)["response_format"]
    assert chat["type"] == "json_schema" and chat["json_schema"]["schema"] == {"type": "object"}
    assert gbnf(spec).startswith('root ::= " " json-root')
    assert grammar_fields(T.BoolType().spec(), "llama.cpp")["grammar"].startswith("root ::=")


def test_gbnf_writes_the_nul_escape_as_llama_cpp_parses_it():
    # llama.cpp's grammar parser rejects "\0" and the server then drops the request
    text = gbnf(T.StrType().spec())
    assert "\\x00-\\x1f" in text and "\\0" not in text
    assert grammar_fields(T.StrType().spec(), "llama.cpp")["repeat_penalty"] == 1.0
