"""Outcome series from the store: reliable change and sudden gains / losses for every client at once.

The formulas live in `change` and `sudden_gains` (pure functions over numbers and
frames); this module feeds them the store's scores with the catalog's settings:

- the series: outcome instruments (catalog kind "outcome"), total scale, client ratings,
  attended sessions only (a score whose attendance is unknown counts, as in `expected`);
- change: the first and the last score of each client and instrument (Jacobson & Truax
  with the instrument's reliable change, its rule "gt" or "ge", and its cutoff);
- sudden gains and losses: criterion 1 = the instrument's `sudden_gain.points` (the
  BDI-II's 7, Tang & DeRubeis), else its reliable change in points, unless a cutoff is given, 25 % and alpha .05 and intake excluded by default (the
  catalog's [sudden_gains]); an instrument with no reliable change and no cutoff given
  is skipped (criterion 1 would have no number).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from ..access import Scope
from ..catalog import Catalog
from .change import classify_frame
from .sql import NOT_ATTENDED, bound_table, client_clause, recent_attended_join
from .sudden_gains import add_reversals, identify_sudden_changes

SERIES_SCHEMA = {"client_id": pl.String, "instrument": pl.String, "session_number": pl.Int32, "score": pl.Float64}
CHANGE_SCHEMA = {"client_id": pl.String, "instrument": pl.String, "first_session": pl.Int32,
                 "last_session": pl.Int32, "first": pl.Float64, "last": pl.Float64, "scores": pl.UInt32,
                 "threshold": pl.Float64, "rc_rule": pl.String, "cutoff": pl.Float64,
                 "cutoff_clinical": pl.String, "direction": pl.Int32, "change": pl.Float64,
                 "reliable": pl.Boolean, "category": pl.String}
SUDDEN_SCHEMA = {"client_id": pl.String, "instrument": pl.String, "kind": pl.String, "pregain_session": pl.Int32,
                 "postgain_session": pl.Int32, "pregain_score": pl.Float64, "postgain_score": pl.Float64,
                 "magnitude": pl.Float64, "cutoff": pl.Float64, "params": pl.String, "found": pl.UInt32,
                 "selected": pl.Boolean, "reversal_value": pl.Float64, "reversed": pl.Boolean}
# How suddengains' create_byperson picks one gain per client (multiple_sg_select).
ONE_PER_CLIENT = {"largest": ([pl.col("magnitude"), pl.col("pregain_session")], [True, False]),
                  "first": ([pl.col("pregain_session")], [False])}


def outcome_series(store, catalog: Catalog, scope: Scope, clients=None,
                   recent: int | None = None, ordered: bool = True) -> pl.DataFrame:
    """Every outcome score of the clients in scope: client_id, instrument, session_number, score.

    `recent` keeps only the scores of sessions after the client's latest session (in the
    sessions table) - `recent`. `ordered` sorts by client, instrument and session; a
    caller that sorts anyway (the sudden-gain grid) passes False and spares the sort."""
    instruments = catalog.instruments_of("outcome")
    if not instruments:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    bind: dict = {}
    meta = bound_table("meta", ["instrument"], ["VARCHAR"], [(k,) for k in instruments], bind)
    attended = recent_attended_join("r", recent, bind) if recent is not None else NOT_ATTENDED
    sql = f"""
    WITH {meta}
    SELECT r.client_id, r.instrument, r.session_number::INTEGER AS session_number, r.score
    FROM ratings r
    {attended}
    WHERE r.scale = 'total' AND r.rater = 'client' AND r.score IS NOT NULL
      AND r.instrument IN (SELECT instrument FROM meta){client_clause('r.client_id', clients, bind)}
    {"ORDER BY r.client_id, r.instrument, r.session_number" if ordered else ""}
    """
    return store.query(sql, bind, scope=scope).cast(SERIES_SCHEMA)


def _instrument_table(catalog: Catalog) -> pl.DataFrame:
    rows = []
    for key, inst in catalog.instruments_of("outcome").items():
        rc = inst.reliable_change
        rows.append({"instrument": key, "threshold": rc.threshold if rc else None, "rc_rule": rc.rule if rc else None,
                     "cutoff": inst.cutoff.value if inst.cutoff else None,
                     "cutoff_clinical": inst.cutoff.clinical if inst.cutoff else None, "direction": inst.sign})
    return pl.DataFrame(rows, schema={"instrument": pl.String, "threshold": pl.Float64, "rc_rule": pl.String,
                                      "cutoff": pl.Float64, "cutoff_clinical": pl.String, "direction": pl.Int32})


def change_table(series: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """One row per client and outcome instrument with a reliable change in the catalog:
    first and last score (by session number), the change, whether it is reliable and the
    category (recovered, improved, unchanged, deteriorated, harmed). A client with a
    single score has first = last and is "unchanged"."""
    ends = (series.sort("client_id", "instrument", "session_number")
            .group_by("client_id", "instrument", maintain_order=True)
            .agg(first_session=pl.col("session_number").first(), last_session=pl.col("session_number").last(),
                 first=pl.col("score").first(), last=pl.col("score").last(), scores=pl.len()))
    return classify_ends(ends, catalog)


def classify_ends(ends: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """`change_table` from the ends of each series, ordered by client and instrument:
    client_id, instrument, first_session, last_session, first, last (the scores there)
    and scores (how many)."""
    table = ends.join(_instrument_table(catalog).filter(pl.col("threshold").is_not_null()), on="instrument")
    return classify_frame(table).select(list(CHANGE_SCHEMA)).cast(CHANGE_SCHEMA)


@dataclass(frozen=True)
class SuddenGainParams:
    """Criteria for sudden gains and losses; `cutoff` None = each instrument's criterion 1
    from the catalog (`sudden_gain.points`, else its reliable change)."""
    cutoff: float | None = None
    pct: float = 0.25
    alpha: float = 0.05
    include_intake: bool = False
    multiple: str = "largest"  # one per client and instrument: "largest" or "first" (create_byperson)

    def __post_init__(self):
        if self.multiple not in ONE_PER_CLIENT:
            raise ValueError(f"multiple must be one of {', '.join(ONE_PER_CLIENT)}, got {self.multiple!r}.")

    @classmethod
    def from_catalog(cls, catalog: Catalog, **overrides) -> "SuddenGainParams":
        d = catalog.sudden_gains
        base = cls(None, d.pct, d.alpha, d.include_intake, d.multiple)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    def describe(self, cutoff: float) -> str:
        intake = "intake included (first interval 1->2)" if self.include_intake else "intake excluded"
        return (f"Tang & DeRubeis criteria: change >= {cutoff:g} points, >= {self.pct:.0%} of the pregain score, "
                f"pre/post means differ at alpha {self.alpha:g}; {intake}; one per client and instrument, "
                f"the {self.multiple} (suddengains create_byperson); reversed when a later score is beyond "
                "the postgain score plus half the change (create_bysg)")


def sudden_changes(series: pl.DataFrame, catalog: Catalog, params: SuddenGainParams) -> pl.DataFrame:
    """Every sudden gain and sudden loss of every client, per outcome instrument (one call
    per instrument, over all clients at once). `kind` is "gain" or "loss";
    `magnitude` is positive in points; `params` says which criteria were used; `found`:
    how many the client has of that kind on that instrument; `selected`: the one the
    per-person table keeps (`params.multiple`, see `one_per_client`); `reversal_value`
    and `reversed` as suddengains' create_bysg."""
    found = []
    for key, inst in catalog.instruments_of("outcome").items():
        cutoff = params.cutoff if params.cutoff is not None else inst.sudden_gain_points
        if cutoff is None:
            continue
        scores = series.filter(pl.col("instrument") == key).select("client_id", "session_number", "score")
        if scores.is_empty():
            continue
        hits = identify_sudden_changes(scores, cutoff=cutoff, direction=inst.sign, kind="both", pct=params.pct,
                                       alpha=params.alpha, include_intake=params.include_intake)
        if hits.height:
            hits = add_reversals(hits, scores, direction=inst.sign)
            found.append(hits.with_columns(instrument=pl.lit(key), cutoff=pl.lit(cutoff),
                                           params=pl.lit(params.describe(cutoff)), found=pl.col("n_in_client"),
                                           selected=pl.lit(True)).select(list(SUDDEN_SCHEMA)))
    if not found:
        return pl.DataFrame(schema=SUDDEN_SCHEMA)
    every = pl.concat(found).cast(SUDDEN_SCHEMA).sort("client_id", "instrument", "kind", "pregain_session")
    return every.with_columns(selected=one_per_client(every, params.multiple))


def one_per_client(changes: pl.DataFrame, multiple: str) -> pl.Series:
    """True for the one sudden change per client, instrument and kind that suddengains'
    create_byperson keeps: the largest magnitude (ties: the earliest) or the first."""
    by, descending = ONE_PER_CLIENT[multiple]
    rows = changes.with_row_index("_row")
    chosen = (rows.sort(by, descending=descending)
              .group_by("client_id", "instrument", "kind", maintain_order=True).agg(pl.col("_row").first()))
    return rows["_row"].is_in(chosen["_row"]).alias("selected")
