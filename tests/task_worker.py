"""A fresh interpreter that runs one pickled LM task (tests/test_lm_task.py).

    python tests/task_worker.py IN.pickle OUT.json

IN holds ``(task, values, prior)``; the bundled model is loaded here, with no result
cache, as a remote worker would hold it, and OUT gets the answers, confidences and the
calibration calls it made (none when it was sent the prior).
"""

from __future__ import annotations

import json
import pickle
import sys

from semql.executors.lm.lm_executor import LMExecutor
from semql.executors.lm.result_cache import ResultCache
from semql.executors.lm.stats import OperatorStats
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path


def main(source: str, target: str) -> None:
    with open(source, "rb") as f:
        task, values, prior = pickle.load(f)
    runtime = LlamaRuntime(default_model_path(), seed=0)
    try:
        confidences: list = []
        lm = LMExecutor(runtime, ResultCache(None))
        stats = OperatorStats("worker")
        answers = lm.run_task(task, values, stats, prior=prior, confidences=confidences)
    finally:
        runtime.close()
    with open(target, "w") as f:
        json.dump(
            {
                "answers": answers,
                "confidences": confidences,
                "calibration_calls": stats.calibration_calls,
            },
            f,
        )


if __name__ == "__main__":
    main(*sys.argv[1:3])
