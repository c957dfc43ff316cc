"""Names in the MLflow run schema that the sweep writes and the report reads.

One place for them, so a renamed tag cannot silently split writers from readers.
"""

# Tags on every child run.
TAG_RUN_KEY = "mnv1.run_key"
TAG_SWEEP = "mnv1.sweep"  # the sweep key of the parent run this cell belongs to
TAG_VARIANT = "mnv1.variant"
TAG_REPLICAS = "mnv1.replicas"
TAG_STRATEGY = "mnv1.strategy"
TAG_RESUMED_FROM_EPOCH = "mnv1.resumed_from_epoch"
TAG_STUDY = "mnv1.study"
TAG_KIND = "mnv1.kind"  # "sweep" on parent runs, "cell" on child runs, "benchmark" on benchmarks
TAG_HOST = "mnv1.host"
TAG_PID = "mnv1.pid"  # the process that owns a RUNNING run, to reconcile runs left by dead ones
# The cell a run answers (``mnv1_a0.5_r160``): with seeds swept, several runs share one cell, each
# with its own run key, and the report groups them by this tag.
TAG_CELL = "mnv1.cell"
TAG_SEED = "mnv1.seed"  # train.seed of the run, so a cell's runs read apart in the UI

# What a run's reproducibility covers (set by mnv1.training.run): rerunning a config with the same
# values of all four on the same machine gives the same numbers; another device kind need not.
TAG_OP_DETERMINISM = "mnv1.repro.op_determinism"  # "on" or "off" (train.deterministic)
TAG_DATA_ORDER_SEED = "mnv1.repro.data_order_seed"  # seeds the shuffle and augmentation draws
TAG_INIT_SEED = "mnv1.repro.init_seed"  # seeds Python, NumPy, TF and Keras (weight initialisation)
TAG_DEVICE_KIND = "mnv1.repro.device_kind"  # "CPU: <model name>" or "GPU: <device name>"

# The dataset a run trained on (mnv1.data.types.DataFingerprint.as_tags), also on sweep parents.
TAG_DATA_NAME = "mnv1.data.name"
TAG_DATA_VERSION = "mnv1.data.version"
TAG_DATA_NUM_CLASSES = "mnv1.data.num_classes"
TAG_DATA_SPLIT_PREFIX = "mnv1.data.split."  # + split name: its number of examples
# The training budget of a run (set by mnv1.training.run).
TAG_TOTAL_STEPS = "mnv1.total_steps"
TAG_TARGET_MINUTES = "mnv1.target_minutes"  # the wall-time target a budget was chosen for
TAG_STEPS_PER_EPOCH = "mnv1.steps_per_epoch"
TAG_PER_REPLICA_BATCH = "mnv1.per_replica_batch"

# The artifact a failed run carries: the worker writes it, the orchestrator archives it on resume.
TRACEBACK_ARTIFACT = "traceback.txt"

KIND_SWEEP = "sweep"
KIND_CELL = "cell"
KIND_BENCHMARK = "benchmark"
KIND_TUNE = "tune"  # the parent run of one cell's search (mnv1-tune)
KIND_TRIAL = "trial"  # one trial of a search, nested under its parent

# Tags of tuning runs (experiment "<study>_tune") and of cells trained with a tuned recipe.
TAG_TUNE_KEY = "mnv1.tune_key"  # a search's identity: its project name, "<cell>-<hash>"
TAG_CELL = "mnv1.cell"  # the cell's run name, "mnv1_a0.25_r128"
TAG_TRIAL_ID = "mnv1.trial_id"  # KerasTuner's trial id
TAG_TRIAL_STATUS = "mnv1.trial_status"  # KerasTuner's verdict: COMPLETED, FAILED, INVALID
TAG_TUNER_ID = "mnv1.tuner_id"  # the KerasTuner tuner (tuner0, worker1) that ran the trial last
TAG_TRIAL_VALUES = "mnv1.trial_values"  # the trial's values as JSON (also in the params)
TAG_BEST_TRIAL = "mnv1.best_trial_id"
TAG_BEST_RUN = "mnv1.best_run_id"
TAG_TUNED = "mnv1.tuned"  # on a cell run: "true" when a tuned file set its recipe
TAG_TUNED_FROM = "mnv1.tuned_from"  # on such a cell run: the run id of the trial it came from
METRIC_BEST_VAL_TOP1 = "best_val_top1"

# Numeric metrics on every child run (paper convention unless named otherwise).
METRIC_ALPHA = "alpha"
METRIC_RESOLUTION = "resolution"
METRIC_MULT_ADDS = "mult_adds"
METRIC_PARAMS = "params"
METRIC_KERAS_PARAMS = "keras_params"
METRIC_VAL_TOP1 = "val_top1"
METRIC_VAL_TOP5 = "val_top5"
METRIC_VAL_EXAMPLES = "val_examples"  # validation images the final top-1 was measured on
METRIC_TRAIN_IPS = "train_images_per_sec"
METRIC_EPOCH_SECONDS = "epoch_seconds"
PER_EPOCH_METRICS = ("loss", "top1", "val_loss", "val_top1", "val_top5")

# The deploy-side trade-off (mnv1.export.cell), logged when ``export.enabled``.
METRIC_TFLITE_BYTES = "tflite_bytes"  # the float32 LiteRT flatbuffer
METRIC_TFLITE_INT8_BYTES = "tflite_int8_bytes"  # the full-integer int8 flatbuffer
METRIC_VAL_TOP1_INT8 = "val_top1_int8"  # the int8 flatbuffer on val_top1's images
METRIC_INT8_TOP1_DROP = "int8_top1_drop"  # val_top1 - val_top1_int8
METRIC_EXPORT_SECONDS = "export_seconds"  # conversion, int8 evaluation and timing together
TAG_EXPORT_CPU = "mnv1.export.cpu"  # the CPU the latencies were measured on
TAG_EXPORT_RUNTIME = "mnv1.export.runtime"  # the interpreter and its version
TAG_EXPORT_THREADS = "mnv1.export.threads"  # the thread counts timed, "1,2"
ARTIFACT_TFLITE_FP32 = "tflite/model_fp32.tflite"
ARTIFACT_TFLITE_INT8 = "tflite/model_int8.tflite"
LATENCY_KINDS = ("fp32", "int8")


def latency_metric(kind: str, threads: int, p90: bool = False) -> str:
    """``latency_ms_fp32_1t`` (median) or ``latency_ms_fp32_p90_1t``: batch-1 milliseconds."""
    return f"latency_ms_{kind}{'_p90' if p90 else ''}_{threads}t"


# The single-thread medians: comparable between machines of any core count.
METRIC_LATENCY_FP32 = latency_metric("fp32", 1)
METRIC_LATENCY_INT8 = latency_metric("int8", 1)
