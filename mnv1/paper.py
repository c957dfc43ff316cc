"""The paper's printed numbers in one place, each with its source, plus the known errata.

Everything here is *as printed*, transcribed from the sources listed below (each value carries
its source's tag); the exact counts of the model we build come from :mod:`mnv1.costs`, never from
this module, so a report can set the two side by side and flag where they differ. Pure Python:
importing this module does not import TensorFlow or Keras.

Sources (the tags used in ``source`` fields):

* ``[P]``: the paper, Howard et al. 2017, arXiv:1704.04861 (Tables 1-10).
* ``[S17]``: TF-slim ``slim/nets/mobilenet_v1.md`` @ a4e31b34, the 2017_06_14 checkpoints.
* ``[S18a]``: TF-slim ``research/slim/nets/mobilenet_v1.md`` @ 02c04f49, the 2018_02_22
  checkpoints (the float numbers are unchanged in the 2018_08_02 file, @ 10cf1c0a).
* ``[C]``: exact counts computed from Table 1's architecture, layer by layer (``mnv1.costs``
  counts the built model; ``tests/test_costs.py`` holds the same counts worked out
  independently of it).

Units: ``top1`` in percent, ``mult_adds_m`` in millions of multiply-accumulates, ``params_m`` in
millions of parameters. :func:`printed_decimals` gives the number of decimals a value was printed
with, which is the precision to compare an exact count at.

Errata (:data:`ERRATA`) are printed values whose correction is derived from the architecture or
the counting convention; differences nobody can derive are :data:`UNEXPLAINED`, and differences
between the paper's text and the reference implementations :data:`IMPLEMENTATION_NOTES`; only
an erratum excuses a difference in a check. Errata are looked up by ``(table, item)``. ``table``
is ``"Table N"`` or ``"TF-slim"``; ``item`` is ``"<row label> <column>"`` where the row label is
the model (or layer type) exactly as printed and the column is ``mult-adds``, ``params``,
``stride`` or ``top1``, e.g.
``erratum_for("Table 2", "Conv 3x3 mult-adds")`` or
``erratum_for("TF-slim", "MobileNet_v1_0.75_224 mult-adds")``. Notes that concern the text or
the reference implementations rather than one cell use a descriptive item (``"nonlinearity"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mnv1.config import VARIANTS

SOURCES: dict[str, str] = {
    "[P]": "Howard et al. 2017, MobileNets, arXiv:1704.04861",
    "[S17]": "tensorflow/models slim/nets/mobilenet_v1.md @ a4e31b34 (2017_06_14 checkpoints)",
    "[S18a]": (
        "tensorflow/models research/slim/nets/mobilenet_v1.md @ 02c04f49 (2018_02_22 checkpoints)"
    ),
    "[I1997]": "tensorflow/models#1997, 'mobilenet paper typo'",
    "[K2]": "keras-team/keras keras/applications/mobilenet.py @ 9c78a9ef (module docstring)",
    "[C]": "exact counts computed from Table 1's architecture (mnv1.costs, tests/test_costs.py)",
}

# The model variants, and "other" for the paper's rows that are not MobileNets.
VARIANT_KINDS: tuple[str, ...] = (*VARIANTS, "other")


@dataclass(frozen=True)
class PaperRow:
    """One row of one of the paper's Tables 4-9, as printed."""

    model: str
    alpha: float | None
    resolution: int | None
    variant: str
    """``separable`` | ``full_conv`` | ``shallow``, or ``other`` for GoogleNet, VGG 16 etc."""
    top1: float
    mult_adds_m: float
    params_m: float
    source: str
    num_classes: int = 1000


def _row(
    table: int,
    model: str,
    alpha: float | None,
    resolution: int | None,
    top1: float,
    mult_adds_m: float,
    params_m: float,
    variant: str = "separable",
) -> PaperRow:
    return PaperRow(
        model=model,
        alpha=alpha,
        resolution=resolution,
        variant=variant,
        top1=top1,
        mult_adds_m=mult_adds_m,
        params_m=params_m,
        source=f"[P] Table {table}",
    )


# Table 2: Resource per layer type, 1.0 MobileNet-224: type -> (Mult-Adds %, Parameters %).
# The Conv 3x3 Mult-Adds share is printed 1.19; it is 1.91 (see ERRATA).
TABLE2: dict[str, tuple[float, float]] = {
    "Conv 1x1": (94.86, 74.59),
    "Conv DW 3x3": (3.06, 1.06),
    "Conv 3x3": (1.19, 0.02),
    "Fully Connected": (0.18, 24.33),
}
TABLE2_SOURCE = "[P] Table 2"

# Table 3: one 14x14x512 -> 14x14x512 layer (D_K=3, M=N=512, D_F=14) modified cumulatively:
# (Layer/Modification, Million Mult-Adds, Million Parameters).
TABLE3: tuple[tuple[str, float, float], ...] = (
    ("Convolution", 462.0, 2.36),
    ("Depthwise Separable Conv", 52.3, 0.27),
    ("α = 0.75", 29.6, 0.15),
    ("ρ = 0.714", 15.1, 0.15),
)
TABLE3_SOURCE = "[P] Table 3"

TABLE4: tuple[PaperRow, ...] = (
    _row(4, "Conv MobileNet", 1.0, 224, 71.7, 4866.0, 29.3, variant="full_conv"),
    _row(4, "MobileNet", 1.0, 224, 70.6, 569.0, 4.2),
)

TABLE5: tuple[PaperRow, ...] = (
    _row(5, "0.75 MobileNet", 0.75, 224, 68.4, 325.0, 2.6),
    _row(5, "Shallow MobileNet", 1.0, 224, 65.3, 307.0, 2.9, variant="shallow"),
)

TABLE6: tuple[PaperRow, ...] = (
    _row(6, "1.0 MobileNet-224", 1.0, 224, 70.6, 569.0, 4.2),
    _row(6, "0.75 MobileNet-224", 0.75, 224, 68.4, 325.0, 2.6),
    _row(6, "0.5 MobileNet-224", 0.5, 224, 63.7, 149.0, 1.3),
    _row(6, "0.25 MobileNet-224", 0.25, 224, 50.6, 41.0, 0.5),
)

TABLE7: tuple[PaperRow, ...] = (
    _row(7, "1.0 MobileNet-224", 1.0, 224, 70.6, 569.0, 4.2),
    _row(7, "1.0 MobileNet-192", 1.0, 192, 69.1, 418.0, 4.2),
    _row(7, "1.0 MobileNet-160", 1.0, 160, 67.2, 290.0, 4.2),
    _row(7, "1.0 MobileNet-128", 1.0, 128, 64.4, 186.0, 4.2),
)

TABLE8: tuple[PaperRow, ...] = (
    _row(8, "1.0 MobileNet-224", 1.0, 224, 70.6, 569.0, 4.2),
    _row(8, "GoogleNet", None, None, 69.8, 1550.0, 6.8, variant="other"),
    _row(8, "VGG 16", None, None, 71.5, 15300.0, 138.0, variant="other"),
)

TABLE9: tuple[PaperRow, ...] = (
    _row(9, "0.50 MobileNet-160", 0.5, 160, 60.2, 76.0, 1.32),
    _row(9, "Squeezenet", None, None, 57.5, 1700.0, 1.25, variant="other"),
    _row(9, "AlexNet", None, None, 57.2, 720.0, 60.0, variant="other"),
)

TABLES: dict[str, tuple[PaperRow, ...]] = {
    "Table 4": TABLE4,
    "Table 5": TABLE5,
    "Table 6": TABLE6,
    "Table 7": TABLE7,
    "Table 8": TABLE8,
    "Table 9": TABLE9,
}


def _table_key(table: int | str) -> str:
    key = f"Table {table}" if isinstance(table, int) else table
    if key not in TABLES:
        raise ValueError(f"table must be one of {', '.join(TABLES)} (or 4-9), got {table!r}")
    return key


def paper_row(
    table: int | str, alpha: float, resolution: int, variant: str = "separable"
) -> PaperRow | None:
    """The row of ``table`` (``4`` or ``"Table 4"`` … ``9``) for one model, or None if absent."""
    for row in TABLES[_table_key(table)]:
        if row.alpha == alpha and row.resolution == resolution and row.variant == variant:
            return row
    return None


@dataclass(frozen=True)
class SlimRow:
    """One float checkpoint of the TF-slim MobileNet_v1 table.

    The MAC and parameter columns are identical in the 2017 and 2018 files; the accuracy columns
    differ (single-crop ILSVRC-2012 validation, percent). Slim's checkpoints have 1001 outputs.
    """

    alpha: float
    resolution: int
    macs_m: float
    params_m: float
    top1_2017: float
    top5_2017: float
    top1_2018: float
    top5_2018: float
    source: str = "[S17] MACs, params, 2017 accuracies; [S18a] 2018 accuracies"

    @property
    def name(self) -> str:
        """The checkpoint name as printed, e.g. ``MobileNet_v1_0.75_224``."""
        alpha_text = "1.0" if self.alpha == 1.0 else f"{self.alpha:.2f}"
        return f"MobileNet_v1_{alpha_text}_{self.resolution}"


SLIM_CHECKPOINTS: tuple[SlimRow, ...] = (
    SlimRow(1.0, 224, 569.0, 4.24, 70.7, 89.5, 70.9, 89.9),
    SlimRow(1.0, 192, 418.0, 4.24, 69.3, 88.9, 70.0, 89.2),
    SlimRow(1.0, 160, 291.0, 4.24, 67.2, 87.5, 68.0, 87.7),
    SlimRow(1.0, 128, 186.0, 4.24, 64.1, 85.3, 65.2, 85.8),
    SlimRow(0.75, 224, 317.0, 2.59, 68.4, 88.2, 68.4, 88.2),
    SlimRow(0.75, 192, 233.0, 2.59, 67.4, 87.3, 67.2, 87.3),
    SlimRow(0.75, 160, 162.0, 2.59, 65.2, 86.1, 65.3, 86.0),
    SlimRow(0.75, 128, 104.0, 2.59, 61.8, 83.6, 62.1, 83.9),
    SlimRow(0.5, 224, 150.0, 1.34, 64.0, 85.4, 63.3, 84.9),
    SlimRow(0.5, 192, 110.0, 1.34, 62.1, 84.0, 61.7, 83.6),
    SlimRow(0.5, 160, 77.0, 1.34, 59.9, 82.5, 59.1, 81.9),
    SlimRow(0.5, 128, 49.0, 1.34, 56.2, 79.6, 56.3, 79.4),
    SlimRow(0.25, 224, 41.0, 0.47, 50.6, 75.0, 49.8, 74.2),
    SlimRow(0.25, 192, 34.0, 0.47, 49.0, 73.6, 47.7, 72.3),
    SlimRow(0.25, 160, 21.0, 0.47, 46.0, 70.7, 45.5, 70.3),
    SlimRow(0.25, 128, 14.0, 0.47, 41.3, 66.2, 41.5, 66.3),
)


def slim_row(alpha: float, resolution: int) -> SlimRow:
    """The TF-slim checkpoint row for one grid cell; ValueError off the 4 × 4 grid."""
    for row in SLIM_CHECKPOINTS:
        if row.alpha == alpha and row.resolution == resolution:
            return row
    raise ValueError(
        "the TF-slim table has alpha in {1.0, 0.75, 0.5, 0.25} and resolution in "
        f"{{224, 192, 160, 128}}; got alpha={alpha!r}, resolution={resolution!r}"
    )


@dataclass(frozen=True)
class Erratum:
    """A printed value the architecture contradicts, with the derivation of the correct one.

    An erratum excuses a difference between a printed count and ours (the report's verdict
    ``erratum`` instead of ``FAIL``) only because its ``explanation`` derives the correction: it
    says how the printed value arose (a transposed digit, a layer left out, a ρ² scaling applied
    to a layer that does not scale) from the architecture or the counting convention, named in
    ``basis``. A difference nobody can derive is not an erratum: it is in :data:`UNEXPLAINED`
    and stays a failed check.
    """

    table: str
    item: str
    printed: str
    correct: str
    explanation: str
    basis: str
    """What the correction follows from: one of :data:`ERRATUM_BASES`."""

    def __post_init__(self) -> None:
        if self.basis not in ERRATUM_BASES:
            raise ValueError(
                f"erratum {self.table}: {self.item}: basis={self.basis!r}, allowed: "
                f"{', '.join(ERRATUM_BASES)} (a difference without one is UNEXPLAINED)"
            )


ERRATUM_BASES: tuple[str, ...] = ("architecture", "counting convention")


@dataclass(frozen=True)
class KnownDifference:
    """A printed value or statement that differs from ours and that is *not* an erratum: either
    nobody can derive how it arose (:data:`UNEXPLAINED`), or it is a choice of the reference
    implementations rather than an error of a printed count (:data:`IMPLEMENTATION_NOTES`)."""

    table: str
    item: str
    printed: str
    ours: str
    """Our value (or the implementations' choice)."""
    note: str


ERRATA: tuple[Erratum, ...] = (
    Erratum(
        "Table 1",
        "Conv dw 3x3x1024 stride",
        "s2",
        "s1",
        "The second-to-last depthwise conv is printed stride 2, but the table's own input-size "
        "column stays 7x7 and TF-slim and Keras both use stride 1 [I1997]; with stride 2 the "
        "1.0-224 network would have 533.83M mult-adds, not 569M.",
        "architecture",
    ),
    Erratum(
        "Table 2",
        "Conv 3x3 mult-adds",
        "1.19%",
        "1.91%",
        "Digit transposition: the first 3x3 conv has 10,838,016 of 568,740,352 mult-adds "
        "(1.91%); the printed column sums to 99.29%, with 1.91% it sums to 100.01%.",
        "architecture",
    ),
    Erratum(
        "Table 4",
        "Conv MobileNet mult-adds",
        "4866",
        "4867",
        "The exact count with the FC layer is 4,867,293,184 (4867.29M); the printed 4866 equals "
        "the count without the FC (4866.27M), although the printed 29.3M params include it. "
        "A 0.03% inconsistency.",
        "counting convention",
    ),
    Erratum(
        "Table 7",
        "1.0 MobileNet-160 mult-adds",
        "290",
        "291",
        "The exact count is 290,675,200 (290.68M, TF-slim prints 291); the printed 290 is the "
        "224 count scaled by (160/224)^2 = 290.17M, which wrongly scales the FC layer too.",
        "counting convention",
    ),
    Erratum(
        "Table 9",
        "0.50 MobileNet-160 mult-adds",
        "76",
        "77",
        "The exact count is 76,524,800 (76.52M, TF-slim prints 77); the printed 76 is the "
        "0.50-224 count scaled by (160/224)^2 = 76.27M.",
        "counting convention",
    ),
    Erratum(
        "TF-slim",
        "MobileNet_v1_0.75_224 mult-adds",
        "317",
        "325",
        "The exact count is 325.40M (the paper prints 325); slim's 317 equals the count minus "
        "the first 3x3 conv (325.40 - 8.13 = 317.27), an undocumented slip in the table.",
        "counting convention",
    ),
    Erratum(
        "TF-slim",
        "MobileNet_v1_0.75_192 mult-adds",
        "233",
        "239",
        "The exact count is 239.27M (the paper's Table 10 prints 239); slim's 233 equals the "
        "count minus the first 3x3 conv (239.27 - 5.97 = 233.30).",
        "counting convention",
    ),
    Erratum(
        "TF-slim",
        "MobileNet_v1_0.75_160 mult-adds",
        "162",
        "166",
        "The exact count is 166.40M; slim's 162 equals the count minus the first 3x3 conv "
        "(166.40 - 4.15 = 162.25).",
        "counting convention",
    ),
    Erratum(
        "TF-slim",
        "MobileNet_v1_0.75_128 mult-adds",
        "104",
        "107",
        "The exact count is 106.77M; slim's 104 equals the count minus the first 3x3 conv "
        "(106.77 - 2.66 = 104.12).",
        "counting convention",
    ),
)

# Differences nobody has derived. They are listed so a reader finds what is known about them, but
# they never excuse a check: a count that reads one of these printed values' "correct" side is
# still compared with the printed value, and differs, unexplained (a FAIL where it is checked).
UNEXPLAINED: tuple[KnownDifference, ...] = (
    KnownDifference(
        "TF-slim",
        "MobileNet_v1_0.50_224 mult-adds",
        "150",
        "149",
        "The exact count is 149,497,088 (149.50M, rounding-borderline; the paper prints 149). "
        "Unexplained, below 0.5M.",
    ),
    KnownDifference(
        "TF-slim",
        "MobileNet_v1_0.25_192 mult-adds",
        "34",
        "30",
        "The exact count is 30.21M (41M x (192/224)^2 is about 30); 34 is not reproducible "
        "under any counting convention, most likely a typo.",
    ),
    KnownDifference(
        "TF-slim",
        "params",
        "4.24 / 2.59 / 1.34 / 0.47",
        "4.23 / 2.59 / 1.33 / 0.47 (trainable) or 4.25 / 2.60 / 1.34 / 0.48 (all variables)",
        "The slim parameter column matches neither the trainable count (BN gamma and beta) nor "
        "the all-variables count (plus moving mean and variance) of its 1001-class checkpoints; "
        "only 3 values per BN channel round to all four. Good to +-0.01M only.",
    ),
    KnownDifference(
        "Keras docs",
        "1.0 MobileNet mult-adds",
        "529",
        "569 / 418 / 291 / 186",
        "The Keras (TF-Keras era) docstring table prints 529M for 1.0 at every resolution [K2]; "
        "the exact counts at 224/192/160/128 are 568.74 / 418.12 / 290.68 / 186.40.",
    ),
)

# Where the paper's text and the reference implementations (TF-slim, Keras) differ, or their
# documentation says something else: choices and conventions, not errors of a printed count.
IMPLEMENTATION_NOTES: tuple[KnownDifference, ...] = (
    KnownDifference(
        "TF-slim",
        "num_classes",
        "1001",
        "1000",
        "Slim's ImageNet checkpoints have 1001 outputs (class 0 is background); the paper and "
        "Keras count a 1000-way classifier.",
    ),
    KnownDifference(
        "Text",
        "nonlinearity",
        "ReLU",
        "ReLU6",
        "The paper says ReLU after every BatchNorm; TF-slim and Keras use ReLU6, so mnv1 "
        "defaults to ReLU6 and offers ReLU as an option. Not an error in the paper, a "
        "difference from the implementations whose numbers we compare with.",
    ),
    KnownDifference(
        "Text",
        "FC layer",
        "FC 1024x1000 (no bias counted)",
        "1x1 conv / Dense with bias after average pool and dropout",
        "Both reference implementations realise the FC as a layer with a bias after pooling "
        "and a 0.001 dropout; the paper's counts exclude that bias and all BatchNorm values.",
    ),
    KnownDifference(
        "Text",
        "padding",
        "unspecified",
        "TF SAME (stride 2 pads bottom/right only)",
        "Keras reproduces TF SAME with explicit ZeroPadding2D((0,1),(0,1)) plus 'valid' for "
        "stride-2 depthwise convs; ports with symmetric padding get the same shapes but "
        "different numerics when loading TF weights.",
    ),
    KnownDifference(
        "Keras docs",
        "depth_multiplier",
        "the paper's resolution multiplier",
        "DepthwiseConv2D's channel multiplier",
        "Keras's docstring calls depth_multiplier the resolution multiplier; the paper's ρ is "
        "the input size, and depth_multiplier must be 1 for the ImageNet weights.",
    ),
    KnownDifference(
        "TF-slim",
        "top1",
        "70.7 / 68.4 / 64.0 / 50.6 (2017), 70.9 / 68.4 / 63.3 / 49.8 (2018)",
        "70.6 / 68.4 / 63.7 / 50.6 (the paper, Table 6)",
        "The released checkpoints do not reproduce the paper's accuracies exactly; compare "
        "accuracy against one named source, with a tolerance.",
    ),
    KnownDifference(
        "TF-slim",
        "min_depth",
        "max(int(c x alpha), 8)",
        "int(c x alpha) (Keras, mnv1)",
        "Slim floors every layer at 8 channels; on the paper's grid the floor never binds, so "
        "slim and Keras counts differ only for alpha off the grid (e.g. alpha=0.2: 8 vs 6).",
    ),
)


def erratum_for(table: str, item: str) -> Erratum | None:
    """The erratum for one printed value, or None; ``item`` is matched case-insensitively."""
    wanted = item.casefold()
    for erratum in ERRATA:
        if erratum.table == table and erratum.item.casefold() == wanted:
            return erratum
    return None


def unexplained_for(table: str, item: str) -> KnownDifference | None:
    """The known but underived difference for one printed value, or None."""
    wanted = item.casefold()
    for known in UNEXPLAINED:
        if known.table == table and known.item.casefold() == wanted:
            return known
    return None


def printed_decimals(value: float) -> int:
    """Decimals a printed value carries (``4.2`` → 1, ``569`` → 0, ``1.32`` → 2).

    Every value above was typed exactly as printed and none ends in a printed trailing zero, so
    Python's shortest float repr recovers the printed precision.
    """
    text = repr(float(value))
    fraction = text.split(".")[1] if "." in text else ""
    return 0 if fraction == "0" else len(fraction)
