"""The bundled demo dataset: a fictitious clinic whose cases tell stories a supervisor knows.

Three supervision groups, twelve therapists (th01-th12), sixty clients (c001-c060) and
about a thousand sessions, generated from a fixed seed: ``python -m devtools.demo`` rewrites
``data/demo/*.csv`` byte for byte (and the messy example export under ``data/examples/``),
and tests/test_demo_data.py checks that the committed files never drift. Every id is a
pseudonym and every note is invented clinical wording without names, dates, places or
numbers.

Client c001 is seen by th01, c002 by th02, ... c013 by th01 again (therapist = client
number modulo 12). Groups: th01-th04 group-north, th05-th08 group-south, th09-th12
group-east.

Stories built on purpose
------------------------

| client | therapist | story |
|---|---|---|
| c001 | th01 | recovered: reliable improvement crossing the clinical cutoff |
| c002 | th02 | sudden gain on PHQ-9 (Tang & DeRubeis), with CCRT coding |
| c004 | th04 | recurring transference: mostly mistrustful, some withdrawn |
| c005 | th05 | withdrawal rupture (SRS V-drop >= 2 SD), repaired within two sessions |
| c006 | th06 | client and therapist disagree: client WAI-SR high, therapist's low |
| c009 | th09 | not on track: no change while peers improve |
| c010 | th10 | confrontation rupture, repaired within two sessions |
| c011 | th11 | differences in communication style, a recurring barrier |
| c012 | th12 | deteriorating on OQ-45 |
| c013 | th01 | recovered |
| c015 | th03 | confrontation rupture, not repaired; the client drops out |
| c016 | th04 | transference idealizing in the first half of treatment, devaluing later |
| c018 | th06 | withdrawal rupture, repaired |
| c020 | th08 | language barrier (interpreter) in many sessions |
| c021 | th09 | sudden gain on BDI-II |
| c023 | th11 | client and therapist disagree: client WAI-SR low, therapist's high |
| c024 | th12 | deteriorating on CORE-10 |
| c026 | th02 | resistance to vulnerability, recurring barrier |
| c027 | th03 | withdrawal rupture, not repaired; the client drops out |
| c029 | th05 | sudden loss on PHQ-9 |
| c031 | th07 | transference idealizing and dependent |
| c033 | th09 | recovered |
| c035 | th11 | cultural barrier, recurring |
| c037 | th01 | confrontation rupture, repaired |
| c038 | th02 | sudden gain on GAD-7 |
| c039 | th03 | not on track |
| c041 | th05 | transference hostile and competitive |
| c043 | th07 | withdrawal rupture the therapist missed (their WAI-SR stays high); supervisor coded it; repaired |
| c044 | th08 | not on track |
| c045 | th09 | reluctance to share, recurring barrier |
| c046 | th10 | confrontation rupture, not repaired; the client drops out |
| c047 | th11 | transference: fear of abandonment and dependent |
| c048 | th12 | withdrawal rupture, not repaired; the client drops out |
| c051 | th03 | deteriorating on PHQ-9 |
| c052 | th04 | boundary strain, recurring barrier |
| c053 | th05 | sudden gain on CORE-10 |
| c056 | th08 | sudden loss on OQ-45 |
| c057 | th09 | client and therapist disagree: client WAI-SR high, therapist's low |
| c058 | th10 | recovered on ORS |
| c060 | th12 | transference compliant, turning withdrawn |
| c024, c029, c051 | | a risk item answered above 0 at the latest score (CORE-10 item 6, PHQ-9 item 9) |
| c007, c019 | | two missed sessions (no-show or late cancellation) after the last attended one |
| c014, c025 | | lost contact: three booked sessions over more than four weeks, none attended |
| c008, c017 | | a boundary violation coded by the supervisor in the latest attended session; c003 a crossing |
| c009, c039, c044 | | the scores discussed with the client only in every fourth session (sessions.feedback_discussed); th12 records no feedback |
| c005, c009, c015, c043 | | empathy (the CARE measure, 10-50) rated by the client every third SRS session |

Patterns that follow a therapist across cases:

- th03 (trainee, group-north): countertransference ``helpless_inadequate`` in every case;
  two ruptures without repair, a not-on-track and a deteriorating case.
- th07 (trainee, group-south): ``special_overinvolved``.
- th10 (staff, group-east): ``criticized_mistreated``.
- th02, th05 and th09 code the CCRT (``ccrt_wish`` / ``ccrt_ro`` / ``ccrt_rs``); each of
  their clients has one consistent wish, response of other and response of self.

Other clients follow ordinary courses (most improve); a few coded ruptures are minor
(repaired in the same session, no drop in the scores), as in real practice.
"""

from __future__ import annotations

import io
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from core import DATA_DIR
from core.contract import KEYS, TABLES
from core.catalog import DEFAULT_PATH

DEFAULT_SEED = 20261125
DEMO_FOLDER = DATA_DIR / "demo"
EXAMPLES_FOLDER = DATA_DIR / "examples"

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "sessions": {"client_id": pl.String, "session_number": pl.Int64, "therapist_id": pl.String,
                 "days_since_intake": pl.Int64, "modality": pl.String, "attended": pl.Boolean,
                 "feedback_discussed": pl.Boolean},
    "ratings": {"client_id": pl.String, "session_number": pl.Int64, "instrument": pl.String,
                "scale": pl.String, "rater": pl.String, "score": pl.Int64},
    "themes": {"client_id": pl.String, "session_number": pl.Int64, "kind": pl.String, "code": pl.String,
               "intensity": pl.Int64, "rater": pl.String, "note": pl.String},
    "barriers": {"client_id": pl.String, "session_number": pl.Int64, "category": pl.String,
                 "severity": pl.Int64, "addressed": pl.Boolean, "note": pl.String},
    "events": {"client_id": pl.String, "session_number": pl.Int64, "event": pl.String,
               "rater": pl.String, "note": pl.String},
    "therapists": {"therapist_id": pl.String, "supervision_group": pl.String, "level": pl.String},
}
SORT_KEYS = {table: list(key) for table, key in KEYS.items()}

# ----------------------------------------------------------------------------- the clinic

N_CLIENTS = 60
THERAPISTS = {f"th{i:02d}": ("group-north" if i <= 4 else "group-south" if i <= 8 else "group-east",
                             "trainee" if i in (2, 3, 5, 7, 9, 11) else "staff") for i in range(1, 13)}

RUPTURES = {  # client -> (kind, repaired)
    "c005": ("withdrawal", True), "c018": ("withdrawal", True), "c043": ("withdrawal", True),
    "c010": ("confrontation", True), "c037": ("confrontation", True),
    "c027": ("withdrawal", False), "c048": ("withdrawal", False),
    "c015": ("confrontation", False), "c046": ("confrontation", False),
}
OUTCOME_STORIES = {  # client -> (course, primary instrument)
    "c001": ("recovered", "PHQ-9"), "c013": ("recovered", "GAD-7"), "c033": ("recovered", "CORE-10"),
    "c058": ("recovered", "ORS"),
    "c002": ("sudden_gain", "PHQ-9"), "c021": ("sudden_gain", "BDI-II"), "c038": ("sudden_gain", "GAD-7"),
    "c053": ("sudden_gain", "CORE-10"),
    "c029": ("sudden_loss", "PHQ-9"), "c056": ("sudden_loss", "OQ-45"),
    "c009": ("not_on_track", "ORS"), "c039": ("not_on_track", "PHQ-9"), "c044": ("not_on_track", "OQ-45"),
    "c012": ("deteriorating", "OQ-45"), "c024": ("deteriorating", "CORE-10"), "c051": ("deteriorating", "PHQ-9"),
}
TRANSFERENCE_STORIES = {  # client -> weights (a second dict: the profile of the second half)
    "c004": ({"mistrustful": 0.75, "withdrawn": 0.17, "hostile": 0.08}, None),
    "c016": ({"idealizing": 0.85, "dependent": 0.15}, {"devaluing": 0.8, "hostile": 0.2}),
    "c031": ({"idealizing": 0.55, "dependent": 0.45}, None),
    "c041": ({"hostile": 0.6, "competitive": 0.3, "devaluing": 0.1}, None),
    "c047": ({"abandonment_fear": 0.6, "dependent": 0.4}, None),
    "c060": ({"compliant": 0.8, "dependent": 0.2}, {"withdrawn": 0.65, "compliant": 0.35}),
}
DISAGREEMENT = {"c006": -6, "c057": -5, "c023": +6, "c043": +2}  # therapist minus client, per WAI-SR subscale
BARRIER_STORIES = {"c020": "language", "c026": "resistance_to_vulnerability", "c035": "cultural",
                   "c045": "reluctance_to_share", "c052": "boundary", "c011": "communication_style"}
COUNTERTRANSFERENCE = {  # therapist -> weights, the same in every case
    "th03": {"helpless_inadequate": 0.75, "overwhelmed_disorganized": 0.15, "positive": 0.10},
    "th07": {"special_overinvolved": 0.7, "parental_protective": 0.2, "positive": 0.1},
    "th10": {"criticized_mistreated": 0.7, "disengaged": 0.2, "positive": 0.1},
}
CT_RATE = {"th03": 0.55, "th07": 0.5, "th10": 0.5, "th01": 0.0, "th08": 0.0}  # others 0.2
CCRT_CODERS = ("th02", "th05", "th09")

# Codes of the contract's default codebooks the ordinary cases draw from.
ORDINARY_TRANSFERENCE = ("idealizing", "dependent", "mistrustful", "compliant", "withdrawn", "competitive",
                         "abandonment_fear", "devaluing")
ORDINARY_CT = ("positive", "parental_protective", "disengaged", "overwhelmed_disorganized")
CCRT_CODES = {
    "ccrt_wish": ("assert_self", "oppose_control_others", "be_controlled", "be_distant", "be_close_accepting",
                  "be_loved_understood", "feel_good", "achieve_help_others"),
    "ccrt_ro": ("strong", "controlling", "upset", "bad", "rejecting_opposing", "helpful", "likes_me",
                "understanding"),
    "ccrt_rs": ("helpful", "unreceptive", "respected_accepted", "oppose_hurt_others", "self_controlled",
                "helpless", "disappointed_depressed", "anxious_ashamed"),
}
BARRIER_CATEGORIES = ("communication_style", "cultural", "language", "reluctance_to_share",
                      "resistance_to_vulnerability", "boundary", "other")

# Outcome generation: intake mean and SD, the level a recovered client reaches, noise SD.
OUTCOME_MODELS = {"ORS": (17, 4, 32, 1.8), "PHQ-9": (16, 3.5, 5, 1.3), "GAD-7": (13, 3, 4, 1.1),
                  "OQ-45": (84, 14, 44, 4.5), "CORE-10": (19, 4.5, 7, 1.6), "BDI-II": (28, 7, 9, 2.3)}
INSTRUMENT_SETS = (("ORS",), ("ORS",), ("PHQ-9", "GAD-7"), ("PHQ-9", "GAD-7"), ("PHQ-9",), ("OQ-45",),
                   ("CORE-10",), ("BDI-II",), ("BDI-II", "GAD-7"), ("ORS", "PHQ-9"))
PAIRED = {"PHQ-9": "GAD-7", "GAD-7": "PHQ-9", "BDI-II": "GAD-7"}

# ----------------------------------------------------------------------------- note wording

BARRIER_OBSERVATIONS = {
    "communication_style": (
        "Client answered in very brief statements and seemed uneasy with open questions.",
        "Client spoke at length and found it hard to pause for reflection or summaries.",
        "Client preferred indirect, story-like answers and experienced direct questions as intrusive.",
        "Client read silences as disapproval and filled them quickly.",
        "A joking, fast style made it hard to tell how distressing the week had been.",
        "Client expected concrete advice and was irritated by reflective comments.",
        "Client and therapist kept misreading each other's tone, which slowed the session."),
    "cultural": (
        "Client was uncertain whether talking about family conflict with an outsider is acceptable.",
        "Client expected the therapist to give instructions, which clashed with a collaborative approach.",
        "Client felt the therapist underestimated the role of faith in coping.",
        "Client worried that describing low mood would bring shame on the family.",
        "Different ideas about independence from parents led to a misunderstanding about goals.",
        "Client described distress mainly through bodily complaints and found emotion words unfamiliar."),
    "language": (
        "Session held with an Arabic interpreter, some nuance in the client's answers was lost.",
        "Client has limited English for describing feelings, so questions were kept short.",
        "Interpreter arrived late and the first part of the session felt rushed.",
        "Client switched to Farsi when upset, key phrases were clarified with the interpreter.",
        "Questionnaire wording was hard to follow, items were read aloud with the interpreter.",
        "Client did not want an interpreter from the same community and spoke in a second language."),
    "reluctance_to_share": (
        "Client avoided talking about the relationship with the partner and changed topic twice.",
        "Client said some things were too embarrassing to mention yet.",
        "Client gave a shortened account of the week and later hinted that more had happened.",
        "Client was guarded about drinking and played down the amount.",
        "Client asked who can read the notes before saying more about work.",
        "Client kept to safe topics and said the painful part can wait."),
    "resistance_to_vulnerability": (
        "Client laughed off questions about sadness and moved to practical matters.",
        "Client became intellectual whenever feelings about the loss came up.",
        "Client said that crying in front of others is a sign of weakness.",
        "Client kept the focus on other people's problems and avoided own needs.",
        "Client insisted things were fine even though the scores had worsened.",
        "Client found it hard to accept warmth from the therapist and became dismissive."),
    "boundary": (
        "Client asked to contact the therapist privately between sessions.",
        "Client sent several long messages between sessions and was upset at a brief reply.",
        "Client asked to extend the session when time was up, again this week.",
        "Client offered a gift and was hurt when it was declined.",
        "Client asked personal questions about the therapist's family.",
        "Client arrived late and wanted to make up the missed time."),
    "other": (
        "Session was interrupted by a fire alarm and the client found it hard to settle again.",
        "Client attended by video from a shared room and could not speak freely.",
        "Client was very tired after a night shift and struggled to concentrate.",
        "A change of room at short notice unsettled the client at the start.",
        "Client's child waited outside the room, which limited what could be discussed."),
}
BARRIER_RESPONSES = {
    True: ("Therapist named the difficulty and agreed a way forward with the client.",
           "Therapist slowed down, checked understanding and invited feedback.",
           "Therapist explored what made it hard and validated the hesitation.",
           "Therapist explained the rationale again and adjusted the task.",
           "Therapist acknowledged the tension and the client agreed to come back to it."),
    False: ("Not addressed in the session, to be raised in supervision.",
            "Therapist noticed it but did not comment, unsure how to raise it.",
            "Time ran out before it could be discussed.",
            "Therapist chose to wait until the alliance feels more secure.",
            "Not explored yet, plan to raise it next time."),
}
EVENT_NOTES = {
    "rupture_withdrawal": (
        "Client went quiet after the homework review and gave minimal answers for the rest of the session.",
        "Client agreed with everything but seemed detached and shifted topic whenever the goal came up.",
        "Client talked about the week in a flat voice and avoided eye contact after a challenge.",
        "Client deferred to every suggestion and then said the exercise did not matter much."),
    "rupture_confrontation": (
        "Client criticised the therapist for not helping and questioned the point of coming.",
        "Client rejected the exposure task angrily and said the therapist does not understand.",
        "Client complained that the sessions feel like a waste of time.",
        "Client accused the therapist of taking the partner's side."),
    "repair": (
        "Therapist invited the client to talk about the last session, the client said they had felt judged.",
        "Therapist acknowledged their part in the misunderstanding and the task was adjusted together.",
        "Rupture discussed openly, the client felt heard and agreed a revised goal.",
        "Therapist clarified the rationale and offered a choice of tasks, the client engaged again."),
}
THEME_NOTES = {
    "mistrustful": ("Expected the therapist to report back to others.", "Checked twice whether notes are shared."),
    "idealizing": ("Described the therapist as the only person who really understands.",),
    "devaluing": ("Said the therapy has achieved nothing and the therapist is out of their depth.",),
    "dependent": ("Asked the therapist to decide about the job offer.",),
    "hostile": ("Sarcastic about the homework and the therapist's questions.",),
    "abandonment_fear": ("Very distressed about the coming break in sessions.",),
    "compliant": ("Agreed quickly with every suggestion, little of own view.",),
    "withdrawn": ("Long silences, answered from a distance.",),
    "helpless_inadequate": ("Therapist felt stuck and unsure how to help.", "Left the session feeling incompetent."),
    "special_overinvolved": ("Therapist ran over time again and thought about the client at home.",),
    "criticized_mistreated": ("Therapist felt unappreciated and on trial.",),
}
SUPERVISOR_NOTE = "Coded in case conference from the session recording."


# ----------------------------------------------------------------------------- one case

@dataclass
class _Case:
    client: str
    therapist: str
    rng: np.random.Generator
    catalog: dict
    n: int = 0                              # last session number (intake is 0)
    attended: np.ndarray | None = None      # per session number
    protected: set[int] = field(default_factory=set)
    rupture_at: int | None = None           # the session of a planted rupture
    change_at: int | None = None            # the pregain session of a planted sudden gain or loss
    rows: dict[str, list] = field(default_factory=lambda: {t: [] for t in TABLES})

    def rating(self, session: int, instrument: str, scale: str, rater: str, score) -> None:
        low, high = self.catalog["instruments"][instrument]["scales"][scale]
        self.rows["ratings"].append((self.client, session, instrument, scale, rater,
                                     int(np.clip(np.rint(score), low, high))))

    def attended_sessions(self, first: int = 1) -> list[int]:
        return [s for s in range(first, self.n + 1) if self.attended[s]]


def _story_length(case: _Case) -> int:
    rng, client = case.rng, case.client
    if client in RUPTURES:
        if RUPTURES[client][1]:
            return int(rng.integers(14, 27))
        return int(rng.integers(8, 12)) + 3   # the rupture, two sessions, a last no-show
    if client in OUTCOME_STORIES:
        return int(rng.integers(12, 25))
    if client in TRANSFERENCE_STORIES:
        return int(rng.integers(14, 26))
    return int(np.rint(rng.triangular(6, 9, 30)))


def _sessions(case: _Case, modality: str) -> None:
    rng, n = case.rng, case.n
    gaps = rng.choice([7, 7, 7, 7, 7, 7, 7, 14, 14, 6, 8, 10, 4, 28], size=n)
    gaps[0] = rng.integers(5, 15)
    holiday = rng.random(n) < 0.04
    gaps[holiday] = rng.integers(21, 36, size=int(holiday.sum()))
    days = np.concatenate([[0], np.cumsum(gaps)])
    attended = np.ones(n + 1, dtype=bool)
    attended[1:] = rng.random(n) > 0.045
    attended[sorted(case.protected)] = True
    if case.client in RUPTURES and not RUPTURES[case.client][1]:
        attended[n] = False                 # dropped out after the unrepaired rupture
    case.attended = attended
    for s in range(n + 1):
        case.rows["sessions"].append((case.client, s, case.therapist, int(days[s]), modality, bool(attended[s])))


def _sd_drop_ok(series: dict[int, int], session: int, multiple: float = 2.0, margin: float = 1.0) -> bool:
    """Is the drop into `session` at least `multiple` SDs of the client's series (plus a margin)?"""
    values = np.array([series[s] for s in sorted(series)], dtype=float)
    drop = series[session - 1] - series[session]
    return drop >= multiple * values.std(ddof=1) + margin


def _alliance(case: _Case) -> None:
    """SRS every session the client attends; WAI-SR (client and therapist) at some sessions."""
    rng, n, client = case.rng, case.n, case.client
    sessions = np.arange(n + 1)
    # The alliance usually grows over treatment and moves slowly (AR(1) drift) rather than
    # jittering, so a 2-SD drop from one session to the next stands out as it does in
    # real series (Stiles et al. 2004), instead of firing on rounding noise.
    level = 30.5 if client == "c023" else rng.uniform(33.5, 37.5)
    growth = rng.uniform(2.5, 5.0)
    drift = np.zeros(n + 1)
    for s in range(1, n + 1):
        drift[s] = 0.85 * drift[s - 1] + rng.normal(0, 0.45)
    latent = level - growth + growth * np.minimum(sessions / min(n, 12), 1.0) + drift + rng.normal(0, 0.3, n + 1)

    shock = np.zeros(n + 1)                 # share of the rupture's depth, per session
    rupture = RUPTURES.get(client)
    if rupture:
        k = case.rupture_at
        shock[k] = 1.0
        if rupture[1]:
            partial = rng.random() < 0.5
            shock[k + 1] = 0.35 if partial else 0.0
        else:
            shock[k + 1:] = 0.5
        depth = rng.uniform(11, 15)
    srs_sessions = [s for s in case.attended_sessions() if s in case.protected or rng.random() < 0.93]
    while True:
        srs = {s: int(np.clip(np.rint(latent[s] - (depth * shock[s] if rupture else 0)), 0, 40))
               for s in srs_sessions}
        if rupture:
            # the V must be visible: lift the pre-rupture scores back to the client's level
            for s in (k - 2, k - 1):
                srs[s] = max(srs[s], int(np.rint(level)))
        if not rupture or _sd_drop_ok(srs, case.rupture_at):
            break
        depth += 1.0
    items = client in RUPTURES or rng.random() < 0.3
    weights = {"withdrawal": (1.0, 0.7, 1.0, 0.75), "confrontation": (0.7, 1.0, 0.65, 0.95)}
    for s, total in srs.items():
        case.rating(s, "SRS", "total", "client", total)
        if items:
            w = weights[rupture[0]] if rupture and shock[s] > 0 else (1.0, 1.0, 1.0, 1.0)
            for scale, value in zip(("relationship", "goals", "approach", "overall"), _split(total, w, rng)):
                case.rating(s, "SRS", scale, "client", value)

    wai_client = client in RUPTURES or client in DISAGREEMENT or rng.random() < 0.45
    if not wai_client:
        return
    wai_therapist = client in RUPTURES or client in DISAGREEMENT or rng.random() < 0.7
    plan = {s for s in case.attended_sessions() if s % 4 == 3}
    if rupture:
        plan |= {k - 1, k, k + 1} & set(case.attended_sessions())
    base = rng.uniform(14, 18, size=3) - (5 if client == "c023" else 0)
    offset = DISAGREEMENT.get(client, rng.integers(-2, 1))
    seen = 0.0 if client == "c043" else 0.8 if rupture and rupture[0] == "confrontation" else 0.3
    cuts = {"withdrawal": (3.5, 2.5, 4.5), "confrontation": (5.0, 5.5, 3.0)}
    for s in sorted(plan):
        move = 0.35 * (latent[s] - level)
        cut = np.array(cuts[rupture[0]]) * shock[s] if rupture else np.zeros(3)
        client_scores = np.clip(np.rint(base + move - cut + rng.normal(0, 0.45, 3)), 4, 20)
        _wai(case, s, "client", client_scores)
        if wai_therapist:
            therapist_scores = np.clip(np.rint(base + offset + 0.5 * move - seen * cut + rng.normal(0, 0.45, 3)),
                                       4, 20)
            _wai(case, s, "therapist", therapist_scores)


def _wai(case: _Case, session: int, rater: str, scores: np.ndarray) -> None:
    for scale, value in zip(("task", "bond", "goal"), scores):
        case.rating(session, "WAI-SR", scale, rater, value)
    case.rating(session, "WAI-SR", "total", rater, scores.sum())


def _split(total: int, weights, rng) -> list[int]:
    """Split an SRS total into four items of 0-10 that sum to it."""
    w = np.array(weights) * (1 + rng.normal(0, 0.04, 4))
    raw = total * w / w.sum()
    items = np.minimum(np.floor(raw), 10).astype(int)
    for i in np.argsort(-(raw - items), kind="stable"):
        if items.sum() == total:
            break
        if items[i] < 10:
            items[i] += 1
    while items.sum() < total:              # only when rounding hit the ceiling of 10
        items[int(np.argmin(items))] += 1
    return items.tolist()


def _course(kind: str, n: int, rng, at: int | None) -> np.ndarray:
    """Share of the way from the intake level to the recovered level, per session."""
    s = np.arange(n + 1)
    if kind == "recovered":
        return rng.uniform(1.0, 1.12) * (1 - np.exp(-s / rng.uniform(3, 6)))
    if kind == "not_on_track":
        return rng.uniform(-0.08, 0.06) * (1 - np.exp(-s / 5))
    if kind == "deteriorating":
        return -rng.uniform(0.65, 0.8) * (1 - np.exp(-s / rng.uniform(5, 8)))
    if kind == "sudden_gain":
        return np.where(s <= at, 0.1 * s / at, rng.uniform(0.75, 0.9) + 0.1 * (s - at) / n)
    if kind == "sudden_loss":
        return np.where(s <= at, 0.6 * s / at, -0.05)
    return rng.uniform(0.25, 1.0) * (1 - np.exp(-s / rng.uniform(3, 9)))


def _criterion_1(spec: dict) -> float:
    """An instrument's sudden-gain criterion 1 in points (the catalog's [sudden_gain], else
    its reliable change in points): what the planted courses are made to exceed. For the
    BDI-II this is Tang & DeRubeis' 7 points, below its computed reliable change (7.64), so
    a deteriorating course (1.8 x 7 points) still crosses the reliable change."""
    return float(spec.get("sudden_gain", {}).get("points") or spec["reliable_change"]["points"])


def _tang_derubeis(x: dict[int, int], at: int, rc: float, lower_better: bool, loss: bool) -> bool:
    """Do sessions at -> at+1 meet the three criteria (25 %, cutoff, full 3+3 windows)?"""
    sign = (1 if lower_better else -1) * (-1 if loss else 1)
    if any(s not in x for s in range(at - 2, at + 4)):
        return False
    change = sign * (x[at] - x[at + 1])
    pre = np.array([x[s] for s in range(at - 2, at + 1)], dtype=float)
    post = np.array([x[s] for s in range(at + 1, at + 4)], dtype=float)
    pooled = np.sqrt((2 * pre.var(ddof=1) + 2 * post.var(ddof=1)) / 4)
    return bool(change >= rc and change >= 0.25 * x[at] and sign * (pre.mean() - post.mean()) > 2.776 * pooled + 0.5)


def _outcomes(case: _Case, instruments: tuple[str, ...], course: str) -> None:
    rng, n = case.rng, case.n
    at = case.change_at
    p = _course(course, n, rng, at)
    scored = [0] + [s for s in case.attended_sessions() if s in case.protected or rng.random() < 0.9]
    for position, instrument in enumerate(instruments):
        spec = case.catalog["instruments"][instrument]
        low, high = spec["scales"]["total"]
        lower_better = spec["direction"] == "lower"
        cutoff = spec["cutoff"]["value"]
        mean, sd, functional, noise = OUTCOME_MODELS[instrument]
        intake = rng.normal(mean, sd)
        intake = max(intake, cutoff + 2) if lower_better else min(intake, cutoff - 3)
        course_here = p
        if course == "deteriorating":       # worse by well over the reliable change, whatever the intake
            rc = _criterion_1(spec)
            course_here = p * max(1.0, 1.8 * rc / abs(p[-1] * (functional - intake)))
        for _ in range(100):
            x = {s: int(np.clip(np.rint(intake + course_here[s] * (functional - intake) + rng.normal(0, noise)),
                                low, high))
                 for s in scored}
            planted = course in ("sudden_gain", "sudden_loss") and position == 0
            if not planted or _tang_derubeis(x, at, _criterion_1(spec), lower_better,
                                             course == "sudden_loss"):
                break
        else:
            raise RuntimeError(f"could not plant the {course} of {case.client}")
        for s, value in x.items():
            case.rating(s, instrument, "total", "client", value)


def _pick(rng, weights: dict[str, float]) -> str:
    codes = list(weights)
    return codes[int(rng.choice(len(codes), p=np.array(list(weights.values())) / sum(weights.values())))]


def _themes(case: _Case) -> None:
    rng, client, therapist = case.rng, case.client, case.therapist
    sessions = case.attended_sessions()
    story = TRANSFERENCE_STORIES.get(client)
    if story:
        profile, rate, strong = story, 0.7, True
    elif rng.random() < 0.7:
        first, second = rng.choice(ORDINARY_TRANSFERENCE, size=2, replace=False)
        profile, rate, strong = ({str(first): 0.65, str(second): 0.35}, None), 0.3, False
    else:
        profile = None
    ct = COUNTERTRANSFERENCE.get(therapist)
    if ct is None:
        codes = rng.choice(ORDINARY_CT, size=3, replace=False)
        ct = {str(codes[0]): 0.4, str(codes[1]): 0.35, str(codes[2]): 0.25}
    ct_rate = CT_RATE.get(therapist, 0.2)
    ccrt = {kind: _pick(rng, {c: 1.0 for c in codes}) for kind, codes in CCRT_CODES.items()}
    half = sessions[len(sessions) // 2] if sessions else 0
    for s in sessions:
        if profile and rng.random() < rate:
            weights = profile[1] if profile[1] and s > half else profile[0]
            code = _pick(rng, weights)
            intensity = int(rng.integers(3, 6) if strong else rng.integers(1, 4))
            _theme(case, s, "transference", code, intensity, "therapist")
            if rng.random() < 0.08:
                case.rows["themes"].append((client, s, "transference", code, intensity, "supervisor",
                                            SUPERVISOR_NOTE))
        if rng.random() < ct_rate:
            _theme(case, s, "countertransference", _pick(rng, ct), int(rng.integers(2, 5)), "therapist")
        if therapist in CCRT_CODERS and rng.random() < 0.45:
            for kind, codes in CCRT_CODES.items():
                code = ccrt[kind] if rng.random() < 0.65 else str(rng.choice(codes))
                _theme(case, s, kind, code, None, "therapist")


def _theme(case: _Case, session: int, kind: str, code: str, intensity, rater: str) -> None:
    notes = THEME_NOTES.get(code)
    note = str(case.rng.choice(notes)) if notes and case.rng.random() < 0.35 else None
    case.rows["themes"].append((case.client, session, kind, code, intensity, rater, note))


def _events(case: _Case) -> None:
    rng, client = case.rng, case.client
    rupture = RUPTURES.get(client)
    if rupture:
        k = case.rupture_at
        rater = "supervisor" if client == "c043" else "therapist"
        _event(case, k, f"rupture_{rupture[0]}", rater)
        if rupture[1]:
            _event(case, k + 1, "repair", rater)
        return
    if rng.random() < 0.15:                 # a minor rupture, repaired in the same session
        s = int(rng.choice(case.attended_sessions()))
        _event(case, s, str(rng.choice(["rupture_withdrawal", "rupture_confrontation"])), "therapist")
        _event(case, s, "repair", "therapist")


def _event(case: _Case, session: int, event: str, rater: str) -> None:
    case.rows["events"].append((case.client, session, event, rater, str(case.rng.choice(EVENT_NOTES[event]))))


def _barriers(case: _Case) -> None:
    rng, client = case.rng, case.client
    story = BARRIER_STORIES.get(client)
    sessions = case.attended_sessions()
    for position, s in enumerate(sessions):
        found = set()
        if story and rng.random() < 0.5:
            found.add(story)
        if rng.random() < 0.08:
            found.add(str(rng.choice(BARRIER_CATEGORIES)))
        for category in sorted(found):
            late = position / max(len(sessions) - 1, 1)
            severity = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15] if late > 0.5 else [0.2, 0.45, 0.35]))
            addressed = bool(rng.random() < 0.35 + 0.4 * late)
            note = f"{rng.choice(BARRIER_OBSERVATIONS[category])} {rng.choice(BARRIER_RESPONSES[addressed])}"
            case.rows["barriers"].append((client, s, category, severity, addressed, note))


def _case(number: int, rng: np.random.Generator, catalog: dict) -> _Case:
    client = f"c{number:03d}"
    case = _Case(client, f"th{(number - 1) % 12 + 1:02d}", rng, catalog)
    case.n = _story_length(case)
    if client in RUPTURES:
        case.rupture_at = case.n - 3 if not RUPTURES[client][1] else int(rng.integers(6, case.n - 5))
        case.protected |= set(range(case.rupture_at - 2, case.rupture_at + (3 if RUPTURES[client][1] else 2)))
    course, primary = OUTCOME_STORIES.get(client, ("ordinary", None))
    if course in ("sudden_gain", "sudden_loss"):
        case.change_at = int(rng.integers(4, case.n - 4))
        case.protected |= set(range(case.change_at - 2, case.change_at + 4))
    modality = str(rng.choice(["individual", "couple", "family", "group"], p=[0.8, 0.08, 0.06, 0.06]))
    _sessions(case, "individual" if client in RUPTURES or client in OUTCOME_STORIES else modality)
    instruments = INSTRUMENT_SETS[int(rng.integers(len(INSTRUMENT_SETS)))]
    if client in RUPTURES:
        instruments = ("ORS",)
    if primary:
        instruments = (primary, PAIRED[primary]) if primary in PAIRED and rng.random() < 0.5 else (primary,)
    _alliance(case)
    _outcomes(case, instruments, course)
    _themes(case)
    _events(case)
    _barriers(case)
    _added_stories(case)
    return case


# Added after each case is made, without drawing from the random generator, so every other
# story stays as it was: (instrument, risk item, the latest answer).
RISK_STORIES = {"c024": ("CORE-10", "item6", 1), "c029": ("PHQ-9", "item9", 1), "c051": ("PHQ-9", "item9", 2)}
# A boundary event coded by the supervisor in the latest attended session.
BOUNDARY_STORIES = {"c003": ("boundary_crossing", "The therapist accepted a small gift at the end of treatment and "
                                                  "talked about what it meant."),
                    "c008": ("boundary_violation", "The therapist met the client socially between sessions."),
                    "c017": ("boundary_violation", "The therapist shared personal troubles at length in the session.")}
# Booked sessions after the last one, not attended: days after it.
MISSED_STORIES = {"c007": (7, 14), "c019": (7, 14), "c014": (7, 21, 42), "c025": (10, 24, 38)}
# Feedback (sessions.feedback_discussed, the active part of PCOMS): the scores are discussed
# in every attended session, except in these cases, where the therapist discusses them only
# in every FEEDBACK_EVERY-th session; th12 records no feedback at all (the column is optional).
FEEDBACK_SELDOM = ("c009", "c039", "c044")
FEEDBACK_EVERY = 4
FEEDBACK_NOT_RECORDED = "th12"
# Empathy (the CARE measure, 10-50): rated by the client every EMPATHY_EVERY-th attended
# session in these cases, following the client's SRS total of the session (CARE = SRS +
# offset): a cooler session is rated less empathic.
EMPATHY_STORIES = {"c005": 8, "c009": 2, "c015": 6, "c043": 8}
EMPATHY_EVERY = 3


def _added_stories(case: _Case) -> None:
    if case.client in RISK_STORIES:
        instrument, item, answer = RISK_STORIES[case.client]
        scored = sorted(r[1] for r in case.rows["ratings"]
                        if r[2] == instrument and r[3] == "total" and r[4] == "client")
        for session in scored[-4:-1]:
            case.rows["ratings"].append((case.client, session, instrument, item, "client", 0))
        case.rows["ratings"].append((case.client, scored[-1], instrument, item, "client", answer))
    if case.client in BOUNDARY_STORIES:
        event, note = BOUNDARY_STORIES[case.client]
        case.rows["events"].append((case.client, case.attended_sessions()[-1], event, "supervisor", note))
    if case.client in MISSED_STORIES:
        last = max(case.rows["sessions"], key=lambda r: r[1])
        for k, after in enumerate(MISSED_STORIES[case.client], start=1):
            case.rows["sessions"].append((case.client, last[1] + k, case.therapist, last[3] + after, last[4], False))
    case.rows["sessions"] = [(*row, _feedback(case, row[1]) if row[5] else None) for row in case.rows["sessions"]]
    if case.client in EMPATHY_STORIES:
        srs = {r[1]: r[5] for r in case.rows["ratings"] if r[2] == "SRS" and r[3] == "total" and r[4] == "client"}
        for k, session in enumerate(sorted(srs)):
            if k % EMPATHY_EVERY == 0:
                case.rating(session, "CARE", "total", "client", srs[session] + EMPATHY_STORIES[case.client])


def _feedback(case: _Case, session: int) -> bool | None:
    """Were the session's scores discussed with the client (an attended session)?"""
    if case.therapist == FEEDBACK_NOT_RECORDED:
        return None
    if case.client in FEEDBACK_SELDOM:
        return session % FEEDBACK_EVERY == 0
    return True


def catalog_data() -> dict:
    """The default catalog file as read (no clinic overlay: the demo must not depend on one)."""
    with DEFAULT_PATH.open("rb") as handle:
        return tomllib.load(handle)


def generate_demo(seed: int = DEFAULT_SEED) -> dict[str, pl.DataFrame]:
    """The demo dataset, one frame per contract table, sorted by key."""
    rng = np.random.default_rng(seed)
    catalog = catalog_data()
    rows: dict[str, list] = {t: [] for t in TABLES}
    for number in range(1, N_CLIENTS + 1):
        case = _case(number, rng, catalog)
        for table, found in case.rows.items():
            rows[table].extend(found)
    rows["therapists"] = [(t, group, level) for t, (group, level) in THERAPISTS.items()]
    return {t: pl.DataFrame(rows[t], schema=SCHEMAS[t], orient="row").sort(SORT_KEYS[t]) for t in TABLES}


def write_demo(folder: str | Path = DEMO_FOLDER, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Write the demo dataset as contract CSVs (comma, UTF-8, header row); returns rows per table."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = generate_demo(seed)
    for name, frame in frames.items():
        (folder / f"{name}.csv").write_bytes(csv_bytes(frame))
    return {name: frame.height for name, frame in frames.items()}


def csv_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_csv(buffer, line_terminator="\n")
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the messy example

# A small clinic export as it really arrives: semicolons, a BOM, Windows line ends, padded
# mixed-case headers, absolute dates, wide rating columns, an unknown column, and about a
# third of the rows of the other tables wrong in exactly one way each. Each line is
# written by hand; the planted problem (column, what is wrong) is kept beside it so the
# README's line numbers can never disagree with the files.
MESSY_FILES: dict[str, dict] = {
    "sessions.csv": {"bom": True, "newline": "\r\n", "lines": [
        (" Client_ID ;Session_Number; therapist_ID ;SESSION_DATE;Modality;Attended; SRS ;PHQ-9;"
         "WAI-SR:bond:therapist;Room", None),
        ("p101;0;t21;2026-03-02;individual;yes;;17;;blue", None),
        ("p101;1;t21;2026-03-09;individual;yes;34;16;;blue", None),
        ("p101;2;t21;2026-03-16;individual;yes;35,5;15;14;green", None),
        ("p101;3;t21;2026-03-23;individual;yes;37;13;;blue", None),
        ("p101;4;t21;2026-03-30;individual;no;;;;blue", None),
        ("p101;5;t21;2026-04-06;individual;yes;38;11;16;blue", None),
        ("p102;0;t21;2026-03-04;couple;true;;21;;green", None),
        ("p102;1;t21;2026-03-11;couple;true;36;20;;green", None),
        ("p102;2;t21;2026-03-18;couple;true;30;19;12;green", None),
        ("p102;3;t21;2026-03-25;couple;true;33;18;;green", None),
        ("p102;4;t21;2026-04-08;couple;true;37;16;15;", None),
        ("p103;0;t22;05.03.2026;;1;;14;;", None),
        ("p103;1;t22;12.03.2026;;1;38;13;;", None),
        ("p103;2;t22;19.03.2026;;1;39;12;17;", None),
        ("p103;3;t22;26.03.2026;;1;38;10;;", None),
        ("p104@example.org;0;t22;2026-03-06;individual;yes;;;;",
         ("client_id", "the client id looks like an e-mail address (a real identifier, not a pseudonym)")),
    ]},
    "ratings.csv": {"bom": False, "newline": "\n", "lines": [
        ("client_id,session_number,instrument,scale,rater,score", None),
        ("p101,1,GAD-7,total,client,14", None),
        ("p101,2,GAD-7,total,client,25", ("score", "25 is outside GAD-7's range 0-21")),
        ("p101,3,GAD-7,total,client,12", None),
        ("p101,5,GAD-7,total,client,9", None),
        ("p102,1,WAI-SR,task,client,15", None),
        ("p102,1,WAI-SR,bond,client,16", None),
        ("p102,1,WAI-SR,goal,client,14", None),
        ("p102,1,WAI-SR,total,client,45", None),
        ("p102,2.5,GAD-7,total,client,10", ("session_number", "2.5 is not a whole number")),
        ("p102,3,GAD-7,total,client,11", ("(key)", "shares its key with line 12: both rows are quarantined")),
        ("p102,3,GAD-7,total,client,13", ("(key)", "shares its key with line 11: both rows are quarantined")),
        ("p103,1,BAI,total,client,22", ("instrument", "BAI is not an instrument of the catalog")),
        ("p103,1,SRS,empathy,client,8", ("scale", "SRS has no scale 'empathy'")),
        ("p103,2,GAD-7,total,client,high", ("score", "'high' is not a number")),
        ("p103,3,GAD-7,total,client,9", None),
    ]},
    "themes.csv": {"bom": False, "newline": "\n", "lines": [
        ("client_id,session_number,kind,code,intensity,rater,note", None),
        ("p101,1,transference,mistrustful,3,therapist,Expected to be judged for the missed homework.", None),
        ("p101,2,countertransference,helpless_inadequate,2,therapist,", None),
        ("p101,3,transference,mistrustful,4,therapist,", None),
        ('p102,1,transference,idealizing,3,therapist,"Praised the therapist at length, found it hard to voice '
         'doubts."', None),
        ("p102,2,ccrt_wish,be_loved_understood,,therapist,", None),
        ("p102,2,ccrt_ro,rejecting_opposing,,therapist,", None),
        ("p102,2,ccrt_rs,disappointed_depressed,,therapist,", None),
        ("p103,1,transference,jealous,3,therapist,", ("code", "'jealous' is not in the transference codebook")),
        ("p103,2,countertransference,parental_protective,7,supervisor,", ("intensity", "7 is outside 1-5")),
        ("p103,3,transference,compliant,2,supervisor,Agreed quickly with every suggestion.", None),
    ]},
    "barriers.csv": {"bom": False, "newline": "\n", "lines": [
        ("client_id;session_number;category;severity;addressed;note", None),
        ("p101;1;language;2;yes;Session held with an interpreter, some questions had to be rephrased.", None),
        ("p101;3;reluctance_to_share;1;no;Client changed topic whenever work came up.", None),
        ("p102;1;cultural;2;true;Client unsure whether talking about family conflict with an outsider is "
         "acceptable.", None),
        ("p102;2;boundary;4;false;Client asked to extend the session again when time was up.",
         ("severity", "4 is outside 1-3")),
        ("p102;3;other;1;no;Client asked to be called back on 0161 496 0000 before the next appointment.",
         ("note", "holds a phone number (a fictitious one)")),
        ("p103;1;communication_style;2;yes;Mrs Jenkins from the housing office sat in for a while and the "
         "client went quiet.", ("note", "holds a person's name")),
        ("p103;2;resistance_to_vulnerability;2;no;Client forwarded diary pages from lowmood.diary@example.org "
         "and asked for comments.", ("note", "holds an e-mail address")),
        ("p103;3;communication_style;1;yes;Client spoke very fast; therapist asked to slow down and summarised.",
         ("note", "an unquoted semicolon inside the note makes the line one field too long (ragged)")),
        ("p101;5;boundary;1;true;Client arrived late and wanted extra time, the limit was explained kindly.", None),
    ]},
    "events.csv": {"bom": False, "newline": "\n", "lines": [
        ("client_id,session_number,event,rater,note", None),
        ("p101,2,rupture_withdrawal,therapist,Client went quiet after the homework review.", None),
        ("p101,3,repair,therapist,Talked about the last session together and agreed a smaller task.", None),
        ("p102,2,rupture_confrontation,therapist,Client said the sessions are pointless.", None),
        ("p102,3,repair,supervisor,", None),
        ("p103,12,rupture_withdrawal,therapist,Client answered in single words.",
         ("session_number", "client p103 has no session 12")),
        ("p103,2,rupture_confrontation,observer,Client rejected the task.", None),
        ("p101,5,repair,therapist,", None),
    ]},
}
ZIP_TIME = (2026, 1, 1, 0, 0, 0)

MESSY_README_HEAD = """# Example exports

`messy_export/` (and the same folder zipped, `messy_export.zip`) is a small clinic export
as it really arrives, to see the import's quarantine at work:

```bash
python -m core import data/examples/messy_export --json
```

Both are written by `write_messy_example()` in `devtools/demo.py` (`python -m devtools.demo`
rewrites them; do not edit them by hand). Every id is a pseudonym and every detail is
fictitious; the phone number is from a range reserved for drama.

## Quirks the importer accepts (not problems)

- `sessions.csv` is separated by semicolons, starts with a UTF-8 byte order mark and has
  Windows line ends; `barriers.csv` is separated by semicolons too, the others by commas.
- Headers in mixed case with spaces around them (` Client_ID `, `SESSION_DATE`).
- `session_date` instead of `days_since_intake`, as `2026-03-02` or `05.03.2026`: it
  becomes days since the client's first session and the date itself is not stored.
- Wide rating columns on the sessions table: `SRS`, `PHQ-9`, `WAI-SR:bond:therapist`;
  one SRS score is written with a decimal comma (`35,5`).
- `attended` as yes/no, true/false and 1; an empty `modality` means individual.
- An unknown column, `Room`: kept out of the store and reported as ignored.

## Planted problems (one per row)

Line numbers are as a spreadsheet shows them (the header is line 1).

| file | line | column | problem |
|---|---|---|---|
"""


def messy_files() -> dict[str, bytes]:
    """The files of the messy example export, by name, as bytes."""
    files = {}
    for name, spec in MESSY_FILES.items():
        text = spec["newline"].join(line for line, _ in spec["lines"]) + spec["newline"]
        files[name] = (b"\xef\xbb\xbf" if spec["bom"] else b"") + text.encode("utf-8")
    return files


def messy_readme() -> str:
    rows = []
    for name, spec in MESSY_FILES.items():
        for number, (_, problem) in enumerate(spec["lines"], start=1):
            if problem:
                rows.append(f"| {name} | {number} | {problem[0]} | {problem[1]} |")
    total = sum(len(spec["lines"]) - 1 for name, spec in MESSY_FILES.items() if name != "sessions.csv")
    return (MESSY_README_HEAD + "\n".join(rows) + "\n\n"
            f"{len(rows)} of the {total + len(MESSY_FILES['sessions.csv']['lines']) - 1} data rows are wrong "
            f"({total} rows outside the sessions table). Every other row loads.\n")


def write_messy_example(folder: str | Path = EXAMPLES_FOLDER) -> None:
    """Write `messy_export/`, `messy_export.zip` and `README.md` into `folder`, byte for byte the same each time."""
    folder = Path(folder)
    export = folder / "messy_export"
    export.mkdir(parents=True, exist_ok=True)
    files = messy_files()
    for name, data in files.items():
        (export / name).write_bytes(data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            # Stored, not deflated: compressed bytes differ between zlib builds, stored ones never do.
            info = zipfile.ZipInfo(f"messy_export/{name}", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    (folder / "messy_export.zip").write_bytes(buffer.getvalue())
    (folder / "README.md").write_text(messy_readme(), encoding="utf-8", newline="\n")


if __name__ == "__main__":
    counts = write_demo(DEMO_FOLDER)
    write_messy_example(EXAMPLES_FOLDER)
    print("demo: " + ", ".join(f"{t} {n}" for t, n in counts.items()), file=sys.stderr)
