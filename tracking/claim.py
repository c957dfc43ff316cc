"""Claiming a run: what a launch does with the run that its key found, written once.

A sweep's cell (``mnv1.sweep.orchestrate``) and a search's trial (``mnv1.tune.trial``) both find
their run again by a key (a run key, a search key and trial id) and then decide the same way:

* no run: CREATE (the caller creates it, with its own tags and params);
* a FINISHED run: SKIP it;
* a RUNNING run whose owner lives: SKIP it (the caller says why, or refuses);
* a RUNNING run whose owner is gone (a launch killed outright): mark it KILLED with the reason,
  then RESUME it;
* a FAILED or KILLED run: RESUME it: RUNNING again under this process, its attempt counted, the
  earlier attempt's artifacts named in ``archive`` moved to ``attempt<N>/``.

Only the test "is the owner gone" differs between the two (a sweep cannot tell for an owner on
another host and leaves its run alone; a trial handed out again by the oracle knows its owner is
gone wherever it ran), so the caller passes it in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .runs import FINISHED, RUNNING, Owner, RunInfo, mark_killed, reopen, set_tags

SKIP, RESUME, CREATE = "skip", "resume", "create"


@dataclass(frozen=True)
class Claim:
    action: str  # SKIP, RESUME or CREATE
    run: RunInfo | None = None
    """The run found (as it was found: its status before this claim); None for CREATE."""
    killed: str | None = None
    """Set when the run was RUNNING under a gone owner and this claim marked it KILLED: why."""


def claim_run(
    uri: str,
    found: RunInfo | None,
    owner_gone: Callable[[RunInfo], str | None],
    *,
    owner: Owner | None = None,
    archive: Iterable[str] = (),
    tags: Mapping[str, str] | None = None,
) -> Claim:
    """Skip, resume or create the run ``found`` (the newest run with the caller's key, or None).

    ``owner_gone(run)`` is asked only of a RUNNING run: the reason to mark it KILLED when its
    owner is gone, None while the owner may still run it. A resumed run is reopened under
    ``owner`` (default: this process) and gets ``tags`` (a scheduler job, a tuner id).
    """
    if found is None:
        return Claim(CREATE)
    if found.status == FINISHED:
        return Claim(SKIP, found)
    killed = None
    if found.status == RUNNING:
        killed = owner_gone(found)
        if killed is None:
            return Claim(SKIP, found)
        mark_killed(uri, found, killed)
    reopen(uri, found, owner or Owner.current(), archive=archive)
    if tags:
        set_tags(uri, found.run_id, tags)
    return Claim(RESUME, found, killed)
