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

# The artifact a failed run carries: the worker writes it, the orchestrator archives it on resume.
TRACEBACK_ARTIFACT = "traceback.txt"

KIND_SWEEP = "sweep"
KIND_CELL = "cell"
KIND_BENCHMARK = "benchmark"

# Numeric metrics on every child run (paper convention unless named otherwise).
METRIC_ALPHA = "alpha"
METRIC_RESOLUTION = "resolution"
METRIC_MULT_ADDS = "mult_adds"
METRIC_PARAMS = "params"
METRIC_KERAS_PARAMS = "keras_params"
METRIC_VAL_TOP1 = "val_top1"
METRIC_VAL_TOP5 = "val_top5"
METRIC_TRAIN_IPS = "train_images_per_sec"
METRIC_EPOCH_SECONDS = "epoch_seconds"
PER_EPOCH_METRICS = ("loss", "top1", "val_loss", "val_top1", "val_top5")
