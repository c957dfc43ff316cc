"""The recipe: learning-rate rule and schedule, weight-decay rules, BatchNorm momentum, checks."""

from __future__ import annotations

import math
import re

import keras
import numpy as np
import pytest

from mnv1.config import TrainConfig
from mnv1.training.recipe import (
    ExampleCount,
    WarmupDecay,
    bn_momentum_for,
    check_train_config,
    make_optimizer,
    peak_learning_rate,
    resolve_jit,
)


def lr_at(schedule: WarmupDecay, step: int) -> float:
    return float(schedule(step))


def test_cosine_reaches_zero_exactly_at_the_end_of_the_run():
    schedule = WarmupDecay(peak=1.0, total_steps=10)
    assert lr_at(schedule, 0) == pytest.approx(1.0)
    assert lr_at(schedule, 5) == pytest.approx(0.5)
    assert lr_at(schedule, 9) == pytest.approx(0.5 * (1 + math.cos(0.9 * math.pi)), abs=1e-6)
    assert lr_at(schedule, 10) == pytest.approx(0.0, abs=1e-7)


def test_warmup_ramps_linearly_then_decays_over_the_remaining_steps():
    schedule = WarmupDecay(peak=0.4, total_steps=12, warmup_steps=4)
    assert [round(lr_at(schedule, s), 6) for s in range(4)] == [0.1, 0.2, 0.3, 0.4]
    assert lr_at(schedule, 4) == pytest.approx(0.4)
    assert lr_at(schedule, 8) == pytest.approx(0.2)
    assert lr_at(schedule, 12) == pytest.approx(0.0, abs=1e-7)


def test_exponential_decays_per_epoch_and_constant_stays():
    exponential = WarmupDecay(1.0, 40, kind="exponential", decay_rate=0.5, steps_per_epoch=4)
    assert lr_at(exponential, 4) == pytest.approx(0.5)
    assert lr_at(exponential, 8) == pytest.approx(0.25)
    assert lr_at(exponential, 2) == pytest.approx(0.5**0.5)
    constant = WarmupDecay(0.3, 40, kind="constant")
    assert lr_at(constant, 0) == lr_at(constant, 39) == pytest.approx(0.3)


def test_schedule_rejects_warmup_as_long_as_the_run():
    with pytest.raises(ValueError, match="warm-up of 10 steps must be shorter than the run"):
        WarmupDecay(1.0, total_steps=10, warmup_steps=10)


def test_schedule_round_trips_through_keras_serialisation():
    schedule = WarmupDecay(0.2, 100, warmup_steps=5, kind="exponential", decay_rate=0.9)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(again, WarmupDecay)
    assert again.get_config() == schedule.get_config()


def test_learning_rate_scales_linearly_with_the_global_batch():
    assert peak_learning_rate(TrainConfig(learning_rate=0.045, batch_size=96)) == 0.045
    assert peak_learning_rate(TrainConfig(learning_rate=0.045, batch_size=192)) == 0.09
    assert peak_learning_rate(
        TrainConfig(learning_rate=0.1, batch_size=32, lr_reference_batch=256)
    ) == pytest.approx(0.0125)


def test_bn_momentum_spans_a_tenth_of_the_run_within_bounds():
    assert bn_momentum_for(10) == 0.9
    assert bn_momentum_for(100) == pytest.approx(0.9)
    assert bn_momentum_for(500) == pytest.approx(0.98)
    assert bn_momentum_for(1000) == pytest.approx(0.99)
    assert bn_momentum_for(10**6) == 0.99


def test_jit_auto_is_on_for_gpu_only():
    assert resolve_jit(TrainConfig(jit_compile="auto"), on_gpu=True) is True
    assert resolve_jit(TrainConfig(jit_compile="auto"), on_gpu=False) is False
    assert resolve_jit(TrainConfig(jit_compile="true"), on_gpu=False) is True
    assert resolve_jit(TrainConfig(jit_compile="false"), on_gpu=True) is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "adam"}, "train.optimizer='adam': must be one of rmsprop, sgd"),
        (
            {"schedule": "step"},
            "train.schedule='step': must be one of cosine, exponential, constant",
        ),
        ({"precision": "float16"}, "train.precision='float16': must be one of float32, mixed_"),
        ({"jit_compile": "maybe"}, "train.jit_compile='maybe': must be one of auto, true, false"),
        ({"epochs": 0}, "train.epochs=0: must be an integer >= 1"),
        ({"steps_per_epoch": 0}, "train.steps_per_epoch=0: must be an integer >= 1 or null"),
        (
            {"warmup_epochs": 1.0, "epochs": 1},
            "train.warmup_epochs=1.0: must be a number in [0, train.epochs=1)",
        ),
        ({"label_smoothing": 1.0}, "train.label_smoothing=1.0: must be a number in [0, 1)"),
        ({"weight_decay": -1e-5}, "train.weight_decay=-1e-05: must be a number in [0, 1]"),
        ({"learning_rate": float("nan")}, "train.learning_rate=nan: must be a number in (0, 100]"),
        ({"learning_rate": 200.0}, "train.learning_rate=200.0: must be a number in (0, 100]"),
        ({"seed": -1}, "train.seed=-1: must be an integer in [0, 4294967295]"),
        ({"checkpoint_every_steps": 0}, "train.checkpoint_every_steps=0: must be an integer >= 1"),
    ],
)
def test_bad_training_settings_name_key_and_value(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_train_config(TrainConfig(**changes))


def test_defaults_pass_the_checks():
    check_train_config(TrainConfig())


def _decay_model() -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, name="fc")(x)
    model = keras.Model(inputs, outputs)
    for variable in model.trainable_variables:  # non-zero everywhere, so any decay shows
        variable.assign(np.full(variable.shape, 2.0, dtype="float32"))
    return model


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
def test_weight_decay_rules_per_variable(optimizer):
    train = TrainConfig(
        optimizer=optimizer,
        schedule="constant",
        learning_rate=0.5,
        lr_reference_batch=32,
        batch_size=32,
        weight_decay=0.1,
        depthwise_weight_decay=0.01,
    )
    model = _decay_model()
    opt = make_optimizer(train, steps_per_epoch=10, model=model)
    variables = model.trainable_variables
    # Zero gradients: the update itself moves nothing, so what changes is the decay alone.
    opt.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in variables])
    after = {v.path: float(np.asarray(v.value).flat[0]) for v in variables}
    assert after["conv/kernel"] == pytest.approx(2.0 * (1 - 0.5 * 0.1))
    assert after["fc/kernel"] == pytest.approx(2.0 * (1 - 0.5 * 0.1))
    assert after["dw/kernel"] == pytest.approx(2.0 * (1 - 0.5 * 0.01))
    assert after["bn/gamma"] == after["bn/beta"] == after["fc/bias"] == 2.0
    assert opt.weight_decay == 0.1  # restored after the per-rate groups


def test_no_decay_at_all_when_both_rates_are_zero():
    train = TrainConfig(schedule="constant", weight_decay=0.0, depthwise_weight_decay=0.0)
    model = _decay_model()
    opt = make_optimizer(train, steps_per_epoch=10)
    assert opt.weight_decay is None
    opt.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in model.trainable_variables])
    assert all(np.all(np.asarray(v.value) == 2.0) for v in model.trainable_variables)


def test_optimizer_round_trips_with_its_depthwise_rate():
    opt = make_optimizer(TrainConfig(depthwise_weight_decay=1e-5), steps_per_epoch=10)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(again) is type(opt)
    assert again.depthwise_weight_decay == 1e-5
    # The schedule survives too (a model saved with its optimizer reloads it).
    assert isinstance(again._learning_rate, WarmupDecay)
    assert again._learning_rate.get_config() == opt._learning_rate.get_config()


def test_example_count_sums_sample_weights():
    metric = ExampleCount()
    metric.update_state(np.zeros((3, 2)), np.zeros((3, 2)), sample_weight=np.array([1, 1, 0]))
    metric.update_state(np.zeros((4, 2)), np.zeros((4, 2)))
    assert float(metric.result()) == 6.0
