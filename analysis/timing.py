"""How long a patch was really looked at, from the events the reading page records. No Django here.

The page sends, with each answer, the events since the patch was drawn: `[milliseconds since drawn,
kind]` with kinds "hidden"/"visible" (the Page Visibility API), "blur"/"focus" (the window), "input" (a
key, a click or a pointer move). The rule, fixed here: time counts while the page is visible and
focused, and stops `IDLE_MS` after the last sign of the reader (the patch drawn, an input, the page
shown or focused again) until the next one. The answer itself ends the count (`answered_ms`).
"""

from __future__ import annotations

from collections.abc import Sequence

IDLE_MS = 60_000
KINDS = ("hidden", "visible", "blur", "focus", "input")
MAX_EVENTS = 2000


class EventsError(ValueError):
    """Events that do not describe a reading; the message says what is wrong."""


def events_clean(raw: object) -> list[tuple[int, str]]:
    """The page's events checked: a list of [ms, kind] with ms whole, not negative and not decreasing."""
    if not isinstance(raw, list):
        raise EventsError("events must be a list of [milliseconds, kind] pairs")
    if len(raw) > MAX_EVENTS:
        raise EventsError(f"at most {MAX_EVENTS} events per answer, got {len(raw)}")
    events: list[tuple[int, str]] = []
    for entry in raw:
        if not (isinstance(entry, list | tuple) and len(entry) == 2):
            raise EventsError(f"an event is [milliseconds, kind], got {entry!r}")
        at, kind = entry
        if isinstance(at, bool) or not isinstance(at, int | float) or at < 0 or at > 10**10:
            raise EventsError(f"an event's time must be milliseconds from 0, got {at!r}")
        if kind not in KINDS:
            raise EventsError(f"unknown event kind {kind!r}: use one of {', '.join(KINDS)}")
        if events and at < events[-1][0]:
            raise EventsError("events must come in the order they happened")
        events.append((int(at), str(kind)))
    return events


def visible_ms(events: Sequence[tuple[int, str]], answered_ms: int, idle_ms: int = IDLE_MS) -> int:
    """Milliseconds the patch was visible, focused and not idle, from drawn (0) to `answered_ms`."""
    visible = focused = True
    last_sign = 0  # the last sign of the reader
    counted, at = 0, 0

    def count_until(end: int) -> int:
        if not (visible and focused):
            return 0
        start, stop = at, min(end, last_sign + idle_ms)
        return max(0, stop - start)

    for time, kind in [*events, (answered_ms, "answer")]:
        time = max(time, at)
        counted += count_until(time)
        at = time
        if kind == "hidden":
            visible = False
        elif kind == "blur":
            focused = False
        elif kind in ("visible", "focus", "input"):
            if kind == "visible":
                visible = True
            if kind == "focus":
                focused = True
            last_sign = time
    return counted
