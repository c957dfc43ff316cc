"""The rule table (``mnv1.config.RULES``) is the one statement of what every key accepts.

For every key the table declares, values just outside its bounds and values of the wrong type are
refused by the up-front validator (``mnv1.sweep.validate``, before a sweep starts) with a message
naming the key, and by the run-time check of the layer that reads the key (the model builder,
the recipe, bootstrap and the strategy, the data layer). The values are derived from the table
itself, so a rule added there is tested here without a new line.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest

from mnv1 import config
from mnv1.config import (
    MIN_ALPHA,
    RULES,
    SYNTHETIC_MAX_CLASSES,
    ConfigError,
    Rule,
    RunConfig,
    TrainConfig,
    flatten,
    to_dict,
)
from mnv1.sweep import validate

# Keys the sweep reads before any run exists (where to track, what to call the study, how many
# seeds to sweep, which tuned file to apply): nothing inside a run reads them, so the up-front
# check is their only one.
UP_FRONT_ONLY = ("tracking.", "study", "seeds", "tuned")


def _bound_values(item: Rule, base: RunConfig) -> list[Any]:
    """Values just outside each bound of ``item`` (for ``base``'s other values)."""
    out: list[Any] = []
    low = item.low
    if item.low_key is not None:
        low = _get(base, item.low_key)
    high = item.high
    if item.high_key is not None:
        high = _get(base, item.high_key)
    if item.kind == "int":
        if low is not None:
            out.append(int(low) - 1)
        if high is not None:
            out.append(int(high) + 1)
    else:
        if low is not None:
            out.append(float(low) if item.low_open else math.nextafter(low, -math.inf))
        if high is not None:
            out.append(float(high) if item.high_open else math.nextafter(high, math.inf))
    return out


def bad_values(item: Rule, base: RunConfig) -> list[Any]:
    """Out-of-bounds and wrong-type values for one rule."""
    missing = [] if item.optional else [None]
    if item.kind == "int":
        return [*_bound_values(item, base), "7", 1.5, True, *missing]
    if item.kind == "number":
        return [*_bound_values(item, base), "0.5", True, math.nan, math.inf, *missing]
    if item.kind == "choice":
        return ["no_such_choice", 1, *missing]
    if item.kind == "bool":
        return ["true", 1, *missing]
    if item.kind == "text":
        return ["", "   ", 5, *missing]
    return [[], ["tpu:0"], "cpu:0", [0], *missing]


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def with_value(cfg: RunConfig, key: str, value: Any) -> RunConfig:
    changed = copy.deepcopy(cfg)
    *parents, name = key.split(".")
    target: Any = changed
    for part in parents:
        target = getattr(target, part)
    setattr(target, name, value)
    return changed


def base_config(root: Path) -> RunConfig:
    cfg = RunConfig()
    cfg.data.data_dir = str(root / "tfds")
    return cfg


BASE = base_config(Path("/nonexistent-mnv1-test"))
CASES = [
    pytest.param(item.key, value, id=f"{item.key}={value!r}")
    for item in RULES
    for value in bad_values(item, BASE)
]


def test_the_table_covers_every_key_of_the_schema_once() -> None:
    keys = [item.key for item in RULES]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(flatten(to_dict(RunConfig())))


def test_the_defaults_pass_every_check(tmp_path: Path) -> None:
    cfg = base_config(tmp_path)
    assert validate.problems(cfg) == []
    assert config.problems(cfg) == []
    _run_time_checks_pass(cfg)


def _run_time_errors(cfg: RunConfig, key: str) -> list[str]:
    """The messages the run-time checks that read ``key`` give for ``cfg`` (one per check)."""
    if key.startswith("model."):
        from mnv1.model import build_mobilenet_v1

        field = key.removeprefix("model.")
        arguments = {"alpha": 0.25, "resolution": 32, "num_classes": 2}
        arguments[field] = _get(cfg, key)
        return [_raised(build_mobilenet_v1, **arguments)]
    if key.startswith("train."):
        from mnv1.training.recipe import check_train_config

        return [_raised(check_train_config, cfg.train)]
    if key.startswith("distribute."):
        import tensorflow as tf

        from mnv1.training.bootstrap import bootstrap
        from mnv1.training.strategy import plan_strategy

        # With the devices initialised, a bootstrap that let a bad value through would raise
        # BootstrapError (a RuntimeError), not the ConfigError the test expects.
        tf.constant(0)
        return [
            _raised(bootstrap, cfg.distribute, TrainConfig()),
            _raised(plan_strategy, cfg.distribute, [], ["/device:CPU:0"]),
        ]
    if key.startswith("data."):
        from mnv1.data import check

        return ["\n".join(check.problems(cfg.data))]
    if key.startswith("export."):
        from mnv1.export.cell import check_export_config

        return [_raised(check_export_config, cfg.export)]
    if key == "tracking.system_metrics_interval_s":
        # Read by the cell's worker when it starts MLflow's system-metrics monitor.
        from mnv1.tracking import system_metrics

        return [_raised(system_metrics.check_interval, _get(cfg, key))]
    assert key.startswith(UP_FRONT_ONLY), key
    return []


def _raised(function: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as err:
        function(*args, **kwargs)
    assert isinstance(err.value, ValueError)
    return str(err.value)


def _run_time_checks_pass(cfg: RunConfig) -> None:
    from mnv1.data import check
    from mnv1.model import build_mobilenet_v1
    from mnv1.training.recipe import check_train_config
    from mnv1.training.strategy import plan_strategy

    m = cfg.model
    build_mobilenet_v1(m.alpha, 32, 2, m.variant, m.dropout, m.activation, 0.99, sync_bn=m.sync_bn)
    check_train_config(cfg.train)
    plan_strategy(cfg.distribute, [], ["/device:CPU:0"])
    assert check.problems(cfg.data) == []
    from mnv1.export.cell import check_export_config

    check_export_config(cfg.export)


@pytest.mark.parametrize(("key", "value"), CASES)
def test_a_bad_value_is_refused_up_front_and_at_run_time(
    tmp_path: Path, key: str, value: Any
) -> None:
    cfg = with_value(base_config(tmp_path), key, value)
    named = f"{key}={value!r}: must"  # the key, the value received, then what is allowed

    found = validate.problems(cfg)
    assert any(line.startswith(named) for line in found), found
    with pytest.raises(ConfigError) as err:
        validate.check(cfg)
    assert named in str(err.value)

    for message in _run_time_errors(cfg, key):
        assert named in message, message


def test_warmup_must_end_before_the_run_does(tmp_path: Path) -> None:
    cfg = with_value(base_config(tmp_path), "train.epochs", 3)
    assert validate.problems(with_value(cfg, "train.warmup_epochs", 2.5)) == []
    cfg = with_value(cfg, "train.warmup_epochs", 3)
    expected = "train.warmup_epochs=3: must be a number in [0, train.epochs=3)"
    assert validate.problems(cfg) == [expected]
    from mnv1.training.recipe import check_train_config

    with pytest.raises(ConfigError, match=r"train\.warmup_epochs=3: must be a number in \[0, "):
        check_train_config(cfg.train)
    # A bad epochs value is reported once, and warm-up is then held to its own bound only.
    cfg = with_value(cfg, "train.epochs", 0)
    assert [p.split(":")[0] for p in validate.problems(cfg)] == ["train.epochs=0"]


def test_device_lists_that_no_host_can_satisfy_are_refused_up_front(tmp_path: Path) -> None:
    cfg = base_config(tmp_path)
    twice = with_value(cfg, "distribute.devices", ["cpu:0", "/CPU:0"])
    assert validate.problems(twice) == [
        "distribute.devices=['cpu:0', '/CPU:0']: must not list a device twice"
    ]
    one = with_value(cfg, "distribute.strategy", "one_device")
    one = with_value(one, "distribute.devices", ["cpu:0", "cpu:1"])
    assert validate.problems(one) == [
        "distribute.devices=['cpu:0', 'cpu:1']: distribute.strategy=one_device takes exactly "
        "one device"
    ]
    from mnv1.training.strategy import plan_strategy

    for bad in (twice, one):
        with pytest.raises(ConfigError, match=r"distribute\.devices="):
            plan_strategy(bad.distribute, [], ["/device:CPU:0", "/device:CPU:1"])


def test_a_held_out_share_needs_a_named_train_split_up_front(tmp_path: Path) -> None:
    # The held-out slice is cut from the end of a named split, so a slice as train_split cannot
    # carry one: refused with the grid, not when the sweep starts preparing data.
    cfg = with_value(base_config(tmp_path), "data.source", "tfds")
    cfg = with_value(cfg, "data.train_split", "train[:50%]")
    cfg = with_value(cfg, "data.holdout_percent", 10)
    expected = (
        "data.holdout_percent=10: needs data.train_split to be a split name, not the slice "
        "'train[:50%]'"
    )
    assert expected in validate.problems(cfg)
    from mnv1.data.check import problems as data_problems

    assert expected in data_problems(cfg.data)
    assert expected not in validate.problems(with_value(cfg, "data.train_split", "train"))


def test_seed_is_bounded_by_numpy_seed_range(tmp_path: Path) -> None:
    import numpy as np

    cfg = base_config(tmp_path)
    top = 2**32 - 1
    assert validate.problems(with_value(cfg, "train.seed", top)) == []
    np.random.seed(top)  # the legacy seeder Keras's set_random_seed calls
    with pytest.raises(ValueError):
        np.random.seed(top + 1)
    assert validate.problems(with_value(cfg, "train.seed", top + 1)) == [
        f"train.seed={top + 1}: must be an integer in [0, {top}]"
    ]


def test_alpha_floor_is_where_the_first_layer_keeps_one_channel() -> None:
    from mnv1.model import BLOCKS, width

    narrowest = min(channels for _, _, channels in BLOCKS)
    assert width(narrowest, MIN_ALPHA) == 1
    assert width(narrowest, math.nextafter(MIN_ALPHA, 0)) == 0


def test_synthetic_class_bound_is_the_number_of_shape_texture_pairs() -> None:
    from mnv1.data import synthetic_images

    assert synthetic_images.MAX_CLASSES == SYNTHETIC_MAX_CLASSES


def test_the_builder_refuses_a_single_class() -> None:
    from mnv1.model import build_mobilenet_v1

    for bad in (1, 2.0, True):
        with pytest.raises(ConfigError, match=rf"num_classes={bad!r}: must be an integer >= 2"):
            build_mobilenet_v1(0.25, 32, num_classes=bad)  # type: ignore[arg-type]
