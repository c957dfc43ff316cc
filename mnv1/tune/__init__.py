"""Per-cell hyperparameter search with KerasTuner (``mnv1-tune``).

``space`` (search spaces keyed by config path), ``project`` (a search's identity and folder),
``tuner`` (the KerasTuner ``BaseTuner`` subclass and its oracles), ``trial`` (one trial as one
worker run), ``search`` (one cell's search and its MLflow parent), ``summary`` (trials.csv,
trials.png, the best trial), ``tuned_file`` (``tuned/<study>.yaml``), ``distributed`` (the chief
and its workers). Only ``tuner``, ``search`` and ``distributed`` import KerasTuner, which imports
TensorFlow: the command validates everything before it imports them.
"""
