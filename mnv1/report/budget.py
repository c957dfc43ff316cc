"""The training budget a sweep's cells trained on, as the report states it.

A study with ``train.target_minutes`` (the demo) does not fix its budget: the plan chooses the
steps per epoch on each machine from a measured probe (``mnv1.sweep.plan.choose_steps``). Every
cell's run records the budget it trained on (tags ``mnv1.steps_per_epoch``, ``mnv1.total_steps``
and, when a target chose it, ``mnv1.target_minutes``), and the report says which, so accuracies
from two machines are never compared without their budgets.
"""

from __future__ import annotations

from collections.abc import Iterable

from mnv1.tracking.queries import CellRun
from mnv1.tracking.schema import TAG_STEPS_PER_EPOCH, TAG_TARGET_MINUTES, TAG_TOTAL_STEPS


def budget_text(runs: Iterable[CellRun]) -> str | None:
    """One sentence on the budget of the given cells' runs; None when none recorded one."""
    budgets = sorted(
        {
            (
                r.tags[TAG_STEPS_PER_EPOCH],
                r.tags.get(TAG_TOTAL_STEPS, "?"),
                r.tags.get(TAG_TARGET_MINUTES),
            )
            for r in runs
            if TAG_STEPS_PER_EPOCH in r.tags
        },
        key=lambda b: (len(b[0]), b[0]),
    )
    if not budgets:
        return None
    parts = []
    for per_epoch, total, target in budgets:
        text = f"{per_epoch} steps per epoch ({total} in all)"
        if target is not None:
            text += f", chosen by the plan for a {target}-minute target (train.target_minutes)"
        parts.append(text)
    if len(parts) == 1:
        return f"Training budget of every cell: {parts[0]}."
    return "Training budgets differ between cells: " + "; ".join(parts) + "."
