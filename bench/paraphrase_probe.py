"""Can the bundled models write other wordings of a user's question?

An ensemble over wordings of the same question is the one thing left that changes how a
call ranks its rows (bench/wording_cut_bound.py: no cut does), and the engine would have
to write those wordings itself. This asks each bundled model to reword questions, zero-
and few-shot, greedy, and writes what comes back next to a check a reader can repeat: an
output counts as a rewording only if it is a single question (ends with "?", one line)
that differs from the input. The questions are the wording bench's test wordings plus
three from other domains; the two few-shot pairs are invented and are none of them.

    python bench/paraphrase_probe.py --out bench/results/wording
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llama_cpp import Llama
from results_file import write_results

from semql.executors.runtimes.model_files import resolve_model_path

QUESTIONS = [
    "Read the following film critique carefully. Does the critic express an overall "
    "favourable opinion of the movie?",
    "Is the reviewer's verdict on this movie a thumbs up?",
    "Is the critic's overall opinion of the film favourable or unfavourable?",
    "Does the product description mention a warranty?",
    "Is the patient's complaint about the stomach?",
    "Does this email ask for a refund?",
]
SHOTS = [
    ("Is the weather report calling for rain?", "Does the forecast say it will rain?"),
    ("Does the recipe need an oven?", "Is an oven required to make this dish?"),
]
INSTRUCTION = "Rewrite the question in other words with the same meaning."


def completion_prompt(question: str, shots: list[tuple[str, str]]) -> str:
    parts = [INSTRUCTION]
    parts += [f"Question: {q}\nRewritten: {r}" for q, r in shots]
    parts.append(f"Question: {question}\nRewritten:")
    return "\n\n".join(parts)


def reword(llm: Llama, style: str, question: str, shots: list[tuple[str, str]]) -> str:
    if style == "chat":
        messages = [{"role": "system", "content": INSTRUCTION}]
        for q, r in shots:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": r}]
        messages.append({"role": "user", "content": question})
        out = llm.create_chat_completion(messages=messages, temperature=0, max_tokens=48)
        return out["choices"][0]["message"]["content"].strip()
    out = llm(completion_prompt(question, shots), temperature=0, max_tokens=48, stop=["\n"])
    return out["choices"][0]["text"].strip()


def is_rewording(question: str, text: str) -> bool:
    return text.endswith("?") and "\n" not in text and text.lower() != question.lower()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/wording"))
    args = parser.parse_args()
    models = {"gemma3-270m": "completion", "smollm2": "chat"}
    results = []
    for model, style in models.items():
        llm = Llama(str(resolve_model_path(model)), n_ctx=1024, n_threads=2, verbose=False)
        for shots_name, shots in (("zero-shot", []), ("two examples", SHOTS)):
            for question in QUESTIONS:
                text = reword(llm, style, question, shots)
                ok = is_rewording(question, text)
                results.append(
                    {
                        "model": model,
                        "shots": shots_name,
                        "question": question,
                        "output": text,
                        "rewording": ok,
                    }
                )
    ok = sum(r["rewording"] for r in results)
    lines = [
        "# Rewordings written by the bundled models\n",
        f"`bench/paraphrase_probe.py`, greedy: {ok} of {len(results)} outputs are one line "
        "ending in '?' that differs from the question (the check; whether the meaning is "
        "kept is for the reader).\n",
        "| model | shots | question | output | rewording |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        out = r["output"].replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {r['model']} | {r['shots']} | {r['question']} | {out} | {r['rewording']} |"
        )
    write_results(args.out, "paraphrase", {"outputs": results}, lines)


if __name__ == "__main__":
    main()
