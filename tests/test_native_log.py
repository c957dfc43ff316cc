"""``mnv1.native_log``: which of TensorFlow's start-up lines are dropped and which still show."""

from __future__ import annotations

import os
import subprocess
import sys

from mnv1.native_log import export_noise, quiet_requested, start_up_noise

# What importing TensorFlow 2.21 on a CPU host without an NVIDIA driver writes (timestamps as
# absl prints them before it is initialised), plus lines that must stay.
CAPTURED = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796079332.745815   32372 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1796079332.754211   32372 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n",
    "I0000 00:00:1796079332.945501   32372 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.\n",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.\n",
    "W0000 00:00:1796079332.9 32372 x.cc:1] a warning record\n",
    "E0000 00:00:1796079347.419730   32372 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
    "E0000 00:00:1796079347.5 32372 other.cc:9] a real error\n",
    "/x/site-packages/keras/src/x.py:1: UserWarning: something the user should see\n",
]


def test_start_up_records_are_dropped_and_errors_and_warnings_kept() -> None:
    kept = [line for line, drop in zip(CAPTURED, start_up_noise(CAPTURED), strict=True) if not drop]
    assert kept == [CAPTURED[7], CAPTURED[8]]


def test_cuinit_failure_shows_where_a_driver_exists() -> None:
    lines = [CAPTURED[6]]  # no "Could not find cuda drivers": a GPU host whose driver failed
    assert start_up_noise(lines) == [False]


def test_quiet_only_when_tensorflow_logging_is_turned_down() -> None:
    assert quiet_requested({"TF_CPP_MIN_LOG_LEVEL": "2"})
    assert not quiet_requested({"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert not quiet_requested({})
    assert not quiet_requested({"TF_CPP_MIN_LOG_LEVEL": "x"})


# What one LiteRT export writes on file descriptor 2 (mnv1.export), plus lines that must stay.
EXPORT = [
    "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: "
    "INT8\n",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    "WARNING:absl:Please consider providing the trackable_obj argument in the "
    "from_concrete_functions.\n",
    "I0000 00:00:1796079332.745815   32372 quantize_model.cc:9] calibrating\n",
    "E0000 00:00:1796079347.5 32372 convert.cc:9] a real converter error\n",
    "error: 'tfl.conv_2d' op is neither a custom op nor a flex op\n",
]


def test_export_routine_lines_are_dropped_and_converter_errors_kept() -> None:
    kept = [line for line, drop in zip(EXPORT, export_noise(EXPORT), strict=True) if not drop]
    assert kept == EXPORT[4:]


def test_quiet_export_filters_what_native_code_writes_to_stderr() -> None:
    # A child process, since the filter swaps this process's file descriptor 2: what C++ code
    # writes there (os.write here) is filtered, an error line still shows.
    code = (
        "import os\n"
        "from mnv1.native_log import quiet_export\n"
        "with quiet_export():\n"
        f"    os.write(2, {EXPORT[1]!r}.encode())\n"
        f"    os.write(2, {EXPORT[5]!r}.encode())\n"
    )
    for level, shown in (("2", EXPORT[5]), ("0", EXPORT[1] + EXPORT[5])):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": level}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == shown
