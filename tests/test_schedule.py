"""How the suite is grouped and ordered for its xdist workers (tests/schedule_support.py), on a
small suite of its own collected by pytest in this process (``pytester``)."""

from __future__ import annotations

import pytest

pytest_plugins = ("pytester",)

CONFTEST = """
import pytest
from schedule_support import arrange

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    arrange(config, items, root=config.rootpath)

@pytest.fixture(scope="session")
def sweep():
    return "trained once"

@pytest.fixture(scope="session", autouse=True)
def everywhere():
    yield

@pytest.fixture(scope="session")
def probe_cache():
    return "built once for every worker"
"""


def _arranged(pytester: pytest.Pytester, **modules: str) -> list[tuple[str, list[str]]]:
    """(test name, its xdist groups) in the order ``arrange`` leaves the tests."""
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow\ntimeout = 300\n")
    pytester.makepyfile(**modules)
    [finished] = pytester.inline_run("--collect-only").getcalls("pytest_collection_finish")
    items = finished.session.items
    return [(item.name, [m.args[0] for m in item.iter_markers("xdist_group")]) for item in items]


def test_tests_sharing_a_module_or_session_fixture_form_one_group(
    pytester: pytest.Pytester,
) -> None:
    found = dict(
        _arranged(
            pytester,
            test_a="""
import pytest

@pytest.fixture(scope="module")
def server():
    return "started once"

def test_reads_the_sweep(sweep): pass
def test_uses_the_server(server): pass
def test_uses_the_server_too(server, probe_cache): pass
def test_alone(tmp_path): pass
""",
            test_b="""
def test_reads_the_sweep_elsewhere(sweep): pass
def test_only_the_shared_cache(probe_cache): pass
""",
        )
    )
    # One group per shared fixture, across modules; the autouse fixture every test has and the
    # fixture built once for every worker group nothing.
    assert found == {
        "test_reads_the_sweep": ["sweep"],
        "test_uses_the_server": ["test_a"],
        "test_uses_the_server_too": ["test_a"],
        "test_alone": [],
        "test_reads_the_sweep_elsewhere": ["sweep"],
        "test_only_the_shared_cache": [],
    }


def test_the_longest_work_comes_first_and_a_group_stays_together(
    pytester: pytest.Pytester,
) -> None:
    order = _arranged(
        pytester,
        test_a="""
import pytest

def test_fast(): pass

@pytest.mark.slow
def test_slow_default(): pass

@pytest.mark.slow
def test_reads_the_sweep(sweep): pass

@pytest.mark.slow
@pytest.mark.timeout(900)
def test_slow_long(): pass

def test_fast_reads_the_sweep(sweep): pass
""",
    )
    # Units by their slow tests' time limits: the sweep's group 300 (its fast test 0), the long
    # test 900, the other slow one 300; fast tests last in their own order, ties in theirs.
    assert [name for name, _ in order] == [
        "test_slow_long",
        "test_slow_default",
        "test_reads_the_sweep",
        "test_fast_reads_the_sweep",
        "test_fast",
    ]
