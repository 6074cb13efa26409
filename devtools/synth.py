"""A synthetic clinic of any size, for benchmarks: valid contract tables, fast to make.

Unlike the demo (devtools/demo.py) it tells no stories; it is shaped like a busy service
so a benchmark measures the clean import path at scale: clients of 5-40 sessions
(session 0 the intake), about 40 clients a therapist, about 6 therapists a group, and
per session about 4 ratings, 1 coded theme, 0.2 barrier notes and 0.1 rupture/repair
events. Every value is valid and every key unique. Notes are put together from slots of
clean phrases (no digits, no capitalised words after the first), so most are distinct,
as real notes are, and the privacy scan has real work to do.

Everything is vectorised (numpy draws, polars gathers): no Python loop runs per row, so
a million sessions take seconds. `write_synthetic_clinic` writes the tables as contract
CSVs; `generate_synthetic_frames` returns them in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from .demo import catalog_data

CLIENTS_PER_THERAPIST = 40
THERAPISTS_PER_GROUP = 6
SESSIONS_PER_CLIENT = (5, 40)
GAPS = np.array([7, 7, 7, 7, 7, 7, 14, 14, 6, 8, 10, 21, 28, 3, 4])
NO_SHOW = 0.03
MODALITIES = (("individual", "couple", "family", "group"), (0.82, 0.08, 0.06, 0.04))

# Rating plan: (instrument, scale, rater, share of attended sessions); outcome instruments
# per client are drawn below. SRS items come with a fifth of the SRS totals.
PRIMARY = (("ORS", "PHQ-9", "CORE-10", "OQ-45", "BDI-II"), (0.4, 0.3, 0.1, 0.1, 0.1))
SECONDARY_SHARE = 0.55                      # clients who also fill in the GAD-7
# intake mean, intake SD, recovered level, noise SD (as in the demo)
OUTCOME_MODELS = {"ORS": (17, 4, 32, 2.0), "PHQ-9": (16, 4, 5, 1.5), "GAD-7": (13, 3, 4, 1.3),
                  "OQ-45": (84, 15, 44, 5.0), "CORE-10": (19, 5, 7, 1.8), "BDI-II": (28, 8, 9, 2.5)}
THEME_KINDS = (("transference", "countertransference", "ccrt_wish", "ccrt_ro", "ccrt_rs"),
               (0.4, 0.3, 0.1, 0.1, 0.1))
EVENTS = (("rupture_withdrawal", "rupture_confrontation", "repair"), (0.35, 0.25, 0.4))
RATES = {"srs": 0.95, "srs_items": 0.25, "outcome": 0.95, "wai_client": 0.5, "wai_therapist": 0.4,
         "barriers": 0.2, "events": 0.1, "theme_note": 0.25, "event_note": 0.7}

# Five slots of clean phrases: 20 x 20 x 20 x 20 x 16 = 2.56 million sentences, so of
# 200,000 notes drawn about 96 % are distinct.
NOTE_SLOTS = (
    ("Client", "The client", "Early in the session the client", "Towards the end the client",
     "After the homework review the client", "When the goal came up the client", "During the check-in the client",
     "Later in the session the client", "While reviewing the week the client", "When feedback was invited the client",
     "At the start the client", "In the middle of the session the client", "Talking about home the client",
     "When the break was mentioned the client", "During the exercise the client", "Asked about sleep the client",
     "Returning to last week the client", "When the partner came up the client", "As the session ended the client",
     "While setting the agenda the client"),
    ("spoke only briefly", "became guarded", "changed the topic", "seemed distant", "questioned the plan",
     "grew irritated", "went quiet", "joked to deflect", "agreed too quickly", "asked for advice", "looked tearful",
     "spoke very fast", "avoided eye contact", "described feeling judged", "hesitated for a long time",
     "sounded flat", "became self-critical", "pushed back firmly", "asked for reassurance", "seemed relieved"),
    ("about the partner", "about work", "about the family", "about sleep", "about the loss", "about money worries",
     "about the last session", "about the homework", "about friendships", "about the children",
     "about health worries", "about feeling alone", "about the move", "about old memories", "about the future",
     "about anger", "about the therapy itself", "about their parents", "about studying", "about drinking"),
    ("and the therapist named it gently", "and the therapist slowed the pace",
     "and the therapist checked understanding", "but time ran out before it was explored",
     "and the therapist invited feedback", "and the therapist validated the hesitation",
     "and the therapist adjusted the task", "and the therapist explained the rationale again",
     "and the therapist stayed with the feeling", "but the therapist did not comment",
     "and the therapist offered a choice", "and the therapist summarised carefully",
     "and the therapist acknowledged their part", "and the therapist shared the observation",
     "and the therapist asked what would help", "and the therapist reflected the mixed feelings",
     "and the therapist kept to the agreed focus", "and the therapist noted it for supervision",
     "and the therapist held the boundary kindly", "and the therapist linked it to earlier sessions"),
    (", to be revisited next time.", ", to be raised in supervision.", ", and a revised goal was agreed.",
     ", and the client engaged again.", ", which eased the tension.", ", though some distance remained.",
     ", and the client seemed relieved.", ", with a plan to check in next session.", ", and it will be monitored.",
     ", and the client agreed to continue.", " before moving on to the task.",
     ", and the client asked to come back to it.", ", with no clear resolution yet.",
     ", and both agreed to slow down.", " while the client listened closely.", ", and the mood lifted a little."),
)


def synthetic_notes(rng: np.random.Generator, count: int) -> pl.Series:
    """`count` clean notes, each one phrase from every slot."""
    parts = [pl.Series(slot).gather(rng.integers(len(slot), size=count)) for slot in NOTE_SLOTS]
    return pl.select(pl.concat_str([*parts[:-1]], separator=" ") + parts[-1]).to_series().alias("note")


def _client_lengths(n_sessions: int, rng: np.random.Generator) -> np.ndarray:
    """Sessions per client (intake included), 5-40 each, summing to exactly n_sessions."""
    low, high = SESSIONS_PER_CLIENT
    if n_sessions < low:
        return np.array([n_sessions], dtype=np.int64)
    lengths = rng.integers(low, high + 1, size=n_sessions // ((low + high) // 2) + 2)
    while lengths.sum() < n_sessions:
        lengths = np.concatenate([lengths, rng.integers(low, high + 1, size=len(lengths))])
    lengths = lengths[: int(np.searchsorted(np.cumsum(lengths), n_sessions)) + 1]
    # Give the excess back from the last clients, none below the minimum.
    room = (lengths - low)[::-1]
    take = np.clip(lengths.sum() - n_sessions - (np.cumsum(room) - room), 0, room)[::-1]
    return lengths - take


def _ids(prefix: str, count: int, width: int) -> pl.Series:
    return pl.select(pl.format(prefix + "{}", pl.int_range(1, count + 1, eager=True).cast(pl.String)
                               .str.zfill(width))).to_series()


def _choice(rng, options: tuple, p: tuple, size: int) -> np.ndarray:
    return rng.choice(len(options), size=size, p=np.array(p) / sum(p))


def _labels(options, codes: np.ndarray) -> pl.Series:
    return pl.Series(list(options), dtype=pl.String).gather(codes)


def _keys(sessions: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    return sessions.select("client_id", "session_number")[pl.Series(rows)]


def generate_synthetic_frames(n_sessions: int, seed: int = 7) -> dict[str, pl.DataFrame]:
    """The synthetic clinic in memory: one frame per contract table."""
    if n_sessions < 1:
        raise ValueError(f"A synthetic clinic needs at least one session, got {n_sessions}.")
    rng = np.random.default_rng(seed)
    catalog = catalog_data()
    lengths = _client_lengths(n_sessions, rng)
    n_clients = len(lengths)
    client = np.repeat(np.arange(n_clients), lengths)
    start = np.cumsum(lengths) - lengths
    number = np.arange(n_sessions) - np.repeat(start, lengths)
    gaps = GAPS[rng.integers(len(GAPS), size=n_sessions)]
    gaps[start] = 0
    elapsed = np.cumsum(gaps)
    days = elapsed - np.repeat(elapsed[start], lengths)
    attended = rng.random(n_sessions) >= NO_SHOW
    attended[start] = True

    n_therapists = -(-n_clients // CLIENTS_PER_THERAPIST)
    n_groups = -(-n_therapists // THERAPISTS_PER_GROUP)
    therapist_ids = _ids("t", n_therapists, max(4, len(str(n_therapists))))
    client_ids = _ids("c", n_clients, max(5, len(str(n_clients))))
    modality = _choice(rng, *MODALITIES, n_clients)
    sessions = pl.DataFrame({
        "client_id": client_ids.gather(client),
        "session_number": number,
        "therapist_id": therapist_ids.gather(client // CLIENTS_PER_THERAPIST),
        "days_since_intake": days,
        "modality": _labels(MODALITIES[0], modality[client]),
        "attended": attended,
        # The scores discussed with the client in every attended session (CONTRACT.md
        # extension); empty when the session was missed. No random draw: the rest stays as it was.
        "feedback_discussed": pl.Series(attended, dtype=pl.Boolean).replace(False, None),
    })
    therapists = pl.DataFrame({
        "therapist_id": therapist_ids,
        "supervision_group": _ids("group-", n_groups, max(3, len(str(n_groups)))).gather(
            np.arange(n_therapists) // THERAPISTS_PER_GROUP),
        "level": _labels(("trainee", "staff"), (rng.random(n_therapists) >= 0.3).astype(np.int64)),
    })
    ratings = _ratings(rng, catalog, sessions, client, number, attended, n_clients)
    themes = _themes(rng, catalog, sessions, np.flatnonzero(attended))
    barriers = _barriers(rng, catalog, sessions, attended)
    events = _events(rng, sessions, attended & (number >= 1))
    return {"sessions": sessions, "ratings": ratings, "themes": themes, "barriers": barriers,
            "events": events, "therapists": therapists}


def _ratings(rng, catalog, sessions, client, number, attended, n_clients) -> pl.DataFrame:
    n = len(client)
    treated = attended & (number >= 1)
    parts: list[tuple[np.ndarray, str, str, str, np.ndarray]] = []

    # SRS: four 0-10 items around the client's level; the total is their sum.
    level = rng.uniform(7.6, 9.6, size=n_clients)[client] + np.minimum(number, 12) * 0.03
    items = np.clip(np.rint(level[None, :] + rng.normal(0, 0.6, size=(4, n))), 0, 10).astype(np.int64)
    srs = treated & (rng.random(n) < RATES["srs"])
    with_items = srs & (rng.random(n) < RATES["srs_items"])
    parts.append((srs, "SRS", "total", "client", items.sum(axis=0)))
    for scale, row in zip(("relationship", "goals", "approach", "overall"), items):
        parts.append((with_items, "SRS", scale, "client", row))

    # Outcome: a primary instrument per client, the GAD-7 for about half of them, each
    # moving from the intake level towards recovery at the client's own pace.
    primary = _choice(rng, *PRIMARY, n_clients)
    secondary = rng.random(n_clients) < SECONDARY_SHARE
    pace = rng.uniform(-0.2, 1.0, size=n_clients)[client] * (1 - np.exp(-number / rng.uniform(3, 9, n_clients)[client]))
    scored = attended & ((rng.random(n) < RATES["outcome"]) | (number == 0))
    for position, instrument in enumerate(PRIMARY[0]):
        parts.append((scored & (primary[client] == position), instrument, "total", "client",
                      _outcome(rng, catalog, instrument, pace, client, n_clients)))
    parts.append((scored & secondary[client], "GAD-7", "total", "client",
                  _outcome(rng, catalog, "GAD-7", pace, client, n_clients)))

    # WAI-SR totals (12 items rated 1-5) by client and by therapist at some sessions.
    wai = rng.uniform(40, 56, size=n_clients)[client]
    parts.append((treated & (rng.random(n) < RATES["wai_client"]), "WAI-SR", "total", "client",
                  np.clip(np.rint(wai + rng.normal(0, 2.5, n)), 12, 60).astype(np.int64)))
    parts.append((treated & (rng.random(n) < RATES["wai_therapist"]), "WAI-SR", "total", "therapist",
                  np.clip(np.rint(wai - 3 + rng.normal(0, 2.5, n)), 12, 60).astype(np.int64)))

    rows = np.concatenate([np.flatnonzero(mask) for mask, *_ in parts])
    labels = [(instrument, scale, rater) for _, instrument, scale, rater, _ in parts]
    which = np.concatenate([np.full(int(mask.sum()), i) for i, (mask, *_) in enumerate(parts)])
    score = np.concatenate([values[mask] for mask, *_, values in parts])
    order = np.argsort(rows, kind="stable")
    rows, which, score = rows[order], which[order], score[order]
    return _keys(sessions, rows).with_columns(
        _labels([l[0] for l in labels], which).alias("instrument"),
        _labels([l[1] for l in labels], which).alias("scale"),
        _labels([l[2] for l in labels], which).alias("rater"),
        pl.Series("score", score))


def _outcome(rng, catalog, instrument, pace, client, n_clients) -> np.ndarray:
    mean, sd, recovered, noise = OUTCOME_MODELS[instrument]
    low, high = catalog["instruments"][instrument]["scales"]["total"]
    intake = np.clip(rng.normal(mean, sd, size=n_clients), low, high)[client]
    values = intake + pace * (recovered - intake) + rng.normal(0, noise, size=len(client))
    return np.clip(np.rint(values), low, high).astype(np.int64)


def _themes(rng, catalog, sessions, rows) -> pl.DataFrame:
    """One coded theme per attended session."""
    n = len(rows)
    kinds = THEME_KINDS[0]
    kind = _choice(rng, *THEME_KINDS, n)
    books = [list(catalog["codebooks"][k]["codes"]) for k in kinds]
    sizes = np.array([len(b) for b in books])
    offsets = np.cumsum(sizes) - sizes
    code = offsets[kind] + (rng.random(n) * sizes[kind]).astype(np.int64)
    intensity = rng.integers(1, 6, size=n)
    ccrt = kind >= 2                        # CCRT categories are scored present, not graded
    has_note = rng.random(n) < RATES["theme_note"]
    return _keys(sessions, rows).with_columns(
        _labels(kinds, kind).alias("kind"),
        _labels([c for b in books for c in b], code).alias("code"),
        pl.Series("intensity", intensity).scatter(np.flatnonzero(ccrt), None),
        _labels(("therapist", "supervisor"), (rng.random(n) < 0.1).astype(np.int64)).alias("rater"),
        _sparse_notes(rng, has_note))


def _sparse_notes(rng, present: np.ndarray) -> pl.Series:
    notes = pl.repeat(None, len(present), dtype=pl.String, eager=True).alias("note")
    where = np.flatnonzero(present)
    return notes.scatter(where, synthetic_notes(rng, len(where))) if len(where) else notes


def _barriers(rng, catalog, sessions, attended) -> pl.DataFrame:
    rows = np.flatnonzero(attended & (rng.random(len(attended)) < RATES["barriers"] * len(attended) / attended.sum()))
    n = len(rows)
    categories = list(catalog["codebooks"]["barrier_categories"]["codes"])
    return _keys(sessions, rows).with_columns(
        _labels(categories, rng.integers(len(categories), size=n)).alias("category"),
        pl.Series("severity", rng.integers(1, 4, size=n)),
        pl.Series("addressed", rng.random(n) < 0.55),
        synthetic_notes(rng, n))


def _events(rng, sessions, treated) -> pl.DataFrame:
    # `treated`: attended sessions after the intake; the rate is per session of any kind.
    rows = np.flatnonzero(treated & (rng.random(len(treated)) < RATES["events"] * len(treated) / treated.sum()))
    n = len(rows)
    return _keys(sessions, rows).with_columns(
        _labels(EVENTS[0], _choice(rng, *EVENTS, n)).alias("event"),
        _labels(("therapist", "supervisor", "observer"), _choice(rng, (0, 1, 2), (0.85, 0.1, 0.05), n)).alias("rater"),
        _sparse_notes(rng, rng.random(n) < RATES["event_note"]))


def write_synthetic_clinic(folder: str | Path, n_sessions: int, seed: int = 7) -> dict[str, int]:
    """Write the synthetic clinic as contract CSVs into `folder`; returns rows per table."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, frame in generate_synthetic_frames(n_sessions, seed).items():
        frame.write_csv(folder / f"{name}.csv")
        counts[name] = frame.height
    return counts


def build_synthetic_store(path: str | Path, n_sessions: int, seed: int = 7) -> dict[str, int]:
    """Write the synthetic clinic straight into a new store at `path` (no import checks:
    for benchmarks of what comes after an import); returns rows per table."""
    from core.analytics import triage  # noqa: F401  (each snapshot keeps the triage, as an import's does)
    from core.store import Store, upsert
    store = Store(path)
    counts = {}
    try:
        with store.publish() as cur:
            for name, frame in generate_synthetic_frames(n_sessions, seed).items():
                upsert(cur, name, frame, 1)
                counts[name] = frame.height
    finally:
        store.close()
    return counts


BENCH_ADMIN = "bench-admin"  # the admin the page benchmarks sign in as


def with_a_conference(db: Path) -> None:
    """A conference of the first supervision group (five cases), so the Conference and
    Present pages show an agenda and a case, as in a meeting; and the admin who opens
    every page."""
    from core.access import Scope
    from core.catalog import default_catalog
    from core.conference.meetings import groups, new_conference
    from core.identity import add_user
    from core.store import Store
    store = Store(db)
    try:
        scope = Scope.system("benchmark", user="bench")
        new_conference(store, default_catalog(), groups(store, scope)[0], scope=scope, cases=5)
        add_user(store, BENCH_ADMIN, "admin")
    finally:
        store.close()
