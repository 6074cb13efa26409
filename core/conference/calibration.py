"""The calibration exercise: trainees of a supervision group rate the alliance or code the
themes of one case, blind, and the group sees how far they agree and where they diverge.

A supervisor makes an exercise: a case of the group, a kind ("rating": one score per
session on an alliance instrument's scale, e.g. "SRS:total"; "coding": one code per
session from a theme codebook, e.g. "transference"; a coder may give several codes to one
session) and the sessions to rate. Each trainee saves one answer per session under their
pseudonymous id and may change it until the group looks at the agreement; the latest
answer counts.

The agreement uses the raters who answered every session of the exercise (a rater still
answering is listed, not counted): ICC(2,1) with the scores' mean distance from their
session's mean for ratings; for codes Fleiss' kappa (pooled over the codes when a coder gave
several codes to a session) and each code's own kappa; all from `agreement`. The case's own stored ratings or codes stay hidden (`reveal` refuses)
until at least two raters have answered every session.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from ..access import Scope
from ..catalog import Catalog, default_catalog
from ..store import Store
from .agreement import code_agreement, icc
from .meetings import ROSTER, ConferenceError, checked_group, checked_user, editor, group_scope, writing

KINDS = ("rating", "coding")
HEADLINE_ICC = "ICC(2,1)"   # two-way random, absolute agreement, one rater (Shrout & Fleiss 1979)
KAPPA = "Fleiss' kappa"
# A coder who finds none of the codebook's codes in a session answers this; it is a category
# of its own in Fleiss' kappa.
NO_CODE = "none"
NO_CODE_LABEL = "None of these codes"
# Several codes of one answer are stored in its one text cell, sorted, joined by this mark
# (a code of the codebook cannot hold it); an answer of one code is stored as before.
CODE_SEP = "|"
POOLED_KAPPA = "Fleiss' kappa, pooled over the codes"
POOLED_SOURCE = "De Vries et al. 2008"


def answer_codes(answer: str | None) -> list[str]:
    """A stored coding answer as its list of codes: "hostile|mistrustful" -> [...]."""
    return [c for c in (answer or "").split(CODE_SEP) if c]

# Interpretation bands: (lower limit, label), a value on a limit belongs to the higher band.
# Koo & Li (2016), J Chiropr Med 15(2):155-163: ICC below 0.5 poor, 0.5-0.75 moderate,
# 0.75-0.9 good, above 0.9 excellent. They also advise at least 30 targets and 3 raters for
# a reliability study, so a smaller exercise gets a caveat.
ICC_BANDS = ((-math.inf, "poor"), (0.5, "moderate"), (0.75, "good"), (0.9, "excellent"))
ICC_SOURCE = "Koo & Li 2016"
ICC_STUDY_TARGETS, ICC_STUDY_RATERS = 30, 3
# Landis & Koch (1977), Biometrics 33(1):159-174: kappa below 0 poor, 0.00-0.20 slight,
# 0.21-0.40 fair, 0.41-0.60 moderate, 0.61-0.80 substantial, 0.81-1.00 almost perfect. Their
# limits have two decimals, so kappa is rounded to two decimals before it is banded.
KAPPA_BANDS = ((-math.inf, "poor"), (0.0, "slight"), (0.21, "fair"), (0.41, "moderate"), (0.61, "substantial"),
               (0.81, "almost perfect"))
KAPPA_SOURCE = "Landis & Koch 1977"


def band(value: float, bands) -> str:
    """The label of the band `value` falls in (bands: (lower limit, label), ascending)."""
    label = bands[0][1]
    for lower, name in bands:
        if value >= lower:
            label = name
    return label


# ----------------------------------------------------------------------------- subjects

def rating_subjects(catalog: Catalog) -> list[str]:
    """Every "INSTRUMENT:scale" of the catalog's alliance instruments, totals first."""
    return [f"{key}:{scale}" for key, inst in catalog.instruments_of("alliance").items()
            for scale in sorted(inst.scales, key=lambda s: (s != "total", s))]


def coding_subjects(catalog: Catalog) -> list[str]:
    return list(catalog.vocabularies.theme_kinds)


def subject_label(catalog: Catalog, kind: str, subject: str) -> str:
    """ "SRS:total" -> "Session Rating Scale, total (0-40)"; "transference" -> "Transference"."""
    if kind == "rating":
        key, scale = subject.split(":", 1)
        inst = catalog.instruments.get(key)
        if inst is None or scale not in inst.scales:
            return subject
        low, high = inst.scales[scale]
        return f"{inst.name}, {scale} ({low:g}-{high:g})"
    book = catalog.codebooks.get(subject)
    return book.label if book else subject


def score_range(catalog: Catalog, subject: str) -> tuple[float, float]:
    key, scale = subject.split(":", 1)
    return catalog.instruments[key].scales[scale]


def code_choices(catalog: Catalog, subject: str) -> dict[str, str]:
    """The codes a coder may answer (key: label): the codebook's, then NO_CODE."""
    return {**catalog.codebooks[subject].codes, NO_CODE: NO_CODE_LABEL}


def _check_subject(catalog: Catalog, kind: str, subject: str) -> str:
    subject = (subject or "").strip()
    if kind == "rating":
        key, _, scale = subject.partition(":")
        scale = scale or "total"
        alliance = catalog.instruments_of("alliance")
        if key not in alliance:
            raise ConferenceError(f"'{key}' is not an alliance instrument of the catalog; a rating exercise rates "
                                  f"one of {', '.join(alliance)} (e.g. 'SRS:total').")
        if scale not in alliance[key].scales:
            raise ConferenceError(f"{key} has no scale '{scale}'; its scales are "
                                  f"{', '.join(alliance[key].scales)}.")
        return f"{key}:{scale}"
    kinds = coding_subjects(catalog)
    if subject not in kinds:
        raise ConferenceError(f"'{subject}' is not a theme codebook of the catalog; a coding exercise codes one of "
                              f"{', '.join(kinds)}.")
    return subject


# ----------------------------------------------------------------------------- exercises

def new_exercise(store: Store, catalog: Catalog, group: str, client_id: str, kind: str, subject: str, sessions,
                 *, scope: Scope) -> int:
    """Create a calibration exercise for `group` on `client_id`'s `sessions`, made by
    `scope`'s user (the group's supervisor or an admin); its id."""
    therapists = checked_group(store, group, scope)
    created_by = editor(scope, group)
    cases = group_scope(store, scope, group)
    if kind not in KINDS:
        raise ConferenceError(f"An exercise is a 'rating' (a score per session) or a 'coding' (a code per "
                              f"session), not '{kind}'.")
    subject = _check_subject(catalog, kind, subject)
    seen_by = store.query("SELECT DISTINCT therapist_id FROM sessions WHERE client_id = $c ORDER BY 1",
                          {"c": client_id}, scope=scope)["therapist_id"].to_list()
    if not seen_by:
        raise ConferenceError(f"There is no case '{client_id}' in this store.")
    if not set(seen_by) & set(therapists):
        raise ConferenceError(f"Case '{client_id}' is not seen by a therapist of {group} (its therapist: "
                              f"{', '.join(str(t) for t in seen_by)}); pick a case of the group.")
    try:
        wanted = sorted({int(s) for s in sessions})
    except (TypeError, ValueError):
        raise ConferenceError("Sessions are given by their numbers (e.g. 3, 4, 5).") from None
    if len(wanted) < 2:
        raise ConferenceError("An exercise needs at least 2 sessions: agreement is measured across sessions.")
    attended = attended_sessions(store, client_id, cases)
    missing = [s for s in wanted if s not in set(attended)]
    if missing:
        raise ConferenceError(f"Case '{client_id}' has no attended session{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(map(str, missing))}; its "
                              f"sessions are {_spans(attended)}.")
    with writing(store, scope) as cur:
        exercise_id = cur.execute("SELECT nextval('exercise_ids')").fetchall()[0][0]
        cur.execute("INSERT INTO calibration_exercises VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                    [exercise_id, group, client_id, kind, subject, wanted, created_by])
    return int(exercise_id)


def attended_sessions(store: Store, client_id: str, scope: Scope) -> list[int]:
    """The numbers of a case's attended sessions, the ones an exercise may ask about."""
    return store.query("SELECT session_number FROM sessions WHERE client_id = $c AND attended IS NOT FALSE "
                       "ORDER BY 1", {"c": client_id}, scope=scope)["session_number"].to_list()


def group_cases(store: Store, group: str, scope: Scope) -> list[str]:
    """The cases of a group's therapists that `scope` may make an exercise on."""
    return store.query("SELECT DISTINCT client_id FROM sessions ORDER BY 1",
                       scope=group_scope(store, scope, group))["client_id"].to_list()


def _spans(numbers: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0-2, 5, 7-8"."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans) or "none"


def exercise(store: Store, exercise_id: int, scope: Scope) -> dict:
    """One exercise `scope` may see as a dict (sessions as a list), or a ConferenceError."""
    found = store.query("SELECT * FROM calibration_exercises WHERE exercise_id = $id", {"id": exercise_id},
                        scope=scope)
    if found.is_empty():
        raise ConferenceError(f"There is no calibration exercise {exercise_id} in this store.")
    row = found.row(0, named=True)
    row["sessions"] = sorted(row["sessions"])
    return row


def exercises(store: Store, scope: Scope, group: str | None = None) -> pl.DataFrame:
    """The exercises `scope` may see, newest first, with how many raters answered and how
    many finished (answered every session). Never the answers themselves: those stay blind."""
    where = "WHERE e.supervision_group = $g" if group is not None else ""
    visible = store.query("SELECT exercise_id FROM calibration_exercises", scope=scope)["exercise_id"].to_list()
    where = ("WHERE " if not where else where + " AND ") + "e.exercise_id = ANY($ids::INTEGER[])"
    # The counts are the store owner's: how many answered is no answer.
    return store.query(
        "WITH per_rater AS (SELECT exercise_id, rater, count(*) AS n FROM calibration_answers "
        "GROUP BY exercise_id, rater) "
        "SELECT e.exercise_id, e.supervision_group, e.client_id, e.kind, e.subject, e.sessions, e.created_by, "
        "e.created_at, count(p.rater)::INTEGER AS raters, "
        "count(p.rater) FILTER (WHERE p.n >= cardinality(e.sessions))::INTEGER AS finished "
        f"FROM calibration_exercises e LEFT JOIN per_rater p USING (exercise_id) {where} "
        "GROUP BY e.exercise_id, e.supervision_group, e.client_id, e.kind, e.subject, e.sessions, e.created_by, "
        "e.created_at ORDER BY e.exercise_id DESC", {"ids": visible, **({"g": group} if group is not None else {})},
        scope=ROSTER)


def save_answer(store: Store, catalog: Catalog, exercise_id: int, session_number: int,
                score: float | None = None, code: str | list[str] | tuple | None = None, *, scope: Scope) -> None:
    """Save the answer of `scope`'s user for one session of the exercise; a new answer
    replaces theirs. The rater is always the signed-in user: nobody answers for another. A
    coding answer is one code or a list of codes ("none" stands alone)."""
    ex = exercise(store, exercise_id, scope)
    rater = checked_user(scope.user)
    try:
        session_number = int(session_number)
    except (TypeError, ValueError):
        raise ConferenceError("A session is given by its number (e.g. 4).") from None
    if session_number not in ex["sessions"]:
        raise ConferenceError(f"Session {session_number} is not part of exercise {exercise_id}; its sessions are "
                              f"{_spans(ex['sessions'])}.")
    if ex["kind"] == "rating":
        if code is not None:
            raise ConferenceError(f"Exercise {exercise_id} asks for a score, not a code.")
        try:
            score = None if score is None else float(score)
        except (TypeError, ValueError):
            raise ConferenceError("A score is a number.") from None
        if score is None or not math.isfinite(score):
            raise ConferenceError(f"Give a score for session {session_number}.")
        low, high = score_range(catalog, ex["subject"])
        if not low <= score <= high:
            raise ConferenceError(f"{ex['subject'].replace(':', ' ')} scores lie between {low:g} and {high:g}; "
                                  f"{score:g} is outside.")
    else:
        if score is not None:
            raise ConferenceError(f"Exercise {exercise_id} asks for a code, not a score.")
        given = [code] if code is None or isinstance(code, str) else list(code)
        picked = sorted({str(c).strip() for c in given if c is not None and str(c).strip()})
        if not picked:
            raise ConferenceError(f"Give a code for session {session_number}.")
        choices = code_choices(catalog, ex["subject"])
        for one in picked:
            if one not in choices:
                raise ConferenceError(f"'{one}' is not a code of the {ex['subject']} codebook; the codes are "
                                      f"{', '.join(choices)}.")
        if NO_CODE in picked and len(picked) > 1:
            raise ConferenceError(f"'{NO_CODE_LABEL}' cannot go with other codes in session {session_number}: "
                                  "choose either.")
        code = CODE_SEP.join(picked)
    with writing(store, scope) as cur:
        cur.execute("INSERT INTO calibration_answers VALUES (?, ?, ?, ?, ?, now()) "
                    "ON CONFLICT (exercise_id, rater, session_number) DO UPDATE SET score = excluded.score, "
                    "code = excluded.code, saved_at = excluded.saved_at",
                    [exercise_id, rater, session_number, score, code or None])


def answers(store: Store, exercise_id: int, scope: Scope, rater: str | None = None) -> pl.DataFrame:
    """The saved answers `scope` may see (rater, session_number, score, code, saved_at), of
    one rater when `rater` is given: in the blind phase a trainee sees only their own."""
    exercise(store, exercise_id, scope)
    where = " AND rater = $r" if rater is not None else ""
    params = {"id": exercise_id, **({"r": rater} if rater is not None else {})}
    return store.query("SELECT rater, session_number, score, code, saved_at FROM calibration_answers "
                       f"WHERE exercise_id = $id{where} ORDER BY rater, session_number", params, scope=scope)


def finished_raters(store: Store, exercise_id: int, scope: Scope) -> tuple[list[str], list[str]]:
    """(raters who answered every session, raters still answering), each sorted. Who
    answered is no answer: the counts are read as the store's owner once `scope` may see
    the exercise."""
    ex = exercise(store, exercise_id, scope)
    counts = answers(store, exercise_id, ROSTER).group_by("rater").agg(pl.col("session_number").n_unique().alias("n"))
    done = sorted(counts.filter(pl.col("n") >= len(ex["sessions"]))["rater"].to_list())
    pending = sorted(counts.filter(pl.col("n") < len(ex["sessions"]))["rater"].to_list())
    return done, pending


# ----------------------------------------------------------------------------- agreement

def interval_band(lower: float, upper: float, settings=None) -> str:
    """Koo & Li's band read from a confidence interval: "good", or "poor to moderate" when
    the interval spans several bands (Koo & Li 2016 read the band from the 95 % interval)."""
    settings = settings or default_catalog().calibration
    bands = ((-math.inf, settings.below_bands), *((lim, name) for lim, name in settings.icc_bands))
    low, high = band(lower, bands), band(upper, bands)
    return low if low == high else f"{low} to {high}"


def agreement(store: Store, exercise_id: int, scope: Scope, catalog: Catalog | None = None) -> dict:
    """How far the raters who answered every session agree.

    Returns kind, subject, statistic (the headline's name), value (None when it cannot be
    computed yet), values (every ICC, or the kappa and the observed agreement), band,
    raters (those counted), targets (sessions), left_out (raters still answering),
    divergence (one row per session, where the raters diverge most first),
    interpretation (a sentence with the source of the bands) and source; for ratings also
    interval (lower, upper of ICC(2,1) at the catalog's confidence), level, interval_band
    (Koo & Li's band read from the interval) and mean_abs_difference (points)."""
    settings = (catalog or default_catalog()).calibration
    ex = exercise(store, exercise_id, scope)
    done, pending = finished_raters(store, exercise_id, scope)
    rating = ex["kind"] == "rating"
    result = {"kind": ex["kind"], "subject": ex["subject"], "statistic": HEADLINE_ICC if rating else KAPPA,
              "value": None, "values": {}, "band": None, "raters": done, "targets": len(ex["sessions"]),
              "left_out": pending, "divergence": pl.DataFrame(), "source": ICC_SOURCE if rating else KAPPA_SOURCE}
    if len(done) < 2:
        still = f"; {len(pending)} more {'has' if len(pending) == 1 else 'have'} started" if pending else ""
        result["interpretation"] = (
            f"The agreement needs at least 2 raters who answered all {len(ex['sessions'])} sessions; "
            f"{len(done) or 'no'} rater{'' if len(done) == 1 else 's'} {'has' if len(done) == 1 else 'have'} "
            f"so far{still}.")
        return result
    frame = (answers(store, exercise_id, scope).filter(pl.col("rater").is_in(done))
             .rename({"session_number": "target"}))
    try:
        # Answers that do not vary make the statistic 0 / 0: a sentence below, not a warning.
        with np.errstate(divide="ignore", invalid="ignore"):
            if rating:
                stats = icc(frame.select("target", "rater", "score"), settings.confidence)
            else:
                # Several codes to a session: each code's kappa and their pooled kappa; one
                # code each: the pooled kappa is Fleiss' kappa (kept as the headline's name).
                coded = frame.with_columns(codes=pl.col("code").str.split(CODE_SEP))
                several = bool(coded.select((pl.col("codes").list.len() > 1).any()).item())
                stats = code_agreement(coded.select("target", "rater", "codes"))
                if several:
                    result.update(statistic=POOLED_KAPPA, source=f"{KAPPA_SOURCE}; {POOLED_SOURCE}")
    except ValueError as err:  # not reachable with complete raters, kept as a sentence
        result["interpretation"] = str(err)
        return result
    if rating:
        shown = (pl.when(pl.col("score") == pl.col("score").round())
                 .then(pl.col("score").cast(pl.Int64).cast(pl.String))
                 .otherwise(pl.col("score").round(2).cast(pl.String)))  # 29 and 7.25, not 29.0
        per_session = (frame.sort("rater").group_by("target")
                       .agg(answers=pl.format("{}: {}", "rater", shown).str.join("; "), scores=pl.col("score")))
        divergence = stats.divergence.join(per_session, on="target", how="left")
        value = stats.values[HEADLINE_ICC]
        lower, upper = stats.intervals[HEADLINE_ICC]
        known = not (math.isnan(lower) or math.isnan(upper))
        result.update(values=stats.values, level=stats.level, mean_abs_difference=stats.mean_abs_difference,
                      interval=(lower, upper) if known else None,
                      interval_band=interval_band(lower, upper, settings) if known else None)
    else:
        per_session = (frame.sort("rater").group_by("target")
                       .agg(answers=pl.format("{}: {}", "rater", pl.col("code").str.replace_all(
                           CODE_SEP, " + ", literal=True)).str.join("; ")))
        divergence = stats.divergence.join(per_session, on="target", how="left")
        value = stats.pooled
        result.update(values={result["statistic"]: value, "Observed agreement": stats.observed},
                      per_code=_per_code(stats.per_code, catalog or default_catalog(), ex["subject"]))
    result["divergence"] = divergence.rename({"target": "session_number"})
    result["value"] = None if math.isnan(value) else value
    result["interpretation"] = _interpretation(rating, value, stats.targets, stats.raters, result["statistic"])
    if not rating and result["statistic"] == POOLED_KAPPA:
        result["interpretation"] += (
            " Coders gave several codes to a session: each code counts as given or not given, its own kappa is "
            "in the table per code, and the headline pools them (weighted by how often each code could disagree, "
            f"{POOLED_SOURCE}). A session's agreement is the share of codes two coders share, averaged over pairs.")
    if rating and result.get("interval"):
        lower, upper = result["interval"]
        result["interpretation"] += (
            f" {stats.level:.0%} confidence interval {lower:.2f} to {upper:.2f} (McGraw & Wong 1996): "
            f"{result['interval_band']} on {ICC_SOURCE}'s bands, read from the interval as they advise. "
            f"The scores lie on average {stats.mean_abs_difference:.1f} points from their session's mean: "
            "sessions of one case vary little, so a low ICC can go with close scores.")
    result["band"] = None if math.isnan(value) else (band(value, ICC_BANDS) if rating else
                                                     band(round(value, 2), KAPPA_BANDS))
    return result


def _interpretation(rating: bool, value: float, targets: int, raters: int, name: str | None = None) -> str:
    counted = f"{raters} raters on {targets} sessions"
    name = name or (HEADLINE_ICC if rating else KAPPA)
    if math.isnan(value):
        what = "scores" if rating else "codes"
        return (f"{name} cannot be computed for {counted}: the {what} do not vary at all (everyone gave the same "
                f"answer{'' if rating else ' in every session'}), so there is nothing to tell apart.")
    if rating:
        text = (f"{HEADLINE_ICC} = {value:.2f} for {counted}: {band(value, ICC_BANDS)} agreement on the bands of "
                f"{ICC_SOURCE} (below 0.5 poor, 0.5-0.75 moderate, 0.75-0.9 good, above 0.9 excellent).")
        if targets < ICC_STUDY_TARGETS or raters < ICC_STUDY_RATERS:
            text += (f" {ICC_SOURCE} ask for at least {ICC_STUDY_TARGETS} targets and {ICC_STUDY_RATERS} raters "
                     "in a reliability study: read this figure as a start for discussion, not a reliability "
                     "estimate.")
        return text
    return (f"{name} = {value:.2f} for {counted}: {band(round(value, 2), KAPPA_BANDS)} agreement on the bands of "
            f"{KAPPA_SOURCE} (below 0 poor, 0-0.20 slight, 0.21-0.40 fair, 0.41-0.60 moderate, 0.61-0.80 "
            "substantial, 0.81-1 almost perfect).")


def _per_code(per_code: pl.DataFrame, catalog: Catalog, subject: str) -> pl.DataFrame:
    """Each code's agreement with the codebook's words beside it: code, label, kappa (None
    when nobody or everybody gave it: nothing to tell apart), agreement, given, sessions."""
    words = code_choices(catalog, subject)
    return per_code.rename({"targets": "sessions"}).with_columns(
        label=pl.col("code").replace_strict(words, default=pl.col("code"), return_dtype=pl.String)
    ).select("code", "label", "kappa", "agreement", "given", "sessions")


# ----------------------------------------------------------------------------- reveal

def reveal(store: Store, exercise_id: int, scope: Scope) -> pl.DataFrame:
    """The case's own stored ratings or codes of the exercise's sessions next to the group's
    answers, one row per session; refused while the exercise is still blind (fewer than 2
    raters have answered every session).

    Ratings: session_number, the group's mean, then one column per stored rater (client,
    therapist, ...). Codes: session_number, the group's codes (code: count), then one column
    per stored rater with its codes of the session (code (intensity), ...)."""
    ex = exercise(store, exercise_id, scope)
    done, _ = finished_raters(store, exercise_id, scope)
    if len(done) < 2:
        raise ConferenceError("The case's own ratings stay hidden until at least 2 raters have answered every "
                              f"session of exercise {exercise_id}; {len(done)} {'has' if len(done) == 1 else 'have'} "
                              "so far.")
    group = answers(store, exercise_id, scope).filter(pl.col("rater").is_in(done))
    # The case's own ratings, as the group sees them in the room: a trainee sees the
    # exercise's case de-identified.
    scope = scope.for_clients(ex["supervision_group"], [ex["client_id"]])
    frame = pl.DataFrame({"session_number": ex["sessions"]}, schema={"session_number": pl.Int32})
    params = {"c": ex["client_id"], "s": ex["sessions"]}
    if ex["kind"] == "rating":
        instrument, scale = ex["subject"].split(":", 1)
        frame = frame.join(group.group_by("session_number").agg(group_mean=pl.col("score").mean()),
                           on="session_number", how="left")
        stored = store.query("SELECT session_number, rater, score FROM ratings WHERE client_id = $c "
                             "AND instrument = $i AND scale = $sc AND list_contains($s, session_number)",
                             {**params, "i": instrument, "sc": scale}, scope=scope)
        wide = stored.pivot(on="rater", index="session_number", values="score", aggregate_function="first") \
            if stored.height else None
    else:
        group = group.with_columns(pl.col("code").str.split(CODE_SEP)).explode("code")
        frame = frame.join(group.group_by("session_number", "code").len().sort("code")
                           .group_by("session_number").agg(group_codes=pl.format("{}: {}", "code", "len")
                                                           .str.join(", ")),
                           on="session_number", how="left")
        stored = store.query("SELECT session_number, rater, code, intensity FROM themes WHERE client_id = $c "
                             "AND kind = $k AND list_contains($s, session_number) ORDER BY code",
                             {**params, "k": ex["subject"]}, scope=scope)
        labelled = stored.with_columns(
            label=pl.when(pl.col("intensity").is_null()).then(pl.col("code"))
            .otherwise(pl.format("{} ({})", "code", "intensity")))
        wide = labelled.group_by("session_number", "rater").agg(pl.col("label").str.join(", ")) \
            .pivot(on="rater", index="session_number", values="label") if stored.height else None
    if wide is not None:
        wide = wide.select("session_number", *sorted(c for c in wide.columns if c != "session_number"))
        frame = frame.join(wide.cast({"session_number": pl.Int32}), on="session_number", how="left")
    return frame.sort("session_number")
