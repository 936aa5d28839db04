"""The OpenAI-compatible HTTP runtime against llama-cpp-python's real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import polars as pl
import pytest

import semql
from semql.executors.runtimes.http_runtime import gbnf, grammar_fields
from semql.grammar import types as T

pytestmark = pytest.mark.model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    from semql.executors.runtimes.model_files import default_model_path

    port = _free_port()
    # The server loads the model itself: load it the way SemQL would on this CPU, so a
    # machine whose AMX kernels die with SIGILL runs the server too (executors/cpu_backend).
    launch = (
        "import runpy, sys; from semql.executors.runtimes import cpu_backend; "
        "cpu_backend.model_params(cpu_backend.decide(sys.argv[2]).extra_bufts).__enter__(); "
        "sys.argv[0] = 'llama_cpp.server'; "
        "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            launch,
            "--model",
            default_model_path(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--seed",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # bounded wait for the server to answer
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("llama_cpp.server exited during start-up")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_query_through_the_server(server):
    with semql.connect(model=server, cache=False) as con:
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


def test_unreachable_endpoint_is_a_clear_error():
    port = _free_port()
    with semql.connect(model=f"http://127.0.0.1:{port}", cache=False) as con:
        con.register("t", pl.DataFrame({"a": ["x"]}))
        with pytest.raises(semql.ExecutionError, match=f"127.0.0.1:{port}"):
            con.query("SELECT LLMMap('q', a) FROM t")


def test_grammar_fields_per_flavor():
    spec = T.JsonType('{"type":"object"}').spec()
    assert "guided_json" in grammar_fields(spec, "vllm")
    assert "json_schema" in grammar_fields(spec, "sglang")
    assert gbnf(spec).startswith('root ::= " " json-root')
    assert grammar_fields(T.BoolType().spec(), "llama.cpp")["grammar"].startswith("root ::=")
