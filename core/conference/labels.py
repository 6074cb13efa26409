"""Ids in free text, as a conference shows it in the room or hands it out de-identified.

Supervisors refer to cases by id in what they type ("Discuss c014 with th02"): the privacy
guard accepts ids, since they are pseudonyms. Presentation mode and the de-identified
handout name cases by label only, so every client or therapist id in a reason, a note or an
action's text becomes words:

- a client on the agenda: its label ("Case B"); any other client: "another case";
- the presenting therapist, when hidden: "the presenting therapist"; a therapist holding a
  case on the agenda: "the therapist of Case B"; any other therapist: "a therapist".

An action's owner and a text's author are user ids (pseudonyms the users chose), kept as
they are; an owner typed as a therapist id becomes that therapist's user id when a user is
linked to them, else the therapist's words above.
"""

from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass, field

import polars as pl

from ..store import Store
from .meetings import ROSTER

ANOTHER_CASE = "another case"
A_THERAPIST = "a therapist"
PRESENTER = "the presenting therapist"


# Every id of a large store, and the pattern that finds them, took about a second on every
# slide (10^6 sessions): both are kept per store and snapshot, as the ids change only with one.
_KNOWN: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {}
_KNOWN_LOCK = threading.Lock()


def _known_ids(store: Store) -> tuple[frozenset[str], frozenset[str]]:
    """(client ids, therapist ids) of the whole store, only to find and replace them: none
    is shown. Read once per store file and snapshot (its generation)."""
    generation = getattr(store, "generation", None)
    key = (str(getattr(store, "path", id(store))), generation()) if callable(generation) else None
    with _KNOWN_LOCK:
        found = _KNOWN.get(key) if key is not None else None
    if found is None:
        known = store.query("SELECT client_id AS id, true AS client FROM sessions UNION "
                            "SELECT therapist_id, false FROM therapists UNION "
                            "SELECT therapist_id, false FROM sessions WHERE therapist_id IS NOT NULL", scope=ROSTER)
        found = (frozenset(known.filter(pl.col("client"))["id"]), frozenset(known.filter(~pl.col("client"))["id"]))
        if key is not None:
            with _KNOWN_LOCK:
                if len(_KNOWN) >= 8:
                    _KNOWN.pop(next(iter(_KNOWN)))
                _KNOWN[key] = found
    return found


# Where ids can be: a run of the characters an id is made of (letters, digits, '_', '-'
# and '.', the contract) or of other letters, which no id holds but which join a word.
_RUN = re.compile(r"[\w.-]+")


class _IdFinder:
    """Finds any of `ids` as a whole word: with no letter, digit or '_' just before or after
    it (a dot or a hyphen may be either: a dot also ends a sentence, and a hyphen joins two
    ids in a range of cases, "C0012-C0015", or an id to a word, "C0012-related"), the
    longest first where two ids start at one place ("th-12" over "th", "c1.2" over "c1"),
    then on from its end. A regular expression of every id as an alternative found the
    same, but at 10^6 sessions (44,000 ids) compiling it took 0.7 s on each snapshot's
    first slide; a set answers at once."""

    def __init__(self, ids: frozenset[str]):
        self.ids = ids
        self.longest = max(map(len, ids), default=0)

    def spans(self, text: str):
        """(start, end, id) of every id in `text`, left to right."""
        for run in _RUN.finditer(text):
            word, base = run.group(), run.start()
            marks = [k for k, c in enumerate(word) if c in ".-"]
            # Inside a run an id can start only after a dot or a hyphen and end only before one.
            ends = marks + [len(word)]
            after = 0
            for start in [0] + [k + 1 for k in marks]:
                if start < after or start >= len(word):
                    continue
                # Only the ends no longer than the longest id from here: a row of dots
                # ("....", thousands) would otherwise try every later dot from every earlier one.
                for j in range(bisect.bisect_right(ends, start + self.longest) - 1, -1, -1):
                    end = ends[j]
                    if end <= start:
                        break
                    if word[start:end] in self.ids:
                        yield base + start, base + end, word[start:end]
                        after = end
                        break

    def sub(self, replace, text: str) -> str:
        out, last = [], 0
        for start, end, found in self.spans(text):
            out.append(text[last:start])
            out.append(replace(found))
            last = end
        return "".join(out) + text[last:] if out else text


@dataclass
class IdLabels:
    """Replaces client and therapist ids in text with their words."""
    words: dict[str, str]                 # id -> its words (agenda clients, therapists of agenda cases)
    clients: set[str]
    therapists: set[str]
    users: dict[str, str] = field(default_factory=dict)  # therapist id -> the linked user's display id
    hidden_users: set[str] = field(default_factory=set)  # the hidden presenter's own user ids
    finder: _IdFinder = field(init=False)

    def __post_init__(self):
        self.finder = _IdFinder(frozenset(self.clients) | frozenset(self.therapists))

    def _word(self, found: str) -> str:
        return self.words.get(found) or (ANOTHER_CASE if found in self.clients else A_THERAPIST)

    def sub(self, text):
        """`text` with every id replaced; anything not a string is returned as it is."""
        if not isinstance(text, str):
            return text
        return self.finder.sub(self._word, text)

    def person(self, user):
        """An owner or author (a user id) as the de-identified views show it: kept, unless it
        is a store id (then the linked user's id, else its words)."""
        if isinstance(user, str) and user in self.hidden_users:
            return PRESENTER
        if not isinstance(user, str) or user not in self.finder.ids:
            return self.sub(user)
        linked = self.users.get(user)
        if linked and linked not in self.finder.ids and self.words.get(user) != PRESENTER:
            return linked
        return self._word(user)

    def left(self, text: str) -> list[str]:
        """The ids still in `text`."""
        return sorted({found for _, _, found in self.finder.spans(text)})


def id_labels(store: Store, items: pl.DataFrame, *, presenting: str | None = None,
              hide_presenter: bool = True, therapists: bool = True) -> IdLabels:
    """The words for every id of the store, given an agenda (`case_label`, `client_id`).
    `presenting`: the therapist of the case on the screen, "the presenting therapist" when
    `hide_presenter`. With `therapists` false, therapist ids stay (the room sees who presents)."""
    clients, every_therapist = _known_ids(store)
    therapist_ids = every_therapist if therapists else frozenset()
    words = dict(zip(items["client_id"], items["case_label"]))
    users: dict[str, str] = {}
    if therapist_ids:
        held = store.query("SELECT client_id, any_value(therapist_id) AS therapist_id FROM sessions "
                           "WHERE client_id IN (SELECT unnest($c::VARCHAR[])) GROUP BY 1",
                           {"c": items["client_id"].to_list()}, scope=ROSTER)
        holder = dict(held.iter_rows())
        for client, label in zip(items["client_id"], items["case_label"]):
            therapist = holder.get(client)
            if therapist and therapist not in words:
                words[therapist] = f"the therapist of {label}"
        if presenting and hide_presenter:
            words[presenting] = PRESENTER
        linked = store.query("SELECT therapist_id, display_id FROM users WHERE therapist_id IS NOT NULL "
                             "ORDER BY 1, 2", scope=ROSTER)
        for therapist, display in linked.iter_rows():
            users.setdefault(therapist, display)
        if presenting and hide_presenter:
            hidden = set(linked.filter(pl.col("therapist_id") == presenting)["display_id"])
            return IdLabels(words, clients, therapist_ids, users, hidden)
    return IdLabels(words, clients, therapist_ids, users)
