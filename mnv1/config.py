"""The typed run configuration: plain dataclasses, the one schema every layer shares.

Hydra registers these classes in its ConfigStore at the CLI boundary (``mnv1/cli``) and converts
the composed config to them once with ``OmegaConf.to_object``; below the CLI only these
dataclasses travel, so nothing else needs to know Hydra or OmegaConf exists.

Values here are the defaults a user gets without any YAML; ``conf/`` restates the important ones
with a reason beside each.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

# The grid of the paper's Figures 4 and 5.
PAPER_ALPHAS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
PAPER_RESOLUTIONS: tuple[int, ...] = (224, 192, 160, 128)

# Each set of choices is written once, as a Literal (for type checkers and readers) whose values
# the rule table below uses. The dataclass fields themselves stay ``str``: OmegaConf's structured
# configs accept Enums but not Literal types.
Variant = Literal["separable", "full_conv", "shallow"]
Activation = Literal["relu6", "relu"]
Strategy = Literal["auto", "mirrored", "one_device"]
Optimizer = Literal["rmsprop", "sgd"]
Schedule = Literal["cosine", "exponential", "constant"]
Precision = Literal["float32", "mixed_float16", "mixed_bfloat16"]
Jit = Literal["auto", "true", "false"]
Augmentation = Literal["standard", "light", "none"]
DataSource = Literal["synthetic", "tfds", "folder"]

VARIANTS: tuple[str, ...] = get_args(Variant)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
STRATEGIES: tuple[str, ...] = get_args(Strategy)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SCHEDULES: tuple[str, ...] = get_args(Schedule)
PRECISIONS: tuple[str, ...] = get_args(Precision)
JIT_CHOICES: tuple[str, ...] = get_args(Jit)
AUGMENTATIONS: tuple[str, ...] = get_args(Augmentation)
DATA_SOURCES: tuple[str, ...] = get_args(DataSource)

# The network's own limits (mnv1.model builds nothing outside them): five stride-2 layers need
# an input of at least 32 pixels, and α < 1/32 leaves the first layer (32·α channels) with none.
MIN_RESOLUTION = 32
MIN_ALPHA = 1 / 32
# The embedded synthetic dataset draws each class as a distinct shape × texture pair:
# 5 shapes × 5 textures in mnv1.data.synthetic_images.
SYNTHETIC_MAX_CLASSES = 25


@dataclass
class ModelConfig:
    alpha: float = 1.0
    """Width multiplier α: every layer gets ``int(channels × α)`` channels."""
    resolution: int = 224
    """ρ as the input size in pixels (the paper's ρ is this size over 224)."""
    variant: str = "separable"
    dropout: float = 1e-3
    activation: str = "relu6"
    sync_bn: bool = False
    """Synchronise BatchNorm statistics across replicas (otherwise each replica keeps its own)."""
    bn_momentum: float | None = None
    """None ties the BatchNorm momentum to the step budget (see ``mnv1.training.run``)."""


@dataclass
class SyntheticConfig:
    train_size: int = 5000
    val_size: int = 1000
    num_classes: int = 10
    image_size: int = 256
    seed: int = 0


@dataclass
class DataConfig:
    source: str = "synthetic"
    """``synthetic`` (embedded TFDS builder), ``tfds`` (any TFDS dataset by name) or ``folder``."""
    name: str = "mnv1_synthetic"
    data_dir: str = "~/.cache/mnv1/tensorflow_datasets"
    manual_dir: str | None = None
    path: str | None = None
    """Root of a local image folder (``source=folder``)."""
    download: bool = False
    """Allow TFDS to download; off by default: offline, a download retries for minutes."""
    train_split: str = "train"
    val_split: str = "validation"
    val_fraction: float = 0.1
    """Share held out for validation when a source has no validation split."""
    augment: str = "standard"
    cache: bool = True
    """Cache decoded images in memory (datasets that fit)."""
    skip_bad_images: bool = False
    max_val_examples: int | None = None
    """Evaluate on the first N validation examples only (short demo budgets)."""
    holdout_percent: int | None = None
    """Train on the first (100 - N)% of the training split and validate on its last N% instead of
    the validation split: how ``mnv1-tune`` scores a trial without ever looking at the split the
    report and the paper tables are measured on. None: the validation split."""
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class TrainConfig:
    epochs: int = 1
    steps_per_epoch: int | None = None
    """None: one full pass over the training split per epoch (or, with ``target_minutes``, the
    budget the plan chooses)."""
    target_minutes: float | None = None
    """A sweep's wall-time target: while ``steps_per_epoch`` is null, ``mnv1-train -m`` chooses
    it from a measured probe so the plan fits (``mnv1.sweep.plan.choose_steps``). Per cell of the
    grid, not per run: each seed of a cell trains the budget one seed would (N seeds, N × the
    target), and ``mnv1-tune``'s trials train it too."""
    batch_size: int = 32
    """The global batch, split evenly across replicas."""
    seed: int = 0
    deterministic: bool = False
    optimizer: str = "rmsprop"
    learning_rate: float = 0.045
    """Learning rate at ``lr_reference_batch``; scaled linearly with the global batch."""
    lr_reference_batch: int = 96
    warmup_epochs: float = 0.0
    schedule: str = "cosine"
    lr_decay_rate: float = 0.98
    """Per-epoch decay factor for ``schedule=exponential`` (TF-slim's MobileNet recipe: 0.98)."""
    momentum: float = 0.9
    rmsprop_rho: float = 0.9
    rmsprop_epsilon: float = 1.0
    label_smoothing: float = 0.1
    weight_decay: float = 4e-5
    depthwise_weight_decay: float = 0.0
    precision: str = "float32"
    jit_compile: str = "auto"
    """``auto`` (XLA on GPU only: it made CPU training 4x slower here), ``true`` or ``false``."""
    bn_recalibration_batches: int = 20
    """Training batches used to re-estimate BatchNorm statistics before each evaluation (0: off)."""
    checkpoint_dir: str = ".mnv1/checkpoints"
    checkpoint_every_steps: int | None = None
    keep_checkpoints: int = 2
    """Checkpoints kept per run (older ones are deleted): at least two, so a damaged newest one
    has one to fall back to (``mnv1.training.checkpoint``)."""


@dataclass
class DistributeConfig:
    strategy: str = "auto"
    devices: list[str] | None = None
    cpu_replicas: int | None = None
    """Split the CPU into N logical devices so MirroredStrategy has N replicas without a GPU."""
    gpus_per_run: int | None = None
    intra_op_threads: int | None = None
    """Threads inside one op (TensorFlow's default, None, uses every core)."""
    inter_op_threads: int | None = None
    """Ops run concurrently (None: TensorFlow's default). Both are set by
    ``mnv1.training.bootstrap``."""
    warm_workers: bool = True
    """Fork the run's worker process from a warm zygote that has already imported Python,
    TensorFlow, Keras and MLflow (``mnv1.sweep.warm``); false: start a fresh interpreter per run
    (``python -m mnv1.training.worker``). Either way each run has a process of its own."""


@dataclass
class TrackingConfig:
    uri: str | None = None
    """None: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    experiment: str = "mnv1"
    rerun: bool = False
    log_model: bool = True
    report_dir: str | None = None
    """Where a sweep writes its report when it ends; None: ``reports/<experiment>``."""
    report: bool = True
    """Build the paper report at the end of every sweep (also logged on the parent run)."""
    system_metrics_interval_s: float = 10.0
    """Seconds between samples of MLflow's system metrics (CPU, memory, disk, network, GPU) on
    each cell's run; 0 turns them off."""


@dataclass
class ExportConfig:
    """The deploy-side trade-off of a cell (``mnv1.export``): after training, the model is
    converted to LiteRT flatbuffers (float32 and full-integer int8), the int8 model is evaluated
    on the validation images, and both are timed at batch 1 on this machine's CPU."""

    enabled: bool = False
    representative_batches: int = 4
    """Training batches that calibrate the int8 ranges (post-training quantization)."""
    threads: int | None = None
    """The interpreter thread count timed beside 1 thread; None: every core of this machine."""
    warmup: int = 5
    """Untimed runs before timing (first runs pay allocation and XNNPACK packing)."""
    repeats: int = 50
    """Timed single-image runs per flatbuffer and thread count (median and p90 over them)."""


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distribute: DistributeConfig = field(default_factory=DistributeConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    study: str = "default"
    """Name of the study (``experiments/<name>.yaml``) this run belongs to."""
    seeds: int = 1
    """Seeds per cell of a sweep: ``seeds: 3`` in a study makes ``mnv1-train -m`` sweep
    ``train.seed=range(3)`` too, unless the command line sweeps or sets ``train.seed`` itself.
    A single run ignores it; not part of the run key (each run's own ``train.seed`` is)."""
    tuned: str | None = None
    """A file written by ``mnv1-tune`` (``tuned/<study>.yaml``): each cell's best overrides are
    applied to it before validation. The values enter the run key; this path does not."""


ORACLES: tuple[str, ...] = ("random", "bayesian")


@dataclass
class TuneConfig:
    """Settings of ``mnv1-tune`` (the ``tune`` group, ``conf/tune/default.yaml``).

    Kept out of ``RunConfig`` on purpose: a training run never reads them, and as part of the run
    config they would be logged as params of every run and would have to be kept out of every run
    key. Only the tune command composes them, through ``TuneRunConfig``.
    """

    cells: list[str] | None = None
    """Run names of the study's cells to tune (``mnv1_a0.25_r128``); None: every cell."""
    max_trials: int = 10
    oracle: str = "random"
    space: str = "default"
    """A search space: a name in ``conf/tune/space/`` or a path to a YAML file."""
    seed: int = 1
    """The oracle's seed; >= 1 (KerasTuner takes 0 for "no seed" and draws one at random)."""
    workers: int = 0
    """0: trials run one after another in this process's tuner; K: KerasTuner's distributed mode,
    a chief serving the oracle over gRPC and K worker processes."""
    host: str = "127.0.0.1"
    """Address the chief's oracle service binds to (and workers connect to)."""
    port: int = 0
    """The chief's port; 0 picks a free one."""
    dir: str = ".mnv1/tune"
    """Projects go to ``<dir>/<study>/<cell>-<hash>``."""
    tuned_file: str | None = None
    """Where the best overrides are written; None: ``tuned/<study>.yaml``."""
    holdout_percent: int = 10
    """The share of the training split that scores a trial (``data.holdout_percent``)."""
    max_consecutive_failed_trials: int = 3
    """This many failed trials in a row stop a cell's search (and the command exits non-zero)."""


@dataclass
class TuneRunConfig(RunConfig):
    """The config ``mnv1-tune`` composes: the run config plus the ``tune`` section."""

    tune: TuneConfig = field(default_factory=TuneConfig)

    def run_config(self) -> RunConfig:
        """The run config alone, as every trial and cell sees it."""
        return RunConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(RunConfig)})


# ------------------------------------------------------------------------------------------------
# The rule table: every configurable key's type, allowed values and bounds, declared once.
#
# ``problems`` (below) applies it. The up-front validator (mnv1.sweep.validate) runs it over every
# cell of a grid before anything starts; the run-time checks (mnv1.training.recipe,
# mnv1.model, mnv1.training.bootstrap, mnv1.training.strategy, mnv1.data.check) run the same rules
# over their own section, so a value either fails before the sweep or never. Only what depends on
# the host (visible devices, the real replica count) is checked at run time alone.

Kind = Literal["int", "number", "choice", "bool", "text", "devices"]

# A device name as distribute.devices takes it: CPU:N or GPU:N, optionally prefixed as
# TensorFlow prints it (/device:GPU:0, /job:localhost/replica:0/task:0/device:CPU:0).
DEVICE_NAME = re.compile(r"^(?:.*/)?(?:device:)?(cpu|gpu):(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    """One reason a config must not run: the key, the value received and what is allowed."""

    key: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        return f"{self.key}={self.value!r}: {self.allowed}"


class ConfigError(ValueError):
    """A configuration that must not run; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str | Problem]) -> None:
        self.problems = [str(p) for p in problems]
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


def _is_integer(value: Any) -> bool:
    # numbers.Integral: NumPy integers from a grid pass too; bool is an int to Python, not here.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _text(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


@dataclass(frozen=True)
class Rule:
    """What one key accepts.

    ``int`` and ``number`` (finite, int or float) take bounds: ``low``/``high``, each closed
    unless ``low_open``/``high_open``; ``low_key``/``high_key`` make another key's value the
    bound (``train.warmup_epochs < train.epochs``) whenever that value is itself valid.
    ``choice`` takes one of ``choices`` (compared in lower case when ``casefold``); ``bool`` true
    or false; ``text`` a non-empty string; ``devices`` a non-empty list of device names.
    ``optional`` also accepts None (null). ``doc`` says why, and follows the bounds in messages.
    """

    key: str
    kind: Kind
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    casefold: bool = False
    low_key: str | None = None
    high_key: str | None = None
    doc: str = ""

    def check(self, value: Any, low_ref: Any = None, high_ref: Any = None) -> Problem | None:
        """The problem with ``value``, or None; ``*_ref`` are the values of ``low_key``/
        ``high_key`` when those are valid (else the fixed bound, if any, applies)."""
        if value is None and self.optional:
            return None
        low = self._bound(self.low, self.low_key, low_ref)[0]
        high = self._bound(self.high, self.high_key, high_ref)[0]
        if self._accepts(value, low, high):
            return None
        return Problem(self.key, value, self.allowed(low_ref, high_ref))

    @staticmethod
    def _bound(fixed: float | None, key: str | None, ref: Any) -> tuple[float | None, str | None]:
        if key is not None and ref is not None:
            return ref, f"{key}={ref!r}"
        return fixed, None if fixed is None else _text(fixed)

    def _accepts(self, value: Any, low: float | None, high: float | None) -> bool:
        if self.kind in ("int", "number"):
            if not (_is_integer(value) if self.kind == "int" else _is_number(value)):
                return False
            if low is not None and (value <= low if self.low_open else value < low):
                return False
            return high is None or not (value >= high if self.high_open else value > high)
        if self.kind == "choice":
            if not isinstance(value, str):
                return False
            return (value.lower() if self.casefold else value) in self.choices
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "text":
            return isinstance(value, str) and bool(value.strip())
        return (
            isinstance(value, list | tuple)
            and len(value) > 0
            and all(isinstance(d, str) and DEVICE_NAME.match(d.strip()) for d in value)
        )

    def allowed(self, low_ref: Any = None, high_ref: Any = None) -> str:
        """What the key accepts, in words: ``must be a number in (0, 100]``."""
        low_text = self._bound(self.low, self.low_key, low_ref)[1]
        high_text = self._bound(self.high, self.high_key, high_ref)[1]
        if self.kind in ("int", "number"):
            noun = "an integer" if self.kind == "int" else "a number"
            if low_text is not None and high_text is not None:
                left = "(" if self.low_open else "["
                right = ")" if self.high_open else "]"
                text = f"must be {noun} in {left}{low_text}, {high_text}{right}"
            elif low_text is not None:
                text = f"must be {noun} {'>' if self.low_open else '>='} {low_text}"
            elif high_text is not None:
                text = f"must be {noun} {'<' if self.high_open else '<='} {high_text}"
            else:
                text = f"must be {noun}"
        elif self.kind == "choice":
            text = f"must be one of {', '.join(self.choices)}"
        elif self.kind == "bool":
            text = "must be true or false"
        elif self.kind == "text":
            text = "must be a non-empty string"
        else:
            text = "must be a non-empty list of device names (CPU:N or GPU:N, e.g. /gpu:0)"
        if self.optional:
            text += " or null"
        return f"{text} ({self.doc})" if self.doc else text


def _int(key: str, low: int, high: int | None = None, **kw: Any) -> Rule:
    return Rule(key, "int", low=low, high=high, **kw)


def _num(key: str, low: float, high: float | None, bounds: str, **kw: Any) -> Rule:
    """A number rule; ``bounds`` is the interval's brackets: ``"[)"``, ``"(]"``, ..."""
    return Rule(key, "number", low, high, bounds[0] == "(", bounds[1] == ")", **kw)


def _choice(key: str, choices: tuple[str, ...], **kw: Any) -> Rule:
    return Rule(key, "choice", choices=choices, **kw)


def _flag(key: str) -> Rule:
    return Rule(key, "bool")


def _text_rule(key: str, **kw: Any) -> Rule:
    return Rule(key, "text", **kw)


# In the order of the dataclasses above, so problems are reported in the order a reader meets
# the keys. A unit test derives values just outside every bound from this table.
RULES: tuple[Rule, ...] = (
    _num(
        "model.alpha",
        MIN_ALPHA,
        None,
        "[)",
        doc="1/32: the first layer has 32·α channels; the paper: 1, 0.75, 0.5, 0.25",
    ),
    _int(
        "model.resolution",
        MIN_RESOLUTION,
        doc="pixels; five stride-2 layers; the paper: 224, 192, 160, 128",
    ),
    _choice("model.variant", VARIANTS),
    _num("model.dropout", 0, 1, "[)"),
    _choice("model.activation", ACTIVATIONS),
    _flag("model.sync_bn"),
    _num("model.bn_momentum", 0, 1, "()", optional=True, doc="null: set from the step budget"),
    _choice("data.source", DATA_SOURCES),
    _text_rule("data.name"),
    _text_rule("data.data_dir", doc="the directory that holds prepared datasets"),
    _text_rule("data.manual_dir", optional=True),
    _text_rule("data.path", optional=True),
    _flag("data.download"),
    _text_rule("data.train_split"),
    _text_rule("data.val_split"),
    _num("data.val_fraction", 0, 1, "()"),
    _choice("data.augment", AUGMENTATIONS),
    _flag("data.cache"),
    _flag("data.skip_bad_images"),
    _int("data.max_val_examples", 1, optional=True, doc="null: all"),
    # mnv1-tune scores trials on the tail of the training split, never the validation split.
    _int("data.holdout_percent", 1, 50, optional=True, doc="null: the validation split"),
    _int(
        "data.synthetic.train_size",
        1,
        low_key="data.synthetic.num_classes",
        doc="every class needs an example",
    ),
    _int("data.synthetic.val_size", 1),
    _int(
        "data.synthetic.num_classes",
        2,
        SYNTHETIC_MAX_CLASSES,
        doc="classes are distinct shape × texture pairs",
    ),
    _int("data.synthetic.image_size", MIN_RESOLUTION, doc="the smallest input the model takes"),
    _int("data.synthetic.seed", 0),
    _int("train.epochs", 1),
    _int("train.steps_per_epoch", 1, optional=True, doc="null: one pass over the split"),
    _num(
        "train.target_minutes",
        0,
        None,
        "()",
        optional=True,
        doc="a sweep's wall-time target; null: no target",
    ),
    _int("train.batch_size", 1),
    # NumPy's seed range: keras.utils.set_random_seed seeds NumPy with it.
    _int("train.seed", 0, 2**32 - 1),
    _flag("train.deterministic"),
    _choice("train.optimizer", OPTIMIZERS),
    # The recipe's rate is 0.045 per 96 examples. 100 leaves room for large-batch SGD sweeps,
    # while a slipped exponent is refused before a sweep starts instead of diverging in every cell.
    _num("train.learning_rate", 0, 100, "(]"),
    _int("train.lr_reference_batch", 1),
    _num("train.warmup_epochs", 0, None, "[)", high_key="train.epochs"),
    _choice("train.schedule", SCHEDULES),
    _num("train.lr_decay_rate", 0, 1, "(]"),
    _num("train.momentum", 0, 1, "[)"),
    _num("train.rmsprop_rho", 0, 1, "[)"),
    # TF-slim uses 1.0, Keras 1e-7. Far above 1 the ε under the square root swamps the gradient
    # statistics and RMSprop degrades to plain SGD at lr/√ε: a value that large is a typo.
    _num("train.rmsprop_epsilon", 0, 10, "(]"),
    _num("train.label_smoothing", 0, 1, "[)"),
    # Decoupled decay shrinks a kernel by lr·λ each step (the paper's 4e-5); λ above 1 erases
    # the weights within a few hundred steps at the recipe's rate, whatever the data says.
    _num("train.weight_decay", 0, 1, "[]"),
    _num("train.depthwise_weight_decay", 0, 1, "[]", doc="the paper: little or none"),
    _choice("train.precision", PRECISIONS),
    # Hydra reads jit_compile=true as the string "True" (the field is a str): compare in lower case.
    _choice("train.jit_compile", JIT_CHOICES, casefold=True),
    _int("train.bn_recalibration_batches", 0, doc="0: off"),
    _text_rule("train.checkpoint_dir"),
    _int("train.checkpoint_every_steps", 1, optional=True, doc="null: at each epoch end"),
    # A resume falls back past a damaged newest checkpoint to the one before it.
    _int("train.keep_checkpoints", 2, doc="the newest and one to fall back to"),
    _choice("distribute.strategy", STRATEGIES),
    Rule("distribute.devices", "devices", optional=True),
    _int("distribute.cpu_replicas", 1, optional=True),
    # 0 hides every GPU (mnv1.training.bootstrap): the run trains on the CPU.
    _int("distribute.gpus_per_run", 0, optional=True, doc="0: train on the CPU"),
    _int("distribute.intra_op_threads", 1, optional=True, doc="null: every core"),
    _int("distribute.inter_op_threads", 1, optional=True, doc="null: TensorFlow's default"),
    _flag("distribute.warm_workers"),
    _text_rule(
        "tracking.uri",
        optional=True,
        doc="a tracking URI such as sqlite:///mlflow.db or http://host:5000",
    ),
    _text_rule("tracking.experiment"),
    _flag("tracking.rerun"),
    _flag("tracking.log_model"),
    _text_rule("tracking.report_dir", optional=True),
    _flag("tracking.report"),
    _flag("export.enabled"),
    # Post-training quantization needs at least one batch to see the activations' ranges.
    _int("export.representative_batches", 1, doc="calibration batches of the training split"),
    _int("export.threads", 1, optional=True, doc="null: every core"),
    _int("export.warmup", 0, doc="untimed runs before timing"),
    _int("export.repeats", 1, doc="timed runs for the median and p90"),
    # MLflow's monitor samples in a thread of the training process (mnv1.tracking.system_metrics).
    _num(
        "tracking.system_metrics_interval_s",
        0,
        3600,
        "[]",
        doc="seconds between system-metric samples; 0: off",
    ),
    _text_rule("study", doc="a study under experiments/"),
    _int("seeds", 1, doc="runs per cell, train.seed = 0 … seeds−1"),
    _text_rule("tuned", optional=True, doc="the path of a file mnv1-tune wrote"),
)

# The ``tune`` section that only ``mnv1-tune`` composes (TuneConfig), in the same form.
TUNE_RULES: tuple[Rule, ...] = (
    _int("tune.max_trials", 1),
    _choice("tune.oracle", ORACLES),
    # KerasTuner takes seed 0 for "no seed" and draws one at random (keras_tuner Oracle).
    _int("tune.seed", 1, doc="KerasTuner takes 0 for no seed"),
    _int("tune.workers", 0, doc="0: trials in this process"),
    _text_rule("tune.host"),
    _int("tune.port", 0, 65535, doc="0: a free port"),
    _text_rule("tune.dir"),
    _text_rule("tune.space"),
    _text_rule("tune.tuned_file", optional=True),
    _int("tune.holdout_percent", 1, 50),
    _int("tune.max_consecutive_failed_trials", 1),
)

RULE_BY_KEY: dict[str, Rule] = {rule.key: rule for rule in (*RULES, *TUNE_RULES)}


def rule(key: str) -> Rule:
    """The rule of one key (KeyError for a key the table does not know)."""
    return RULE_BY_KEY[key]


def device_id(name: str) -> tuple[str, int] | None:
    """``("GPU", 0)`` for ``gpu:0``, ``/GPU:0``, ``/job:…/device:GPU:0``; None if not a device."""
    match = DEVICE_NAME.match(name.strip())
    return None if match is None else (match.group(1).upper(), int(match.group(2)))


def known_replicas(cfg: RunConfig) -> list[tuple[str, int]]:
    """The replica counts a run will have that the config alone determines, with their source.

    ``one_device`` has one; an explicit device list has one per device; ``cpu_replicas`` is the
    count on a CPU-only host and ``gpus_per_run`` the count on a GPU host (each cell sees that many
    GPUs). Under ``auto`` with neither set, the count depends on the host and is checked at start.
    """
    d = cfg.distribute
    if d.strategy == "one_device":
        return []
    if d.devices:
        return [("distribute.devices", len(d.devices))]
    found = []
    if _is_integer(d.cpu_replicas) and d.cpu_replicas >= 1:  # type: ignore[operator]
        found.append(("distribute.cpu_replicas", int(d.cpu_replicas)))  # type: ignore[arg-type]
    if _is_integer(d.gpus_per_run) and d.gpus_per_run >= 1:  # type: ignore[operator]
        found.append(("distribute.gpus_per_run", int(d.gpus_per_run)))  # type: ignore[arg-type]
    return found


def batch_problem(batch_size: int, replicas: int, where: str) -> Problem | None:
    """The global batch must split evenly over the replicas (``where`` names their source)."""
    if batch_size % replicas == 0:
        return None
    low = batch_size - batch_size % replicas
    hint = f"e.g. {low} or {low + replicas}" if low else f"e.g. {replicas}"
    return Problem(
        "train.batch_size",
        batch_size,
        f"the global batch must divide evenly by the {replicas} replicas of {where} ({hint})",
    )


def _batch_divides_by_replicas(cfg: RunConfig) -> list[Problem]:
    batch = cfg.train.batch_size
    if not _is_integer(batch) or batch < 1:
        return []  # the batch's own rule reports it
    found = [batch_problem(batch, n, f"{source}={n}") for source, n in known_replicas(cfg)]
    return [p for p in found if p is not None]


def _devices_fit_strategy(d: DistributeConfig) -> list[Problem]:
    if RULE_BY_KEY["distribute.devices"].check(d.devices) is not None or not d.devices:
        return []  # the list's own rule reports it
    ids = [device_id(name) for name in d.devices]
    if len(set(ids)) != len(ids):
        return [Problem("distribute.devices", d.devices, "must not list a device twice")]
    if d.strategy == "one_device" and len(ids) != 1:
        return [
            Problem(
                "distribute.devices",
                d.devices,
                "distribute.strategy=one_device takes exactly one device",
            )
        ]
    return []


def _holdout_needs_a_split_name(d: DataConfig) -> list[Problem]:
    holdout = d.holdout_percent
    if holdout is None or any(
        RULE_BY_KEY[key].check(value) is not None
        for key, value in (("data.holdout_percent", holdout), ("data.train_split", d.train_split))
    ):
        return []  # unset, or each value's own rule reports it
    if d.source == "tfds" and "[" in d.train_split:
        # The held-out slice is cut from the end of a named split (mnv1.data.builders).
        return [
            Problem(
                "data.holdout_percent",
                holdout,
                f"needs data.train_split to be a split name, not the slice {d.train_split!r}",
            )
        ]
    return []


# Rules across keys that bounds cannot state: (the section they need, the check).
CROSS_RULES: tuple[tuple[str, Callable[[Any], list[Problem]]], ...] = (
    ("distribute", _devices_fit_strategy),
    ("data", _holdout_needs_a_split_name),
    ("", _batch_divides_by_replicas),
)


def _get(root: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        root = getattr(root, part)
    return root


def problems(cfg: Any, section: str = "") -> list[Problem]:
    """Every rule of the table that ``cfg`` breaks, in table order; [] when it is fine.

    ``cfg`` is a RunConfig (``section=""``) or one of its sections, named by its key prefix:
    ``problems(train_config, "train")``, ``problems(synthetic, "data.synthetic")``. A rule whose
    bound is another key outside the section applies its fixed bound only.
    """
    prefix = f"{section}." if section else ""
    found: list[Problem] = []
    for item in RULES:
        if not item.key.startswith(prefix):
            continue
        refs = [
            _valid_ref(cfg, prefix, key) if key else None for key in (item.low_key, item.high_key)
        ]
        problem = item.check(_get(cfg, item.key[len(prefix) :]), *refs)
        if problem is not None:
            found.append(problem)
    for needs, cross in CROSS_RULES:
        if section == needs or (not section) or needs.startswith(prefix):
            found += cross(_get(cfg, needs[len(section) :]))
    return found


def _valid_ref(cfg: Any, prefix: str, key: str) -> Any:
    """The value of ``key`` when it is inside the section and passes its own rule, else None."""
    if not key.startswith(prefix):
        return None
    value = _get(cfg, key[len(prefix) :])
    return None if value is None or RULE_BY_KEY[key].check(value) else value


def check(cfg: Any, section: str = "") -> None:
    """Raise ConfigError listing every problem of ``cfg`` (see ``problems``)."""
    found = problems(cfg, section)
    if found:
        raise ConfigError(found)


def run_name(alpha: float, resolution: int, variant: str = "separable") -> str:
    """The run/model name that carries the sweep coordinates, e.g. ``mnv1_a0.75_r160``: the one
    place a cell's name is built (runs, models, the grid, messages, Hydra's sweep folders)."""
    # 1.0 prints as "1.0" (not "1"), 0.75 as "0.75": the α column reads the same in every name.
    # A value that failed validation (a string, say) still names its cell in the error message.
    try:
        value = float(alpha)
        alpha_text = f"{value:.1f}" if value.is_integer() else f"{value:g}"
    except (TypeError, ValueError):
        alpha_text = str(alpha)
    suffix = "" if variant == "separable" else f"_{variant}"
    return f"mnv1_a{alpha_text}_r{resolution}{suffix}"


def cell_name(cfg: RunConfig) -> str:
    """The name of the run of one configuration: :func:`run_name` of its model coordinates."""
    return run_name(cfg.model.alpha, cfg.model.resolution, cfg.model.variant)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as nested plain dicts."""
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from ``to_dict`` output (how a config crosses a process boundary)."""
    d = dict(data)
    data_section = dict(d.get("data", {}))
    synthetic = SyntheticConfig(**data_section.pop("synthetic", {}))
    return RunConfig(
        model=ModelConfig(**d.get("model", {})),
        data=DataConfig(synthetic=synthetic, **data_section),
        train=TrainConfig(**d.get("train", {})),
        distribute=DistributeConfig(**d.get("distribute", {})),
        tracking=TrackingConfig(**d.get("tracking", {})),
        export=ExportConfig(**d.get("export", {})),
        study=d.get("study", "default"),
        seeds=d.get("seeds", 1),
        tuned=d.get("tuned"),
    )


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys: ``{"model": {"alpha": 1}} -> {"model.alpha": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out
