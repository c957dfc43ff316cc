"""Search spaces: YAML files keyed by config path, each entry one KerasTuner hyperparameter.

A space lives in ``conf/tune/space/<name>.yaml`` (``tune.space=<name>``) or any YAML file
(``tune.space=path/to/space.yaml``)::

    train.learning_rate: {type: float, min: 1.0e-3, max: 0.1, sampling: log}
    train.warmup_epochs: {type: choice, values: [0.0, 0.25, 0.5]}

Every key is a plain override of the run config, so a trial is its cell's config with these
values set, and the tuned file feeds exactly these overrides back into ``mnv1-train``. A space is
checked before anything starts: its form, its keys (a cell's coordinates, output paths and
tracking settings cannot be tuned), and whether its bounds and every choice pass the same rules
as ``mnv1-train`` (``mnv1.sweep.validate``) in every cell to be tuned. Pure Python: no
TensorFlow, no KerasTuner.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from mnv1.config import RunConfig, cell_name, flatten, from_dict, to_dict
from mnv1.run_key import VOLATILE_PREFIXES
from mnv1.sweep.validate import problems

KINDS: tuple[str, ...] = ("float", "int", "choice", "boolean")
SAMPLINGS: tuple[str, ...] = ("linear", "log", "reverse_log")
# Keys a search may not touch: the cell's coordinates (they name the cell), the split a trial is
# scored on (the tuner sets it), and everything the run key ignores (paths, tracking, hooks).
FIXED_KEYS: tuple[str, ...] = (
    "model.alpha",
    "model.resolution",
    "model.variant",
    "study",
    "data.holdout_percent",
    "data.train_split",
    "data.val_split",
    "data.max_val_examples",
)


class SpaceError(ValueError):
    """A search space that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Dimension:
    """One tuned config key and the values a trial may give it."""

    key: str
    kind: str
    min: float | None = None
    max: float | None = None
    sampling: str = "linear"
    step: float | None = None
    values: tuple[Any, ...] = ()

    @property
    def log(self) -> bool:
        return self.sampling in ("log", "reverse_log")

    def probes(self) -> list[Any]:
        """The values checked against the run rules before a search starts: the bounds and
        every choice (the rules are ranges, so the bounds stand for everything between)."""
        if self.kind in ("choice",):
            return list(self.values)
        if self.kind == "boolean":
            return [False, True]
        assert self.min is not None and self.max is not None
        if self.kind == "int":
            return [int(self.min), int(self.max)]
        return [float(self.min), float(self.max)]

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind}
        if self.kind in ("float", "int"):
            out.update(min=self.min, max=self.max, sampling=self.sampling)
            if self.step is not None:
                out["step"] = self.step
        if self.kind == "choice":
            out["values"] = list(self.values)
        return out


@dataclass(frozen=True)
class Space:
    name: str
    source: str
    dimensions: tuple[Dimension, ...]

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.dimensions]

    def as_json(self) -> dict[str, Any]:
        """The space as plain data: what ``search_space.json`` holds and the project hash
        covers (its content, not its file name)."""
        return {d.key: d.as_json() for d in self.dimensions}

    def dimension(self, key: str) -> Dimension:
        return next(d for d in self.dimensions if d.key == key)


def known_spaces() -> list[str]:
    folder = files("mnv1.conf") / "tune" / "space"
    return sorted(
        e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml")
    )


def _read(spec: str) -> tuple[str, str]:
    """The YAML text of a space named ``spec`` or stored at the path ``spec``, and its source."""
    if spec.endswith((".yaml", ".yml")) or "/" in spec:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise SpaceError([f"tune.space={spec!r}: no such file"])
        return path.read_text(encoding="utf-8"), str(path)
    entry = files("mnv1.conf") / "tune" / "space" / f"{spec}.yaml"
    if not entry.is_file():
        known = ", ".join(known_spaces())
        raise SpaceError(
            [f"tune.space={spec!r}: no such search space; known: {known} (or a YAML file path)"]
        )
    return entry.read_text(encoding="utf-8"), f"conf/tune/space/{spec}.yaml"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _dimension(key: str, entry: Any, where: str) -> tuple[Dimension | None, list[str]]:
    prefix = f"tune.space {where}: {key}"
    if not isinstance(entry, Mapping):
        return None, [f"{prefix}={entry!r}: must be a mapping with a 'type' ({', '.join(KINDS)})"]
    allowed = {"type", "min", "max", "sampling", "step", "values"}
    extra = sorted(set(entry) - allowed)
    if extra:
        return None, [f"{prefix}: unknown field(s) {', '.join(extra)}; allowed: {sorted(allowed)}"]
    kind = entry.get("type")
    if kind not in KINDS:
        return None, [f"{prefix}: type={kind!r} must be one of {', '.join(KINDS)}"]
    if kind == "choice":
        values = entry.get("values")
        if not isinstance(values, list) or not values:
            return None, [f"{prefix}: values={values!r} must be a non-empty list"]
        if len({type(v) for v in values}) > 1 and not all(_number(v) for v in values):
            return None, [f"{prefix}: values={values!r} must all have one type"]
        if len(set(values)) != len(values):
            return None, [f"{prefix}: values={values!r} repeat a value"]
        return Dimension(key, kind, values=tuple(values)), []
    if kind == "boolean":
        return Dimension(key, kind), []
    low: Any = entry.get("min")
    high: Any = entry.get("max")
    sampling = entry.get("sampling", "linear")
    step = entry.get("step")
    out = []
    if not _number(low) or not _number(high) or not low < high:
        out.append(f"{prefix}: min={low!r}, max={high!r} must be numbers with min < max")
    if kind == "int" and not (isinstance(low, int) and isinstance(high, int)):
        out.append(f"{prefix}: type=int needs integer min and max, got {low!r}, {high!r}")
    if sampling not in SAMPLINGS:
        out.append(f"{prefix}: sampling={sampling!r} must be one of {', '.join(SAMPLINGS)}")
    elif sampling != "linear" and _number(low) and low <= 0:
        out.append(f"{prefix}: sampling={sampling} needs min > 0, got min={low!r}")
    if step is not None and (not _number(step) or step <= 0):
        out.append(f"{prefix}: step={step!r} must be a number > 0, or absent")
    if out:
        return None, out
    return Dimension(key, kind, float(low), float(high), sampling, step), []


def load_space(spec: str) -> Space:
    """Read and check the form of the space ``spec`` (a name or a path); raises SpaceError."""
    text, source = _read(spec)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpaceError([f"tune.space={spec!r}: not valid YAML ({err})"]) from err
    if not isinstance(data, Mapping) or not data:
        raise SpaceError([f"tune.space={spec!r}: must map config keys to hyperparameters"])
    known = set(flatten(to_dict(RunConfig())))
    dims: list[Dimension] = []
    found: list[str] = []
    for key, entry in data.items():
        key = str(key)
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            found.append(f"tune.space {source}: {key} is not a config key{hint}")
            continue
        if key in FIXED_KEYS or key.startswith(VOLATILE_PREFIXES):
            found.append(
                f"tune.space {source}: {key} cannot be tuned (a cell's coordinates, the scoring "
                "split, output paths and tracking settings are fixed)"
            )
            continue
        dim, errors = _dimension(key, entry, source)
        found += errors
        if dim is not None:
            dims.append(dim)
    if found:
        raise SpaceError(found)
    return Space(spec, source, tuple(dims))


def apply_values(cfg: RunConfig, values: Mapping[str, Any]) -> RunConfig:
    """``cfg`` with each dotted key of ``values`` set (a trial's values, a tuned file's
    overrides); raises KeyError naming a key the config does not have."""
    data = to_dict(cfg)
    for key, value in values.items():
        node = data
        *path, leaf = key.split(".")
        for part in path:
            if not isinstance(node.get(part), dict):
                raise KeyError(f"{key} is not a config key")
            node = node[part]
        if leaf not in node or isinstance(node[leaf], dict):
            raise KeyError(f"{key} is not a config key")
        node[leaf] = value
    out = from_dict(data)
    # from_dict builds a RunConfig; a subclass (the tune command's) keeps its own fields.
    if type(cfg) is not RunConfig:
        out = type(cfg)(
            **{f.name: getattr(out, f.name, getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
        )
    return out


def space_problems(space: Space, cells: Sequence[RunConfig]) -> list[str]:
    """Each bound or choice of ``space`` that the run rules reject in a cell to be tuned,
    with the rule's own message; [] when every probe passes everywhere."""
    where: dict[str, list[str]] = {}
    for cfg in cells:
        for dim in space.dimensions:
            for value in dim.probes():
                for message in problems(apply_values(cfg, {dim.key: value})):
                    if message.split("=", 1)[0] != dim.key and message in problems(cfg):
                        continue  # the cell's own problem, reported by the grid check
                    text = f"tune.space {space.source}: {dim.key}={value!r} fails: {message}"
                    where.setdefault(text, []).append(cell_name(cfg))
    lines = []
    for text, names in where.items():
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        lines.append(f"{text} (in {shown})")
    return lines
