"""The presentation timer: time spent on a case against its budget, pausable.

A timer is a small dict a page keeps per case (`start`, `paused_at`, `paused`), so it
survives reruns and a paused timer stays paused while the group talks over an
interruption. `reading` turns it into what the room sees: the clock, a phase with its
colour and, beside the colour, words (a projector washes colours out, and some of the room
cannot tell them apart).
"""

from __future__ import annotations

from dataclasses import dataclass

# Okabe-Ito, as the charts: bluish green, orange, vermillion.
COLOURS = {"on time": "#009E73", "nearly over": "#E69F00", "over time": "#D55E00"}


@dataclass(frozen=True)
class Reading:
    clock: str      # "04:07": time on this case
    phase: str      # "on time", "nearly over" or "over time"
    colour: str     # the phase's colour
    words: str      # "5:53 left of 10 min", "paused" added when paused
    paused: bool


def started(now: float) -> dict:
    return {"start": now, "paused_at": None, "paused": 0.0}


def elapsed(timer: dict, now: float) -> float:
    end = timer["paused_at"] if timer["paused_at"] is not None else now
    return max(0.0, end - timer["start"] - timer["paused"])


def toggled(timer: dict, now: float) -> dict:
    """Pause a running timer, or let a paused one run on from where it stopped."""
    if timer["paused_at"] is None:
        return {**timer, "paused_at": now}
    return {**timer, "paused_at": None, "paused": timer["paused"] + now - timer["paused_at"]}


def warning_seconds(budget_minutes: int) -> int:
    """When the timer turns orange: the last fifth of the budget, at least the last minute."""
    return max(60, budget_minutes * 12)


def reading(timer: dict, budget_minutes: int, now: float) -> Reading:
    spent = int(elapsed(timer, now))
    left = budget_minutes * 60 - spent
    clock = f"{spent // 60:02d}:{spent % 60:02d}"
    if left < 0:
        phase, words = "over time", f"{-left // 60}:{-left % 60:02d} over the {budget_minutes} min"
    else:
        phase = "nearly over" if left <= warning_seconds(budget_minutes) else "on time"
        words = f"{left // 60}:{left % 60:02d} left of {budget_minutes} min"
    paused = timer["paused_at"] is not None
    return Reading(clock, phase, COLOURS[phase], f"{phase}, {words}" + (" (paused)" if paused else ""), paused)
