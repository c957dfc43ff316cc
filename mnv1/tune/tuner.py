"""The KerasTuner side: oracles, the ``BaseTuner`` subclass, and the chief's oracle service.

Handles these KerasTuner 1.4 behaviours (read in its source):

* ``seed=0`` means "no seed" to ``Oracle`` (``seed or random.randint``): ``tune.seed`` is
  validated to be >= 1.
* The consecutive-failure limit raises ``RuntimeError`` inside ``Oracle.end_trial``, before the
  oracle is saved; in distributed mode that error reaches only the gRPC call of one worker and the
  chief waits for ever. Here the oracle records the stop instead and hands out no new trial
  (``STOPPED``), so every process ends normally and the command reports the failures.
* ``Oracle.end_trial`` saves ``oracle.json`` before it drops the trial from its ongoing trials;
  the file then lists the last trial as running and a relaunch runs it again. The oracles here
  save once more afterwards, and the chief saves when its service ends.
* A NaN objective makes KerasTuner count a trial INVALID; ``mnv1.tune.trial`` fails such a trial
  with its reason first.
* KerasTuner's chief (``oracle_chief.start_server``) binds with gRPC's default SO_REUSEPORT, so a
  second chief on the same port starts without an error, and once asked to stop it polls every
  20 s. ``serve_oracle`` binds exclusively and polls every second.
* Hyperband is not offered: it adds ``tuner/*`` values and resumes trials from weights only.
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent import futures
from typing import Any

import grpc
import keras_tuner
from keras_tuner.engine.base_tuner import BaseTuner
from keras_tuner.src.distribute import oracle_chief
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine import trial as trial_module

from mnv1.config import TuneConfig
from mnv1.tune.project import OBJECTIVE, Project
from mnv1.tune.space import Space
from mnv1.tune.trial import TrialFailed, TrialInterrupted, TrialRunner

POLL_SECONDS = 1.0


class TrialKilled(keras_tuner.errors.FatalError):
    """A trial's process was killed: KerasTuner stops without ending the trial, so the saved
    oracle still lists it as running and hands it out again after a relaunch."""


class _Mnv1Oracle:
    """Mixed into KerasTuner's oracles: stop on consecutive failures without raising, and save
    the oracle once a trial has really ended."""

    failure_stop: str | None = None

    def _check_consecutive_failures(self) -> None:
        try:
            super()._check_consecutive_failures()  # type: ignore[misc]
        except RuntimeError as exc:
            self.failure_stop = str(exc).splitlines()[0]

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if self.failure_stop is not None:
            return {"status": trial_module.TrialStatus.STOPPED, "values": None}
        return super().populate_space(trial_id)  # type: ignore[misc]

    @keras_tuner.synchronized
    def end_trial(self, trial: Any) -> None:
        super().end_trial(trial)  # type: ignore[misc]
        self.save()  # type: ignore[attr-defined]


class RandomOracle(_Mnv1Oracle, keras_tuner.oracles.RandomSearchOracle):
    pass


class BayesianOracle(_Mnv1Oracle, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


def hyperparameters(space: Space) -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    for d in space.dimensions:
        if d.kind == "float":
            hp.Float(d.key, d.min, d.max, step=d.step, sampling=d.sampling)
        elif d.kind == "int":
            hp.Int(d.key, int(d.min or 0), int(d.max or 0), step=d.step, sampling=d.sampling)
        elif d.kind == "choice":
            hp.Choice(d.key, list(d.values))
        else:
            hp.Boolean(d.key)
    return hp


def keep_off_the_gpus() -> None:
    """The tuner trains nothing, but KerasTuner imports Keras and so TensorFlow: hide the GPUs
    from this process's TensorFlow, so that nothing here can claim memory the trial workers
    need (TensorFlow takes a whole GPU's memory once it initialises it)."""
    import tensorflow as tf

    # Already initialised (a process that trained before): too late, and nothing to protect.
    with contextlib.suppress(RuntimeError, ValueError):
        tf.config.set_visible_devices([], "GPU")


def make_oracle(tune: TuneConfig, space: Space) -> _Mnv1Oracle:
    keep_off_the_gpus()
    cls = RandomOracle if tune.oracle == "random" else BayesianOracle
    return cls(
        objective=keras_tuner.Objective(OBJECTIVE, "max"),
        max_trials=tune.max_trials,
        seed=tune.seed,
        hyperparameters=hyperparameters(space),
        allow_new_entries=False,
        tune_new_entries=False,
        max_consecutive_failed_trials=tune.max_consecutive_failed_trials,
    )


class CellTuner(BaseTuner):
    """Searches one cell: each trial trains through ``TrialRunner`` (no hypermodel: the trial is
    a config, not a model built in this process)."""

    def __init__(self, oracle: Any, project: Project, runner: TrialRunner) -> None:
        tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
        reloads = (project.path / f"{tuner_id}.json").exists()
        # Never overwrite=True: a changed search is a new project (see mnv1.tune.project).
        super().__init__(
            oracle=oracle,
            directory=str(project.directory),
            project_name=project.key,
            overwrite=False,
        )
        # KerasTuner reloads the oracle only with this tuner id's own file; a project run before
        # under other ids (a chief, then a local relaunch) keeps its trials all the same.
        if not reloads and not self._is_worker() and (project.path / "oracle.json").exists():
            self.oracle.reload()
        self.runner = runner

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        values = dict(trial.hyperparameters.values)
        try:
            return {OBJECTIVE: self.runner.run(trial.trial_id, values)}
        except TrialFailed as exc:
            raise keras_tuner.errors.FailedTrialError(str(exc)) from exc
        except TrialInterrupted as exc:
            raise TrialKilled(str(exc)) from exc

    def on_search_begin(self) -> None:
        # Saved before the first trial, so a tuner killed during it reloads its oracle (KerasTuner
        # reloads a project only when the tuner's own file exists).
        self.save()

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        status = self.oracle.get_trial(trial.trial_id).status
        self.runner.set_status(trial.trial_id, str(status))

    def search(self, *args: Any, **kwargs: Any) -> None:
        if dist_utils.is_chief_oracle():
            self.save()
            serve_oracle(
                self.oracle,
                os.environ["KERASTUNER_ORACLE_IP"],
                int(os.environ["KERASTUNER_ORACLE_PORT"]),
            )
            # The last trial's end left it among the ongoing trials in oracle.json.
            self.oracle.save()
            return
        super().search(*args, **kwargs)

    def finished(self) -> bool:
        """Nothing left to run: every trial asked for has ended (or the oracle stopped)."""
        oracle = self.oracle
        pending = oracle.ongoing_trials or getattr(oracle, "_retry_queue", [])
        remaining = oracle.remaining_trials()
        return not pending and remaining is not None and remaining <= 0

    def save_model(self, trial_id: Any, model: Any, step: int = 0) -> None:
        """Trials train in their own processes; their models are not kept."""

    def load_model(self, trial: Any) -> None:
        """KerasTuner's ``get_best_models`` would load a trial's model: there is none to load."""
        raise RuntimeError(
            "mnv1-tune keeps no trial models (each trial trains in its own process); train the "
            "best recipe with mnv1-train tuned=tuned/<study>.yaml"
        )


def serve_oracle(oracle: Any, host: str, port: int) -> None:
    """Serve ``oracle`` to the workers over gRPC until the search is over (KerasTuner's own
    servicer, bound exclusively: a port another chief holds is an error, not a shared port)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=1), options=[("grpc.so_reuseport", 0)]
    )
    servicer = oracle_chief.OracleServicer(oracle)
    keras_tuner.src.protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        raise RuntimeError(f"the chief cannot bind {host}:{port}: {exc}") from exc
    if bound == 0:
        raise RuntimeError(f"the chief cannot bind {host}:{port}: the port is in use")
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(POLL_SECONDS)
    finally:
        server.stop(grace=2)
