"""Not on track: each session's outcome score against the clinic's own expected change.

OpenFIT-like colours (DOMAIN.md, "Not-on-track signals"), with the expected curve
estimated from the store's own data: a percentile band of change from intake by session
number among clients of the same intake severity.

How the reference is made
-------------------------
- Outcome instruments (catalog kind "outcome"), total scale, client ratings, attended
  sessions only (a score with unknown attendance counts).
- Intake = the score at the client's first session with a score (session 0 when present).
  Change at a later session = score - intake. Improvement = change in the better
  direction (the catalog's direction: a fall on the PHQ-9, a rise on the ORS).
- Intake severity band: the instrument's catalog `cutoff.bands` when it has them, else
  the tertiles of the clinic's intake scores (lowest / middle / highest third).
- Per (instrument, band, session number): the median, the lower percentile (default 25th)
  and the floor percentile (default 10th) of improvement, by DuckDB's `quantile_cont`
  (linear interpolation, numpy's default), in one grouped query that also pools all
  bands per session number (GROUPING SETS). A cell needs `min_sample` clients (default
  20); else the pooled numbers for that session are used; if those too have fewer, the
  session is grey. `method` says, per cell, which numbers were used and how many clients.
- The reference is the whole clinic (`reference_scope`, default every case), and the
  reader's scope only limits which clients get colours: a supervision group's own
  caseload is far too small for 20 clients per cell, and "doing worse than the clinic's
  similar clients" is the question. Only aggregates over >= min_sample clients leave the
  reference, never a client's row.

Colours (DOMAIN.md wording -> numbers here)
-------------------------------------------
- green: "at or above the expected score for that session" = improvement at or above the
  lower percentile (25th). The expected score is read as the band where three quarters of
  similar clients are, centred on the median (`expected`, the curve to draw): a median
  rule would turn half of every caseload orange or red by construction, which is no signal.
- orange: "below expected, above the lower band" = below the 25th, at or above the 10th
  percentile (a score exactly on a line gets the better colour, as green "at or above";
  "exactly" allows 1e-9 points, because interpolated percentiles such as 0.1 x 39 come
  out of binary floating point a hair off).
- red: "below the lower band" = below the 10th percentile.
- grey: "fewer than two scores" (the intake session itself), or no band with enough
  clients at that session number.

`expected`, `lower` and `floor` are returned as change from intake in score points
(score - intake), so intake + expected is the curve to draw in the instrument's own units.
"""

from __future__ import annotations

import hashlib
import math
import threading
import warnings

import duckdb
import numpy as np
import polars as pl

from ..access import Scope
from ..catalog import Catalog, check_percentiles
from .ruptures import TOLERANCE
from .sql import NOT_ATTENDED, bound_table, client_clause

SCALE, RATER = "total", "client"
POOLED = "all intake bands"
TERTILES = ("lowest-third", "middle-third", "highest-third")
INTAKE_METHOD = "grey: intake, fewer than two scores"
NO_REFERENCE = "grey: no clients with two or more scores on this instrument in the reference"

BAND_SCHEMA = {"instrument": pl.String, "band": pl.String, "band_from": pl.Float64, "band_to": pl.Float64,
               "band_text": pl.String, "basis": pl.String}
EXPECTED_SCHEMA = {"instrument": pl.String, "band": pl.String, "session_number": pl.Int32, "n": pl.Int64,
                   "expected": pl.Float64, "lower": pl.Float64, "floor": pl.Float64, "basis": pl.String,
                   "method": pl.String}
TRACK_SCHEMA = {"client_id": pl.String, "instrument": pl.String, "session_number": pl.Int32, "score": pl.Float64,
                "intake": pl.Float64, "change": pl.Float64, "band": pl.String, "expected": pl.Float64,
                "lower": pl.Float64, "floor": pl.Float64, "colour": pl.String, "method": pl.Categorical}


def _ordinal(p: float) -> str:
    n = f"{p * 100:g}"
    suffix = "th" if n.endswith(("11", "12", "13")) or n[-1] not in "123" else {"1": "st", "2": "nd", "3": "rd"}[n[-1]]
    return n + suffix


def _num(x: float) -> str:
    return f"{round(x, 2):g}"


def _settings(catalog: Catalog, min_sample: int | None, percentiles) -> tuple[int, tuple[float, float]]:
    """The arguments given, else the catalog's [not_on_track] defaults."""
    defaults = catalog.not_on_track
    return (defaults.min_sample if min_sample is None else min_sample,
            tuple(defaults.percentiles) if percentiles is None else percentiles)


def _check(min_sample: int, percentiles) -> tuple[float, float]:
    if min_sample < 2:
        raise ValueError(f"min_sample must be at least 2 clients per cell, got {min_sample!r}.")
    return check_percentiles(percentiles)


def _series_sql(instruments: dict, severity: pl.DataFrame | None, clients, bind: dict,
                latest_only: bool = False) -> str:
    """Common table expressions over the outcome series of the clients in scope:
    `scored` (attended sessions with a total client score), `intake` (first score, first
    and last session per client and instrument), `banded` (the same with the intake
    band) and `series` (each score with its client's intake, intake session and band).

    `latest_only`: `series` holds only the score of each client's last session per
    instrument, taken in the same pass as the intake (for speed: no join of every score
    back to its intake; one score per session, so it is the same row)."""
    meta = bound_table("meta", ["instrument", "sign"], ["VARCHAR", "INTEGER"],
                       [(key, inst.sign) for key, inst in instruments.items()], bind)
    bind.update(scale=SCALE, rater=RATER)
    latest_columns = (", arg_max(score, session_number) AS last_score, any_value(sign) AS sign, count(*) AS scores"
                      if latest_only else "")
    latest_series = """
        SELECT client_id, instrument, last_session AS session_number, last_score AS score, sign, intake,
               intake_session, last_session, band, scores
        FROM banded"""
    every_series = """
        SELECT x.client_id, x.instrument, x.session_number, x.score, x.sign, i.intake, i.intake_session,
               i.last_session, i.band
        FROM scored x JOIN banded i USING (client_id, instrument)"""
    return f"""
    WITH {meta},
    scored AS (
        SELECT r.client_id, r.instrument, r.session_number, r.score, m.sign
        FROM ratings r
        JOIN meta m ON m.instrument = r.instrument
        {NOT_ATTENDED}
        WHERE r.scale = $scale AND r.rater = $rater AND r.score IS NOT NULL
              {client_clause('r.client_id', clients, bind)}
    ),
    intake AS (
        SELECT client_id, instrument, min(session_number) AS intake_session, max(session_number) AS last_session,
               arg_min(score, session_number) AS intake{latest_columns}
        FROM scored GROUP BY client_id, instrument
    ),
    banded AS (
        SELECT *, {_band_case(severity, bind)} AS band FROM intake
    ),
    series AS ({latest_series if latest_only else every_series}
    )"""


def _band_case(severity: pl.DataFrame | None, bind: dict) -> str:
    """A CASE expression putting `intake` into its band (band_from inclusive), NULL
    when no band fits. A handful of comparisons per client: cheaper than any join."""
    if severity is None or severity.is_empty():
        return "NULL::VARCHAR"
    whens = []
    for k, (instrument, bands) in enumerate(severity.sort("band_from", descending=True)
                                            .group_by("instrument", maintain_order=True)):
        bind[f"band_i{k}"] = instrument[0]
        inner = []
        for j, row in enumerate(bands.iter_rows(named=True)):
            bind[f"band_f{k}_{j}"], bind[f"band_l{k}_{j}"] = row["band_from"], row["band"]
            inner.append(f"WHEN intake >= $band_f{k}_{j}::DOUBLE THEN $band_l{k}_{j}::VARCHAR")
        whens.append(f"WHEN $band_i{k}::VARCHAR THEN CASE {' '.join(inner)} END")
    return f"CASE instrument {' '.join(whens)} END"


def severity_bands(store, catalog: Catalog, scope: Scope) -> pl.DataFrame:
    """Intake severity bands per outcome instrument: the catalog's `cutoff.bands`, else
    the tertiles of the intake scores of the clients in `scope` (band_from inclusive,
    band_to exclusive, null = open)."""
    rows, need_tertiles = [], {}
    for key, inst in catalog.instruments_of("outcome").items():
        bands = sorted(inst.cutoff.bands) if inst.cutoff and inst.cutoff.bands else []
        if not bands:
            need_tertiles[key] = inst
            continue
        for i, (start, label) in enumerate(bands):
            end = bands[i + 1][0] if i + 1 < len(bands) else None
            text = f"{_num(start)} to < {_num(end)}" if end is not None else f">= {_num(start)}"
            rows.append((key, label, float(start), end, text, "catalog"))
    if need_tertiles:
        bind: dict = {}
        sql = (_series_sql(need_tertiles, None, None, bind)
               + " SELECT instrument, quantile_cont(intake, [1/3, 2/3]) AS q FROM intake GROUP BY instrument")
        for key, (q1, q2) in store.query(sql, bind, scope=scope).iter_rows():  # one row per instrument
            rows += [(key, TERTILES[0], -math.inf, q1, f"< {_num(q1)}", "tertiles"),
                     (key, TERTILES[1], q1, q2, f"{_num(q1)} to < {_num(q2)}", "tertiles"),
                     (key, TERTILES[2], q2, None, f">= {_num(q2)}", "tertiles")]
    return pl.DataFrame(rows, schema=BAND_SCHEMA, orient="row")


def expected_bands(store, catalog: Catalog, scope: Scope, min_sample: int | None = None,
                   percentiles=None, severity: pl.DataFrame | None = None) -> pl.DataFrame:
    """The expected change from intake per instrument, intake band and session number,
    estimated from the clients in `scope` (normally the whole clinic).

    Columns: instrument, band, session_number, n (the clients the numbers come from),
    expected (median change), lower and floor (the `percentiles` of change in the
    improving direction), basis ("band", "pooled" or "grey") and method (a sentence).
    Rows with band "all intake bands" hold the pooled numbers per session number.
    """
    min_sample, percentiles = _settings(catalog, min_sample, percentiles)
    p_lower, p_floor = _check(min_sample, percentiles)
    instruments = catalog.instruments_of("outcome")
    if not instruments:
        return pl.DataFrame(schema=EXPECTED_SCHEMA)
    severity = severity_bands(store, catalog, scope) if severity is None else severity
    bind: dict = {"p_lower": p_lower, "p_floor": p_floor}
    sql = _series_sql(instruments, severity, None, bind) + """
    SELECT instrument, coalesce(band, 'outside the bands') AS band, session_number::INTEGER AS session_number,
           count(*) AS n, quantile_cont(sign * (score - intake), [0.5, $p_lower, $p_floor]) AS q,
           grouping(band) = 1 AS pooled
    FROM series
    WHERE session_number > intake_session
    GROUP BY GROUPING SETS ((instrument, band, session_number), (instrument, session_number))
    """
    raw = store.query(sql, bind, scope=scope)
    signs = pl.DataFrame([(k, float(i.sign)) for k, i in instruments.items()],
                         schema={"instrument": pl.String, "sign": pl.Float64}, orient="row")
    pooled = raw.filter(pl.col("pooled")).select("instrument", "session_number", n_all="n", q_all="q")
    cells = raw.filter(~pl.col("pooled")).drop("pooled").join(pooled, on=["instrument", "session_number"], how="left")
    pooled_rows = pooled.select("instrument", pl.lit(POOLED).alias("band"), "session_number",
                                pl.col("n_all").alias("n"), pl.col("q_all").alias("q"), "n_all", "q_all")
    table = (pl.concat([cells, pooled_rows], how="vertical_relaxed")
             .join(severity.select("instrument", "band", "band_text"), on=["instrument", "band"], how="left")
             .join(signs, on="instrument", how="left"))

    enough_band = (pl.col("n") >= min_sample) & (pl.col("band") != POOLED)
    enough_all = pl.col("n_all") >= min_sample
    rule = f"median, {_ordinal(p_lower)} and {_ordinal(p_floor)} percentiles of change from intake"
    band_words = pl.format("{} intake {} ({})", pl.col("band"), pl.col("instrument"),
                           pl.col("band_text").fill_null("no band"))
    method = (
        pl.when(pl.col("basis") == "band")
        .then(pl.format(f"{rule} among {{}} clients with {{}} at session {{}}", pl.col("n_band"), band_words,
                        pl.col("session_number")))
        .when((pl.col("basis") == "pooled") & (pl.col("band") == POOLED))
        .then(pl.format(f"{rule} among {{}} clients with any intake {{}} at session {{}}", pl.col("n_all"),
                        pl.col("instrument"), pl.col("session_number")))
        .when(pl.col("basis") == "pooled")
        .then(pl.format(f"pooled: all intake bands; {rule} among {{}} clients with any intake {{}} at session {{}} "
                        f"(only {{}} with {{}}, fewer than {min_sample})", pl.col("n_all"), pl.col("instrument"),
                        pl.col("session_number"), pl.col("n_band"), band_words))
        .otherwise(pl.format(f"grey: fewer than {min_sample} clients with {{}} scores at session {{}} "
                             "({} in all intake bands)", pl.col("instrument"), pl.col("session_number"),
                             pl.col("n_all")))
    )
    q = pl.when(enough_band).then(pl.col("q")).when(enough_all).then(pl.col("q_all"))
    return (table
            .with_columns(pl.col("n").alias("n_band"),
                          pl.when(enough_band).then(pl.lit("band")).when(enough_all).then(pl.lit("pooled"))
                          .otherwise(pl.lit("grey")).alias("basis"),
                          q.alias("q"))
            .with_columns(method.alias("method"),
                          n=pl.when(pl.col("basis") == "band").then(pl.col("n_band")).otherwise(pl.col("n_all")),
                          expected=pl.col("sign") * pl.col("q").list.get(0),
                          lower=pl.col("sign") * pl.col("q").list.get(1),
                          floor=pl.col("sign") * pl.col("q").list.get(2))
            .select(list(EXPECTED_SCHEMA)).cast(EXPECTED_SCHEMA)
            .sort("instrument", "band", "session_number"))


MODEL_SCHEMA = {"instrument": pl.String, "fold": pl.Int64, "folds": pl.Int64, "n": pl.Int64,
                "max_since": pl.Int64, "coef": pl.List(pl.Float64), "method": pl.String}
LOO_SCHEMA = {"client_id": pl.String, "instrument": pl.String, "fold": pl.Int64}
# t = log(1 + sessions since intake); no intercept, so the expected change at the intake is 0.
TERMS = 3  # t, intake x t, sessions since intake


def _fit_rows(store, catalog: Catalog, scope: Scope) -> pl.DataFrame:
    """One row per client and outcome instrument of the reference, with two scores or more:
    the intake (first score), one later score chosen by a hash of the client and session
    (deterministic, so the same store gives the same fit), its sessions since intake and
    improvement (change in the better direction), how far the client's series reaches
    (`reach`, sessions from intake to the last score), and `h`, a hash of the client for
    the folds and the sample. One row a client keeps the rows independent and the fit
    small; a random later score, not the last one, keeps out the bias of clients who stop
    when they feel better."""
    bind: dict = {}
    sql = _series_sql(catalog.instruments_of("outcome"), None, None, bind) + """
    SELECT client_id, instrument, any_value(intake) AS intake,
           arg_max(session_number, hash(client_id, session_number)) - any_value(intake_session) AS since,
           any_value(sign) * (arg_max(score, hash(client_id, session_number)) - any_value(intake)) AS improvement,
           any_value(last_session) - any_value(intake_session) AS reach, hash(client_id) AS h
    FROM series WHERE session_number > intake_session
    GROUP BY client_id, instrument
    ORDER BY instrument, client_id
    """
    return store.query(sql, bind, scope=scope)


def _design(intake: np.ndarray, since: np.ndarray) -> np.ndarray:
    t = np.log1p(since)
    return np.column_stack([t, intake * t, since])


def _quantile_fit(x: np.ndarray, y: np.ndarray, quantiles) -> np.ndarray:
    """Coefficients (len(quantiles) x TERMS) of statsmodels' QuantReg; a term without
    variation in this sample (everyone with the same intake, or seen at the same session)
    is left out (coefficient 0) instead of making the design singular."""
    from statsmodels.regression.quantile_regression import QuantReg
    intake_varies = np.ptp(x[:, 1] / x[:, 0]) > 1e-9
    since_varies = np.ptp(x[:, 2]) > 1e-9
    keep = [0] + ([1] if intake_varies else []) + ([2] if since_varies else [])
    out = np.zeros((len(quantiles), TERMS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # iteration and convergence notes of the IRLS solver
        for i, q in enumerate(quantiles):
            out[i, keep] = QuantReg(y, x[:, keep]).fit(q=q, max_iter=5000).params
    return out


def expected_model(store, catalog: Catalog, scope: Scope, min_sample: int | None = None,
                   percentiles=None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The expected change from each client's own intake, fitted once per outcome
    instrument on the clients in `scope` (normally the whole clinic).

    Model: improvement (change from the first score, in the better direction) at a later
    score ~ t + intake x t + k, with k the sessions since the intake and t = log(1 + k),
    no intercept (no change at the intake itself; the curve flattens as most do), by
    quantile regression (statsmodels QuantReg) at the median and the two `percentiles`. Intake severity enters as a number, not as cells: cells of 20 clients
    were never reached in a clinic's caseload, so every band was pooled and the colour
    followed severity (mild clients have less room to improve).

    A client is left out of their own reference: with up to `exact_leave_one_out_max`
    reference clients one fit per client without them (exact leave-one-out); with more,
    the clients are split by a hash into `folds` folds and each client's band comes from
    the fit on the other folds (cross-fitting, which approximates leave-one-out: the band
    is made without the client and without the rest of their fold). Fits use at most
    `max_fit_clients` clients, sampled by the same hash, so the cost stays flat.

    Returns (model, loo): model has one row per instrument and fold: folds (how many), n
    (clients in that fit), max_since (the furthest sessions since intake that at least
    `min_sample` reference clients reached: beyond it, grey), coef (median, lower and
    floor coefficients, TERMS each) and method (the sentence to show). loo maps a client
    to its fold where folds are per client; there, fold -1 is the fit on every reference
    client, for clients in scope outside the reference.
    """
    min_sample, percentiles = _settings(catalog, min_sample, percentiles)
    p_lower, p_floor = _check(min_sample, percentiles)
    settings = catalog.not_on_track
    rows = _fit_rows(store, catalog, scope)
    models, loo = [], []
    quantiles = (0.5, p_lower, p_floor)
    rule = f"median, {_ordinal(p_lower)} and {_ordinal(p_floor)} percentiles"
    for (instrument,), part in rows.group_by("instrument", maintain_order=True):
        n = part.height
        reach = np.sort(part["reach"].to_numpy())[::-1]
        max_since = int(reach[min_sample - 1]) if n >= min_sample else 0
        if n <= settings.exact_leave_one_out_max:
            folds, fold = n, np.arange(n)
            loo += [(c, instrument, int(f)) for c, f in zip(part["client_id"], fold)]
            how = "each client's band fitted without them"
        else:
            folds = settings.folds
            fold = (part["h"].to_numpy() % np.uint64(folds)).astype(np.int64)
            how = f"cross-fitted in {folds} folds: each client's band from the fold(s) without them"
        sample = np.ones(n, bool)
        if n > settings.max_fit_clients:  # the clients with the lowest hash (bits unrelated to the fold)
            rank = np.argsort(np.argsort(part["h"].to_numpy() >> np.uint64(16)))
            sample = rank < settings.max_fit_clients
            how += f"; {settings.max_fit_clients} clients sampled for the fits"
        x = _design(part["intake"].to_numpy().astype(float), part["since"].to_numpy().astype(float))
        y = part["improvement"].to_numpy().astype(float)
        # Fold -1 (exact leave-one-out only): the fit on every reference client, for the
        # clients in scope who are not in the reference (nobody to leave out).
        for f in ([-1] if folds == n else []) + list(range(folds)):
            use = sample & (fold != f)
            n_fit = int(use.sum())
            if n_fit < min_sample:
                coef = [None] * (3 * TERMS)
                method = (f"grey: fewer than {min_sample} other clients with two or more {instrument} scores "
                          f"({n_fit})")
            else:
                coef = _quantile_fit(x[use], y[use], quantiles).ravel().tolist()
                method = (f"{rule} of change from the client's own first score among {n_fit} other clients of the "
                          f"clinic with {instrument}: quantile regression on the first score (intake severity) and "
                          f"the sessions since it, {how}; up to {max_since} sessions after the first score "
                          f"({min_sample} or more clients reached it)")
            models.append((instrument, f, folds, n_fit, max_since, coef, method))
    model = pl.DataFrame(models, schema={**MODEL_SCHEMA, "coef": pl.List(pl.Float64)}, orient="row")
    return model, pl.DataFrame(loo, schema=LOO_SCHEMA, orient="row")


_REFERENCES: dict[tuple, tuple[pl.DataFrame, tuple[pl.DataFrame, pl.DataFrame]]] = {}
_REFERENCES_LOCK = threading.Lock()
# The reference is the whole clinic's, whoever reads: it leaves this module only as bands
# (percentiles of change over many clients), never as a client's row.
CLINIC = Scope.system("the clinic's reference bands")


def reference_key(catalog: Catalog, min_sample: int | None = None, percentiles=None) -> str:
    """What the reference depends on besides the data: the outcome instruments, the
    catalog's [not_on_track] settings and the sample size and percentiles in force, as one
    digest (the same for an argument left out and the catalog's default given)."""
    min_sample, percentiles = _settings(catalog, min_sample, percentiles)
    parts = [*(f"{k}={i.model_dump_json()}" for k, i in catalog.instruments_of("outcome").items()),
             catalog.not_on_track.model_dump_json(), repr(int(min_sample)), repr(tuple(float(p) for p in percentiles))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _generation(store) -> str:
    """The data's generation for the per-process cache: the store's current snapshot (an
    import, a purge or any other publish makes a new one), else its latest import."""
    generation = getattr(store, "generation", None)
    if callable(generation):
        return str(generation())
    return str(store.scalar("SELECT coalesce(max(batch_id), 0) FROM batches", scope=CLINIC))


def keep_reference(cur, found: tuple[pl.DataFrame, tuple[pl.DataFrame, pl.DataFrame]], key: str) -> None:
    """Write the clinic's reference (from `reference`, made with the settings `key` names)
    into the snapshot being published on `cur`, in place of the one it held."""
    severity, (model, loo) = found
    for table in ("reference_info", "reference_severity", "reference_model", "reference_loo"):
        cur.execute(f"DELETE FROM {table}")
    frames = {"reference_severity": severity, "reference_model": model, "reference_loo": loo}
    for table, frame in frames.items():
        cur.register("kept_rows", frame.with_row_index("ord").with_columns(pl.col("ord").cast(pl.Int64)))
        cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM kept_rows")
        cur.unregister("kept_rows")
    cur.execute("INSERT INTO reference_info VALUES (?)", [key])


def _kept_reference(store, key: str) -> tuple[pl.DataFrame, tuple[pl.DataFrame, pl.DataFrame]] | None:
    """The reference the current snapshot keeps, when it was made with the settings `key`
    names; None when it keeps none (an older snapshot, or other settings)."""
    try:
        made_with = store.query("SELECT settings_key FROM reference_info", scope=CLINIC)
    except (duckdb.CatalogException, AttributeError):  # a snapshot or a store without the tables
        return None
    if made_with.height != 1 or made_with.item() != key:
        return None

    def read(table: str, schema: dict) -> pl.DataFrame:
        return store.query(f"SELECT * EXCLUDE (ord) FROM {table} ORDER BY ord", scope=CLINIC).select(
            list(schema)).cast(schema)
    return read("reference_severity", BAND_SCHEMA), (read("reference_model", MODEL_SCHEMA),
                                                      read("reference_loo", LOO_SCHEMA))


def reference(store, catalog: Catalog, reference_scope: Scope, min_sample: int | None = None,
              percentiles=None) -> tuple[pl.DataFrame, tuple[pl.DataFrame, pl.DataFrame]]:
    """(severity bands, expected model) of the clinic, kept per process until the store's
    data changes: the key holds the store file, its current snapshot, the reference scope
    and the catalog's outcome settings. Every page and the triage ask for the same
    reference; it costs a scan of all outcome scores and a few small fits, so it is made
    when a snapshot is published and kept in it (`keep_reference`): a reader takes it
    from there when it was made with the same settings and from every client, and makes
    it itself otherwise."""
    key_settings = reference_key(catalog, min_sample, percentiles)
    key = (str(getattr(store, "path", id(store))), _generation(store), reference_scope, key_settings)
    with _REFERENCES_LOCK:
        found = _REFERENCES.get(key)
    if found is None:
        found = _kept_reference(store, key_settings) if reference_scope.is_everything else None
        if found is None:
            severity = severity_bands(store, catalog, reference_scope)
            found = (severity, expected_model(store, catalog, reference_scope, min_sample, percentiles))
        with _REFERENCES_LOCK:
            if len(_REFERENCES) >= 8:
                _REFERENCES.pop(next(iter(_REFERENCES)))
            _REFERENCES[key] = found
    return found


def track_colours(store, catalog: Catalog, scope: Scope, clients=None, *, min_sample: int | None = None,
                  percentiles=None, reference_scope: Scope | None = None, bands: pl.DataFrame | None = None,
                  severity: pl.DataFrame | None = None, latest_only: bool = False,
                  with_ends: bool = False) -> pl.DataFrame:
    """One row per client in `scope`, outcome instrument and scored session: score,
    intake, change (score - intake), the intake band, the expected numbers used, the
    colour, and the sentence saying how the reference was made (`method`, categorical).

    The reference comes from `reference_scope` (default: the whole clinic; see the module
    notes). To reuse a reference already computed, pass `severity` (from
    `severity_bands`) and `bands` (from `expected_bands` with that severity) together.
    `latest_only` keeps each client's latest scored session per instrument; `with_ends`
    (with `latest_only`) adds `first_session` (the intake session) and `scores` (how many
    scored sessions), so with session_number, intake and score a row holds the ends of the
    series that `outcomes.classify_ends` classifies, from the same pass.
    """
    min_sample, percentiles = _settings(catalog, min_sample, percentiles)
    _check(min_sample, percentiles)
    instruments = catalog.instruments_of("outcome")
    if not instruments:
        return pl.DataFrame(schema=TRACK_SCHEMA)
    if severity is None:
        if bands is not None:
            raise ValueError("Pass the severity bands the expected model was made with (severity=...), "
                             "so every client is put in the same intake band as the reference.")
        severity, bands = reference(store, catalog, reference_scope or CLINIC, min_sample, percentiles)
    if bands is None:
        bands = expected_model(store, catalog, reference_scope or CLINIC, min_sample, percentiles)
    model, loo = bands
    # The model joins in DuckDB as small tables bound as parameters; each row's sentence
    # comes back as an index into `methods` (a categorical), not as a million copies.
    beyond = {i: (f"grey: beyond {m} sessions after the first score, fewer than {min_sample} clients of the clinic "
                  f"with {i} were seen that long") for i, m in model.group_by("instrument").agg(
                      pl.col("max_since").first()).iter_rows()}
    methods = [INTAKE_METHOD, NO_REFERENCE, *sorted(set(model["method"]) | set(beyond.values()))]
    index = {m: i for i, m in enumerate(methods)}
    rows = [(r["instrument"], r["fold"], r["folds"], r["max_since"], index[r["method"]], index[beyond[r["instrument"]]],
             *(r["coef"] if r["coef"] is not None and r["coef"][0] is not None else [None] * (3 * TERMS)))
            for r in model.iter_rows(named=True)]
    bind: dict = {"tol": TOLERANCE}
    series = _series_sql(instruments, severity, clients, bind, latest_only)
    coef_names = [f"c{j}" for j in range(3 * TERMS)]
    fits = bound_table("fits", ["instrument", "fold", "folds", "max_since", "cell", "beyond", *coef_names],
                       ["VARCHAR", "BIGINT", "BIGINT", "BIGINT", "INTEGER", "INTEGER", *["DOUBLE"] * (3 * TERMS)],
                       rows, bind)
    own = bound_table("own", ["client_id", "instrument", "fold"], ["VARCHAR", "VARCHAR", "BIGINT"],
                      loo.rows() or [(None, None, None)], bind)
    ends = latest_only and with_ends
    ends_in = " s.intake_session, s.scores," if ends else ""
    ends_out = ", intake_session::INTEGER AS first_session, scores::UINTEGER AS scores" if ends else ""

    def predicted(q: int) -> str:  # the q-th fitted quantile of improvement, as change (score - intake)
        c = [f"f.c{q * TERMS + j}" for j in range(TERMS)]
        return f"s.sign * (({c[0]} + {c[1]} * s.intake) * ln(1 + since) + {c[2]} * since)"
    sql = series + f""",
    {fits},
    {own},
    nfolds AS (SELECT instrument, any_value(folds) AS folds, bool_or(fold = -1) AS has_all FROM fits
               GROUP BY instrument),
    placed AS (
        SELECT s.*, s.session_number - s.intake_session AS since,
               coalesce(o.fold, CASE WHEN n.has_all THEN -1 ELSE hash(s.client_id) % n.folds END) AS fold
        FROM series s
        LEFT JOIN nfolds n ON n.instrument = s.instrument
        LEFT JOIN own o ON o.client_id = s.client_id AND o.instrument = s.instrument
        {"WHERE s.session_number = s.last_session" if latest_only else ""}
    ),
    picked AS (
        SELECT s.client_id, s.instrument, s.session_number, s.score, s.intake, s.score - s.intake AS change,
               s.band,{ends_in} s.sign, s.session_number = s.intake_session AS is_intake,
               s.since > f.max_since AS too_far,
               {predicted(0)} AS expected, {predicted(1)} AS lower, {predicted(2)} AS floor,
               CASE WHEN s.since > f.max_since THEN f.beyond ELSE f.cell END AS cell
        FROM placed s
        LEFT JOIN fits f ON f.instrument = s.instrument AND f.fold = s.fold
    )
    SELECT client_id, instrument, session_number::INTEGER AS session_number, score, intake, change, band,
           CASE WHEN too_far THEN NULL ELSE expected END AS expected,
           CASE WHEN too_far THEN NULL ELSE lower END AS lower,
           CASE WHEN too_far THEN NULL ELSE floor END AS floor,
           CASE WHEN is_intake OR too_far OR lower IS NULL OR floor IS NULL THEN 'grey'
                WHEN sign * change >= sign * lower - $tol THEN 'green'
                WHEN sign * change >= sign * floor - $tol THEN 'orange'
                ELSE 'red' END AS colour,
           CASE WHEN is_intake THEN 0 WHEN cell IS NULL THEN 1 ELSE cell END AS method{ends_out}
    FROM picked
    ORDER BY client_id, instrument, session_number
    """
    found = store.query(sql, bind, scope=scope)
    text = pl.Series("method", methods, dtype=pl.Categorical)
    return found.with_columns(text.gather(found["method"])).cast(TRACK_SCHEMA)



def latest_colour(store, catalog: Catalog, scope: Scope, clients=None, **options) -> pl.DataFrame:
    """Each client's colour at the latest scored session, per outcome instrument: the
    triage view. Takes the options of `track_colours`."""
    return track_colours(store, catalog, scope, clients, latest_only=True, **options)
