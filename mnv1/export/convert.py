"""Keras model to LiteRT flatbuffers: float32, and full-integer int8 by post-training quantization.

The model is traced at batch 1 (the deployment shape: one camera frame at a time) from a fresh
copy built outside any ``tf.distribute`` scope: a model trained under ``MirroredStrategy`` holds
mirrored variables, which the converter does not take. The int8 model quantizes every tensor,
inputs and outputs included (``inference_input_type=int8``), as a device without a float unit
runs it; a few training batches calibrate the activation ranges.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from mnv1.native_log import quiet_export


class ExportError(RuntimeError):
    """A model that LiteRT's converter refused; the message carries the converter's own."""


@dataclass(frozen=True)
class Flatbuffers:
    fp32: bytes
    int8: bytes


@dataclass(frozen=True)
class Traced:
    """The batch-1 function and the model copy it reads: the converter needs both alive (a
    function whose variables were collected fails with "referencing variables which have been
    deleted")."""

    function: tf.types.experimental.ConcreteFunction
    model: keras.Model


def _batch_one(model: keras.Model) -> Traced:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    spec = tf.TensorSpec([1, *model.input_shape[1:]], tf.float32, name="image")

    @tf.function(input_signature=[spec])
    def serve(image: tf.Tensor) -> tf.Tensor:
        return copy(image, training=False)

    return Traced(serve.get_concrete_function(), copy)


def _convert(
    traced: Traced,
    what: str,
    configure: Callable[[tf.lite.TFLiteConverter], None] | None = None,
) -> bytes:
    try:
        with quiet_export(), warnings.catch_warnings():
            # Without ``trackable_obj``: that path keeps the variables as resources
            # (READ_VARIABLE ops, which int8 calibration then fails on); this one freezes them
            # into constants (the converter's advice to pass it is dropped as noise).
            converter = tf.lite.TFLiteConverter.from_concrete_functions([traced.function])
            if configure is not None:
                configure(converter)
            # Said of every full-integer conversion: the input's quantization comes from the
            # representative dataset instead, as intended.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            return bytes(converter.convert())
    except Exception as err:  # the converter raises ConverterError and others; keep its words
        raise ExportError(f"LiteRT conversion to {what} failed: {err}") from err


def to_flatbuffers(model: keras.Model, representative: Iterable[np.ndarray]) -> Flatbuffers:
    """The float32 and int8 flatbuffers of ``model``; ``representative`` yields float32 image
    batches from the training split (each image is fed on its own, at batch 1)."""
    traced = _batch_one(model)
    images = [np.asarray(batch, np.float32) for batch in representative]
    if not images:
        raise ExportError("int8 calibration needs at least one representative batch; got none")

    def calibration() -> Iterator[list[np.ndarray]]:
        for batch in images:
            for image in batch:
                yield [image[None]]

    def int8(converter: tf.lite.TFLiteConverter) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8

    return Flatbuffers(fp32=_convert(traced, "float32"), int8=_convert(traced, "int8", int8))
