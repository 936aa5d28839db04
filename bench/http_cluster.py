"""Throughput against OpenAI-compatible servers: requests in flight, one or two endpoints,
and an added network delay.

Two llama_cpp.server processes serve the bundled SmolLM2 with one thread each (this
machine has 2 cores: each server its own). In front of each, a delay proxy holds every
request for 0, 20 or 100 ms before forwarding it (standing for a remote cluster's round
trip). The query: ``LLMMap('Is the review positive?', reviewText)`` over ROWS distinct
reviews (a bool, scored from the server's top log-probabilities of one token per request,
so the delay weighs most), cache off,
for concurrency 1, 2, 4 and 8 per endpoint. Reported: rows/s (the better of REPEATS runs:
this machine is shared, and a run beside another tenant's work reads up to 1.6x slower),
and whether every run gave the same answers as the first.

A CPU-bound llama.cpp server answers one request at a time, so requests in flight hide
latency rather than add compute: the reference is the same servers with no delay and
requests always waiting (concurrency 8, 0 ms).

Also: how often the server's answer equals the in-process runtime's on the same prompts,
1 thread each, at runtime level: greedy generation (bool, two options, int) and label
scores (bool, two options: the label with the highest log-probability, and the largest
difference of a label's log-probability).

    python bench/http_cluster.py --out bench/results/http
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from llama_server import start_server, stop_server  # noqa: E402

import semql  # noqa: E402
from semql.executors.runtimes.http_runtime import HTTPRuntime  # noqa: E402
from semql.executors.runtimes.llama_runtime import LlamaRuntime  # noqa: E402
from semql.executors.runtimes.model_files import smollm2_path  # noqa: E402
from semql.grammar import types as T  # noqa: E402
from semql.planner.physical.prompt_format import PromptBuilder  # noqa: E402

ROWS = 48
REPEATS = 2
DELAYS_MS = (0, 20, 100)
CONCURRENCY = (1, 2, 4, 8)
SQL = (
    "SELECT reviewId, LLMMap('Is the review positive?', reviewText) AS pos FROM "
    f"(SELECT DISTINCT reviewId, reviewText FROM Reviews ORDER BY reviewId LIMIT {ROWS}) "
    "ORDER BY reviewId"
)


class DelayProxy:
    """Forwards every request to ``target`` after ``delay`` seconds (one per request)."""

    def __init__(self, target: str):
        self.delay = 0.0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(proxy.delay)
                req = urllib.request.Request(target + self.path, data=body, method="POST")
                req.add_header("Content-Type", "application/json")
                with urllib.request.urlopen(req, timeout=300) as resp:
                    data = resp.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run(urls: list[str], concurrency: int) -> tuple[float, list]:
    with semql.connect(model=urls, cache=False, max_concurrency=concurrency) as con:
        semql.load_sample(con)
        started = time.perf_counter()
        frame = con.query(SQL)
        seconds = time.perf_counter() - started
    return ROWS / seconds, frame["pos"].to_list()


def agreement(url: str) -> dict[str, float]:
    """Share of prompts where the server's answer equals the in-process runtime's."""
    with semql.connect() as con:
        semql.load_sample(con)
        texts = [
            r[0]
            for r in con.duckdb.execute(
                f"SELECT DISTINCT reviewText FROM Reviews ORDER BY 1 LIMIT {ROWS}"
            ).fetchall()
        ]
    server = HTTPRuntime(url)
    local = LlamaRuntime(smollm2_path(), seed=0, n_threads=1, batch_rows=1)  # as a server
    build = PromptBuilder("completion").build
    out = {}
    try:
        for out_type in (T.BoolType(), T.OptionsType(("positive", "negative")), T.IntType()):
            prompts = [build("Is the review positive?", out_type, ["review"], [t]) for t in texts]
            same = [
                server.generate(p, out_type).text == local.generate(p, out_type).text
                for p in prompts
            ]
            out[str(out_type)] = sum(same) / len(same)
            if out_type.labels() is None:
                continue
            remote = [server.score(p, out_type).logprobs for p in prompts]
            here = [local.score(p, out_type).logprobs for p in prompts]
            argmax = [
                int(np.argmax(a)) == int(np.argmax(b)) for a, b in zip(remote, here, strict=True)
            ]
            out[f"{out_type} scored"] = sum(argmax) / len(argmax)
            diff = np.abs(np.asarray(remote) - np.asarray(here))
            out[f"{out_type} scored, largest log-prob difference"] = float(diff.max())
        out["rows the server could not score"] = server.unscored
    finally:
        local.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/http")
    args = ap.parse_args()
    servers = [start_server(smollm2_path(), threads=1) for _ in range(2)]
    proxies = [DelayProxy(url) for _, url in servers]
    rates: dict[str, float] = {}
    same = True
    first = None
    try:
        agree = agreement(servers[0][1])
        run([proxies[0].url], 1)  # warm both servers' prompt caches alike
        run([proxies[1].url], 1)
        for delay in DELAYS_MS:
            for p in proxies:
                p.delay = delay / 1000
            for n_endpoints in (1, 2):
                for c in CONCURRENCY:
                    rate = 0.0
                    for _ in range(REPEATS):
                        got, answers = run([p.url for p in proxies[:n_endpoints]], c)
                        rate = max(rate, got)
                        first = answers if first is None else first
                        same &= answers == first
                    rates[f"{delay}|{n_endpoints}|{c}"] = rate
                    print(
                        f"delay {delay} ms, {n_endpoints} endpoint(s), concurrency {c}: "
                        f"{rate:.2f} rows/s",
                        flush=True,
                    )
    finally:
        for proc, _ in servers:
            stop_server(proc)
    report(Path(args.out), rates, same, agree)


def report(out: Path, rates: dict[str, float], same: bool, agree: dict[str, float]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"http-{stamp}.json").write_text(
        json.dumps(
            {"rows": ROWS, "rates": rates, "answers_identical": same, "agreement": agree},
            indent=1,
        )
    )
    lines = [
        f"# Rows/s against llama_cpp.server (SmolLM2, 1 thread each), {ROWS} reviews, bool\n",
        "| delay | endpoints | " + " | ".join(f"concurrency {c}" for c in CONCURRENCY) + " |",
        "|---|---|" + "---|" * len(CONCURRENCY),
    ]
    for delay in DELAYS_MS:
        for n in (1, 2):
            cells = " | ".join(f"{rates[f'{delay}|{n}|{c}']:.2f}" for c in CONCURRENCY)
            lines.append(f"| {delay} ms | {n} | {cells} |")
    ref1, ref2 = rates["0|1|8"], rates["0|2|8"]
    lines += [
        "",
        f"- 100 ms delay, concurrency 8, share of the no-delay always-busy rate: one endpoint "
        f"{rates['100|1|8'] / ref1:.0%}, two endpoints {rates['100|2|8'] / ref2:.0%}",
        f"- two endpoints / one (no delay, concurrency 8): {ref2 / ref1:.2f}x",
        f"- answers identical in every run: {same}",
        "- server's answer = the in-process runtime's, same prompts (greedy generation; "
        "scored: the label with the highest log-prob): "
        + ", ".join(f"{k}: {_shown(k, v)}" for k, v in agree.items()),
    ]
    (out / f"http-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _shown(key: str, value: float) -> str:
    if "difference" in key:
        return f"{value:.3f}"
    return str(value) if "could not" in key else f"{value:.0%}"


if __name__ == "__main__":
    main()
