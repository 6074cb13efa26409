"""What a shared address may carry: the ids in `/case?client=c015` or `/present?conference=3`.

A bookmark with a typo must never open someone else's case. So an id from the address is
checked against the character set ids have, then looked up; an id that is not well formed
or not in the store gets a sentence naming it, and the page shows no other case in its
place. The sentence quotes what the address said, so a page shows it as text
(`as_text`), never as Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Collection

# A client or therapist id: a pseudonym of letters, digits, '_', '.' and '-' (the data
# contract's id rule; `core.validate` checks imported rows with it).
ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
_ID = re.compile(ID_PATTERN)
_NUMBER = re.compile(r"^[0-9]{1,9}$")
_SHOWN = 64  # characters of a malformed value quoted back
MARKDOWN_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def as_text(sentence: str) -> str:
    """`sentence` as Markdown that shows it literally: every ASCII punctuation mark is
    backslash-escaped, so no emphasis, link, HTML, LaTeX or Streamlit directive comes out
    of a quoted value (for `st.warning`, `st.error` and the other Markdown elements)."""
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", sentence)


def _quoted(value: str) -> str:
    value = " ".join(value.split())
    return f"'{value[:_SHOWN]}{'...' if len(value) > _SHOWN else ''}'"


def client_problem(value: str | None, known: Collection[str]) -> str | None:
    """Why the address's client id `value` opens no case (None when it is fine or absent)."""
    if value is None:
        return None
    if not _ID.match(value):
        return (f"The link names the client {_quoted(value)}, which is not a client id (1 to 64 letters, digits, "
                "'_', '.' or '-'). No case is shown: check the link, or pick a case.")
    if value not in known:
        return (f"There is no case {_quoted(value)} in the store (or you may not see it). No other case is shown "
                "in its place: check the link, or pick a case.")
    return None


def conference_id(value: str | None, known: Collection[int]) -> tuple[int | None, str | None]:
    """The address's conference number as (id, None), or (None, why it opens none).
    Absent: (None, None)."""
    if value is None:
        return None, None
    if not _NUMBER.match(value):
        return None, (f"The link names the conference {_quoted(value)}, which is not a conference number. No "
                      "conference is shown: check the link, or pick a conference.")
    if int(value) not in known:
        return None, (f"There is no conference {_quoted(value)} in the store. No other conference is shown in "
                      "its place: check the link, or pick a conference.")
    return int(value), None


def agenda_place(value: str | None, cases: int) -> tuple[int | None, str | None]:
    """The address's place on an agenda of `cases` cases (`item`, 1 = the first case) as
    (place, None), or (None, why it shows none). Absent: the first case."""
    if value is None:
        return 1, None
    if not _NUMBER.match(value) or not 1 <= int(value) <= cases:
        return None, (f"The link names case {_quoted(value)} of the agenda, which has {cases} case(s). No other "
                      "case is shown in its place: start at the first case, or check the link.")
    return int(value), None
