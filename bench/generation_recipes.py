"""Shared step decodes for generated answers (int and short text), against one row at a time.

A generated answer costs its prompt's prefill plus one single-token decode per answer
token, and each of those decodes computes the output layer of Gemma 3's 262k-token
vocabulary for one row. On a CPU without AVX-512 the int map reached 64-68% of llama.cpp's
prefill limit one row at a time (bench/lm_limits.py), against 84-86% for a label-scored
bool map whose answer needs no decode at all. Measured here on the engine's own code:

- ``one row``: ``LlamaRuntime.generate``, a row at a time in the runtime's context.
- ``shared steps``: ``LlamaRuntime.generate_rows`` (executors/runtimes/shared_steps.py,
  what the LM executor runs for a map's generated rows where rows go one at a time). Each
  row's prompt is decoded alone in its own KV stream of the batched context; its answer
  tokens go in step decodes of one token for each of 8 streams, a fixed shape that serves
  every row then answering. The prompt's decode takes along the first answer token that
  the grammar all but fixes (an int's leading space; greedy.py ``lookahead``), so a row
  that chooses it starts with its second token's logits.
- ``shared steps, no lookahead``: the same without that token, the recipe before it
  (STEPS_DECODING 2). A row alone in its own context gained nothing from decoding the
  space early (forced-draft-20261206-174443): there every output cost the whole
  vocabulary's layer. In shared steps the space's output comes from the output head, and
  what a row saves is a step decode, whose whole-vocabulary outputs its mates need.

A row's numbers must depend on its own tokens only: checked here as every logits vector
its tokens were chosen from equal bit for bit with the rows shuffled and with a row alone,
for the engine's fixed steps and for the same loop with each step decode only as wide as
the rows then answering (the filler items dropped, ``NarrowSteps``), the shape the engine
does not use.

Two maps with lm_limits.py's prompt layout and examples: its int map ("How many stars
from 1 to 5", 2-3 answer tokens a row) and a short free-text one (one word of the review,
as a JSON string: 4-6 tokens). Each call of 32 rows runs under every recipe in turn
(:func:`timed_round`). Reported in one run, ``--rounds`` rounds, medians:
rows/s of each recipe and its share of llama.cpp's prefill limit for the same row tokens
(lm_limits.prefill_limit), answers equal to one row at a time's, and for shared steps
the milliseconds of a prompt decode and of a step decode, and step decodes a row.

    python bench/generation_recipes.py --rows 160 --rounds 3  # idle machine
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from lm_limits import MAPS as LIMIT_MAPS
from lm_limits import SHOTS, prefill_limit, reviews, row_tokens

from semql.executors.runtimes import cpu_backend, greedy, shared_steps
from semql.executors.runtimes.batch_generator import in_streams
from semql.executors.runtimes.batch_scorer import streams_of
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.grammar.types import OutputType, StrType
from semql.planner.physical.prompt_format import PromptBuilder

MAPS = {  # name: question, output type, the examples' answers (negative, positive)
    "int": LIMIT_MAPS["int"],
    "str": (
        "Which word of the review says most about it?",
        StrType(max_chars=60),
        ("plodding", "delight"),
    ),
}
CALL_ROWS = 32  # rows handed over a call, as the LM executor hands a map's rows


def one_row(rt, prompts, out_type) -> list[str]:
    return [rt.generate(p, out_type).text for p in prompts]


def shared(rt, prompts, out_type) -> list[str]:
    return [g.text for g in rt.generate_rows(prompts, out_type)]


def no_lookahead(rt, prompts, out_type) -> list[str]:
    """The engine's shared-steps loop with no row looking ahead (STEPS_DECODING 2)."""
    return _rows_of(rt, prompts, out_type, shared_steps._run)


class NarrowSteps:
    """The batched context's streams, each step decode cut to the rows then answering:
    the engine's filler items (a stream's first position after the head) are dropped
    and the outputs renumbered. Only for the independence check; without the output
    head (``tap`` None), so every token is chosen from the whole layer's logits."""

    def __init__(self, streams):
        self._streams, self._at = streams, None
        self.tap = None

    def __getattr__(self, name):
        return getattr(self._streams, name)

    def decode(self, items, hidden: bool = False) -> None:
        assert not hidden  # no tap: the loop never asks for the final norm
        head = len(self._streams.head)
        if len(items) == self._streams.slots and all(item[3] for item in items):
            keep = [k for k, item in enumerate(items) if item[1] != head]
            self._at = {k: n for n, k in enumerate(keep)}
            self._streams.decode([items[k] for k in keep])
        else:
            self._at = None
            self._streams.decode(items)

    def logits(self, i: int) -> np.ndarray:
        return self._streams.logits(self._at[i] if self._at is not None else i)


def narrow(rt, prompts, out_type) -> list[str]:
    """The engine's shared-steps loop on :class:`NarrowSteps`."""
    return _rows_of(rt, prompts, out_type, lambda s, rows: shared_steps._run(NarrowSteps(s), rows))


def _rows_of(rt, prompts, out_type, run) -> list[str]:
    """The answers of ``prompts`` through the shared-steps rows, none looking ahead."""
    with rt._lock:
        rt._fit_threads()
        budget = out_type.token_budget()

        def row(i, tokens, head_len, cached):
            decoder = greedy.GreedyDecoder(rt, out_type, budget)
            return shared_steps._Row(i, tokens, decoder, cached, None)

        return [g.text for g in in_streams(rt, prompts, out_type, row, run)]


@contextmanager
def decode_times(rt):
    """Yields a dict that collects the milliseconds of the batched context's prompt and
    step decodes (a step decode: one token with an output for every stream), under
    ``(recipe, "prompt" or "step")``; the recipe is the dict's ``"now"`` entry."""
    streams = streams_of(rt)
    decode, ms = streams.decode, defaultdict(list)

    def timed_decode(items, **how):  # how: hidden, full (batch_scorer.BatchScorer.decode)
        started = time.perf_counter()
        decode(items, **how)
        step = len(items) == streams.slots and all(item[3] for item in items)
        kind = "step" if step else "prompt"
        ms[(ms["now"], kind)].append(1000 * (time.perf_counter() - started))

    streams.decode = timed_decode
    try:
        yield ms
    finally:
        del streams.decode


def timed_round(recipes: dict, rt, prompts, out_type, r: int, ms) -> dict:
    """Each recipe's answers and rows/s over ``prompts``, handed over CALL_ROWS a call.
    Every call's rows run under each recipe in turn, the first one rotating from call to
    call and round to round: a slow spell of this VM lasts longer than a call, so it
    slows every recipe alike."""
    names = list(recipes)
    for name in names:  # grammar compiled, head in place
        ms["now"] = name
        recipes[name](rt, prompts[:8], out_type)
    texts, seconds = defaultdict(list), defaultdict(float)
    for n, a in enumerate(range(0, len(prompts), CALL_ROWS)):
        k = (n + r) % len(names)
        for name in names[k:] + names[:k]:
            ms["now"] = name
            started = time.perf_counter()
            texts[name] += recipes[name](rt, prompts[a : a + CALL_ROWS], out_type)
            seconds[name] += time.perf_counter() - started
    return {name: (texts[name], len(prompts) / seconds[name]) for name in names}


def map_prompts(rt, kind: str, texts: list[str]) -> tuple[OutputType, list]:
    question, out_type, answers = MAPS[kind]
    shots = [(text, answers[label]) for text, label in SHOTS]
    builder = PromptBuilder(rt.style, rt.format_chat)
    return out_type, [builder.build(question, out_type, ["reviewText"], [t], shots) for t in texts]


def measure(kind: str, rt, texts: list[str], rounds: int) -> dict:
    out_type, prompts = map_prompts(rt, kind, texts)
    per_row = row_tokens(rt, prompts)
    recipes = {
        "one row": one_row,
        "shared steps": shared,
        "shared steps, no lookahead": no_lookahead,
    }
    rates, shares, limits, answers = defaultdict(list), defaultdict(list), [], {}
    with decode_times(rt) as ms:
        for r in range(rounds):
            limit = prefill_limit(rt, prompts) / per_row
            limits.append(limit)
            for name, (got, rate) in timed_round(recipes, rt, prompts, out_type, r, ms).items():
                if name in answers and answers[name] != got:
                    raise SystemExit(f"{kind}, {name}: answers moved between rounds")
                answers[name] = got
                rates[name].append(rate)
                shares[name].append(rate / limit)
                print(f"{kind} round {r + 1}: {name} {rate:.2f} rows/s ({rate / limit:.0%})")
        ms.pop("now")
        steps = {k: float(np.median(v)) for k, v in ms.items()}
        runs = rounds * (len(prompts) + 8)  # each round warms every recipe up on 8 rows
        steps_a_row = {k[0]: len(v) / runs for k, v in ms.items() if k[1] == "step"}
    checks = {
        "fixed": independence(shared, rt, prompts, out_type),
        "as wide as needed": independence(narrow, rt, prompts, out_type),
    }
    base = answers["one row"]
    return {
        "row_tokens": per_row,
        "limit_rows_per_s": float(np.median(limits)),
        "recipes": {
            n: {
                "rows_per_s": float(np.median(rates[n])),
                "share": float(np.median(shares[n])),
                "same_as_one_row": sum(a == b for a, b in zip(answers[n], base, strict=True)),
            }
            for n in recipes
        },
        "prompt_decode_ms": steps[("shared steps", "prompt")],
        "step_decode_ms": steps[("shared steps", "step")],
        "step_decodes_per_row": steps_a_row,
        "independence": checks,
    }


def independence(fn, rt, prompts: list, out_type, n: int = 48) -> dict:
    """Rows whose every logits vector is the same bit for bit in their first ``n``-row
    order, shuffled, and (the first n/4) each alone."""
    n = min(n, len(prompts))
    prompts = prompts[:n]

    def traces(part: list) -> list[tuple]:
        with greedy.recording() as made:
            fn(rt, part, out_type)
        return [tuple(d.trace) for d in made]

    first = traces(prompts)
    order = list(range(n))
    random.Random(1).shuffle(order)
    shuffled = dict(zip(order, traces([prompts[i] for i in order]), strict=True))
    alone = [traces([prompts[i]])[0] == first[i] for i in range(n // 4)]
    return {
        "rows": n,
        "shuffled_equal": sum(shuffled[i] == first[i] for i in range(n)),
        "alone_rows": len(alone),
        "alone_equal": sum(alone),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--maps", default="int,str")
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    rt = LlamaRuntime(default_model_path(), n_threads=args.threads, batch_rows=1)
    texts = [t for t, _ in reviews(args.rows)]
    res = {
        "cpu": f"{cpu_backend.cpu_model()}, extra buffer types "
        f"{'on' if rt.backend.extra_bufts else 'off'}",
        "rows": len(texts),
        "threads": args.threads,
        "rounds": args.rounds,
        "maps": {k: measure(k, rt, texts, args.rounds) for k in args.maps.split(",")},
    }
    write(res, Path(args.out))


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"generation-recipes-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
    lines = [
        "# Generated answers: one row at a time against shared step decodes\n",
        f"`bench/generation_recipes.py`, {res['rows']} reviews outside SemBench's query "
        f"movies, bundled Gemma 3 270M, {res['threads']} threads, {res['cpu']}, "
        f"{res['rounds']} rounds, each call's rows under every recipe in turn (medians). "
        "Limit: llama.cpp's prefill of the same row tokens, 512 a decode "
        "(bench/lm_limits.py).\n",
        "| map | recipe | rows/s | share of the limit | answers as one row at a time |",
        "|---|---|---|---|---|",
    ]
    for kind, m in res["maps"].items():
        for name, r in m["recipes"].items():
            lines.append(
                f"| {kind} | {name} | {r['rows_per_s']:.2f} | {r['share']:.0%} | "
                f"{r['same_as_one_row']}/{res['rows']} |"
            )
    lines.append("")
    for kind, m in res["maps"].items():
        lines.append(
            f"- {kind}: limit {m['limit_rows_per_s']:.2f} rows/s ({m['row_tokens']:.1f} "
            f"tokens a row); shared steps: a prompt decode {m['prompt_decode_ms']:.1f} ms, a "
            f"step decode ({shared_steps.STEP_ROWS} streams and outputs) "
            f"{m['step_decode_ms']:.1f} ms; step decodes a row "
            + ", ".join(f"{n} {v:.2f}" for n, v in m["step_decodes_per_row"].items())
            + ". "
            "Rows whose every logits vector was equal bit for bit, shuffled / alone: "
            + "; ".join(
                f"{steps} steps {c['shuffled_equal']}/{c['rows']} / "
                f"{c['alone_equal']}/{c['alone_rows']}"
                for steps, c in m["independence"].items()
            )
            + "."
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
