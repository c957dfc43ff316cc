"""The MLflow UI on a sweep: where it is served, the URLs that open it on the α × ρ comparison.

MLflow 3.17's UI is a single-page app whose views live after the ``#``. What its URLs can carry
(read from the UI's own bundle, ``mlflow/server/js/build``):

* ``#/experiments/<id>/runs`` the runs table, with the search facets ``searchFilter``,
  ``orderByKey``, ``orderByAsc``, ``startTime``, ``lifecycleFilter``, ``modelVersionFilter`` and
  ``datasetsFilter`` as query parameters. The table nests child runs under a collapsed parent
  only while it is sorted by date and not filtered; sorted by a metric it lists every run flat.
* ``viewStateShareKey=<key>``: the UI state stored in the experiment tag
  ``mlflow.sharedViewState.<key>`` as JSON (what the UI's "Share" button writes). It carries the
  facets and the table's columns (``selectedColumns``, ``columnOrder``), but never which runs
  are expanded, and the UI ignores it when the URL also carries a facet.
* ``#/compare-runs?runs=[<run ids>]&experiments=[<ids>]`` MLflow's compare page for those runs
  (params and metrics side by side, scatter and contour plots over them).

So one URL per sweep opens its runs flat, sorted by ``val_top1``, with the columns that make the
paper's comparison (α, ρ, mult-adds, params, top-1); the sweep's parent run links its compare page
from its description (``mlflow.note.content``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import quote, urlencode

from . import schema
from .uri import is_http, redact

UI_HOST = "127.0.0.1"  # the project never serves anything beyond this machine by default
UI_PORT = 5000  # MLflow's own default
TAG_SHARED_VIEW = "mlflow.sharedViewState."
TAG_NOTE = "mlflow.note.content"  # a run's description in the UI, Markdown
# The columns of the sweep view, in order: the grid's coordinates, the paper's cost columns, the
# result, and the throughput; then the deploy-side columns (sizes, int8 top-1, batch-1 latency
# on one thread), empty for a sweep that did not export.
VIEW_METRICS = (
    schema.METRIC_ALPHA,
    schema.METRIC_RESOLUTION,
    schema.METRIC_MULT_ADDS,
    schema.METRIC_PARAMS,
    schema.METRIC_VAL_TOP1,
    schema.METRIC_VAL_TOP5,
    schema.METRIC_TRAIN_IPS,
    schema.METRIC_TFLITE_BYTES,
    schema.METRIC_TFLITE_INT8_BYTES,
    schema.METRIC_VAL_TOP1_INT8,
    schema.METRIC_LATENCY_FP32,
    schema.METRIC_LATENCY_INT8,
)


def ui_base(uri: str, port: int = UI_PORT) -> str:
    """Where the UI on store ``uri`` is served: a tracking server serves its own UI; a local store
    is served by ``mnv1-ui`` (``mlflow server`` on 127.0.0.1:``port``)."""
    if is_http(uri):
        return redact(uri).rstrip("/")
    return f"http://{UI_HOST}:{port}"


def _column(kind: str, key: str) -> str:
    """A column id as the UI writes it (``metrics.`val_top1```)."""
    return f"{kind}.`{key}`"


def sweep_filter(sweep_key: str) -> str:
    """The runs search filter for one sweep: its parent and every cell run it covers."""
    return f"tags.`{schema.TAG_SWEEP}` = '{sweep_key}'"


def view_state(sweep_key: str) -> dict[str, object]:
    """The UI state of the sweep view: its runs flat, best top-1 first, comparison columns."""
    columns = [_column("metrics", key) for key in VIEW_METRICS]
    return {
        "searchFilter": sweep_filter(sweep_key),
        "orderByKey": _column("metrics", schema.METRIC_VAL_TOP1),
        "orderByAsc": False,
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "modelVersionFilter": "All Runs",
        "datasetsFilter": [],
        "selectedColumns": columns,
        "columnOrder": columns,  # the paper's order, not the UI's alphabetical one
        # The chart view shows the first 10 runs unless told otherwise; a 16-cell grid needs all.
        "runsHiddenMode": "SHOW_ALL",
    }


def view_key(sweep_key: str) -> str:
    return f"mnv1-sweep-{sweep_key}"


def view_tag(sweep_key: str) -> tuple[str, str]:
    """The experiment tag (name, value) that stores the sweep's view for ``viewStateShareKey``."""
    return TAG_SHARED_VIEW + view_key(sweep_key), json.dumps(view_state(sweep_key))


def runs_route(experiment_id: str, sweep_key: str) -> str:
    """The UI route (after the ``#``) of one sweep's runs table, through its shared view.

    The URL carries the share key alone: the UI ignores a shared view when the URL also has any
    search facet (it would not know which one wins).
    """
    return (
        f"/experiments/{experiment_id}/runs?{urlencode({'viewStateShareKey': view_key(sweep_key)})}"
    )


def runs_url(uri: str, experiment_id: str, sweep_key: str, port: int = UI_PORT) -> str:
    """The runs table of one sweep, as a full URL to open in a browser."""
    return f"{ui_base(uri, port)}/#{runs_route(experiment_id, sweep_key)}"


def compare_fragment(experiment_id: str, run_ids: Sequence[str]) -> str:
    """The UI route of MLflow's compare-runs page for these runs (after the ``#``)."""
    runs = quote(json.dumps(list(run_ids), separators=(",", ":")), safe="")
    experiments = quote(json.dumps([experiment_id], separators=(",", ":")), safe="")
    return f"/compare-runs?runs={runs}&experiments={experiments}"


def sweep_note(study: str, experiment_id: str, sweep_key: str, cell_run_ids: Sequence[str]) -> str:
    """The parent run's description: links (relative to the UI serving it, so they hold behind
    any host and port) to the sweep's runs table and its compare page."""
    compare = compare_fragment(experiment_id, cell_run_ids)
    lines = [
        f"Sweep `{sweep_key}` of study `{study}`: {len(cell_run_ids)} cells (α × ρ).",
        "",
        f"- [Compare the {len(cell_run_ids)} cells](#{compare})"
        " (params and metrics side by side; scatter plot of `val_top1` against `mult_adds`)",
        f"- [All runs of this sweep, best top-1 first](#{runs_route(experiment_id, sweep_key)})",
    ]
    return "\n".join(lines) + "\n"


def server_command(uri: str, host: str = UI_HOST, port: int = UI_PORT) -> list[str]:
    """``mlflow server`` serving the UI (and the REST API) on local store ``uri``.

    One worker process: the UI of a local store has one user, and each of MLflow's default four
    workers takes seconds of CPU to start.
    """
    return [
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def server_env(environ: dict[str, str]) -> dict[str, str]:
    """The environment for that server.

    MLflow 3.17's server also starts a job runner and ``huey`` consumer processes for its GenAI
    features (LLM judges, trace rollups), which outlive a killed server; a training store has no
    such jobs, so they are off unless the user turned them on.
    """
    env = dict(environ)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


def publish_sweep_view(
    uri: str,
    experiment_id: str,
    sweep_key: str,
    study: str,
    parent_run_id: str,
    cell_run_ids: Sequence[str],
) -> str:
    """Store the sweep's view on its experiment and the links on its parent run; returns the URL
    of its runs table."""
    from .runs import set_tags
    from .store import client

    name, value = view_tag(sweep_key)
    client(uri).set_experiment_tag(experiment_id, name, value)
    set_tags(
        uri, parent_run_id, {TAG_NOTE: sweep_note(study, experiment_id, sweep_key, cell_run_ids)}
    )
    return runs_url(uri, experiment_id, sweep_key)
