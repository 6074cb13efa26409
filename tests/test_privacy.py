"""The privacy guard: recall and false positives on a labelled corpus, and its contracts."""

from __future__ import annotations

import csv
import random
import string
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import privacy
from core.privacy import KINDS, Finding, find_identifiers, id_problem, mask, scan_many
from tests.conftest import SYSTEM

CORPUS = Path(__file__).resolve().parent / "data" / "privacy_corpus.csv"
# Names in lower or upper case, bare hyphenated surnames, phones written digit by digit,
# spelled-out dates and towns, each row with its case; and clean notes using the words
# that are also names, towns or months ("hope", "reading", "march"). Written before the
# rules for these cases, and not tuned to them.
SPELLED_OUT = CORPUS.with_name("privacy_corpus_spelled_out.csv")
CASES = ("lower_name", "upper_name", "hyphenated_surname", "spaced_phone", "spelled_date", "town")


def _load_corpus(path: Path = CORPUS) -> list[tuple[str, set[str]]]:
    return [(note, kinds) for note, kinds, _ in _load_cases(path)]


def _load_cases(path: Path) -> list[tuple[str, set[str], str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [(row["note"], set(filter(None, row["kinds"].split(";"))), row.get("case", ""))
                for row in csv.DictReader(f)]


def _scores(notes: list[tuple[str, set[str]]]) -> dict:
    """Recall per kind group (a note's expected kind counts as found when the guard reports
    that kind in the note) and the share of clean notes with any finding."""
    hits, totals, flagged_clean, clean = Counter(), Counter(), 0, 0
    for note, expected in notes:
        found = {f.kind for f in find_identifiers(note)}
        if not expected:
            clean += 1
            flagged_clean += bool(found)
        for kind in expected:
            keys = (kind,) if kind == "name" else (kind, "structured")
            for key in keys:
                totals[key] += 1
                hits[key] += kind in found
    recall = {k: hits[k] / totals[k] for k in totals}
    return {"recall": recall, "totals": totals, "fp_rate": flagged_clean / clean, "clean": clean,
            "flagged_clean": flagged_clean}


def _report(title: str, scores: dict) -> None:
    print(f"\n{title}")
    for kind in ("structured", *[k for k in KINDS if k != "name"], "name"):
        if kind in scores["recall"]:
            print(f"  recall {kind:<14} {scores['recall'][kind]:.3f}  (n={scores['totals'][kind]})")
    print(f"  false positives on clean notes: {scores['flagged_clean']}/{scores['clean']} "
          f"= {scores['fp_rate']:.1%}")


def test_corpus_is_labelled_as_the_brief_requires():
    notes = _load_corpus() + _load_corpus(SPELLED_OUT)
    kinds = Counter(k for _, expected in notes for k in expected)
    clean = sum(1 for _, expected in notes if not expected)
    assert len(notes) >= 160
    assert clean >= 80 and len(notes) - clean >= 80
    assert set(kinds) == set(KINDS)
    assert min(kinds.values()) >= 10
    cases = Counter(case for _, _, case in _load_cases(SPELLED_OUT))
    assert all(cases[case] >= 30 for case in CASES) and cases["clean"] >= 200


def test_recall_and_false_positive_rate_on_the_labelled_corpus():
    scores = _scores(_load_corpus())
    _report("privacy corpus", scores)
    assert min(scores["recall"].values()) >= 0.97
    assert scores["fp_rate"] <= 0.02


def test_recall_per_case_and_false_flags_on_spelled_out_identifiers():
    rows = _load_cases(SPELLED_OUT)
    print("\nspelled-out corpus")
    for case in CASES:
        notes = [(note, kinds) for note, kinds, c in rows if c == case]
        missed = [note for note, kinds in notes if not kinds <= {f.kind for f in find_identifiers(note)}]
        recall = 1 - len(missed) / len(notes)
        print(f"  recall {case:<20} {recall:.3f}  (n={len(notes)})" + "".join(f"\n    missed: {m}" for m in missed))
        assert recall >= 0.97, case
    clean = [note for note, _, c in rows if c == "clean"]
    flagged = [(note, find_identifiers(note)) for note in clean]
    flagged = [(note, found) for note, found in flagged if found]
    rate = len(flagged) / len(clean)
    print(f"  clean notes flagged: {len(flagged)}/{len(clean)} = {rate:.1%}"
          + "".join(f"\n    flagged: {note} {[note[f.start:f.end] for f in found]}" for note, found in flagged))
    assert rate <= 0.02



# ---- the generated corpus (tests/privacy_corpus.py): every kind in its spellings, 1,200 clean notes

GENERATED = CORPUS.with_name("privacy_corpus_generated.csv")


def _generated() -> list[dict[str, str]]:
    with GENERATED.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _covered(note: str, value: str, found: list[Finding]) -> bool:
    """Every visible character of the identifier lies in a finding: masking removes it whole."""
    at = note.index(value)
    inside = set()
    for f in found:
        inside.update(range(f.start, f.end))
    return all(i in inside for i in range(at, at + len(value)) if not note[i].isspace())


def generated_scores(rows: list[dict[str, str]]) -> dict:
    """Per case: the share of identifiers masked whole ("recall") and the share reported
    under their own kind; on clean notes, the share with any finding."""
    by_case: dict[str, list[tuple[bool, bool]]] = {}
    flagged = []
    for row in rows:
        note, found = row["note"], find_identifiers(row["note"])
        if row["case"] == "clean":
            if found:
                flagged.append((note, [note[f.start:f.end] for f in found]))
            continue
        at = note.index(row["value"])
        end = at + len(row["value"])
        kind = any(f.kind == row["kinds"] and f.start < end and at < f.end for f in found)
        by_case.setdefault(row["case"], []).append((_covered(note, row["value"], found), kind))
    clean = sum(row["case"] == "clean" for row in rows)
    return {"recall": {c: sum(r for r, _ in v) / len(v) for c, v in by_case.items()},
            "kind": {c: sum(k for _, k in v) / len(v) for c, v in by_case.items()},
            "n": {c: len(v) for c, v in by_case.items()},
            "clean": clean, "flagged": flagged, "fp_rate": len(flagged) / clean}


def test_the_generated_corpus_is_the_generators_output():
    from tests import privacy_corpus
    assert GENERATED.read_text(encoding="utf-8") == privacy_corpus.to_csv(privacy_corpus.build()), \
        "regenerate it: python -m tests.privacy_corpus"


def test_the_generated_corpus_holds_every_kind_and_enough_clean_notes():
    from tests.privacy_corpus import CASES
    rows = _generated()
    cases = Counter(row["case"] for row in rows)
    assert cases["clean"] >= 1000 and len({row["note"] for row in rows if row["case"] == "clean"}) == cases["clean"]
    assert set(cases) == {*CASES, "clean"} and min(cases[c] for c in CASES) >= 100
    assert {row["kinds"] for row in rows} - {""} == set(KINDS) - {"ip_address"}
    assert all(row["value"] in row["note"] for row in rows if row["case"] != "clean")


def test_recall_per_kind_and_false_flags_on_the_generated_corpus():
    scores = generated_scores(_generated())
    print("\ngenerated corpus (recall: identifier masked whole; kind: reported as its kind)")
    for case, recall in scores["recall"].items():
        print(f"  {case:<20} recall {recall:.3f}  kind {scores['kind'][case]:.3f}  (n={scores['n'][case]})")
    print(f"  clean notes flagged: {len(scores['flagged'])}/{scores['clean']} = {scores['fp_rate']:.2%}"
          + "".join(f"\n    flagged: {spans} in: {note[:100]}" for note, spans in scores["flagged"]))
    assert min(scores["recall"].values()) >= 0.97
    assert min(scores["kind"].values()) >= 0.95
    assert scores["fp_rate"] <= 0.02


def test_scan_many_agrees_with_find_identifiers_on_the_generated_corpus():
    notes = [row["note"] for row in _generated()]
    assert scan_many(notes) == [find_identifiers(t) for t in notes]

# Each of these reached the store or the quarantine, or was not flagged at all (issue 16).
@pytest.mark.parametrize("note, kind, value", [
    ("Her aunt margaret thistlewood came to the session.", "name", "margaret thistlewood"),
    ("Letter signed MARGARET THISTLEWOOD in capitals.", "name", "MARGARET THISTLEWOOD"),
    ("She said Thistlewood-Barnes had called twice.", "name", "Thistlewood-Barnes"),
    ("Thistlewood-Barnes", "name", "Thistlewood-Barnes"),
    ("Her number is 0 7 7 0 0 9 0 0 1 2 3 if we need it.", "phone", "0 7 7 0 0 9 0 0 1 2 3"),
    ("The assault was on the twelfth of March.", "date", "twelfth of March"),
    ("The hearing is on March the 12th.", "date", "March the 12th"),
    ("Last year she moved to Gloucester with the children.", "town", "Gloucester"),
])
def test_identifiers_missed_before_are_found_and_masked(note, kind, value):
    found = find_identifiers(note)
    assert kind in {f.kind for f in found}
    masked = mask(note, found)
    assert value not in masked and privacy.placeholder(kind) in masked


def test_a_name_found_in_one_case_is_masked_in_every_case():
    note = "MARGARET THISTLEWOOD wrote; later Margaret said thistlewood was her maiden name."
    masked = mask(note)
    assert "thistlewood" not in masked.casefold() and "margaret" not in masked.casefold()


def test_a_lower_case_name_never_reaches_the_store(tmp_path, store):
    from core.importer import import_dataset
    from tests.test_import import _all_text, _export
    barriers = "client_id,session_number,category,severity,note\nc1,1,boundary,2,margaret thistlewood shouts at her\n"
    result = import_dataset(_export(tmp_path, barriers=barriers), store)
    assert result.loaded.get("barriers", 0) == 0
    assert "thistlewood" not in _all_text(store).casefold()


def test_a_bare_hyphenated_surname_is_masked_in_the_quarantine(tmp_path, store):
    from core.importer import import_dataset
    from tests.test_import import _all_text, _export
    barriers = "client_id,session_number,category,severity,note\nc1,1,boundary,99,Thistlewood-Barnes shouts at her\n"
    import_dataset(_export(tmp_path, barriers=barriers), store)
    assert store.scalar("SELECT count(*) FROM quarantine WHERE table_name = 'barriers'", scope=SYSTEM) == 1
    assert "Thistlewood" not in _all_text(store)



# Still missed after the first pass: each of these was read as clean (or partly masked),
# so it reached the store or the quarantine's raw values (issue 16).
@pytest.mark.parametrize("note, kind, value", [
    ("Spoke to thistlewood, margaret on the ward.", "name", "thistlewood, margaret"),
    ("her aunt margaret j. thistlewood came along", "name", "margaret j. thistlewood"),
    ("Spoke to SARAH about the referral.", "name", "SARAH"),
    ("The letter was copied to OKAFOR by mistake.", "name", "OKAFOR"),
    ("thistlewood-barnes shouts at her", "name", "thistlewood-barnes"),
    ("SMITH-OKAFOR shouts at her", "name", "SMITH-OKAFOR"),
    ("She told Hall-Smith about the plan.", "name", "Hall-Smith"),
    ("Her number is 5 5 5 1 2 3 4 5 6 7 if needed.", "phone", "5 5 5 1 2 3 4 5 6 7"),
    ("She read it out: zero seven seven zero zero nine zero zero one two three.", "phone",
     "zero seven seven zero zero nine zero zero one two three"),
    ("Call oh seven seven double oh nine double oh one two three tonight.", "phone",
     "oh seven seven double oh nine double oh one two three"),
    ("the hearing is on the 3rd of may", "date", "3rd of may"),
    ("court date moved to the 12th march", "date", "12th march"),
    ("Her mother is from Leeds originally.", "town", "Leeds"),
    ("He visited Doncaster at the weekend.", "town", "Doncaster"),
    ("They met at Sheffield station.", "town", "Sheffield"),
    # a surname in capitals that only looks like an inflected word ("folk" + "er")
    ("Letter signed WIMMER in capitals.", "name", "WIMMER"),
    ("NEXT OF KIN: FOLKER", "name", "FOLKER"),
    # a hyphenated surname at the start of a sentence
    ("Young-Hamilton, her previous therapist, retired.", "name", "Young-Hamilton"),
])
def test_identifiers_still_missed_are_found_and_masked(note, kind, value):
    found = find_identifiers(note)
    assert kind in {f.kind for f in found}, [(f.kind, note[f.start:f.end]) for f in found]
    masked = mask(note, found)
    assert value not in masked and privacy.placeholder(kind) in masked


@pytest.mark.parametrize("note", [
    "She is reading more at night; a bath helps her sleep. Hope returned by March.",
    "will and grace were words she used; may march on saturday with friends.",
    "CORE-10 items 0 1 2 4 3 2 1 0 1 2; WAI-SR items 5 4 5 3 4 5 5 4 3 4 5 4.",
    "Scores across ten sessions: 5 6 7 5 6 7 5 6 7 5, rising slowly.",
    "One, two, three, four: she counts her breaths to ten and starts again.",
    "Her first March alone was hard; March is always hard, and May too.",
    "She felt at home at Church and moved to Year 9 at school.",
    "CAMHS, IAPT, EMDR, SENCO, ELSA, MARAC and MASH were all involved.",
    "Mid-session she spoke about self-harm, well-being and a follow-up.",
    "Talked about Stockholm syndrome and Rogers' core conditions.",
    "Gilbert's view of the holding environment came up; we linked it to Gilbert and the window of tolerance.",
    "Post-Traumatic growth came up. Self-Harm is lower. Anglo-Saxon and Judeo-Christian ideas. Tai-Chi helps.",
    "FOOD BANK VOUCHER GIVEN. RISK: LOW. PLAN: REVIEW IN TWO WEEKS WITH THE CRISIS TEAM.",
])
def test_words_near_the_new_rules_stay_clean(note):
    assert find_identifiers(note) == [], [note[f.start:f.end] for f in find_identifiers(note)]


def test_an_upper_case_name_never_reaches_the_store(tmp_path, store):
    from core.importer import import_dataset
    from tests.test_import import _all_text, _export
    barriers = "client_id,session_number,category,severity,note\nc1,1,boundary,2,she says OKAFOR shouts at her\n"
    result = import_dataset(_export(tmp_path, barriers=barriers), store, redact=True)
    assert result.loaded.get("barriers", 0) == 1
    assert "okafor" not in _all_text(store).casefold()


def test_a_phone_in_words_is_masked_in_the_quarantine(tmp_path, store):
    from core.importer import import_dataset
    from tests.test_import import _all_text, _export
    barriers = ("client_id,session_number,category,severity,note\n"
                "c1,1,boundary,99,rang from zero seven seven zero zero nine zero zero one two three\n")
    import_dataset(_export(tmp_path, barriers=barriers), store)
    assert store.scalar("SELECT count(*) FROM quarantine WHERE table_name = 'barriers'", scope=SYSTEM) == 1
    assert "nine zero zero" not in _all_text(store)

# Written after the rules were settled and never used to tune them: a check that the
# patterns generalise beyond the corpus.
HELD_OUT = [
    ("Client arrived flustered; said the bus was late again and she almost didn't come.", ""),
    ("Long silence after I reflected her anger; she said 'fine' and looked away.", ""),
    ("He talks about his Nigerian father with admiration and fear.", ""),
    ("Brought up Passover and the pressure to be home for the seder.", ""),
    ("Felt drowsy in the second half; possibly mirroring her numbness.", ""),
    ("SRS dipped to 31 at session 7; we talked about what felt off.", ""),
    ("Trust is hard for him: 3 previous therapists 'gave up' on him.", ""),
    ("Sunday nights are the worst, she says, dreading the week.", ""),
    ("April was mentioned only as the month her father left.", ""),
    ("Patience wearing thin with the school, she says.", ""),
    ("Summer holidays mean no childcare and more conflict at home.", ""),
    ("Client asked if I am a mother; I wondered aloud why that mattered.", ""),
    ("GAD-7 went from 17 to 11 over 6 weeks; anxiety about work persists.", ""),
    ("Prays five times a day; fasting during Ramadan made evening sessions hard.", ""),
    ("Uses French with her children so they keep the language.", ""),
    ("Her neighbour, Ms Abernathy, calls the police on her.", "name"),
    ("Cousin Rashid lends him money and then controls him.", "name"),
    ("Brother Tomás keeps asking for her bank PIN.", "name"),
    ("She wants her sister Anjali to come to one session.", "name"),
    ("Met Father O'Donnell at the parish, which helped.", "name"),
    ("Her friend Ingeborg Halvorsen drove her home.", "name"),
    ("Her mother phoned from 0113 496 0357 mid-session.", "phone"),
    ("Emergency contact: 555-0199 (neighbour).", "phone"),
    ("Client's email, t.baptiste@example.net, was on the consent form.", "email"),
    ("Flat 12, 8 Canal Street is where she lives now.", "address"),
    ("New flat on Rosenstraße 14 is closer to work.", "address"),
    ("Her daughter's birthday, 23 November 2015, is coming up.", "date"),
    ("Last drink was on 2023-12-31, he says proudly.", "date"),
    ("Benefit claim reference 4471 9021 33 was rejected.", "record_number"),
    ("Passport no. 938274615 is held by her husband, which scares her.", "record_number"),
    ("Posts on https://forum.example.org/t/grief daily.", "url"),
    ("He sent me the address 203.0.113.77 to 'prove' he was hacked.", "ip_address"),
    ("Contact via kwabena.a@example.com or 020 7946 0402.", "email;phone"),
]


def test_rules_generalise_to_held_out_notes():
    scores = _scores([(note, set(filter(None, kinds.split(";")))) for note, kinds in HELD_OUT])
    _report("held-out notes", scores)
    assert scores["recall"]["structured"] >= 0.9
    assert scores["recall"]["name"] >= 0.8
    assert scores["flagged_clean"] <= 1


@pytest.mark.parametrize("note", [
    "Client, Therapist, Mother, Father, Dad, Mum and Grandmother were all discussed.",
    "Speaks English, Spanish, Arabic and Turkish; Christmas, Ramadan and Easter are hard.",
    "Monday and Friday sessions; Catholic and Muslim family; PTSD treated with CBT and DBT.",
    "SRS 36, WAI-SR 4.1, PHQ-9 of 12, session 5, 3 sessions missed, 20 minutes late.",
    "Age 34, 2 children, scored 28, seen in March, last week, the past two sessions.",
    "Will try again. May be anxious. Hope is low. Grace period. Mark noticed. Joy absent.",
    "Faith helps. Rose slowly. Bill unpaid. Young and Long pauses; Short answers.",
    "will review. grace period. reading helps. a bath at night. may march on saturday. hope is low.",
    "WILL REVIEW. MAY NEED REFERRAL. ART THERAPY. HOPE AND GRACE.",
    "Lives in fear; went to Church; moved to Year 9; back in March; from May on; in Group.",
    "The first of many sessions; a third of them cancelled; the twelfth session helped.",
    "PHQ-9 items 2 3 1 0 2 3 1 2 0; CORE-10 items 0 1 2 4 3 2 1 0 1 2.",
    "Self-Harm, Follow-Up, Check-In and Mother-In-Law were on the agenda.",
])
def test_clinical_vocabulary_and_numbers_are_not_flagged(note):
    assert find_identifiers(note) == []


def test_name_lists_hold_no_common_words():
    given_names, surnames = privacy._name_lists()
    for word in "will may hope grace faith joy mark bill rose frank said can sad the".split():
        assert word not in given_names
    for word in "young long short brown white black english christmas monday".split():
        assert word not in surnames


def test_findings_are_sorted_and_never_overlap():
    for note, _ in _load_corpus():
        found = find_identifiers(note)
        assert found == sorted(found, key=lambda f: f.start)
        assert all(a.end <= b.start for a, b in zip(found, found[1:]))
        assert all(f.kind in KINDS and 0 <= f.start < f.end <= len(note) for f in found)


def test_overlapping_findings_are_merged_into_one_span():
    note = "NHS number 943 476 5919 was on the letter."  # a record number shaped like a phone
    assert find_identifiers(note) == [Finding("record_number", 0, 23)]
    merged = mask("abcdefghij", [Finding("name", 0, 5), Finding("phone", 3, 9)])
    assert merged == "[phone]j"


def test_mask_never_leaves_the_span_text():
    for note, expected in _load_corpus():
        found = find_identifiers(note)
        masked = mask(note, found)
        for f in found:
            assert note[f.start:f.end] not in masked
        for kind in {f.kind for f in found}:
            assert privacy.placeholder(kind) in masked


def test_mask_hides_a_name_everywhere_once_it_is_found():
    assert mask("Dr Okafor called. Okafor sounded worried.") == "[name] called. [name] sounded worried."


def test_mask_shows_the_kind_removed():
    assert mask("Call 07700 900123 or mail a.b@example.org.") == "Call [phone] or mail [email]."


def test_id_problem_accepts_normal_pseudonyms():
    for value in ["C001", "sg01", "th-12", "client_0042", "A.B-7", "T07", "grp3_c12", "anna01", "leo_group",
                  "therapistA", "c-2024-01", "TH_A"]:
        assert id_problem(value) is None, value


@pytest.mark.parametrize("value, reason", [
    ("mary.jones@example.org", "e-mail"),
    ("+44 20 7946 0958", "phone"),
    ("555-123-4567", "phone"),
    ("John.Smith", "name"),
    ("Mary_Jones", "name"),
    ("Mary_Jones01", "name"),
    ("maryjones", "name"),
    ("jsmith", "name"),
    ("1985-03-12", "date"),
])
def test_id_problem_rejects_identifying_ids(value, reason):
    problem = id_problem(value)
    assert problem is not None and reason in problem


@settings(max_examples=300, deadline=None)
@given(st.from_regex(privacy.PLAIN_ID, fullmatch=True))
def test_plain_pseudonyms_are_never_refused(value):
    assert id_problem(value) is None


def test_scan_many_equals_find_identifiers_and_handles_none_and_empty():
    notes = [note for note, _ in _load_corpus()] + [None, "", "   "]
    notes += notes[:5]  # repeated notes come back as equal, separate lists
    result = scan_many(notes)
    assert result == [find_identifiers(t) if t else [] for t in notes]
    assert result[-1] is not result[4]


# Notes made of listed names and titles in every case, months, numbers, clean clinical words
# and the characters just either side of each trigger of the prefilter (``may_identify``).
_NAMES = sorted(privacy._name_lists()[0] | privacy._name_lists()[1] | privacy._TITLES)
_CLINICAL = st.sampled_from(("client", "Client", "The", "session", "felt", "judged", "about", "work", "sleep",
                             "Mother", "Monday", "Christmas", "English", "CBT", "went", "quiet", "agreed"))
_WORDS = st.one_of(
    _CLINICAL, _CLINICAL, st.sampled_from(_NAMES).map(str.title),
    st.builds(lambda name, case: case(name), st.sampled_from(_NAMES), st.sampled_from((str.lower, str.upper))),
    st.sampled_from(sorted(privacy._MONTH_WORDS)).map(str.title), st.integers(0, 10 ** 10).map(str),
    st.sampled_from(("@", ".com", ".co", ".Org", "dot", "(dot)", "www", "WWW.", "http://", "ab:", "::",
                     "Street", "street", "Lane", "Drive", "'s", "’s", "é", "ß", "İ", "٣", "ſ")),
    st.text(max_size=4))
_NOTES = st.lists(st.tuples(_WORDS, st.sampled_from((" ", " ", "", ". ", ", ", "-", "'", ":", "/", "\n"))),
                  max_size=10).map(lambda parts: "".join(word + sep for word, sep in parts))


@settings(max_examples=500, deadline=None)
@given(st.lists(_NOTES, max_size=10))
def test_bulk_scan_skips_only_notes_without_findings(notes):
    assert scan_many(notes) == [find_identifiers(t) if t else [] for t in notes]


_FRAGMENTS = ["Maria Lopez", "Dr. Okafor", "07700 900123", "+1 (555) 123-4567", "a.b@example.org",
              "12/03/2024", "March 12", "MRN 1234567", "221B Baker Street", "SW1A 1AA",
              "https://example.org/x", "192.0.2.1", "2001:db8::1", "session 5", "PHQ-9", "Will"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.sampled_from(_FRAGMENTS)), max_size=8)
       .map(" ".join))
def test_find_identifiers_never_raises_and_mask_hides_every_span(text):
    found = find_identifiers(text)
    masked = mask(text, found)
    for f in found:
        assert text[f.start:f.end] not in masked


def test_bulk_scan_speed_on_clean_notes():
    clean = [note for note, expected in _load_corpus() if not expected]
    rng = random.Random(7)
    notes = []
    for i in range(100_000):  # distinct typical notes of two or three sentences, some with numbers
        note = " ".join(rng.sample(clean, rng.choice((2, 3))))
        notes.append(f"{note} Reviewed at session {i % 97}." if i % 4 == 0 else note)
    privacy._name_lists()
    started = time.perf_counter()
    result = scan_many(notes)
    seconds = time.perf_counter() - started
    print(f"\nscan_many: {len(notes) / seconds:,.0f} notes/second over {len(notes):,} clean notes "
          f"({len(set(notes)):,} distinct); {sum(map(bool, result))} flagged")


def test_the_identifying_text_masker_lives_in_the_privacy_module():
    from core import importer, report
    assert report.Masker is privacy.Masker and importer._Masker is privacy.Masker
    assert report.HIDDEN_ID == privacy.HIDDEN_ID == "[identifying id]"
    masker = privacy.Masker()
    assert masker("Her aunt margaret thistlewood came.") == "Her aunt [name] came."
    assert masker.id("john.smith") == privacy.HIDDEN_ID and masker.id("C0042") == "C0042"


# ---- the bulk sift (issue 16: the bulk scan read half of all clean notes one at a time)

def _bench_like_notes(count: int = 5000) -> list[str]:
    """Notes as an export holds them: two or three corpus notes each, one in fifty with an
    identifier (what ``python -m core bench privacy`` scans)."""
    from devtools.bench import _privacy_notes
    return _privacy_notes(count, seed=3)


def test_bulk_scan_agrees_with_the_per_note_scan_on_the_whole_corpus():
    notes = [row["note"] for row in _generated()]
    notes += [note for note, _ in _load_corpus(CORPUS)] + [note for note, _ in _load_corpus(SPELLED_OUT)]
    notes += _bench_like_notes()
    assert scan_many(notes) == [find_identifiers(t) for t in notes]


def test_the_staged_sift_keeps_no_more_than_may_identify_and_every_note_with_a_finding():
    import polars as pl
    notes = [row["note"] for row in _generated()] + _bench_like_notes(2000) + ["", "ÉLODIE Ünal", "x"]
    frame = pl.DataFrame({"text": notes})
    staged = set(privacy._suspects(frame))
    assert staged <= set(frame.filter(privacy._sift(pl.col("text")))["text"])
    assert {t for t in notes if find_identifiers(t)} <= staged


def test_may_identify_is_the_staged_sift_over_a_column_with_nulls_and_repeats():
    """The importer's prefilter runs the staged sift (2 s for 200,000 notes, where every sift
    over every note took 5 s), and keeps its contract: null for a null note, a repeated note
    decided alike, every note with a finding kept."""
    import polars as pl
    notes = [row["note"] for row in _generated()][:600] + _bench_like_notes(1000)
    column = pl.Series("note", notes + [None, "", notes[0], notes[-1]], dtype=pl.String)
    kept = pl.DataFrame({"note": column}).select(privacy.may_identify(pl.col("note"))).to_series()
    assert kept.name == "note" and kept.dtype == pl.Boolean
    assert kept[len(notes)] is None and kept[len(notes) + 1] is False
    assert kept[len(notes) + 2] == kept[0] and kept[len(notes) + 3] == kept[len(notes) - 1]
    staged = set(privacy._suspects(pl.DataFrame({"text": notes})))
    assert [t in staged for t in notes] == kept[:len(notes)].to_list()
    assert all(k for t, k in zip(notes, kept) if find_identifiers(t))
    lazy = pl.LazyFrame({"note": column}).filter(privacy.may_identify(pl.col("note"))).collect()
    assert lazy["note"].to_list() == [t for t, k in zip(column, kept) if k]


def test_the_bulk_sift_lets_few_clean_notes_through():
    """A clean note the sift lets through is read rule by rule, a hundred times slower: with
    half of them let through (item lists, times, "to church", "the ELSA"), the bulk scan ran
    at a tenth of its goal."""
    import polars as pl
    clean = [row["note"] for row in _generated() if row["case"] == "clean"]
    rng = random.Random(5)
    notes = list(dict.fromkeys(" ".join(rng.sample(clean, rng.choice((2, 3, 3)))) for _ in range(5000)))
    through = pl.DataFrame({"text": notes}).filter(privacy.may_identify(pl.col("text"))).height
    assert pl.DataFrame({"text": notes}).filter(privacy._sift(pl.col("text"))).height == through
    print(f"\nbulk sift: {through}/{len(notes)} clean notes read rule by rule")
    assert through / len(notes) <= 0.05


# Clean notes the sift used to send through every rule: an acronym that is also a name, in
# lower case before a word that continues no name ("the elsa is", "the dass-21"), and a town
# whose name is an English word after a word of place but no word of living or moving
# ("referred to Young Minds"). A tenth of the clean notes of an export said one of them.
_SIFT_CLEAN = ["the elsa is booked for friday and the elsa team will call.",
               "Referred to Young Minds for a group; spoke to Young people at the centre.",
               "the dass-21 was 30 today, down from 34."]
# ... and the same words where they do start a name or name a town.
_SIFT_FOUND = [("elsa thistlewood came with her son.", "name"), ("She moved to Young last year.", "town"),
               ("He was copied to thistlewood-elsa.", "name"), ("dass, margaret signed the form.", "name"),
               ("elsa j. thistlewood came.", "name"), ("It was sent to ELSA SMITH.", "name")]


def test_the_sift_lets_go_of_acronyms_and_english_towns_that_start_nothing():
    import polars as pl
    notes = _SIFT_CLEAN + [note for note, _ in _SIFT_FOUND]
    frame = pl.DataFrame({"text": notes})
    kept = frame.select(privacy.may_identify(pl.col("text"))).to_series().to_list()
    assert kept == [False] * len(_SIFT_CLEAN) + [True] * len(_SIFT_FOUND)
    assert set(privacy._suspects(frame)) == {note for note, _ in _SIFT_FOUND}
    for note, kind in _SIFT_FOUND:
        assert [f.kind for f in find_identifiers(note)] == [kind], note
    assert not any(find_identifiers(note) for note in _SIFT_CLEAN)


def test_the_bulk_scan_reads_the_separators_as_white_space_as_the_rules_do():
    """Python's white space holds the separators \x1c-\x1f and the regex crate's does not:
    the sift let go of these notes, so the bulk scan missed what the rules find."""
    notes = ["the twelfth of\x1cMarch", "She moved\x1cto\x1cGloucester.", "call 0\x1c7 7 0 0 9 0 0 1 2 3",
             "to to to\x1cLeeds"]
    assert all(find_identifiers(note) for note in notes)
    assert scan_many(notes) == [find_identifiers(note) for note in notes]


# Words of place and of moving, towns (English words among them, of more words, with "'s"),
# acronyms that are names in both cases, listed names, clinical words and initials.
_PLACE_WORDS = st.one_of(
    st.sampled_from(("to", "in", "at", "from", "near", "moved", "lives", "grew up", "came back", "referred",
                     "spoke", "went", "the", "is", "team", "j.", "J", "a", "x", "Minds", "people", "'s")),
    st.sampled_from(("Young", "young", "YOUNG", "Bath", "Reading", "Leeds", "Gloucester", "gloucester",
                     "Church Hill", "church hill", "Church's Hill", "Mount Eliza", "Stoke-on-Trent", "Hope")),
    st.sampled_from(sorted(privacy._ACRONYMS)).map(lambda w: w.upper()),
    st.sampled_from(sorted(privacy._ACRONYMS)),
    st.sampled_from(("margaret", "Margaret", "MARGARET", "thistlewood", "Thistlewood", "THISTLEWOOD", "smith")))
_PLACE_NOTES = st.lists(st.tuples(_PLACE_WORDS, st.sampled_from((" ", " ", " ", ", ", "-", ". ", "\x1c", "  "))),
                        max_size=8).map(lambda parts: "".join(word + sep for word, sep in parts))


@settings(max_examples=400, deadline=None)
@given(st.lists(_PLACE_NOTES, max_size=8))
def test_the_sift_of_towns_and_acronyms_keeps_every_note_with_a_finding(notes):
    import polars as pl
    assert scan_many(notes) == [find_identifiers(t) if t else [] for t in notes]
    found = [t for t in notes if t and find_identifiers(t)]
    if found:
        frame = pl.DataFrame({"text": found})
        assert frame.select(privacy.may_identify(pl.col("text"))).to_series().all()


@settings(max_examples=300, deadline=None)
@given(_NOTES)
def test_the_one_case_sift_reads_words_as_the_rule_does(text):
    """The sift's one pattern over a lower-cased ASCII note finds a word a name in one case
    starts with wherever the rule's quick look (the note split on marks and spaces) does."""
    import polars as pl
    if not text.isascii():
        return
    keys = privacy._one_case_starts() - privacy._ACRONYMS
    rule = any(w.casefold() in keys for w in text.translate(privacy._GATE_MARKS).split())
    sift = pl.Series([text]).str.to_lowercase().str.contains(privacy._one_case_ascii_sift()).item()
    assert sift == rule, text


_SIFT_TEXTS = st.lists(st.one_of(st.text(alphabet=string.ascii_letters + string.digits + " .,-/:()+#@'\t\x1c", max_size=30),
                                 st.sampled_from(_FRAGMENTS + ["0 7 7 0 0 9 0 0 1 2 3", "the twelfth of March",
                                                               "moved to Gloucester", "ELSA SMITH", "to church hill",
                                                               "NHS number 943 476 5919", "phone: 020 7946 0958"])),
                       max_size=6).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(_SIFT_TEXTS)
def test_each_relaxed_rule_matches_wherever_its_rule_does(text):
    import polars as pl
    series = pl.Series([text])
    for pattern in (privacy._EMAIL, privacy._URL, privacy._DATE_NUMERIC, privacy._ADDRESS_NUMERIC,
                    privacy._RECORD_NUMERIC, privacy._IPV4, privacy._PHONE_SPACED, privacy._DATE_SPELLED,
                    privacy._ADDRESS_WORDS, privacy._RECORD_CODED, *(p for p, *_ in privacy._PHONES),
                    privacy._EMAIL_SPELLED, privacy._IPV6, privacy._STREET_NO_NUMBER, privacy._PHONE_WORDS,
                    privacy._PHONE_SPACED_NANP, privacy._DATE_MONTH_FIRST, privacy._STRONG_PLACE_CUE,
                    privacy._PLACE_CUE):
        if pattern.search(text):
            assert series.str.contains(privacy._relaxed(pattern)).item(), (pattern.pattern[:60], text)
            # the form the bulk sift reads a note in ASCII with (its classes and word
            # boundaries ASCII's, Python's white space with the separators \x1c-\x1f)
            if text.isascii():
                assert series.str.contains(privacy._relaxed(pattern, ascii=True)).item(), (pattern.pattern[:60], text)
