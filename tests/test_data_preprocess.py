"""Preprocessing: shape, dtype and range at every ρ of the grid; the crop geometry exactly."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mnv1.config import AUGMENTATIONS, PAPER_RESOLUTIONS
from mnv1.data import preprocess

SEED = tf.constant([[1, 2], [3, 4]], dtype=tf.int64)


def _random_image(h: int, w: int) -> tf.Tensor:
    rng = np.random.default_rng(h * 1000 + w)
    return tf.constant(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("resolution", PAPER_RESOLUTIONS)
@pytest.mark.parametrize("augment", AUGMENTATIONS)
def test_train_output_shape_dtype_range(resolution: int, augment: str) -> None:
    for h, w in ((256, 256), (300, 180), (90, 400)):
        out = preprocess.train_image(_random_image(h, w), resolution, augment, SEED)
        assert out.shape == (resolution, resolution, 3)
        assert out.dtype == tf.float32
        assert float(tf.reduce_min(out)) >= -1.0
        assert float(tf.reduce_max(out)) <= 1.0


@pytest.mark.parametrize("resolution", PAPER_RESOLUTIONS)
def test_eval_output_shape_dtype_range(resolution: int) -> None:
    out = preprocess.eval_image(_random_image(333, 250), resolution)
    assert out.shape == (resolution, resolution, 3)
    assert out.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(out)) < float(tf.reduce_max(out)) <= 1.0


@pytest.mark.parametrize("resolution", PAPER_RESOLUTIONS)
def test_extremes_map_to_minus_one_and_one(resolution: int) -> None:
    # Antialiased resizing sums float32 filter weights, so white may land a few ulps below 1.
    black = tf.zeros((256, 256, 3), tf.uint8)
    white = tf.fill((256, 256, 3), tf.constant(255, tf.uint8))
    np.testing.assert_allclose(preprocess.eval_image(black, resolution).numpy(), -1.0, atol=1e-6)
    np.testing.assert_allclose(preprocess.eval_image(white, resolution).numpy(), 1.0, atol=1e-6)
    trained = preprocess.train_image(white, resolution, "standard", SEED).numpy()
    np.testing.assert_allclose(trained, 1.0, atol=1e-6)


def test_central_crop_keeps_exactly_the_middle_seven_eighths() -> None:
    # 256 × 0.875 = 224: a 16-pixel black border is cut away exactly, leaving only white.
    image = np.zeros((256, 256, 3), np.uint8)
    image[16:240, 16:240] = 255
    cropped = preprocess.central_crop(tf.constant(image))
    assert cropped.shape == (224, 224, 3)
    assert np.all(cropped.numpy() == 255)
    assert np.all(preprocess.eval_image(tf.constant(image), 224).numpy() == 1.0)
    # One pixel less of border and the black shows.
    image[15] = 0
    image[:, 15] = 0
    image[16:240, 16:240] = 255
    image[16] = 0
    assert float(tf.reduce_min(preprocess.eval_image(tf.constant(image), 224))) == -1.0


def test_augmentation_is_a_function_of_the_seed() -> None:
    image = _random_image(256, 256)
    a = preprocess.train_image(image, 128, "standard", SEED)
    b = preprocess.train_image(image, 128, "standard", SEED)
    c = preprocess.train_image(image, 128, "standard", SEED + 7)
    assert np.array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    # "none" is the evaluation transform, whatever the seed.
    none = preprocess.train_image(image, 128, "none", SEED + 7)
    assert np.array_equal(none.numpy(), preprocess.eval_image(image, 128).numpy())


def test_light_crops_keep_at_least_35_percent_of_the_area() -> None:
    areas = {}
    for augment in ("standard", "light"):
        areas[augment] = []
        for s in range(40):
            _, size = preprocess.random_crop_window(
                tf.constant([100, 100, 3]), augment, tf.constant([s, 1], tf.int64)
            )
            areas[augment].append(int(size[0]) * int(size[1]) / 100 / 100)
    # Each side is rounded to whole pixels, hence the one-pixel slack.
    assert min(areas["light"]) >= 0.35 - 0.02
    assert min(areas["standard"]) < 0.35  # the standard range reaches far smaller crops


def test_unknown_augment_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"data\.augment='heavy'"):
        preprocess.train_image(_random_image(64, 64), 32, "heavy", SEED)


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_decode_gives_three_channels(mode: str, fmt: str) -> None:
    pixels = np.arange(64 * 48, dtype=np.uint8).reshape(48, 64) * 3
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").convert(mode).save(buffer, format=fmt)
    decoded = preprocess.decode_image(tf.constant(buffer.getvalue()))
    assert decoded.shape == (48, 64, 3)
    assert decoded.dtype == tf.uint8
    if mode == "L":  # grayscale replicated to RGB
        d = decoded.numpy()
        assert np.array_equal(d[..., 0], d[..., 1]) and np.array_equal(d[..., 1], d[..., 2])


@pytest.mark.parametrize("resolution", PAPER_RESOLUTIONS)
def test_a_crop_that_only_grows_is_resized_as_antialiasing_would(resolution: int) -> None:
    """Antialiasing widens the kernel only where a side shrinks: a crop no larger than ρ gets
    the plain bilinear kernel (cheaper), the same pixels up to float rounding; a crop with a
    side larger than ρ gets exactly ``antialias=True``."""
    size = [resolution, resolution]
    for h, w in ((72, 90), (resolution, resolution // 2), (resolution, resolution)):
        image = _random_image(h, w)
        reference = tf.image.resize(image, size, method="bilinear", antialias=True)
        resized = preprocess._resize(image, resolution)
        assert resized.shape == (resolution, resolution, 3)
        assert float(tf.reduce_max(tf.abs(resized - reference))) < 0.01
    for h, w in ((256, 256), (resolution + 1, 40), (30, resolution + 1)):
        image = _random_image(h, w)
        reference = tf.image.resize(image, size, method="bilinear", antialias=True)
        assert np.array_equal(preprocess._resize(image, resolution).numpy(), reference.numpy())


def test_images_are_cached_near_rho_with_their_aspect_kept() -> None:
    # The shorter side becomes ρ / 0.875 (rounded up), the other follows it; uint8 stays uint8.
    assert [preprocess.cached_side(r) for r in PAPER_RESOLUTIONS] == [256, 220, 183, 147]
    wide = preprocess.near_resolution(_random_image(256, 320), 160)
    assert wide.shape == (183, 229, 3) and wide.dtype == tf.uint8
    tall = preprocess.near_resolution(_random_image(300, 200), 128)
    assert tall.shape == (220, 147, 3)
    # No larger than needed already: returned as it is.
    small = _random_image(150, 180)
    assert np.array_equal(preprocess.near_resolution(small, 160).numpy(), small.numpy())
    native = _random_image(256, 256)
    assert np.array_equal(preprocess.near_resolution(native, 224).numpy(), native.numpy())


@pytest.mark.parametrize("resolution", [192, 160, 128])
def test_evaluating_an_image_cached_near_rho_sees_what_the_native_image_gives(
    resolution: int,
) -> None:
    """The central crop of the cached image is ρ (or a pixel more): the evaluation transform
    gives what it gives from the native image, to within rounding to uint8 and the order of two
    antialiased resizes (a smooth image: the synthetic scenes are shapes, not noise)."""
    ramp = np.linspace(0, 255, 256, dtype=np.float32)
    smooth = np.stack([*np.meshgrid(ramp, ramp[::-1]), np.full((256, 256), 128.0)], axis=-1)
    image = tf.constant(smooth.astype(np.uint8))
    cached = preprocess.near_resolution(image, resolution)
    direct = preprocess.eval_image(image, resolution).numpy()
    near = preprocess.eval_image(cached, resolution).numpy()
    # In [-1, 1] units: 0.02 is 2.6 of 255.
    assert np.abs(direct - near).max() < 0.02
