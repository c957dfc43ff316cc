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
METRIC_TRAIN_IPS = "train_images_per_sec"
METRIC_EPOCH_SECONDS = "epoch_seconds"
PER_EPOCH_METRICS = ("loss", "top1", "val_loss", "val_top1", "val_top5")
