"""Grammar guarantee under stress: N constrained generations per output type over real
SemBench reviews, each checked by an oracle written without the grammars
(semql/grammar/check.py). Invalid values must be 0.

``--decoder real`` uses the bundled Gemma 270M greedily (what users get);
``--decoder random`` the adversarial random-logits decoder of the CI test
(tests/test_grammar_stress.py), which walks far more of each grammar.

    python bench/grammar_stress.py --decoder real --rows 2000 --types bool,options,int
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from grammar_cases import CASES, RandomLogitsRuntime, reviews, stress  # noqa: E402

from semql.executors.runtimes.llama_runtime import LlamaRuntime  # noqa: E402
from semql.executors.runtimes.model_files import default_model_path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decoder", choices=("real", "random"), default="real")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--types", default="", help="comma-separated type names; all if empty")
    ap.add_argument("--out", default="bench/results/grammar")
    args = ap.parse_args()
    wanted = set(filter(None, args.types.split(",")))
    path = default_model_path()
    runtime = RandomLogitsRuntime(path) if args.decoder == "random" else LlamaRuntime(path)
    texts = reviews(args.rows)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = []
    for question, out_type in CASES:
        if wanted and out_type.name not in wanted:
            continue
        started = time.perf_counter()
        result = stress(runtime, out_type, question, texts)
        result["seconds"] = round(time.perf_counter() - started, 1)
        results.append(result)
        print(json.dumps(result), flush=True)
        # written after every type: a long run that is stopped keeps what it measured
        (folder / f"grammar-{args.decoder}-{stamp}.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"## Constrained generations, {args.decoder} decoder, {len(texts)} real reviews each,"
        f" {runtime.name}",
        "",
        "| type | generations | invalid | mean tokens | seconds |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['type']} | {r['generations']} | {r['invalid']} | {r['mean_tokens']} |"
        f" {r['seconds']} |"
        for r in results
    ]
    (folder / f"grammar-{args.decoder}-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    runtime.close()


if __name__ == "__main__":
    main()
