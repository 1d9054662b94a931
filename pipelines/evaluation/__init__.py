"""Model evaluation (through the engine's harness), the promotion gate and version manifests.

`evaluate_model` is what the engine's `voiceflow evaluate --model M` calls; it is re-exported
lazily so `import pipelines.evaluation` stays cheap for the CLI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate_model", "gate", "run_model_evaluation"]


def __getattr__(name: str) -> Any:
    if name == "evaluate_model":
        from pipelines.evaluation.harness import evaluate_model

        return evaluate_model
    if name == "gate":
        from pipelines.evaluation.gate import gate

        return gate
    if name == "run_model_evaluation":
        from pipelines.evaluation.command import run_model_evaluation

        return run_model_evaluation
    raise AttributeError(name)
