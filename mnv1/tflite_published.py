"""Published LiteRT (TensorFlow Lite) latencies of the 16 MobileNetV1 variants, with their source.

The TensorFlow Lite "Hosted models" page lists, for every α ∈ {1, 0.75, 0.5, 0.25} and
ρ ∈ {224, 192, 160, 128}, the float model (2018_02_22 checkpoints) and the quantized model
(2018_08_02 checkpoints, quantization-aware training) with their latency on a Pixel 3 (Android 10),
CPU, 4 threads. Transcribed as printed from
``tensorflow/tensorflow: tensorflow/lite/g3doc/guide/hosted_models.md`` @ 0406598a ("Quantized
models" and "Floating point models" tables, column "CPU, 4 threads").

Other hardware than ours: the report and ``mnv1-bench latency`` compare the *shape* (the ranks of
the 16 cells and the slope of latency against mult-adds), never the milliseconds. Pure Python.
"""

from __future__ import annotations

SOURCE = (
    "TensorFlow Lite hosted models (tensorflow/tensorflow tensorflow/lite/g3doc/guide/"
    "hosted_models.md @ 0406598a): Pixel 3, Android 10, CPU, 4 threads"
)

# (α, ρ) -> (float32 ms, quantized ms), as printed.
PIXEL3_MS: dict[tuple[float, int], tuple[float, float]] = {
    (1.0, 224): (24.0, 13.0),
    (1.0, 192): (18.1, 9.9),
    (1.0, 160): (13.4, 7.3),
    (1.0, 128): (9.0, 4.8),
    (0.75, 224): (14.6, 8.5),
    (0.75, 192): (11.0, 6.4),
    (0.75, 160): (8.2, 4.7),
    (0.75, 128): (5.5, 3.1),
    (0.5, 224): (7.9, 4.7),
    (0.5, 192): (6.0, 3.6),
    (0.5, 160): (4.4, 2.6),
    (0.5, 128): (3.0, 1.7),
    (0.25, 224): (3.3, 2.3),
    (0.25, 192): (2.4, 1.8),
    (0.25, 160): (1.7, 1.3),
    (0.25, 128): (1.2, 0.8),
}


def published_ms(alpha: float, resolution: int, kind: str) -> float | None:
    """The published latency of a cell (``kind`` fp32 or int8), None outside the 16 cells."""
    row = PIXEL3_MS.get((float(alpha), int(resolution)))
    if row is None:
        return None
    return row[0] if kind == "fp32" else row[1]
