"""A cached probe with hand-made figures, so a plan's numbers (and the budget a target chooses)
are exact in tests and no probe process runs: the cache file ``mnv1.sweep.probe`` reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mnv1.config import RunConfig
from mnv1.sweep.probe import probe_key, shapes_of


def write_probe(
    probe_dir: Path, cells: Sequence[RunConfig], step_s: float = 1.0, startup_s: float = 12.0
) -> Path:
    """Every cell ``step_s`` per step and ``startup_s`` of start-up, nothing else; keyed for
    ``cells`` on this host and with this process's ``CUDA_VISIBLE_DEVICES``."""
    shapes = list(shapes_of(cells))
    point = {
        "mult_adds": 1000,
        "batch": cells[0].train.batch_size,
        "startup_s": startup_s,
        "tracking_import_s": 0.0,
        "trace_s": 0.0,
        "step_s": step_s,
        "eval_trace_s": 0.0,
        "eval_batch_s": 0.0,
        "checkpoint_s": 0.0,
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
            }
        )
    )
    return path
