"""Which functions TensorFlow traces during a run, in order: how a retrace is caught.

A ``tf.function`` pays on its first call for a trace: Python builds the graph (for the train
step, the model's forward pass, its gradients and the optimizer's update of every variable),
then Grappler optimises it. A second trace of the same function (a new input shape, such as a
short last batch, or a new Python value among its arguments) pays it all again. One run of the
demo traces each of its model functions once:

* Keras's train step and its evaluation step (each ``one_step_on_data`` inside
  ``multi_step_on_iterator``), at their first call in ``fit``;
* the BatchNorm re-estimation step (``mnv1.training.batchnorm``), at the first evaluation;
* with ``export.enabled``, the batch-1 function the LiteRT converter reads (``serve``,
  ``mnv1.export.convert``).

``tests/test_train_traces.py`` pins that sequence for a real run, so a change that makes any of
them trace again (per epoch, for a short validation batch, on a resume) fails there.

``TraceLog`` hears of every trace through TensorFlow's callback on each new concrete function
(no public API offers one; the list is the one ``tf.function`` itself calls).
"""

from __future__ import annotations

import re
from collections import Counter
from types import TracebackType
from typing import Any

from tensorflow.python.eager.polymorphic_function import transform  # no public equivalent

# A concrete function is named "__inference_<python name>_<uid>".
_CONCRETE_NAME = re.compile(r"^__inference_(?P<name>.+)_\d+$")

# What tf.distribute traces for every iterator it creates over a dataset (its multi-device
# iterator's functions, once per device): input plumbing, not the model's functions.
ITERATOR_FUNCTIONS = frozenset(
    {
        "_init_func",
        "_remote_init_func",
        "_next_func",
        "_remote_next_func",
        "_finalize_func",
        "_remote_finalize_func",
    }
)
# tf.data's own traces of the Python functions a pipeline maps over: "Dataset_map_<name>".
DATASET_PREFIX = "Dataset_"


def _input_side(name: str) -> bool:
    return name in ITERATOR_FUNCTIONS or name.startswith(DATASET_PREFIX)


def function_name(concrete_name: str | bytes) -> str:
    """The Python function's name of a concrete function (``__inference_step_123`` → ``step``)."""
    text = concrete_name.decode() if isinstance(concrete_name, bytes) else concrete_name
    found = _CONCRETE_NAME.match(text)
    return found.group("name") if found else text


class TraceLog:
    """The functions traced in this process while the log is open (``with TraceLog() as log``),
    by their Python names, in the order they were traced."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def _heard(self, concrete_function: Any) -> None:
        self.names.append(function_name(concrete_function.name))

    def __enter__(self) -> TraceLog:
        transform.CONCRETE_FUNCTION_CALLBACKS.append(self._heard)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        transform.CONCRETE_FUNCTION_CALLBACKS.remove(self._heard)

    def counts(self) -> Counter[str]:
        return Counter(self.names)

    def model_functions(self) -> list[str]:
        """The traces of functions that compute on the model (steps, export), in order: every
        trace but the input pipeline's (tf.data's map functions, tf.distribute's iterators)."""
        return [n for n in self.names if not _input_side(n)]

    def iterator_traces(self) -> int:
        """Distributed iterators created, once per device each (the traces of ``_init_func``):
        every one also traces the other five functions of ``ITERATOR_FUNCTIONS``."""
        return self.names.count("_init_func")
