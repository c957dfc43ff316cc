"""The typed run configuration: plain dataclasses, the one schema every layer shares.

Hydra registers these classes in its ConfigStore at the CLI boundary (``mnv1/cli``) and converts
the composed config to them once with ``OmegaConf.to_object``; below the CLI only these
dataclasses travel, so nothing else needs to know Hydra or OmegaConf exists.

Values here are the defaults a user gets without any YAML; ``conf/`` restates the important ones
with a reason beside each.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The grid of the paper's Figures 4 and 5.
PAPER_ALPHAS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
PAPER_RESOLUTIONS: tuple[int, ...] = (224, 192, 160, 128)

VARIANTS: tuple[str, ...] = ("separable", "full_conv", "shallow")
ACTIVATIONS: tuple[str, ...] = ("relu6", "relu")
STRATEGIES: tuple[str, ...] = ("auto", "mirrored", "one_device")
OPTIMIZERS: tuple[str, ...] = ("rmsprop", "sgd")
SCHEDULES: tuple[str, ...] = ("cosine", "exponential", "constant")
PRECISIONS: tuple[str, ...] = ("float32", "mixed_float16", "mixed_bfloat16")
AUGMENTATIONS: tuple[str, ...] = ("standard", "light", "none")
DATA_SOURCES: tuple[str, ...] = ("synthetic", "tfds", "folder")


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
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class TrainConfig:
    epochs: int = 1
    steps_per_epoch: int | None = None
    """None: one full pass over the training split per epoch."""
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
    """Ops run concurrently (None: TensorFlow's default). Both are set by "
    "``mnv1.training.bootstrap``."""


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


@dataclass
class TestingConfig:
    """Hooks for the test-suite only; excluded from the run key."""

    fail_cell: str | None = None
    """Raise inside the run whose name (``mnv1_a0.5_r64``) matches."""


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distribute: DistributeConfig = field(default_factory=DistributeConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    testing: TestingConfig = field(default_factory=TestingConfig)
    study: str = "default"
    """Name of the study (``experiments/<name>.yaml``) this run belongs to."""


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
        testing=TestingConfig(**d.get("testing", {})),
        study=d.get("study", "default"),
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
