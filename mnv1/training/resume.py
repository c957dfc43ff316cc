"""Resume a run from its newest good checkpoint, and say so when damage changed where it resumes.

Damage never blocks a run: a checkpoint whose file was cut short or altered (a full disk, a
failing volume) is passed over for the previous good one, and with none good left the run trains
from scratch, in the same MLflow run either way (``mnv1.training.checkpoint``). What was damaged
and where the run went on from is written where a user looks: two tags on the run and one line on
stderr (which the sweep passes through to its own output and keeps in the job's log).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from mnv1.runlog import RunLog
from mnv1.training.checkpoint import CheckpointState, CheckpointStore, Resume

# The damaged files, ``path: reason`` joined by "; " (the last attempt that found damage).
TAG_CHECKPOINT_DAMAGED = "mnv1.checkpoint.damaged"
# The checkpoint that attempt resumed from instead, or "none" (it trained from scratch).
TAG_CHECKPOINT_FALLBACK = "mnv1.checkpoint.fallback"
NO_CHECKPOINT = "none"
# MLflow keeps tag values up to 5,000 characters on older stores; one damaged file takes ~100.
TAG_LIMIT = 4000


def resume_checkpoint(
    store: CheckpointStore,
    model: Any,
    steps_per_epoch: int,
    run_log: RunLog,
    stream: TextIO | None = None,
) -> CheckpointState | None:
    """Load the newest good checkpoint into ``model``; report any damage met on the way."""
    found = store.resume(model, steps_per_epoch)
    if found.damaged:
        run_log.set_tags(damage_tags(found))
        print(damage_line(store, found), file=stream or sys.stderr, flush=True)
    return found.state


def damage_tags(found: Resume) -> dict[str, str]:
    text = "; ".join(str(d) for d in found.damaged)
    if len(text) > TAG_LIMIT:
        text = text[: TAG_LIMIT - 3] + "..."
    return {
        TAG_CHECKPOINT_DAMAGED: text,
        TAG_CHECKPOINT_FALLBACK: found.state.name if found.state else NO_CHECKPOINT,
    }


def damage_line(store: CheckpointStore, found: Resume) -> str:
    """One line: what was damaged, and where the run goes on from."""
    what = "; ".join(str(d) for d in found.damaged)
    if found.state is None:
        then = "no good checkpoint is left: training from scratch in the same run"
    else:
        then = (
            f"resuming from {found.state.name} (epoch {found.state.epochs_done}, step "
            f"{found.state.step_in_epoch}) in the same run"
        )
    return f"mnv1.training: damaged checkpoint in {store.directory.absolute()}: {what}; {then}"
