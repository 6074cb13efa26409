"""The bundled demo dataset, the messy example export and the synthetic clinic.

Ranges and codebooks are written out here from DOMAIN.md and CONTRACT.md on purpose:
if the generators (which read the catalog) and the catalog drift together, these tests
still say what the contract promised.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from core.store import KEYS
from devtools import demo, synth
from tests.conftest import ROOT

RANGES = {  # (instrument, scale) -> (low, high), DOMAIN.md
    ("SRS", "total"): (0, 40), **{("SRS", s): (0, 10) for s in ("relationship", "goals", "approach", "overall")},
    ("WAI-SR", "total"): (12, 60), **{("WAI-SR", s): (4, 20) for s in ("task", "bond", "goal")},
    ("ORS", "total"): (0, 40), ("PHQ-9", "total"): (0, 27), ("GAD-7", "total"): (0, 21),
    ("OQ-45", "total"): (0, 180), ("CORE-10", "total"): (0, 40), ("BDI-II", "total"): (0, 63),
    # Item-level ratings (CONTRACT.md extension): PHQ-9 items 0-3, CORE-10 items 0-4.
    **{("PHQ-9", f"item{i}"): (0, 3) for i in range(1, 10)}, **{("CORE-10", f"item{i}"): (0, 4) for i in range(1, 11)},
    ("CARE", "total"): (10, 50),  # empathy, Mercer et al. 2004: 10 items of 1-5
}
# Reliable change in points for symptom measures (lower is better), DOMAIN.md / catalog default for BDI-II.
RELIABLE_CHANGE = {"PHQ-9": 6, "GAD-7": 4, "OQ-45": 14, "CORE-10": 6, "BDI-II": 7}
CODEBOOKS = {  # CONTRACT.md "Default catalog"
    "transference": {"idealizing", "devaluing", "dependent", "mistrustful", "hostile", "erotic", "abandonment_fear",
                     "compliant", "competitive", "withdrawn"},
    "countertransference": {"overwhelmed_disorganized", "helpless_inadequate", "positive", "special_overinvolved",
                            "sexualized", "disengaged", "parental_protective", "criticized_mistreated"},
    "ccrt_wish": {"assert_self", "oppose_control_others", "be_controlled", "be_distant", "be_close_accepting",
                  "be_loved_understood", "feel_good", "achieve_help_others"},
    "ccrt_ro": {"strong", "controlling", "upset", "bad", "rejecting_opposing", "helpful", "likes_me", "understanding"},
    "ccrt_rs": {"helpful", "unreceptive", "respected_accepted", "oppose_hurt_others", "self_controlled", "helpless",
                "disappointed_depressed", "anxious_ashamed"},
}
BARRIER_CATEGORIES = {"communication_style", "cultural", "language", "reluctance_to_share",
                      "resistance_to_vulnerability", "boundary", "other"}
EVENTS = {"rupture_withdrawal", "rupture_confrontation", "repair",
          "boundary_crossing", "boundary_violation"}  # CONTRACT.md extension (Gutheil & Gabbard)
LANGUAGES = {"Arabic", "English", "Farsi"}


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return demo.generate_demo()


@pytest.fixture(scope="module")
def synthetic() -> dict[str, pl.DataFrame]:
    return synth.generate_synthetic_frames(10_000, seed=7)


# ----------------------------------------------------------------------------- checks shared by both datasets

def _out_of_range(ratings: pl.DataFrame) -> pl.DataFrame:
    bounds = pl.DataFrame([(i, s, lo, hi) for (i, s), (lo, hi) in RANGES.items()],
                          schema=["instrument", "scale", "low", "high"], orient="row")
    joined = ratings.join(bounds, on=["instrument", "scale"], how="left")
    return joined.filter(pl.col("low").is_null() | ~pl.col("score").is_between(pl.col("low"), pl.col("high")))


def _codes_outside(frames: dict[str, pl.DataFrame]) -> list:
    themes, bad = frames["themes"], []
    for kind, codes in CODEBOOKS.items():
        bad += themes.filter(pl.col("kind") == kind, ~pl.col("code").is_in(list(codes)))["code"].to_list()
    bad += themes.filter(~pl.col("kind").is_in(list(CODEBOOKS)))["kind"].to_list()
    bad += frames["barriers"].filter(~pl.col("category").is_in(list(BARRIER_CATEGORIES)))["category"].to_list()
    bad += frames["events"].filter(~pl.col("event").is_in(list(EVENTS)))["event"].to_list()
    return bad


def _duplicate_keys(frames: dict[str, pl.DataFrame]) -> dict[str, int]:
    counts = {t: int(f.select(KEYS[t]).is_duplicated().sum()) for t, f in frames.items()}
    return {t: n for t, n in counts.items() if n}


def _orphans(frames: dict[str, pl.DataFrame]) -> dict[str, int]:
    keys = frames["sessions"].select("client_id", "session_number")
    found = {t: frames[t].join(keys, on=["client_id", "session_number"], how="anti").height
             for t in ("ratings", "themes", "barriers", "events")}
    found["therapists"] = frames["sessions"].join(frames["therapists"], on="therapist_id", how="anti").height
    return {t: n for t, n in found.items() if n}


def _unclean(notes: pl.Series) -> list[str]:
    """Notes with digits, @, or a capitalised word inside a sentence that is not a language."""
    bad = []
    for note in notes.drop_nulls().unique().to_list():
        words = note.split()
        inside = [w.strip(".,'") for prev, w in zip(words, words[1:]) if not prev.endswith(".")]
        if re.search(r"[\d@]", note) or any(w[:1].isupper() and w not in LANGUAGES for w in inside):
            bad.append(note)
    return bad


# ----------------------------------------------------------------------------- the demo

def test_committed_demo_csvs_equal_a_fresh_generation(frames):
    for name, frame in frames.items():
        committed = (ROOT / "data" / "demo" / f"{name}.csv").read_bytes()
        assert committed == demo.csv_bytes(frame), f"data/demo/{name}.csv drifted: run python -m devtools.demo"


def test_demo_sizes_are_in_the_stated_ranges(frames):
    sessions, therapists = frames["sessions"], frames["therapists"]
    assert therapists["supervision_group"].n_unique() == 3
    assert set(therapists["level"]) == {"trainee", "staff"} and 10 <= therapists.height <= 14
    assert 50 <= sessions["client_id"].n_unique() <= 70
    assert 850 <= sessions.height <= 1200
    per_client = sessions.group_by("client_id").agg(pl.col("session_number").min().alias("first"),
                                                     pl.col("session_number").max().alias("last"),
                                                     pl.len().alias("n"))
    assert (per_client["first"] == 0).all() and (per_client["n"] == per_client["last"] + 1).all()
    assert per_client["last"].is_between(6, 30).all()
    assert 5 <= (~sessions["attended"]).sum() <= 0.08 * sessions.height
    assert {"couple", "family", "group"} <= set(sessions["modality"])
    assert (sessions["modality"] == "individual").mean() > 0.7


def test_demo_days_since_intake_start_at_zero_and_never_go_back(frames):
    s = frames["sessions"].sort("client_id", "session_number")
    steps = s.with_columns(pl.col("days_since_intake").diff().over("client_id").alias("step"))
    assert (s.filter(pl.col("session_number") == 0)["days_since_intake"] == 0).all()
    assert (steps["step"].drop_nulls() >= 0).all()
    assert steps["step"].drop_nulls().median() == 7


def test_every_demo_rating_is_an_integer_inside_its_instruments_range(frames):
    assert frames["ratings"].schema["score"].is_integer()
    assert _out_of_range(frames["ratings"]).height == 0


def test_demo_subscales_sum_to_their_totals(frames):
    r = frames["ratings"]
    for instrument, scales in (("SRS", 4), ("WAI-SR", 3)):
        sub = r.filter(pl.col("instrument") == instrument)
        parts = (sub.filter(pl.col("scale") != "total").group_by("client_id", "session_number", "rater")
                 .agg(pl.col("score").sum().alias("sum"), pl.len().alias("n")))
        joined = parts.join(sub.filter(pl.col("scale") == "total"), on=["client_id", "session_number", "rater"])
        assert joined.height > 50 and (joined["n"] == scales).all() and (joined["sum"] == joined["score"]).all()


def test_every_client_has_alliance_and_one_or_two_outcome_measures(frames):
    r = frames["ratings"]
    outcome = r.filter(pl.col("instrument").is_in(["ORS", "PHQ-9", "GAD-7", "OQ-45", "CORE-10", "BDI-II"]))
    per_client = outcome.group_by("client_id").agg(pl.col("instrument").n_unique())
    assert per_client.height == frames["sessions"]["client_id"].n_unique()
    assert per_client["instrument"].is_between(1, 2).all()
    assert outcome.filter(pl.col("session_number") == 0)["client_id"].n_unique() == per_client.height
    assert r.filter(pl.col("instrument") == "SRS")["client_id"].n_unique() == per_client.height
    assert set(r.filter(pl.col("instrument") == "WAI-SR")["rater"]) == {"client", "therapist"}


def test_every_demo_code_is_in_its_codebook(frames):
    assert _codes_outside(frames) == []
    themes, barriers = frames["themes"], frames["barriers"]
    assert themes["intensity"].drop_nulls().is_between(1, 5).all()
    assert set(themes["rater"]) == {"therapist", "supervisor"}
    assert barriers["severity"].is_between(1, 3).all() and set(barriers["addressed"]) == {True, False}
    assert set(barriers["category"]) == BARRIER_CATEGORIES
    assert set(frames["events"]["event"]) == EVENTS


def test_demo_keys_are_unique(frames):
    assert _duplicate_keys(frames) == {}


def test_every_demo_row_points_at_a_session(frames):
    assert _orphans(frames) == {}


def test_demo_notes_are_clean_and_of_plausible_length(frames):
    notes = pl.concat([frames["barriers"]["note"], frames["events"]["note"], frames["themes"]["note"]])
    assert _unclean(notes) == []
    assert frames["barriers"]["note"].str.len_chars().is_between(40, 200).all()
    assert frames["barriers"]["note"].n_unique() > 0.6 * frames["barriers"].height


def _srs_ruptures(frames) -> list[tuple[str, int]]:
    """(client, session) where the client's SRS total fell >= 2 SD of their own series (Stiles et al. 2004)."""
    found = []
    srs = frames["ratings"].filter(pl.col("instrument") == "SRS", pl.col("scale") == "total",
                                   pl.col("session_number") >= 1).sort("client_id", "session_number")
    for (client,), series in srs.group_by("client_id", maintain_order=True):
        scores, numbers = series["score"].to_numpy().astype(float), series["session_number"].to_list()
        sd = scores.std(ddof=1)
        found += [(client, numbers[i]) for i in range(1, len(scores)) if sd > 0 and scores[i - 1] - scores[i] >= 2 * sd
                  and scores[i - 1] - scores[i] >= 5]
    return found


def _repaired(frames, client: str, session: int) -> bool:
    e = frames["events"]
    return e.filter(pl.col("client_id") == client, pl.col("event") == "repair",
                    pl.col("session_number").is_between(session, session + 3)).height > 0


def _coded_rupture(frames, client: str, session: int) -> bool:
    e = frames["events"]
    return e.filter(pl.col("client_id") == client, pl.col("event").str.starts_with("rupture_"),
                    pl.col("session_number") == session).height > 0


def test_demo_has_a_two_sd_alliance_rupture_with_a_repair_within_three_sessions(frames):
    repaired = [(c, s) for c, s in _srs_ruptures(frames) if _coded_rupture(frames, c, s) and _repaired(frames, c, s)]
    assert len(repaired) >= 3
    kinds = {frames["events"].filter(pl.col("client_id") == c, pl.col("session_number") == s,
                                     pl.col("event") != "repair")["event"][0] for c, s in repaired}
    assert kinds == {"rupture_withdrawal", "rupture_confrontation"}


def test_demo_has_a_two_sd_alliance_rupture_without_repair(frames):
    unrepaired = [(c, s) for c, s in _srs_ruptures(frames)
                  if _coded_rupture(frames, c, s) and not _repaired(frames, c, s)]
    assert len(unrepaired) >= 2


def _sudden_gains(frames) -> list[tuple[str, str, int]]:
    """Tang & DeRubeis (1999) with full 3 + 3 windows, intake excluded, lower is better."""
    found = []
    r = frames["ratings"].filter(pl.col("instrument").is_in(list(RELIABLE_CHANGE)), pl.col("session_number") >= 1)
    for (client, instrument), series in r.group_by("client_id", "instrument", maintain_order=True):
        x = dict(zip(series["session_number"].to_list(), series["score"].to_list()))
        last = max(x)
        for n in range(2, last - 1):
            window = [x.get(s) for s in range(n - 2, n + 4)]
            if None in window or n + 3 > last:
                continue
            pre, post = np.array(window[:3], float), np.array(window[3:], float)
            drop = x[n] - x[n + 1]
            pooled = np.sqrt((2 * pre.var(ddof=1) + 2 * post.var(ddof=1)) / 4)
            criteria = (drop >= RELIABLE_CHANGE[instrument], drop >= 0.25 * x[n],
                        pre.mean() - post.mean() > 2.776 * pooled)
            if all(criteria):
                found.append((client, instrument, n))
    return found


def test_demo_has_sudden_gains_on_symptom_measures(frames):
    gains = _sudden_gains(frames)
    planted = {c for c, (course, _) in demo.OUTCOME_STORIES.items() if course == "sudden_gain"}
    assert planted <= {c for c, _, _ in gains}
    assert len({i for _, i, _ in gains}) >= 3


def test_a_therapists_countertransference_repeats_across_their_clients(frames):
    ct = frames["themes"].filter(pl.col("kind") == "countertransference", pl.col("rater") == "therapist").join(
        frames["sessions"].select("client_id", "therapist_id").unique(), on="client_id")
    modal = (ct.group_by("therapist_id", "client_id", "code").len()
             .sort("len", "code", descending=[True, False]).group_by("therapist_id", "client_id").first())
    repeated = modal.group_by("therapist_id", "code").len().filter(pl.col("len") >= 3)
    pairs = set(repeated.select("therapist_id", "code").iter_rows())
    assert {("th03", "helpless_inadequate"), ("th07", "special_overinvolved")} <= pairs


def test_the_story_table_names_every_planted_client():
    table = set(re.findall(r"^\| (c\d{3}) \|", demo.__doc__, flags=re.M))
    planted = (set(demo.RUPTURES) | set(demo.OUTCOME_STORIES) | set(demo.TRANSFERENCE_STORIES)
               | set(demo.DISAGREEMENT) | set(demo.BARRIER_STORIES))
    assert table == planted


# ----------------------------------------------------------------------------- the messy example

def test_committed_messy_example_equals_a_fresh_build(tmp_path):
    demo.write_messy_example(tmp_path)
    built = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed_root = ROOT / "data" / "examples"
    committed = sorted(p.relative_to(committed_root) for p in committed_root.rglob("*") if p.is_file())
    assert built == committed
    for path in built:
        assert (tmp_path / path).read_bytes() == (committed_root / path).read_bytes(), f"{path} drifted"


def test_messy_readme_lists_a_third_of_the_rows_as_planted_problems():
    readme = demo.messy_readme()
    listed = re.findall(r"^\| (\w+\.csv) \| (\d+) \|", readme, flags=re.M)
    assert len(listed) == 16
    rows = sum(len(spec["lines"]) - 1 for name, spec in demo.MESSY_FILES.items() if name != "sessions.csv")
    wrong = sum(1 for name, _ in listed if name != "sessions.csv")
    assert 35 <= rows <= 45 and 0.28 <= wrong / rows <= 0.4


# ----------------------------------------------------------------------------- the synthetic clinic

def test_synthetic_counts_follow_the_ratios(synthetic):
    n = 10_000
    assert synthetic["sessions"].height == n
    assert 3.6 <= synthetic["ratings"].height / n <= 4.4
    assert 0.9 <= synthetic["themes"].height / n <= 1.02
    assert 0.17 <= synthetic["barriers"].height / n <= 0.23
    assert 0.08 <= synthetic["events"].height / n <= 0.12
    per_client = synthetic["sessions"].group_by("client_id").len()["len"]
    assert per_client.min() >= 5 and per_client.max() <= 40
    clients_per_therapist = synthetic["sessions"]["client_id"].n_unique() / synthetic["therapists"].height
    assert 30 <= clients_per_therapist <= 40


def test_synthetic_keys_are_unique_and_rows_point_at_sessions(synthetic):
    assert _duplicate_keys(synthetic) == {}
    assert _orphans(synthetic) == {}


def test_synthetic_values_are_valid(synthetic):
    assert _out_of_range(synthetic["ratings"]).height == 0
    assert _codes_outside(synthetic) == []
    assert synthetic["themes"]["intensity"].drop_nulls().is_between(1, 5).all()
    assert synthetic["barriers"]["severity"].is_between(1, 3).all()


def test_synthetic_notes_are_mostly_distinct_and_clean(synthetic):
    notes = synth.synthetic_notes(np.random.default_rng(3), 200_000)
    assert notes.n_unique() > 0.9 * len(notes)
    assert _unclean(notes) == []
    assert synthetic["barriers"]["note"].n_unique() > 0.9 * synthetic["barriers"].height


def test_synthetic_clinic_is_deterministic_for_a_seed(synthetic):
    again = synth.generate_synthetic_frames(10_000, seed=7)
    other = synth.generate_synthetic_frames(10_000, seed=8)
    assert all(again[t].equals(synthetic[t]) for t in synthetic)
    assert not other["ratings"].equals(synthetic["ratings"])


def test_write_synthetic_clinic_writes_contract_csvs(tmp_path):
    counts = synth.write_synthetic_clinic(tmp_path, 500, seed=1)
    assert counts["sessions"] == 500
    for name, rows in counts.items():
        frame = pl.read_csv(tmp_path / f"{name}.csv", infer_schema=False)
        assert frame.height == rows and list(frame.columns) == list(demo.SCHEMAS[name])


def test_each_new_flag_is_raised_by_at_least_two_demo_cases(tmp_path, catalog):
    """Risk, missed sessions and lost contact (issue 14) each show in two demo cases or more,
    and a case with a risk answer leads the caseload."""
    from core.analytics.triage import triage
    from core.importer import load_demo
    from core.store import Store
    from tests.conftest import SYSTEM
    store = Store(tmp_path / "demo.duckdb")
    load_demo(store)
    cases, flags = triage(store, catalog, SYSTEM)
    for code in ("risk", "attendance", "lost_contact", "boundary"):
        assert flags.filter(pl.col("code") == code)["client_id"].n_unique() >= 2, code
    risky = set(flags.filter(pl.col("code") == "risk")["client_id"])
    assert set(cases.head(len(risky))["client_id"]) == risky
