"""Pure-numpy renderer of the synthetic images (the TFDS builder is ``mnv1.data.synthetic``).

Each class is a pair (shape family, texture) and every image is drawn from per-image random
parameters; ``mnv1.data.synthetic`` documents the design. Rendering is vectorised over a chunk of
images: all coordinate maps, masks and textures are ``(n, size, size)`` float32 arrays, grouped by
shape family or texture so each formula runs once per group, never once per image.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
from PIL import Image

SHAPES: tuple[str, ...] = ("disk", "square", "triangle", "ring", "cross")
# Every texture maps to itself under a horizontal flip, so flip augmentation never turns one
# class into another (a 45° grating would become a 135° one).
TEXTURES: tuple[str, ...] = ("vertical", "horizontal", "plaid", "crosshatch", "rings")
# Base period of each texture in pixels at the native size 256. Periods near 4-6 px survive the
# 87.5% central crop at ρ=224 but fall towards the Nyquist limit (2 px) at ρ=128, so a smaller
# input really sees less of the texture.
TEXTURE_PERIODS: tuple[float, ...] = (4.5, 4.5, 5.5, 5.0, 4.5)
MAX_CLASSES = len(SHAPES) * len(TEXTURES)
NATIVE_SIZE = 256
CHUNK = 64  # images rendered at once: ~50 MB of float32 at 256 px
JPEG_QUALITY = 92  # high enough that 4-px gratings survive the encoder
NUM_DISTRACTORS = 2


def class_attributes(label: int) -> tuple[int, int]:
    """(shape index, texture index) of a class.

    Class k has shape ``k mod 5`` and texture ``(k mod 5 + k div 5) mod 5``: with 10 classes each
    shape comes with two textures and each texture with two shapes, so neither the shape nor the
    texture alone names the class. Up to 25 classes the pairs stay distinct.
    """
    n = len(SHAPES)
    return label % n, (label % n + label // n) % len(TEXTURES)


def balanced_labels(count: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` labels, class sizes differing by at most one, in a random order."""
    labels = np.arange(count, dtype=np.int64) % num_classes
    return rng.permutation(labels)


def _soft(distance: np.ndarray, radius_px: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of a shape given as ``distance <= 1``, with a one-pixel soft edge."""
    return np.clip((1.0 - distance) * radius_px + 0.5, 0.0, 1.0)


def _shape_mask(family: int, xs: np.ndarray, ys: np.ndarray, cx, cy, radius, angle) -> np.ndarray:
    """Coverage maps ``(n, size, size)`` of one shape family at per-image centre, size, angle."""
    dx, dy = xs - cx, ys - cy
    cos, sin = np.cos(angle), np.sin(angle)
    u = (dx * cos + dy * sin) / radius
    v = (-dx * sin + dy * cos) / radius
    name = SHAPES[family]
    if name == "disk":
        return _soft(np.sqrt(u * u + v * v), radius)
    if name == "square":
        return _soft(np.maximum(np.abs(u), np.abs(v)) / 0.8, radius * 0.8)
    if name == "triangle":
        # Equilateral triangle with its incircle radius 0.5: the largest of the three half-plane
        # distances is 0.5 on the edges.
        d = np.maximum(
            np.maximum(-v, 0.866 * u + 0.5 * v),
            -0.866 * u + 0.5 * v,
        )
        return _soft(d / 0.5, radius * 0.5)
    if name == "ring":
        r = np.sqrt(u * u + v * v)
        return np.minimum(_soft(r, radius), 1.0 - _soft(r / 0.55, radius * 0.55))
    # cross: the union of two bars.
    bar_u = np.maximum(np.abs(u), np.abs(v) / 0.3)
    bar_v = np.maximum(np.abs(v), np.abs(u) / 0.3)
    return _soft(np.minimum(bar_u, bar_v), radius * 0.3)


def _texture(kind: int, xs: np.ndarray, ys: np.ndarray, cx, cy, period, phase) -> np.ndarray:
    """Zero-mean patterns in [-1, 1], ``(n, size, size)``, with per-image period and phase."""
    w = 2.0 * np.pi / period
    name = TEXTURES[kind]
    if name == "vertical":
        return np.sin(w * xs + phase)
    if name == "horizontal":
        return np.sin(w * ys + phase)
    if name == "plaid":
        return 0.5 * (np.sin(w * xs + phase) + np.sin(w * ys - phase))
    if name == "crosshatch":
        diag = w / np.sqrt(2.0)
        return 0.5 * (np.sin(diag * (xs + ys) + phase) + np.sin(diag * (xs - ys) - phase))
    return np.sin(w * np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) + phase)


def _smooth_field(rng: np.random.Generator, n: int, size: int, cells: int) -> np.ndarray:
    """Low-frequency clutter ``(n, size, size)`` in [0, 1]: a coarse random grid, upsampled."""
    grid = rng.uniform(0.0, 1.0, size=(n, cells, cells)).astype(np.float32)
    pos = np.linspace(0.0, cells - 1.0, size, dtype=np.float32)
    lo = np.minimum(pos.astype(np.int64), cells - 2)
    frac = pos - lo
    interp = np.zeros((size, cells), dtype=np.float32)
    interp[np.arange(size), lo] = 1.0 - frac
    interp[np.arange(size), lo + 1] = frac
    # Bilinear upsampling is two small matrix products per image: rows, then columns.
    return interp @ grid @ interp.T


def _column(values: np.ndarray) -> np.ndarray:
    """Per-image parameters shaped to broadcast against ``(n, h, w)`` maps."""
    return values.astype(np.float32)[:, None, None]


class _Layer:
    """One object per image, rendered only inside a square window around it.

    Shapes cover a small part of the image, so computing masks and textures in a per-image
    window (not over the whole image) makes rendering several times faster.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        n: int,
        size: int,
        centre: tuple[float, float],
        radius: tuple[float, float],
    ) -> None:
        self.cx = rng.uniform(*centre, n) * size
        self.cy = rng.uniform(*centre, n) * size
        self.radius = rng.uniform(*radius, n) * size
        self.angle = rng.uniform(0.0, 2.0 * np.pi, n)
        # Window side: the largest diameter plus a margin for the soft edge, within the image.
        self.window = min(size, int(np.ceil(2.0 * radius[1] * size)) + 4)
        half = self.window / 2.0
        self.x0 = np.clip(np.round(self.cx - half), 0, size - self.window).astype(np.int64)
        self.y0 = np.clip(np.round(self.cy - half), 0, size - self.window).astype(np.int64)
        steps = np.arange(self.window, dtype=np.float32)
        # Pixel coordinates of each image's window, in the full image's frame.
        self.xs = (self.x0[:, None] + steps)[:, None, :].astype(np.float32)
        self.ys = (self.y0[:, None] + steps)[:, :, None].astype(np.float32)

    def masks(self, families: np.ndarray) -> np.ndarray:
        """Coverage ``(n, window, window)`` of each image's shape."""
        out = np.empty((len(families), self.window, self.window), dtype=np.float32)
        for family in np.unique(families):
            idx = np.flatnonzero(families == family)
            out[idx] = _shape_mask(
                int(family),
                self.xs[idx],
                self.ys[idx],
                _column(self.cx[idx]),
                _column(self.cy[idx]),
                _column(self.radius[idx]),
                _column(self.angle[idx]),
            )
        return out

    def paste(self, image: np.ndarray, masks: np.ndarray, fill: np.ndarray) -> None:
        """Composite ``fill`` (``(n, w, w, 3)`` or ``(n, 1, 1, 3)``) over ``image`` in place."""
        w = self.window
        for i in range(len(masks)):
            y, x = self.y0[i], self.x0[i]
            region = image[i, y : y + w, x : x + w]
            region += masks[i][..., None] * (fill[i] - region)


def render(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Render one image per label: uint8 ``(n, size, size, 3)``."""
    n = len(labels)
    scale = size / NATIVE_SIZE

    # Background: two random colours blended by a smooth random field.
    near = rng.uniform(0.1, 0.9, size=(n, 3)).astype(np.float32)
    far = rng.uniform(0.1, 0.9, size=(n, 3)).astype(np.float32)
    blend = _smooth_field(rng, n, size, cells=6)
    image = np.empty((n, size, size, 3), dtype=np.float32)
    for c in range(3):  # one channel at a time: a broadcast over the last axis is 2x slower
        image[..., c] = near[:, c, None, None] + (far - near)[:, c, None, None] * blend

    # Flat-coloured distractors of random families, smaller than the target and under it.
    for _ in range(NUM_DISTRACTORS):
        layer = _Layer(rng, n, size, centre=(0.1, 0.9), radius=(0.06, 0.13))
        masks = layer.masks(rng.integers(0, len(SHAPES), size=n))
        colour = rng.uniform(0.0, 1.0, size=(n, 1, 1, 3)).astype(np.float32)
        layer.paste(image, masks, colour)

    # The target: its family and texture carry the class; everything else is random.
    attrs = np.array([class_attributes(int(k)) for k in labels], dtype=np.int64).reshape(n, 2)
    target = _Layer(rng, n, size, centre=(0.3, 0.7), radius=(0.17, 0.3))
    masks = target.masks(attrs[:, 0])
    colour = rng.uniform(0.2, 0.8, size=(n, 1, 1, 3)).astype(np.float32)
    contrast = rng.uniform(0.12, 0.3, n)
    period_jitter = rng.uniform(0.9, 1.1, n)
    phase = rng.uniform(0.0, 2.0 * np.pi, n)
    patterns = np.empty_like(masks)
    for kind in np.unique(attrs[:, 1]):
        idx = np.flatnonzero(attrs[:, 1] == kind)
        period = TEXTURE_PERIODS[int(kind)] * scale * period_jitter[idx]
        patterns[idx] = _texture(
            int(kind),
            target.xs[idx],
            target.ys[idx],
            _column(target.cx[idx]),
            _column(target.cy[idx]),
            _column(period),
            _column(phase[idx]),
        ) * _column(contrast[idx])
    target.paste(image, masks, colour + patterns[..., None])

    # Sensor noise: per-image windows of one shared noise tile, at a per-image strength (drawing
    # fresh normals for every pixel would cost more than the rest of the rendering).
    tile = rng.standard_normal(size=(2 * size, 2 * size, 3), dtype=np.float32)
    offsets = rng.integers(0, size, size=(n, 2))
    sigma = rng.uniform(0.01, 0.04, n).astype(np.float32)
    for i, (y, x) in enumerate(offsets):
        image[i] += sigma[i] * tile[y : y + size, x : x + size]
    np.clip(image, 0.0, 1.0, out=image)
    image *= 255.0
    image += 0.5
    return image.astype(np.uint8)


def encode_jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def generate(
    count: int, num_classes: int, size: int, seed: int, split_id: int
) -> Iterator[tuple[int, bytes, int]]:
    """Yield ``(index, jpeg_bytes, label)`` for one split.

    The labels come from one generator seeded by ``(seed, split_id)``; each chunk of images from
    its own generator seeded by ``(seed, split_id, chunk)``, so the output depends only on the
    arguments (not on how far a previous run got).
    """
    labels = balanced_labels(count, num_classes, np.random.default_rng([seed, split_id]))
    for start in range(0, count, CHUNK):
        chunk_labels = labels[start : start + CHUNK]
        rng = np.random.default_rng([seed, split_id, start // CHUNK])
        images = render(chunk_labels, size, rng)
        for offset, (image, label) in enumerate(zip(images, chunk_labels, strict=True)):
            yield start + offset, encode_jpeg(image), int(label)
