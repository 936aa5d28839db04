"""How close SemQL's LM maps get to llama.cpp's own prefill limit on this CPU.

For N distinct reviews (seeded draw, rows of SemBench's query movies left out) and the
bundled Gemma 3 270M, run a bool map and an options map (label-scored, as queries run
them) and an int map (generated under its grammar) through the runtime as queries call
it, with the prompt layout queries use (instruction and two invented examples, then the
review, then the answer cue), and report in one run:

- rows/s one row at a time (``batch_rows=1``; the int map's rows with their answer steps
  shared, executors/runtimes/shared_steps.py, as a map's rows go there) and with the
  shipped recipe (``BATCH_ROWS``
  rows per fixed-shape decode, executors/runtimes/batch_scorer.py and
  batch_generator.py), handed over ``CALL_BATCHES x batch_rows`` rows a call as the LM
  executor does (executors/lm/batch_ahead.py);
- the limit: llama.cpp's own prefill rate for the same row tokens in batches of 512 from
  an empty cache, as rows/s (the rate divided by the tokens a row brings after the shared
  head), and the share of it each recipe reaches;
- how many answers the two recipes share (they are different numerics), and the
  calibrated accuracy of bool and options against SemBench's labels (labels only score;
  nothing is chosen on these rows);
- with ``--sembench``, the whole SemBench movie scenario (Q1-Q10, all 2,000 rows,
  optimized, result cache off) timed in the same run under both recipes;
- which recipe this CPU gets by default (cpu_backend.default_batch_rows).

The limit is measured before the first recipe and again after each one, and a recipe's
share is its rows/s against the mean of the two limits around it: this VM's speed moves
by 10-20% between minutes, and a limit measured once a round, a minute or more from most
recipes, gave one map 83-106% of it in three rounds of unchanged code. With ``--rounds
R`` every recipe is measured R times, interleaved, and the medians reported (rows/s, and
the shares); answers must be the same in every round.

    python bench/lm_limits.py --rows 200 --threads 2 --rounds 3 --sembench  # idle machine
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path

import numpy as np
from stored_scores import QUERY_MOVIES

from semql.executors.lm.closed_set import (
    CONTENT_FREE,
    answer_value,
    content_free_prior,
    probabilities,
)
from semql.executors.runtimes import cpu_backend
from semql.executors.runtimes.cpu_backend import BATCH_ROWS, default_batch_rows
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.executors.runtimes.runtime import CALL_BATCHES
from semql.executors.runtimes.shared_steps import STEP_ROWS
from semql.grammar.types import BoolType, IntType, OptionsType
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir

SHOTS = [
    ("A joyless, plodding mess that wastes its talented cast.", 0),
    ("Funny, warm and beautifully made: a delight from start to finish.", 1),
]
MAPS = {  # name: question, output type, the examples' answers (negative, positive)
    "bool": ("Is this movie review positive?", BoolType(), (False, True)),
    "options": (
        "What is the sentiment of this movie review?",
        OptionsType(("positive", "negative")),
        ("negative", "positive"),
    ),
    "int": ("How many stars from 1 to 5 would the critic give?", IntType(), (1, 5)),
}


def reviews(n: int, seed: int = 0) -> list[tuple[str, bool]]:
    """(text, positive?) of n distinct reviews outside SemBench's query movies."""
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["id"] not in QUERY_MOVIES]
    by_text = {r["reviewText"]: r["scoreSentiment"] == "POSITIVE" for r in rows}
    texts = sorted(by_text)
    random.Random(seed).shuffle(texts)
    return [(t, by_text[t]) for t in texts[:n]]


def prompts_of(runtime: LlamaRuntime, kind: str, texts: list[str], maps: dict = MAPS) -> list:
    question, out_type, answers = maps[kind]
    shots = [(text, answers[label]) for text, label in SHOTS]
    builder = PromptBuilder(runtime.style, runtime.format_chat)
    return [builder.build(question, out_type, ["reviewText"], [t], shots) for t in texts]


def answer_all(
    runtime: LlamaRuntime, kind: str, prompts: list, maps: dict = MAPS
) -> tuple[list, dict]:
    """Each row's raw label log-probs (bool, options) or generated text (int), timed, in
    calls of ``CALL_BATCHES x batch_rows`` rows as the LM executor hands them over."""
    out_type = maps[kind][1]
    scored = out_type.labels() is not None
    ask = runtime.score_many if scored else runtime.generate_many
    per_call = CALL_BATCHES * runtime.batch_rows
    if not scored and runtime.step_rows:  # a map's rows, as the LM executor asks them
        ask, per_call = runtime.generate_rows, CALL_BATCHES * runtime.step_rows
    ask(prompts[:8], out_type)  # grammar compiled, head in the KV cache, caches warm
    fresh = 0
    out = []
    started = time.perf_counter()
    for start in range(0, len(prompts), per_call):
        for r in ask(prompts[start : start + per_call], out_type):
            fresh += r.prompt_tokens - r.cached_tokens
            out.append(r.logprobs if scored else r.text)
    seconds = time.perf_counter() - started
    return out, {
        "rows_per_s": len(prompts) / seconds,
        "fresh_tokens_per_row": fresh / len(prompts),
        "seconds": seconds,
    }


def prefill_limit(runtime: LlamaRuntime, prompts: list) -> float:
    """llama.cpp's prefill rate (tokens/s) for the rows' own tokens, 512 at a time,
    each batch from an empty cache (positions 0-511: no more attention than a row with
    its prompt head computes), best of two."""
    tokens: list[int] = []
    for p in prompts:
        toks, starts = runtime.tokenize_segments(p)
        tokens += toks[starts[1] :]  # past the shared head
    tokens = tokens[: 4 * 512]
    best = 0.0
    for _ in range(2):
        seconds = 0.0
        for i in range(0, len(tokens), 512):  # each batch from an empty cache
            runtime.empty_cache()
            started = time.perf_counter()
            runtime._decode(tokens[i : i + 512], logits=True)
            seconds += time.perf_counter() - started
        best = max(best, len(tokens) / seconds)
    runtime.empty_cache()
    return best


def calibrated_accuracy(runtime, kind: str, logprobs, gold, score=None) -> float:
    """Accuracy of the content-free calibrated answers, decided as queries decide them
    (executors/lm/closed_set.py). ``score`` gives the content-free prompts' label
    log-probs (default: the runtime's own ``score``)."""
    question, out_type, answers = MAPS[kind]
    shots = [(text, answers[label]) for text, label in SHOTS]
    builder = PromptBuilder(runtime.style, runtime.format_chat)
    empty = [builder.build(question, out_type, ["reviewText"], [v], shots) for v in CONTENT_FREE]
    if score is None:
        empty_scores = [runtime.score(p, out_type).logprobs for p in empty]
    else:
        empty_scores = score(empty)
    prior, _ = content_free_prior("content_free", empty_scores)
    decided = [answer_value(out_type, probabilities(list(lp)), prior) for lp in logprobs]
    positive = answers[1]  # the examples' answers are (negative, positive)
    return float(np.mean([(d == positive) == g for d, g in zip(decided, gold, strict=True)]))


def row_tokens(runtime: LlamaRuntime, prompts: list) -> float:
    """Tokens a row brings after the shared head (what the limit is divided by)."""
    n = 0
    for p in prompts:
        toks, starts = runtime.tokenize_segments(p)
        n += len(toks) - starts[1]
    return n / len(prompts)


def sembench_seconds(threads: int, batch_rows: int) -> dict:
    """The whole SemBench movie scenario, optimized, result cache off, all rows."""
    from semql.sembench import runner

    started = time.perf_counter()
    options = {"cache": False, "n_threads": threads, "batch_rows": batch_rows}
    results = runner.run("movie", ["optimized"], overrides=options)
    return {
        "seconds": time.perf_counter() - started,
        "query_seconds": sum(r.seconds for r in results),
        "lm_calls": sum(r.lm_calls for r in results),
        "mean_quality": float(np.mean([r.quality or 0.0 for r in results])),
        "queries": len(results),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sembench", action="store_true", help="also time SemBench movie")
    ap.add_argument("--out", default="bench/results/throughput")
    ap.add_argument(
        "--rounds", type=int, default=1, help="interleaved rounds; figures are their medians"
    )
    args = ap.parse_args()
    data = reviews(args.rows)
    texts, gold = [t for t, _ in data], [g for _, g in data]
    one = LlamaRuntime(default_model_path(), n_threads=args.threads, batch_rows=1)
    rt = LlamaRuntime(default_model_path(), n_threads=args.threads, batch_rows=BATCH_ROWS)
    res: dict = {
        "rows": len(texts),
        "threads": args.threads,
        "batch_rows": BATCH_ROWS,
        "default": default_batch_rows(),
        "cpu": cpu_backend.cpu_model(),
        "amx": "amx_tile" in cpu_backend.cpu_flags(),
        "simd": cpu_backend.simd_flags(),
        "extra_bufts": rt.backend.extra_bufts,
        "maps": {},
    }
    prompts = {kind: prompts_of(rt, kind, texts) for kind in MAPS}
    runtimes = (("one_row", one), ("batched", rt))
    rounds: dict = {kind: {name: [] for name, _ in runtimes} for kind in MAPS}
    limits, outs, changed = [], {}, set()
    limit = prefill_limit(one, prompts["bool"])
    limits.append(limit)
    for r in range(args.rounds):  # interleaved: a slow spell of the machine hits all alike
        for kind in MAPS:
            for name, runtime in runtimes:
                before = limit
                out, timing = answer_all(runtime, kind, prompts[kind])
                limit = prefill_limit(one, prompts["bool"])  # the next one's "before"
                limits.append(limit)
                # the limit measured just before and just after this recipe ran
                limit_rows = (before + limit) / 2 / row_tokens(rt, prompts[kind])
                rounds[kind][name].append(
                    {
                        **timing,
                        "limit_tokens_per_s": (before, limit),
                        "share_of_limit": timing["rows_per_s"] / limit_rows,
                    }
                )
                if outs.setdefault((kind, name), out) != out:
                    changed.add((kind, name))  # reported: answers must not move
            print(kind, "round", r + 1, json.dumps(rounds[kind]), flush=True)
    res["limit_tokens_per_s"] = float(np.median(limits))
    res["rounds"] = args.rounds
    for kind in MAPS:
        m: dict = {"limit_rows_per_s": res["limit_tokens_per_s"] / row_tokens(rt, prompts[kind])}
        for name, runtime in runtimes:
            runs = rounds[kind][name]
            m[name] = {
                "rows_per_s": float(np.median([x["rows_per_s"] for x in runs])),
                "share_of_limit": float(np.median([x["share_of_limit"] for x in runs])),
                "rounds": runs,
            }
            if kind != "int":
                m[name]["accuracy"] = calibrated_accuracy(
                    runtime,
                    kind,
                    outs[(kind, name)],
                    gold,
                    lambda ps, rr=runtime, t=MAPS[kind][1]: [
                        s.logprobs for s in rr.score_many(ps, t)
                    ],
                )
        a, b = outs[(kind, "one_row")], outs[(kind, "batched")]
        if kind == "int":
            m["answers_equal"] = sum(x == y for x, y in zip(a, b, strict=True))
        else:
            m["answers_equal"] = sum(
                int(np.argmax(x)) == int(np.argmax(y)) for x, y in zip(a, b, strict=True)
            )
        m["same_every_round"] = {name: (kind, name) not in changed for name, _ in runtimes}
        res["maps"][kind] = m
    one.close()
    rt.close()
    if args.sembench:
        res["sembench"] = {n: sembench_seconds(args.threads, n) for n in (1, BATCH_ROWS)}
        print("sembench", json.dumps(res["sembench"]), flush=True)
    write(res, Path(args.out))


def _rounds(res: dict) -> str:
    n = res.get("rounds", 1)
    return "one run" if n == 1 else f"{n} interleaved rounds, medians"


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"limits-{stamp}.json").write_text(json.dumps(res, indent=1))
    lines = [
        "# LM maps against llama.cpp's prefill limit\n",
        f"`bench/lm_limits.py`, {_rounds(res)}: {res['rows']} distinct reviews outside SemBench's "
        f"query movies, bundled Gemma 3 270M Q4_K_M, {res['threads']} threads, {res['cpu']}"
        f" ({', '.join(res.get('simd', [])) or 'no AVX2'}), extra buffer types "
        f"{'on' if res['extra_bufts'] else 'off'}. Limit: llama.cpp's prefill of the same row "
        f"tokens, 512 per llama_decode, each from an empty cache, measured before and after "
        f"each recipe (median {res['limit_tokens_per_s']:.0f} tokens/s; a share is against "
        f"the mean of the two around it). Rows handed over {CALL_BATCHES} x "
        "batch_rows a call, as the LM executor does (the int map one row at a time: "
        f"{CALL_BATCHES} x {STEP_ROWS}, its answer steps shared).\n",
        f"| map | limit rows/s | one row at a time: rows/s (share) | {res['batch_rows']} rows "
        "per decode: rows/s (share) | answers equal | accuracy one / batched |",
        "|---|---|---|---|---|---|",
    ]
    for kind, m in res["maps"].items():
        o, b = m["one_row"], m["batched"]
        acc = f"{o['accuracy']:.3f} / {b['accuracy']:.3f}" if "accuracy" in o else "-"
        lines.append(
            f"| {kind} | {m['limit_rows_per_s']:.2f} | {o['rows_per_s']:.2f} "
            f"({o['share_of_limit']:.0%}) | {b['rows_per_s']:.2f} ({b['share_of_limit']:.0%}) "
            f"| {m['answers_equal']}/{res['rows']} | {acc} |"
            + (
                ""
                if all(m.get("same_every_round", {}).values())
                else " (answers moved between rounds)"
            )
        )
    lines += ["", f"Default on this CPU: {res['default'][1]}."]
    if "sembench" in res:
        lines += ["", "SemBench movie, Q1-Q10 on all rows, optimized, result cache off, same run:"]
        for n, sb in res["sembench"].items():
            lines.append(
                f"- {'one row at a time' if int(n) == 1 else f'{n} rows per decode'}: "
                f"{sb['seconds']:.0f} s ({sb['query_seconds']:.0f} s in queries), "
                f"{sb['lm_calls']} LM calls, mean quality {sb['mean_quality']:.3f}"
            )
    (out / f"limits-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
