"""MLflow's own system metrics (``system/cpu_utilization_percentage``, memory, disk, network;
GPU utilisation and memory where a GPU and ``nvidia-ml-py`` are present) on a cell's run.

The cell's worker process writes into a run the orchestrator created, so ``mlflow.start_run(
log_system_metrics=True)`` is not available: the worker starts MLflow's ``SystemMetricsMonitor``
on the run itself, for the life of the process. The monitor samples in a daemon thread every
``tracking.system_metrics_interval_s`` seconds and logs each sample at once
(``samples_before_logging=1``), so a short cell still logs a sample per interval it lasts; it
stops by itself when the run is no longer RUNNING, and at process exit (``atexit``) it is
stopped and its last batch flushed. A resumed run continues its steps (``resume_logging``).
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

from mnv1.config import ConfigError, rule

from .uri import connect_uri

KEY = "tracking.system_metrics_interval_s"

log = logging.getLogger(__name__)


def check_interval(seconds: Any) -> float:
    """The interval, checked by the config's rule table (the same rule the up-front validator
    reads); ConfigError naming the key and the value otherwise."""
    problem = rule(KEY).check(seconds)
    if problem is not None:
        raise ConfigError([problem])
    return float(seconds)


def start(uri: str, run_id: str, seconds: Any) -> Any | None:
    """Start sampling system metrics into run ``run_id``; None when ``seconds`` is 0 (off).

    Returns the monitor (``finish()`` stops it early); it is also stopped at process exit.
    """
    interval = check_interval(seconds)
    if interval == 0:
        return None
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    # The monitor logs "Started/Stopping/Successfully terminated ..." at INFO for every cell,
    # between the cell's own lines; its warnings and errors still show.
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
    monitor = SystemMetricsMonitor(
        run_id,
        sampling_interval=interval,
        samples_before_logging=1,
        resume_logging=True,
        tracking_uri=connect_uri(uri),  # a database password is put back only to connect
    )
    monitor.start()
    atexit.register(monitor.finish)
    return monitor
