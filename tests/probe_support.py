"""A cached probe with hand-made figures, so a plan's numbers (and the budget a target chooses)
are exact in tests and no probe process runs: the cache file ``mnv1.sweep.probe`` reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mnv1.config import RunConfig
from mnv1.sweep.probe import probe_key, shapes_of
from mnv1.timing import IMPORT, PHASES, TRACE, TRAIN, metric_name


def write_probe(
    probe_dir: Path,
    cells: Sequence[RunConfig],
    step_s: float = 1.0,
    startup_s: float = 12.0,
    zygote_start_s: float | None = None,
) -> Path:
    """Every cell ``step_s`` per step and ``startup_s`` of start-up, nothing else; keyed for
    ``cells`` on this host and with this process's ``CUDA_VISIBLE_DEVICES``. ``zygote_start_s``
    None: measured cold, so no once-per-launch zygote start.

    The probe's short run (1 epoch of 6 steps) spent ``startup_s`` importing, its first step
    in tracing (one step) and the other 5 at ``step_s``: its figures (``mnv1.sweep.figures``)
    are that start-up and that step, and nothing once per cell, per epoch or per batch."""
    shapes = list(shapes_of(cells))
    batch = cells[0].train.batch_size
    metrics = {metric_name(p): 0.0 for p in PHASES}
    metrics.update(
        {
            metric_name(IMPORT): startup_s,
            metric_name(TRACE): step_s,
            metric_name(TRAIN): 5 * step_s,
            "train_images_per_sec": batch / step_s,
        }
    )
    point = {
        "mult_adds": 1000,
        "batch": batch,
        "epochs": 1,
        "steps_per_epoch": 6,
        "val_examples": 0,
        "bn_batches": 0,
        "metrics": metrics,
        "ended_at": 0.0,
        "exit_s": 0.0,
    }
    key = probe_key(cells)
    probe_dir.mkdir(parents=True, exist_ok=True)
    path = probe_dir / f"{key}.json"
    path.write_text(
        json.dumps(
            {
                "host": "seeded",
                "key": key,
                "measured_at": "then",
                "points": [{**point, "shape": shapes[0]}],
                "mult_adds": dict.fromkeys(shapes, 1000),
                "zygote_start_s": zygote_start_s,
            }
        )
    )
    return path
