"""How the suite runs on several pytest-xdist workers (``make test``: ``-n 2 --dist loadgroup``).

Two things decide the wall time of a parallel run: that nothing expensive is built twice, and
that the longest work starts first.

*Built once per worker.* xdist runs each module- or session-scoped fixture once in every worker
that runs a test using it, so a shared sweep split over two workers would be trained twice.
``arrange`` therefore puts every test that uses a module- or session-scoped fixture of this
directory into one ``xdist_group`` with every other test using that fixture (transitively: tests
linked through any such fixture form one group), and ``--dist loadgroup`` sends a group to one
worker. The groups are derived from the fixtures, so a fixture added later is grouped without a
mark; a fixture built once for the whole run across workers (``built_once``) is left out, as it
costs each worker nothing but a lock, and so is every autouse fixture (it applies to every test,
so it would make the whole suite one group; each worker sets it up for itself).

*Longest first.* ``--dist loadgroup`` hands out work units (a group, or a test alone) in
collection order, each to the next worker with little left to do. ``arrange`` orders the units
by an estimate of their cost: the time limit of each slow test (its ``@pytest.mark.timeout``,
else the ini ``timeout``) summed over the unit, fast tests last in their own order. A unit's
tests stay together and in order, so a module's fixture is set up once when the suite runs
serially too (``-n 0`` or ``-p no:xdist``).

``built_once`` is pytest-xdist's documented pattern for data shared by the workers: the first
worker to take the file lock builds it under the run's common temporary directory
(``getbasetemp().parent``), the others find it there.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from filelock import FileLock

TESTS = Path(__file__).resolve().parent
# Fixtures built once per run for every worker (``built_once``): sharing one puts no test in a
# group.
ACROSS_WORKERS = frozenset({"probe_cache", "store_template"})
SHARED_SCOPES = frozenset({"class", "module", "package", "session"})


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name``, built by ``build(folder)`` once per test run: once per session
    without xdist, and once for all workers with it (the others wait on the lock, then reuse
    it)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        folder = factory.mktemp(name)
        build(folder)
        return folder
    shared = factory.getbasetemp().parent
    folder = shared / name
    with FileLock(str(shared / f"{name}.lock")):
        done = folder / ".built"
        if not done.exists():
            folder.mkdir(exist_ok=True)
            build(folder)
            done.touch()
    return folder


def _ours(definition: pytest.FixtureDef[object], root: Path) -> bool:
    try:
        source = inspect.getsourcefile(definition.func)
    except TypeError:
        return False
    return source is not None and Path(source).resolve().is_relative_to(root)


def _shared_keys(item: pytest.Item, root: Path) -> list[tuple[str, str]]:
    """(label, identity) of each module- or session-scoped fixture of ours the test uses."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    keys = []
    for name, definitions in sorted(info.name2fixturedefs.items()):
        definition = definitions[-1]  # the one that applies to this test
        if name in ACROSS_WORKERS or definition.scope not in SHARED_SCOPES:
            continue
        # An autouse fixture applies to every test under it: it would put them all in one
        # group (one worker doing everything). Each worker sets it up for itself.
        if getattr(definition, "_autouse", False):
            continue
        if not _ours(definition, root):
            continue  # pytest's or a plugin's own (tmp_path_factory, worker_id)
        if definition.scope in ("session", "package"):
            keys.append((name, f"{definition.scope}:{name}"))
        else:
            module = Path(str(item.path)).stem
            keys.append((module, f"{module}:{name}"))
    for mark in item.iter_markers("xdist_group"):
        label = str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        keys.append((label, f"mark:{label}"))
    return keys


class _Groups:
    """Union-find over fixture identities; each set is one xdist group."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.label: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, keys: Iterable[tuple[str, str]]) -> None:
        first = None
        for label, key in keys:
            self.label.setdefault(key, label)
            root = self.find(key)
            if first is None:
                first = root
            elif root != first:
                self.parent[root] = first


def _cost(item: pytest.Item, default_timeout: float) -> float:
    """The estimate ``arrange`` orders by: a slow test's time limit; 0 for a fast test."""
    if item.get_closest_marker("slow") is None:
        return 0.0
    mark = item.get_closest_marker("timeout")
    if mark is not None and mark.args:
        return float(mark.args[0])
    return default_timeout


def arrange(config: pytest.Config, items: list[pytest.Item], root: Path = TESTS) -> None:
    """Group the tests that share a fixture defined under ``root`` and order the units longest
    first, in place."""
    groups = _Groups()
    keys = [_shared_keys(item, root.resolve()) for item in items]
    for item_keys in keys:
        groups.join(item_keys)
    explicit: dict[str, set[str]] = {}
    for item_keys in keys:
        for label, key in item_keys:
            if key.startswith("mark:"):
                explicit.setdefault(groups.find(key), set()).add(label)
    units: dict[str, list[pytest.Item]] = {}
    for item, item_keys in zip(items, keys, strict=True):
        if not item_keys:
            units[item.nodeid] = [item]
            continue
        root = groups.find(item_keys[0][1])
        named = explicit.get(root, set())
        if len(named) > 1:
            raise pytest.UsageError(
                f"{item.nodeid}: xdist groups {sorted(named)} share a fixture; use one name"
            )
        name = next(iter(named)) if named else groups.label[root]
        if not named:
            item.add_marker(pytest.mark.xdist_group(name))
        units.setdefault(f"group:{name}", []).append(item)
    default_timeout = float(config.getini("timeout") or 0)
    ordered = sorted(
        units.values(), key=lambda unit: -sum(_cost(item, default_timeout) for item in unit)
    )
    items[:] = [item for unit in ordered for item in unit]


def check_groups_kept(session: pytest.Session) -> None:
    """On an xdist worker under ``--dist loadgroup``: every grouped test's id carries its group
    (``<id>@<group>``, what the scheduler reads); else say so in the run's warnings. pytest 9.2
    made xdist 3.8 drop the groups without a word (pytest-dev/pytest-xdist#1386): the tests still
    pass, but every shared sweep is built on each worker. (A worker that raises here only shows
    as a crashed worker, without the message.)"""
    if os.environ.get("PYTEST_XDIST_WORKER") is None or not session.config.getvalue("loadgroup"):
        return
    lost = [
        item.nodeid
        for item in session.items
        if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid
    ]
    if lost:
        warnings.warn(
            pytest.PytestWarning(
                f"--dist loadgroup lost the xdist groups of {len(lost)} tests (e.g. {lost[0]}): "
                f"this pytest-xdist does not group on pytest {pytest.__version__} "
                "(pytest-dev/pytest-xdist#1386), so each worker builds every shared sweep; "
                "install the versions pyproject.toml pins"
            ),
            stacklevel=1,
        )
