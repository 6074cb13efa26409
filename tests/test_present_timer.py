"""The presentation timer: its phases, its colours with words, and pausing."""

from core.conference.timer import COLOURS, reading, started, toggled


def test_the_timer_turns_orange_in_the_last_fifth_and_red_when_over():
    timer = started(0.0)
    assert reading(timer, 10, 60).phase == "on time"
    assert reading(timer, 10, 8 * 60 + 1).phase == "nearly over"   # 1:59 left of 10 minutes
    over = reading(timer, 10, 11 * 60 + 5)
    assert (over.phase, over.colour, over.clock) == ("over time", COLOURS["over time"], "11:05")
    assert over.words == "over time, 1:05 over the 10 min"  # the colour is never the only sign


def test_a_short_budget_warns_in_its_last_minute():
    assert reading(started(0.0), 2, 50).phase == "on time"
    assert reading(started(0.0), 2, 61).phase == "nearly over"


def test_a_paused_timer_stands_still_and_runs_on_from_where_it_stopped():
    timer = toggled(started(0.0), 30.0)                   # paused after 30 s
    assert reading(timer, 10, 500).clock == "00:30" and reading(timer, 10, 500).paused
    timer = toggled(timer, 100.0)                          # resumed 70 s later
    shown = reading(timer, 10, 110.0)
    assert (shown.clock, shown.paused) == ("00:40", False)
