"""Run and time LiteRT flatbuffers on this machine's CPU.

The interpreter is ``ai-edge-litert`` (LiteRT, the maintained runtime; TensorFlow's own
``tf.lite.Interpreter`` is deprecated). It applies the XNNPACK delegate to float32 and int8 models
by default, which is what a phone app gets.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import version

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from mnv1.native_log import quiet_export


def runtime_version() -> str:
    """``ai-edge-litert 2.3.0``: the interpreter that ran."""
    return f"ai-edge-litert {version('ai-edge-litert')}"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux) and its core count."""
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def all_threads() -> int:
    """Every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class Model:
    """One flatbuffer in an interpreter: ``predict`` takes float images in the training range
    and quantizes them itself when the model's input is int8."""

    def __init__(self, flatbuffer: bytes, threads: int = 1) -> None:
        with quiet_export():  # the delegate's INFO line on every start
            self.interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def _quantize(self, image: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return image.astype(np.float32)
        scale, zero = self.input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(image / scale + zero), info.min, info.max).astype(dtype)

    def scores(self, image: np.ndarray) -> np.ndarray:
        """The output for one image (H × W × 3), dequantized."""
        self.interpreter.set_tensor(self.input["index"], self._quantize(image[None]))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output["index"])[0]
        if self.output["dtype"] == np.float32:
            return out
        scale, zero = self.output["quantization"]
        return (out.astype(np.float32) - zero) * scale

    def predict(self, images: Iterable[np.ndarray]) -> np.ndarray:
        """Class ids, one image at a time (the model is traced at batch 1)."""
        return np.array([int(np.argmax(self.scores(image))) for image in images], np.int64)


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    runs: int


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in (0, 1]): a value that was measured."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class Stopwatch:
    """One flatbuffer ready to time: a fixed random input is set once, so each timed
    ``invoke`` is the model alone (the input copy is outside, as in LiteRT's benchmark tool)."""

    def __init__(self, flatbuffer: bytes, threads: int, warmup: int) -> None:
        self.model = Model(flatbuffer, threads)
        rng = np.random.default_rng(0)
        image = rng.uniform(-1, 1, self.model.input["shape"]).astype(np.float32)
        self.model.interpreter.set_tensor(self.model.input["index"], self.model._quantize(image))
        for _ in range(warmup):  # allocation, XNNPACK weight packing, caches
            self.model.interpreter.invoke()

    def runs(self, count: int) -> list[float]:
        """Milliseconds of ``count`` single-image runs."""
        out = []
        for _ in range(count):
            start = time.perf_counter()
            self.model.interpreter.invoke()
            out.append((time.perf_counter() - start) * 1000.0)
        return out


def summarise(runs: list[float]) -> Latency:
    return Latency(statistics.median(runs), percentile(runs, 0.9), len(runs))


def time_flatbuffer(flatbuffer: bytes, threads: int, warmup: int, repeats: int) -> Latency:
    """Single-image latency: ``warmup`` untimed runs, then the median and p90 of ``repeats``."""
    return summarise(Stopwatch(flatbuffer, threads, warmup).runs(repeats))
