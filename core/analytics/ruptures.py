"""Alliance ruptures and repair, for every client in a scope at once.

Three views of the same question, "where did the working relationship strain?":

- `detect_ruptures`: drops in session-by-session alliance scores (instruments whose
  catalog kind is "alliance"), each with whether the score came back (repair);
- `coded_events`: ruptures and repairs coded by a therapist, supervisor or observer
  (the events table, Safran & Muran's withdrawal / confrontation, 3RS);
- `alliance_discrepancy`: sessions where client and therapist rate the alliance far apart.

All three run as one DuckDB query through `Store.query`, so the reader's scope applies
and no Python loop runs per client.

Why the defaults (data/catalog.toml, section [ruptures])
--------------------------------------------------------
- method "sd", threshold 2: Stiles et al. (2004) flagged a rupture when a client's
  alliance score fell from one session to the next by at least 2 standard deviations of
  that client's own series. Strauss et al. (2006) used 1 SD, which flags smaller drops.
  Gumz et al. (2012) compared such methods and describe the V shape (drop, then return)
  as the commonest pattern, which is why a repair is looked for after every drop.
- reference point: the previous scored session, as Stiles et al. did. Some studies
  use the client's mean instead; the literature has not settled which, so the method is
  a parameter and "points" (a fixed drop) and "cutoff" (crossing the instrument's
  concern cutoff, as PCOMS/OpenFIT alert on the SRS) are offered alongside.
- reference spread ("sd"): the SD of the client's scores *before* the drop. An SD over
  the whole series includes the drop itself: a sustained step down (SRS 38 x5, then 30
  x7) inflated it past the drop, so the clearest ruptures were the ones never found.
- minimum drop: the drop must also reach the instrument's `rupture_min_drop` points
  (catalog; else `min_drop_fraction` of its range, in proportion for a subscale): a calm
  series' SD can be a fraction of a point, and a 1-point WAI-SR fall is noise. It may not
  be smaller than the instrument's reliable change where the catalog has one. The
  "points" method uses the clinic's own number as given.
- min_series 4: an SD of two or three scores means little. The same minimum applies to
  every method, so changing the method changes only the rule, not which clients are
  looked at; for "sd" the first drop examined is the series' min_series-th score.
- repair_window 3: how soon the score must come back is not settled either; the next
  three ratings of that instrument (three weeks of weekly SRS, enough for a V; a WAI-SR
  rated every 4th session gets its next three occasions) is this project's default, not
  a published figure, and is a setting. Repair means back to at least the score before
  the drop; nothing is subtracted for measurement error.

Every finding carries `method` and `params` (a sentence from `RuptureParams.describe`),
so a page shows the rule beside the flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ..access import Scope
from ..catalog import Catalog, Instrument, default_catalog
from ..psychometrics import CLINICAL_RULES, RULE_WORDS
# The SQL pieces once defined here; triage and expected still import some of them from here.
from .sql import NOT_ATTENDED, bound_table, client_clause, recent_attended_join

METHODS = ("sd", "points", "cutoff")
# Scores are stored as decimals: 36.3 - 34.1 is 2.1999999999999993 in binary floating
# point, so "a drop of at least 2.2" would miss it without a tolerance this small.
TOLERANCE = 1e-9
# The event codes that mean a rupture start with this prefix, so a clinic's own
# rupture code (say "rupture_other") joins in; "repair" marks a repair.
RUPTURE_PREFIX = "rupture_"
REPAIR_EVENT = "repair"
# Boundary crossings and violations (Gutheil & Gabbard 1998) are coded events of their own:
# shown with the ruptures and repairs on the case's axis, never counted as either.
BOUNDARY_PREFIX = "boundary_"
# The boundary rules' symbols (valid SQL) and words come from the psychometric rules.
SQL_RULES, WORDS = CLINICAL_RULES, RULE_WORDS


@dataclass(frozen=True)
class RuptureParams:
    method: str
    threshold: float
    min_series: int
    repair_window: int

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"The rupture method must be one of {', '.join(METHODS)}, got {self.method!r}: "
                             "correct [ruptures] method in the catalog.")
        if self.method != "cutoff" and not self.threshold > 0:
            raise ValueError(f"The rupture threshold must be above 0, got {self.threshold!r}.")
        if self.min_series < 2 or self.repair_window < 1:
            raise ValueError("A series needs at least 2 scores (min_series >= 2) and the repair window at least "
                             f"1 session (repair_window >= 1); got {self.min_series} and {self.repair_window}.")

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> "RuptureParams":
        r = catalog.ruptures
        return cls(r.method, r.threshold, r.min_series, r.repair_window)

    def describe(self, instrument: Instrument | None = None) -> str:
        """The rule in one sentence, to show beside every finding."""
        if self.method == "sd":
            least = (f" and >= {instrument.key}'s minimum drop" if instrument is not None
                     else " and >= the instrument's minimum drop")
            rule = (f"drop >= {self.threshold:g} SD of the client's scores before it from the previous session"
                    f"{least}")
        elif self.method == "points":
            rule = f"drop >= {self.threshold:g} points from the previous session"
        elif instrument is not None and instrument.cutoff is not None:
            cut = instrument.cutoff
            rule = (f"score falls from the previous session to {WORDS[cut.clinical]} the {instrument.key} "
                    f"cutoff {cut.value:g} (total scale)")
        else:
            rule = "score crosses to the concern side of the instrument's cutoff from the previous session"
        return (f"{rule}; series of >= {self.min_series} scores; repair = back to the pre-rupture level "
                f"within the next {self.repair_window} rating{'s' if self.repair_window != 1 else ''}")


RUPTURE_SCHEMA = {
    "client_id": pl.String, "instrument": pl.String, "scale": pl.String, "rater": pl.String,
    "session": pl.Int32, "previous_session": pl.Int32, "previous_score": pl.Float64, "score": pl.Float64,
    "drop": pl.Float64, "threshold_points": pl.Float64, "repaired_at": pl.Int32, "ratings_since": pl.Int32,
    "repair": pl.String,
    "method": pl.String, "params": pl.Categorical,
}


def detect_ruptures(store, catalog: Catalog, params: RuptureParams | None = None, *, scope: Scope,
                    clients=None, scales=None, recent: int | None = None) -> pl.DataFrame:
    """One row per rupture found in the alliance series of every client in `scope`.

    A series is one client's scores on one alliance instrument, scale and rater, ordered
    by session number. A session without a score is a gap: the drop is measured from the
    previous *scored* session (shown as `previous_session`), and the repair window counts
    the series' next scores (rating occasions), not session numbers.

    - `drop`: the fall from the previous score in the worse direction (positive = worse);
    - `threshold_points`: the drop needed, in points (for "sd", threshold x the sample SD
      of the client's scores before the drop, at least the instrument's minimum drop; null
      for "cutoff", whose rule is the crossing);
    - `repaired_at`: the first of the next `repair_window` scores after the rupture that
      is back to at least the pre-rupture score (exactly back counts; nothing is
      subtracted for measurement error), else null;
    - `ratings_since`: the scores of the series after the rupture (in the lists: with
      `recent`, at most `repair_window` of them are counted);
    - `repair`: "repaired", "not repaired", or "pending" when fewer than `repair_window`
      scores have followed and the client's latest recorded session lies before the
      window's expected end (`repair_window` x the series' mean interval between scores,
      rounded).

    `scales` limits the series to those scales (e.g. ["total"]); None = every scale.
    `recent` keeps only ruptures at sessions after the series' last session - `recent`
    (the spread still comes from every score before the drop, so what is found there is
    unchanged).
    """
    params = params or RuptureParams.from_catalog(catalog)
    alliance = catalog.instruments_of("alliance")
    if params.method == "cutoff":
        alliance = {k: v for k, v in alliance.items() if v.cutoff is not None}
    if not alliance:
        return pl.DataFrame(schema=RUPTURE_SCHEMA)
    bind: dict = {"min_series": params.min_series, "window": params.repair_window, "method": params.method}
    if params.method != "cutoff":
        bind.update(threshold=float(params.threshold), tol=TOLERANCE)
    fraction = catalog.ruptures.min_drop_fraction
    meta = bound_table("meta", ["instrument", "scale", "sign", "cutoff", "concern", "min_drop"],
                       ["VARCHAR", "VARCHAR", "INTEGER", "DOUBLE", "VARCHAR", "DOUBLE"],
                       [(key, scale, inst.sign, inst.cutoff.value if inst.cutoff else None,
                         inst.cutoff.clinical if inst.cutoff else None, inst.min_drop(fraction, scale))
                        for key, inst in alliance.items() for scale in inst.scales], bind)

    def concern(score: str) -> str:
        return ("CASE concern " + " ".join(f"WHEN '{rule}' THEN {score} {op} cutoff" for rule, op in SQL_RULES.items())
                + " END")

    # Each series becomes two lists ordered by session (numbers ss, scores sc), so the
    # previous score and the repair search are list look-ups: no window sort, no self-join.
    # n is the length of the lists; total, tsum, tsq, first_session: the count, sum, sum of
    # squares and first session of the whole series (the lists may hold only its end).
    since = ""
    numbers = "list(r.session_number ORDER BY r.session_number)"
    scores = "list(r.score ORDER BY r.session_number)"
    if recent is not None:
        bind["recent"], bind["keep"] = int(recent), int(recent) + int(params.repair_window) + 1
        since = "ss[i] > ss[n] - $recent AND "
        # Session numbers rise by at least 1, so only the last `recent` scores can qualify,
        # and each needs the score before it: the lists keep the last `recent` + 1 scores
        # (the top n, highest session first, reversed; the session numbers by plain max,
        # which gives what max_by by themselves gives with one heap less to keep). For
        # speed: far cheaper than ordering every score of the series into a list. The
        # repair search looks only after a rupture, so it stays inside these lists too; the
        # spread before a drop comes from the whole series' sums less the listed scores
        # from the drop on.
        numbers = "list_reverse(max(r.session_number, $keep))"
        scores = "list_reverse(max_by(r.score, r.session_number, $keep))"
    scale_clause = ""
    if scales is not None:
        bind["scales"] = [str(x) for x in scales]
        scale_clause = " AND list_contains($scales::VARCHAR[], r.scale)"
    previous, current = "sc[i - 1]", "sc[i]"
    # The reference spread (method "sd") is the SD of the scores before the drop: an SD
    # over the whole series includes the drop itself, so a sustained step down (38 x5,
    # then 30 x7) inflated it past the drop and was never found. Sums of the scores before
    # the drop: the series' totals less the listed scores from the drop on (k scores).
    k = "(n - i + 1)"
    n_before = f"(total - {k})"
    s_before = "(tsum - list_sum(sc[i:]))"
    q_before = "(tsq - list_sum(list_transform(sc[i:], lambda v: v * v)))"
    sd_before = (f"sqrt(greatest(({q_before} - {s_before} * {s_before} / {n_before}) / ({n_before} - 1), 0))")
    fall = f"sign * ({previous} - {current})"
    # `spread_rule`, when there is one, is the part of the rule tested on the drops that
    # pass `rule`, one row each: the spread before a drop sums slices of the lists, far too
    # costly to work out for every score of every series (most drops fail the cheap tests).
    spread_rule = ""
    if params.method == "sd":
        # A drop must reach the instrument's minimum in points too: the SD of a calm series
        # can be a fraction of a point (a 1-point WAI-SR fall was "2 SD").
        needed = f"greatest($threshold * {sd_before}, min_drop)"
        # The first drop looked at is the series' `min_series`-th score (as before), its
        # spread from the scores before it (at least 2).
        rule = f"{n_before} >= greatest($min_series - 1, 2) AND {fall} >= min_drop - $tol"
        spread_rule = f"WHERE {fall} >= {needed} - $tol"
    elif params.method == "points":
        # The clinic's own fixed drop in points: used as given.
        needed, rule = "$threshold", f"{fall} >= $threshold - $tol"
    else:
        # The cutoff belongs to the total scale (36 on the SRS's 0-40), not to item scales.
        needed = "NULL::DOUBLE"
        rule = f"scale = 'total' AND NOT ({concern(previous)}) AND ({concern(current)})"
    # The repair window counts the instrument's rating occasions (the series' next
    # `window` scores), not session numbers: a WAI-SR rated every 4th session could never
    # come back within 3 sessions. Pending: fewer than `window` scores have followed and
    # the client's latest session lies before the window's expected end (`window` x the
    # series' mean interval between scores, rounded: 1 for a weekly SRS with a missed
    # session, 4 for a WAI-SR rated every 4th): a client who stopped coming is not pending.
    window_end = "ss[i] + $window * greatest(round((ss[n] - first_session) / (total - 1)), 1)"
    # `found` is read twice (for the clients whose latest session a pending rupture needs,
    # and for the result): made once, or DuckDB unnests and tests every series twice.
    sql = f"""
    WITH {meta},
    series AS (
        SELECT r.client_id, r.instrument, r.scale, r.rater,
               any_value(m.sign) AS sign, any_value(m.cutoff) AS cutoff, any_value(m.concern) AS concern,
               any_value(m.min_drop) AS min_drop,
               {numbers} AS ss, {scores} AS sc, len(ss) AS n,
               count(*) AS total, sum(r.score) AS tsum, sum(r.score * r.score) AS tsq,
               min(r.session_number) AS first_session
        FROM ratings r
        JOIN meta m ON m.instrument = r.instrument AND m.scale = r.scale
        {NOT_ATTENDED}
        WHERE r.score IS NOT NULL{client_clause('r.client_id', clients, bind)}{scale_clause}
        GROUP BY r.client_id, r.instrument, r.scale, r.rater
        HAVING count(*) >= $min_series
    ),
    found AS MATERIALIZED (
        SELECT * EXCLUDE (i), i, {needed} AS needed,
               list_filter(range(i + 1, least(n, i + $window) + 1),
                           lambda j: sign * sc[j] >= sign * sc[i - 1])[1] AS back
        FROM (SELECT *, unnest(list_filter(range(2, n + 1), lambda i: {since}{rule})) AS i FROM series)
        {spread_rule}
    ),
    latest AS (
        SELECT client_id, max(session_number) AS latest FROM sessions
        WHERE client_id IN (SELECT client_id FROM found WHERE back IS NULL AND n - i < $window)
        GROUP BY client_id
    )
    SELECT f.client_id, f.instrument, f.scale, f.rater, ss[i]::INTEGER AS session,
           ss[i - 1]::INTEGER AS previous_session, sc[i - 1] AS previous_score, sc[i] AS score,
           sign * (sc[i - 1] - sc[i]) AS drop, needed AS threshold_points, ss[back]::INTEGER AS repaired_at,
           (n - i)::INTEGER AS ratings_since,
           CASE WHEN back IS NOT NULL THEN 'repaired'
                WHEN n - i < $window AND coalesce(l.latest, ss[n]) < {window_end} THEN 'pending'
                ELSE 'not repaired' END AS repair,
           $method AS method
    FROM found f LEFT JOIN latest l USING (client_id)
    ORDER BY f.client_id, f.instrument, f.scale, f.rater, session
    """
    found = store.query(sql, bind, scope=scope)
    # The sentence depends only on the instrument: added here as a categorical rather
    # than carried through DuckDB as one string a row.
    sentences = {key: params.describe(inst) for key, inst in alliance.items()}
    return found.with_columns(
        pl.col("instrument").replace_strict(sentences, return_dtype=pl.Categorical).alias("params")
    ).cast(RUPTURE_SCHEMA)


EVENT_SCHEMA = {"client_id": pl.String, "session_number": pl.Int32, "event": pl.String, "rater": pl.String,
                "note": pl.String, "is_rupture": pl.Boolean, "repaired_at": pl.Int32, "repaired": pl.Boolean,
                "params": pl.String}


def coded_events(store, scope: Scope, clients=None, *, params: RuptureParams | None = None,
                 catalog: Catalog | None = None) -> pl.DataFrame:
    """The coded rupture, repair and boundary events of every client in `scope`, one row per
    event and rater, in session order.

    For a rupture, `repaired_at` is the first session from the rupture's own session up to
    `repair_window` sessions later with a repair coded by anyone (3RS codes resolution in
    the very session of the rupture, so the same session counts); `repaired` says whether
    there is one. Both are null on repair rows.
    """
    params = params or RuptureParams.from_catalog(catalog or default_catalog())
    bind: dict = {"window": params.repair_window, "repair": REPAIR_EVENT, "prefix": RUPTURE_PREFIX,
                  "boundary": BOUNDARY_PREFIX,
                  "text": f"coded repair in the rupture's session or within {params.repair_window} session(s) after"}
    sql = f"""
    WITH coded AS (
        SELECT client_id, session_number, event, rater, note, starts_with(event, $prefix) AS is_rupture
        FROM events
        WHERE (starts_with(event, $prefix) OR event = $repair OR starts_with(event, $boundary))
              {client_clause('client_id', clients, bind)}
    ),
    repaired AS (
        SELECT c.client_id, c.session_number, c.event, c.rater, min(r.session_number) AS repaired_at
        FROM coded c JOIN coded r
          ON r.client_id = c.client_id AND r.event = $repair
         AND r.session_number BETWEEN c.session_number AND c.session_number + $window
        WHERE c.is_rupture
        GROUP BY ALL
    )
    SELECT c.client_id, c.session_number::INTEGER AS session_number, c.event, c.rater, c.note, c.is_rupture,
           r.repaired_at::INTEGER AS repaired_at,
           CASE WHEN c.is_rupture THEN r.repaired_at IS NOT NULL END AS repaired,
           CASE WHEN c.is_rupture THEN $text END AS params
    FROM coded c LEFT JOIN repaired r USING (client_id, session_number, event, rater)
    ORDER BY c.client_id, c.session_number, c.event, c.rater
    """
    return store.query(sql, bind, scope=scope).cast(EVENT_SCHEMA)


DISCREPANCY_SCHEMA = {"client_id": pl.String, "session_number": pl.Int32, "instrument": pl.String,
                      "scale": pl.String, "client_score": pl.Float64, "therapist_score": pl.Float64,
                      "difference": pl.Float64, "threshold_points": pl.Float64, "flagged": pl.Boolean,
                      "params": pl.Categorical}


def alliance_discrepancy(store, catalog: Catalog, scope: Scope, clients=None,
                         discrepancy_fraction: float | None = None, scales=None, *, flagged_only: bool = False,
                         recent: int | None = None) -> pl.DataFrame:
    """Per client, session, alliance instrument and scale where both the client and the
    therapist rated: both scores, `difference` = client - therapist (negative: the
    therapist sees a better alliance than the client), and `flagged` when
    |difference| >= `discrepancy_fraction` x the scale's range from the catalog (default:
    the catalog's [ruptures] discrepancy_fraction, a fifth of the range: a supervision
    convention, not a published norm, hence a setting). `scales` limits the scales
    compared (None = every scale). `flagged_only` keeps the flagged rows; `recent` keeps
    the sessions after the client's latest session (attended or not) minus `recent`: the
    triage asks for both, and the filters in the query spare sorting every rated session.
    """
    if discrepancy_fraction is None:
        discrepancy_fraction = catalog.ruptures.discrepancy_fraction
    if not 0 < discrepancy_fraction <= 1:
        raise ValueError(f"discrepancy_fraction is a share of the scale range, between 0 and 1; "
                         f"got {discrepancy_fraction!r}.")
    rows, sentences = [], []
    # Only instruments with both a client and a therapist form (WAI-SR, HAq-II; not the SRS).
    paired = {k: i for k, i in catalog.instruments_of("alliance").items() if {"client", "therapist"} <= set(i.raters)}
    for key, inst in paired.items():
        for scale, (low, high) in inst.scales.items():
            if scales is not None and scale not in scales:
                continue
            points = discrepancy_fraction * (high - low)
            rows.append((key, scale, points, len(sentences)))
            sentences.append(f"client - therapist; flagged when |difference| >= {discrepancy_fraction:.0%} of the "
                             f"scale range ({points:g} points on {key} {scale}, {low:g}-{high:g})")
    if not rows:
        return pl.DataFrame(schema=DISCREPANCY_SCHEMA)
    bind: dict = {"tol": TOLERANCE}
    flagged = "abs(p.client_score - p.therapist_score) >= m.points - $tol"
    # The recent sessions are kept before the pairing (a pair is of one session): far fewer
    # ratings to pair.
    attended = recent_attended_join("r", recent, bind) if recent is not None else NOT_ATTENDED
    meta = bound_table("meta", ["instrument", "scale", "points", "sentence"],
                       ["VARCHAR", "VARCHAR", "DOUBLE", "INTEGER"], rows, bind)
    sql = f"""
    WITH {meta},
    paired AS (
        SELECT r.client_id, r.session_number, r.instrument, r.scale,
               max(r.score) FILTER (WHERE r.rater = 'client') AS client_score,
               max(r.score) FILTER (WHERE r.rater = 'therapist') AS therapist_score
        FROM ratings r
        {attended}
        WHERE r.rater IN ('client', 'therapist') AND r.score IS NOT NULL
          AND r.instrument IN (SELECT instrument FROM meta) AND r.scale IN (SELECT scale FROM meta)
          {client_clause('r.client_id', clients, bind)}
        GROUP BY ALL
        HAVING count(*) = 2
    )
    SELECT p.client_id, p.session_number::INTEGER AS session_number, p.instrument, p.scale,
           p.client_score, p.therapist_score, p.client_score - p.therapist_score AS difference,
           m.points AS threshold_points,
           {flagged} AS flagged, m.sentence AS params
    FROM paired p JOIN meta m ON m.instrument = p.instrument AND m.scale = p.scale
    {f"WHERE {flagged}" if flagged_only else ""}
    ORDER BY p.client_id, p.session_number, p.instrument, p.scale
    """
    found = store.query(sql, bind, scope=scope)
    text = pl.Series("params", sentences, dtype=pl.Categorical)
    return found.with_columns(text.gather(found["params"])).cast(DISCREPANCY_SCHEMA)
