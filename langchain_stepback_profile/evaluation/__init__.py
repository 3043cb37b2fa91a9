"""Evaluation harness: LaMP and multi-author writing tasks, methods, metrics and reports.

Example:
    ```python
    from langchain_stepback_profile.evaluation import run_eval

    report = run_eval("LaMP-5", "../shared/data/LaMP_5_like", limit=10, out_dir="eval-out/LaMP-5")
    report.rows["step-back"]["metrics"]["rouge-1"]
    ```
"""

from langchain_stepback_profile.evaluation.attribution import run_attribution
from langchain_stepback_profile.evaluation.datasets import EvalItem, load_items, load_lamp, load_psw
from langchain_stepback_profile.evaluation.methods import METHODS, MethodOutput, default_methods
from langchain_stepback_profile.evaluation.runner import run_eval
from langchain_stepback_profile.evaluation.scoring import EvalReport
from langchain_stepback_profile.evaluation.tasks import EVAL_TASKS, EvalTask, get_eval_task

__all__ = [
    "EVAL_TASKS",
    "METHODS",
    "EvalItem",
    "EvalReport",
    "EvalTask",
    "MethodOutput",
    "default_methods",
    "get_eval_task",
    "load_items",
    "load_lamp",
    "load_psw",
    "run_attribution",
    "run_eval",
]
