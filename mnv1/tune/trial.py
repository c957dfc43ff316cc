"""One trial: the cell's config with the trial's values, trained as one MLflow run.

The trial's run is found again by (search, trial id): a trial that KerasTuner hands out again
(after the tuner was killed, or to a worker restarted under its id) continues its own run from its
own checkpoint, keeping its id and values. Training goes through the sweep's own attempt
(``mnv1.sweep.orchestrate.run_attempt``): a fresh process per trial, whose exit is the run's
status (tensorflow/tensorflow#61314; a long search in one process also grows KerasTuner's memory,
keras-team/keras-tuner#873). The objective is the run's final ``val_top1``, measured on the
held-out tail of the training split (``data.holdout_percent``), never on the validation split.
No KerasTuner here: ``mnv1.tune.tuner`` maps the outcomes below onto KerasTuner's statuses.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

from mnv1 import interrupt
from mnv1.config import RunConfig, TuneConfig
from mnv1.run_key import identity_params, run_key
from mnv1.sweep.orchestrate import (
    STDERR_TAIL_ARTIFACT,
    TRACEBACK_ARTIFACT,
    Launch,
    run_attempt,
    worker_launch,
)
from mnv1.sweep.validate import problems
from mnv1.tracking import runs, schema
from mnv1.tracking import tune as tracking
from mnv1.tracking.claim import RESUME, SKIP, claim_run
from mnv1.tune.project import OBJECTIVE, Project, trial_config

log = logging.getLogger(__name__)

ENV_PARENT = "MNV1_TUNE_PARENT_RUN_ID"  # the search's parent run, as a launcher hands it down
ENV_TRIAL_ID = "MNV1_TUNE_TRIAL_ID"  # set for the trial's process: which trial it trains
TAG_TRIAL_REASON = "mnv1.trial_reason"


def _tuner_id() -> str:
    return os.environ.get("KERASTUNER_TUNER_ID", "tuner0")


class TrialFailed(Exception):
    """The trial ran and failed (or its values were rejected): the search goes on."""


class TrialInterrupted(Exception):
    """The trial's process was killed by a signal: stop, and resume the trial on relaunch."""


@dataclass
class TrialRunner:
    """Runs trials of one search into MLflow; ``launch`` trains (default: the worker)."""

    cell: RunConfig
    tune: TuneConfig
    project: Project
    uri: str
    experiment_id: str
    parent_run_id: str | None = None
    """None: found by the search's key when the first trial needs it (a remote worker)."""
    launch: Launch | None = None

    def parent(self) -> str:
        if self.parent_run_id is None:
            found = os.environ.get(ENV_PARENT) or None
            if found is None:
                key = {schema.TAG_TUNE_KEY: self.project.key}
                run = runs.newest(self.uri, self.experiment_id, schema.KIND_TUNE, key)
                if run is None:
                    raise RuntimeError(
                        f"no parent run for search {self.project.key} in experiment "
                        f"{self.project.experiment}: start the chief (mnv1-tune) first"
                    )
                found = run.run_id
            self.parent_run_id = found
        return self.parent_run_id

    def _trial_run(self, trial_id: str) -> runs.RunInfo | None:
        """The newest run of trial ``trial_id`` of this search."""
        key = {schema.TAG_TUNE_KEY: self.project.key, schema.TAG_TRIAL_ID: trial_id}
        return runs.newest(self.uri, self.experiment_id, schema.KIND_TRIAL, key)

    def run(self, trial_id: str, values: dict[str, Any]) -> float:
        """Train trial ``trial_id`` (or take its finished run's result); its ``val_top1``."""
        cfg = trial_config(self.cell, values, self.tune, self.project, trial_id)
        rejected = problems(cfg)
        if rejected:
            raise TrialFailed(f"trial {trial_id}: values rejected: {'; '.join(rejected)}")
        interrupt.phase("trial")
        run_id = self._open(cfg, trial_id, values)
        if run_id is None:
            existing = self._trial_run(trial_id)
            assert existing is not None
            return self._objective(existing.run_id, trial_id)
        launch = self.launch or worker_launch(
            {ENV_TRIAL_ID: trial_id}, warm=cfg.distribute.warm_workers
        )
        attempt = run_attempt(
            cfg, self.uri, run_id, self.project.trial_dir(trial_id), launch=launch
        )
        if attempt.status == runs.KILLED:
            raise TrialInterrupted(
                f"trial {trial_id} of {self.project.cell} was killed ({attempt.how}); run "
                f"{run_id} resumes from its checkpoint when the search is relaunched"
            )
        if attempt.status != runs.FINISHED:
            detail = attempt.orchestration_error or attempt.how
            raise TrialFailed(
                f"trial {trial_id} of {self.project.cell} FAILED ({detail}); see "
                f"{TRACEBACK_ARTIFACT} on run {run_id}\n{attempt.stderr_tail[-2000:]}"
            )
        return self._objective(run_id, trial_id)

    def _objective(self, run_id: str, trial_id: str) -> float:
        value = runs.get(self.uri, run_id).metrics.get(OBJECTIVE)
        if value is None or not math.isfinite(value):
            # KerasTuner would count a NaN objective as an invalid trial; say why here instead.
            reason = f"{OBJECTIVE} is {value}: no usable objective"
            runs.set_tags(self.uri, run_id, {TAG_TRIAL_REASON: reason})
            raise TrialFailed(f"trial {trial_id}: {reason} (run {run_id})")
        return float(value)

    def _open(self, cfg: RunConfig, trial_id: str, values: dict[str, Any]) -> str | None:
        """The run to train trial ``trial_id`` into (reopened or new); None when its run has
        already FINISHED (the oracle lost the result, e.g. a chief killed before saving)."""
        found = self._trial_run(trial_id)
        owner = runs.Owner.current()

        def owner_gone(run: runs.RunInfo) -> str | None:
            # The oracle hands a trial out again only when the process that ran it is gone (a
            # killed tuner, a restarted worker), on this host or another: its run is stale,
            # unless its owner is alive here and is not this process.
            alive = runs.owner_alive(run.tags) and run.tags.get(schema.TAG_PID) != str(owner.pid)
            return None if alive else f"trial {trial_id} was handed out again by the oracle"

        claim = claim_run(
            self.uri,
            found,
            owner_gone,
            owner=owner,
            archive=(TRACEBACK_ARTIFACT, STDERR_TAIL_ARTIFACT),
            tags={schema.TAG_TUNER_ID: _tuner_id()},
        )
        existing = claim.run
        if claim.action == SKIP and existing is not None:
            if existing.status == runs.FINISHED:
                log.info("trial %s: run %s already FINISHED", trial_id, existing.run_id)
                return None
            raise TrialFailed(
                f"trial {trial_id}: run {existing.run_id} is RUNNING in a live process "
                f"(pid {existing.tags.get(schema.TAG_PID)}): is this search running twice?"
            )
        if claim.action == RESUME and existing is not None:
            print(
                f"{self.project.cell}: trial {trial_id} resumes run {existing.run_id}", flush=True
            )
            return existing.run_id
        tags = {
            schema.TAG_TUNE_KEY: self.project.key,
            schema.TAG_TRIAL_ID: trial_id,
            schema.TAG_CELL: self.project.cell,
            schema.TAG_STUDY: cfg.study,
            schema.TAG_RUN_KEY: run_key(cfg),
            schema.TAG_VARIANT: cfg.model.variant,
            schema.TAG_TUNER_ID: _tuner_id(),
            **owner.tags(),
        }
        run_id = tracking.create_trial(
            self.uri,
            self.experiment_id,
            f"{self.project.cell}_trial{trial_id}",
            self.parent(),
            tags,
            values,
        )
        runs.log_params(self.uri, run_id, identity_params(cfg))
        return run_id

    def set_status(self, trial_id: str, status: str) -> None:
        """Record KerasTuner's verdict on the trial's run (COMPLETED, FAILED, INVALID)."""
        existing = self._trial_run(trial_id)
        if existing is not None:
            runs.set_tags(self.uri, existing.run_id, {schema.TAG_TRIAL_STATUS: status})
