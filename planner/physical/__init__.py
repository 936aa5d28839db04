"""The physical plan: stages the engine runs, compiled from the logical plan.

Executors import from the planner only this package: the LM task (:mod:`.task`), the
stages (:mod:`.stages`), the compiled plan (:mod:`.compiler`'s ``Compiled``, with the
interface for run-time choices), the prompt format both sides share
(:mod:`.prompt_format`) and the model profile the cost of stages is priced in
(:mod:`.profile`). This module exports the plain types; the compiler is imported from
its module, since it reads the cost model, which itself reads these types.
"""

from .profile import DEFAULT_PROFILE, ModelProfile, work_seconds
from .stages import (
    ExitCheck,
    GroupSample,
    JoinStage,
    LMStage,
    ProxySpec,
    QAContext,
    QAStage,
    RankCheck,
    RankOrder,
    SampledCall,
    SampledUnit,
    ScopeStages,
    TopKStage,
)
from .task import LMTask, attach_tasks, calibration_of, lm_task

__all__ = [
    "DEFAULT_PROFILE",
    "ModelProfile",
    "work_seconds",
    "ExitCheck",
    "GroupSample",
    "JoinStage",
    "LMStage",
    "LMTask",
    "ProxySpec",
    "QAContext",
    "QAStage",
    "RankCheck",
    "RankOrder",
    "SampledCall",
    "SampledUnit",
    "ScopeStages",
    "TopKStage",
    "attach_tasks",
    "calibration_of",
    "lm_task",
]
