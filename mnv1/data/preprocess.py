"""Image preprocessing in the style of the reference implementations (TF-slim, tf.keras apps).

* **Decode**: any JPEG/PNG/GIF/BMP to 3-channel uint8 (grayscale is replicated to RGB).
* **Training** (``data.augment``):
  ``standard``: random resized crop (Inception style: 8-100% of the area, aspect ratio 3/4-4/3)
  and a random horizontal flip;
  ``light``: the same with crops of at least 35% of the area (the paper trained its small
  models with "less regularization and data augmentation", limiting the size of small crops);
  ``none``: the evaluation transform.
* **Evaluation**: central crop of 87.5% of each side, resized to ρ × ρ.
* **Scaling**: pixels to [-1, 1] (``x / 127.5 - 1``), as MobileNetV1's reference checkpoints.
* **Cached near ρ**: where the pipeline caches decoded images, it caches them shrunk to
  ``cached_side(ρ)`` (``near_resolution``), so the transforms above start near ρ.

Resizing is bilinear with antialiasing, so a smaller ρ sees a genuinely blurrier image instead of
an aliased one: ρ is meant to measure how much input detail a variant gets. (A crop that only
grows is resized by the plain bilinear kernel, which antialiasing leaves as it is: the same
pixels, cheaper.) All randomness is
stateless and comes from explicit seeds, so a pipeline seed reproduces the same augmentations.
"""

from __future__ import annotations

import math

import tensorflow as tf

from mnv1.config import ConfigError, rule

CENTRAL_FRACTION = 0.875
# Smallest crop area (fraction of the image) per augmentation level.
MIN_CROP_AREA: dict[str, float] = {"standard": 0.08, "light": 0.35}
ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
CROP_ATTEMPTS = 10  # then the whole image, as tf.image.sample_distorted_bounding_box does


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """Encoded image bytes to uint8 ``(h, w, 3)``."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def to_unit_range(image: tf.Tensor) -> tf.Tensor:
    """uint8 or float pixels in [0, 255] to float32 in [-1, 1]."""
    scaled = tf.cast(image, tf.float32) / 127.5 - 1.0
    # Bilinear resizing cannot leave [0, 255], but rounding may: keep the contract exact.
    return tf.clip_by_value(scaled, -1.0, 1.0)


def _resize(image: tf.Tensor, resolution: int) -> tf.Tensor:
    """Bilinear to ``resolution`` × ``resolution``, antialiased wherever a side shrinks.

    Antialiasing widens the bilinear (triangle) kernel by the downscaling factor; where no side
    shrinks the kernel keeps its width, so the plain bilinear resize gives the same pixels (up
    to float rounding: under 0.01 of 255, ``tests/test_data_preprocess.py``) at a fraction of
    the cost of ``antialias=True``'s general kernel. Random crops of the training images are
    often smaller than ρ (at ρ = 224 most are), and this is the per-image cost the input
    pipeline pays most (``mnv1-bench data``: input wait share of a fit step).
    """
    shape = tf.shape(image)
    shrinks = tf.logical_or(shape[0] > resolution, shape[1] > resolution)
    size = [resolution, resolution]
    resized = tf.cond(
        shrinks,
        lambda: tf.image.resize(image, size, method="bilinear", antialias=True),
        lambda: tf.image.resize(image, size, method="bilinear", antialias=False),
    )
    resized.set_shape([resolution, resolution, 3])
    return resized


def cached_side(resolution: int) -> int:
    """The shorter side an image is cached at for a pipeline at ``resolution``: the side whose
    central crop (``CENTRAL_FRACTION``) is ρ (256 for 224, 220 for 192, 183 for 160, 147 for
    128), as the reference evaluation resizes to 256 before its central 224."""
    return math.ceil(resolution / CENTRAL_FRACTION)


def near_resolution(image: tf.Tensor, resolution: int) -> tf.Tensor:
    """A uint8 ``image`` shrunk (antialiased, aspect kept) so that its shorter side is
    ``cached_side(resolution)``; one no larger is returned as it is.

    What the in-memory cache holds: the per-epoch crop and resize then start from an image near
    ρ instead of the native one, so their cost follows ρ, not the dataset (``mnv1-bench data``:
    the input wait share of a fit step at α = 0.25 was 7-8% at ρ = 192 and 160 from the 256-px
    synthetic images). Every crop keeps at least the pixels ρ needs down to the evaluation's
    central crop; smaller training crops are upsampled from fewer pixels than before.
    """
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short = tf.minimum(height, width)
    side = cached_side(resolution)

    def shrink() -> tf.Tensor:
        scale = tf.cast(side, tf.float32) / tf.cast(short, tf.float32)
        size = tf.cast(tf.round(tf.cast(tf.stack([height, width]), tf.float32) * scale), tf.int32)
        resized = tf.image.resize(image, size, method="bilinear", antialias=True)
        return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)

    out = tf.cond(short > side, shrink, lambda: tf.cast(image, tf.uint8))
    out.set_shape([None, None, 3])
    return out


def central_crop(image: tf.Tensor, fraction: float = CENTRAL_FRACTION) -> tf.Tensor:
    """The centred ``fraction`` of each side (rounded to whole pixels)."""
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    crop_h = tf.maximum(tf.cast(tf.round(tf.cast(h, tf.float32) * fraction), tf.int32), 1)
    crop_w = tf.maximum(tf.cast(tf.round(tf.cast(w, tf.float32) * fraction), tf.int32), 1)
    return tf.image.crop_to_bounding_box(
        image, (h - crop_h) // 2, (w - crop_w) // 2, crop_h, crop_w
    )


def eval_image(image: tf.Tensor, resolution: int) -> tf.Tensor:
    """Evaluation transform: central 87.5% crop, resized to ``resolution``, scaled to [-1, 1]."""
    return to_unit_range(_resize(central_crop(image), resolution))


def random_crop_window(
    shape: tf.Tensor, augment: str, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """``(begin, size)`` of an Inception-style random crop of an image of ``shape``."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=MIN_CROP_AREA[augment],
        aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=(MIN_CROP_AREA[augment], 1.0),
        max_attempts=CROP_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def train_image(image: tf.Tensor, resolution: int, augment: str, seed: tf.Tensor) -> tf.Tensor:
    """Training transform for one uint8 image; ``seed`` is an int ``(2, 2)`` tensor.

    Row 0 seeds the crop, row 1 the flip.
    """
    if augment == "none":
        return eval_image(image, resolution)
    problem = rule("data.augment").check(augment)
    if problem is not None:
        raise ConfigError([problem])
    begin, size = random_crop_window(tf.shape(image), augment, seed[0])
    crop = tf.slice(image, begin, size)
    crop = tf.image.stateless_random_flip_left_right(crop, seed=seed[1])
    return to_unit_range(_resize(crop, resolution))
