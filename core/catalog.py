"""The catalog: instruments, codebooks and analysis defaults, read from a data file.

Code reads the catalog; code never repeats it. The default file is `data/catalog.toml`;
a clinic's own file (``--catalog`` or ``CASECONF_CATALOG``) adds entries or replaces
entries with the same key. The merged result is validated before anything uses it, and
a mistake in it becomes one sentence naming the key, never a traceback.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import DATA_DIR
from .psychometrics import compare, rc_threshold  # noqa: F401  (compare: re-exported)

DEFAULT_PATH = DATA_DIR / "catalog.toml"
ENV_VAR = "CASECONF_CATALOG"

Rule = Literal["ge", "gt", "le", "lt"]



class CatalogError(Exception):
    """The catalog file cannot be used; the message says which key and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cutoff(_Model):
    value: float
    clinical: Rule
    source: str = Field(min_length=1)
    bands: list[tuple[float, str]] = []

    def is_clinical(self, score: float) -> bool:
        return compare(score, self.clinical, self.value)


class ReliableChange(_Model):
    points: float | None = Field(default=None, gt=0)
    sd: float | None = Field(default=None, gt=0)
    reliability: float | None = Field(default=None, gt=0, lt=1)
    rule: Literal["ge", "gt"] = "gt"
    # Jacobson & Truax's 1.96; CECPfuns uses the exact quantile 1.959964 (the two
    # differ in the fourth decimal of a threshold), so it is a setting.
    z: float = Field(default=1.96, gt=0)
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _points_or_sd(self) -> "ReliableChange":
        if self.points is None and (self.sd is None or self.reliability is None):
            raise ValueError("give either points, or both sd and reliability")
        return self

    @property
    def threshold(self) -> float:
        """Points of change needed: given, or z * S_diff (Jacobson & Truax 1991)."""
        if self.points is not None:
            return self.points
        return rc_threshold(self.sd, self.reliability, z=self.z)


class SuddenGainCriterion(_Model):
    """Criterion 1 of a sudden gain in points, where it differs from the reliable change
    (Tang & DeRubeis' 7 BDI points)."""
    points: float = Field(gt=0)
    source: str = Field(min_length=1)


class ItemScales(_Model):
    """Item-level ratings (`scale` = item1 ... itemN in the ratings table, the contract's
    extension): how many items and each item's range."""
    count: int = Field(ge=1, le=200)
    range: tuple[float, float]
    source: str = Field(min_length=1)


class ItemTotal(_Model):
    """How a total is formed from item answers when a session has items and no total (the
    CARE measure, Mercer et al. 2004): each missing answer is replaced by the mean of the
    answered items, and with more than `max_missing` missing there is no total."""
    max_missing: int = Field(ge=0)
    source: str = Field(min_length=1)
    # An answer such as the CARE's "does not apply" is not a number, so it reaches the store
    # as an item left out: it can only count as a missing answer. Recorded here with its
    # source because no source names the rule (DOMAIN.md is silent on it).
    does_not_apply: Literal["missing"] = "missing"
    does_not_apply_source: str = ""


class RiskItem(_Model):
    """An item a supervisor must never miss (e.g. PHQ-9 item 9): its wording, the answer
    that raises the `risk` flag (`rule` against `value`), and the sources and caveats."""
    text: str = Field(min_length=1)
    rule: Rule = "gt"
    value: float = 0
    source: str = Field(min_length=1)
    caveat: str = ""

    def alerts(self, score: float) -> bool:
        return compare(score, self.rule, self.value)


class Instrument(_Model):
    key: str = ""
    name: str = Field(min_length=1)
    # "empathy": a process instrument shown on the case's session axis (the CARE measure), no flags.
    kind: Literal["alliance", "outcome", "empathy"]
    direction: Literal["higher", "lower"]
    raters: list[str] = ["client"]
    source: str = Field(min_length=1)
    scales: dict[str, tuple[float, float]]
    cutoff: Cutoff | None = None
    reliable_change: ReliableChange | None = None
    sudden_gain: SuddenGainCriterion | None = None
    alert_drop: float | None = None
    # The smallest fall in points that counts as an alliance rupture (total scale).
    rupture_min_drop: float | None = Field(default=None, gt=0)
    items: ItemScales | None = None
    total_from_items: ItemTotal | None = None
    risk_items: dict[str, RiskItem] = {}

    @model_validator(mode="before")
    @classmethod
    def _item_scales(cls, data):
        # Items are scales of their own (item1 ... itemN), so the ratings table and the
        # wide form (PHQ-9:item9) accept them with their range like any other scale.
        if isinstance(data, dict) and isinstance(data.get("items"), dict) and isinstance(data.get("scales"), dict):
            spec = data["items"]
            count, bounds = spec.get("count"), spec.get("range")
            if isinstance(count, int) and isinstance(bounds, (list, tuple)) and len(bounds) == 2:
                data = {**data, "scales": {**data["scales"],
                                           **{f"item{i}": tuple(bounds) for i in range(1, count + 1)}}}
        return data

    @model_validator(mode="after")
    def _risk_items_are_items(self) -> "Instrument":
        unknown = [name for name in self.risk_items if name not in self.scales]
        if unknown:
            raise ValueError(f"risk item(s) {', '.join(unknown)} are not items of the instrument (give items.count)")
        return self

    @model_validator(mode="after")
    def _total_from_items_fits(self) -> "Instrument":
        rule, items = self.total_from_items, self.items
        if rule is None:
            return self
        if items is None:
            raise ValueError("total_from_items needs items (count and range)")
        if rule.max_missing >= items.count:
            raise ValueError(f"total_from_items.max_missing {rule.max_missing} leaves no answered item of "
                             f"{items.count}")
        low, high = self.scales["total"]
        if items.count * items.range[0] < low - 1e-9 or items.count * items.range[1] > high + 1e-9:
            raise ValueError(f"{items.count} items of {items.range[0]:g}-{items.range[1]:g} do not add up to a "
                             f"total within {low:g}-{high:g}")
        return self

    @model_validator(mode="after")
    def _min_drop_not_below_reliable_change(self) -> "Instrument":
        # A drop smaller than the instrument's reliable change can be measurement error.
        rc = self.reliable_change
        if self.rupture_min_drop is not None and rc is not None and self.rupture_min_drop < rc.threshold - 1e-9:
            raise ValueError(f"rupture_min_drop {self.rupture_min_drop:g} is smaller than the reliable change "
                             f"{rc.threshold:g} points: a drop within measurement error is no rupture")
        return self

    def min_drop(self, fraction: float, scale: str = "total") -> float:
        """Points a rupture needs on `scale`: `rupture_min_drop` (or `fraction` of the total
        range), in proportion to the scale's range for a subscale."""
        low, high = self.scales["total"]
        points = self.rupture_min_drop if self.rupture_min_drop is not None else fraction * (high - low)
        s_low, s_high = self.scales.get(scale, (low, high))
        return points * (s_high - s_low) / (high - low)

    @field_validator("scales")
    @classmethod
    def _ranges(cls, scales: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        if "total" not in scales:
            raise ValueError("every instrument needs a 'total' scale")
        for name, (low, high) in scales.items():
            if not low < high:
                raise ValueError(f"scale {name!r}: the maximum must be greater than the minimum")
        return scales

    @property
    def sudden_gain_points(self) -> float | None:
        """Criterion 1 of a sudden gain: `sudden_gain.points`, else the reliable change."""
        if self.sudden_gain is not None:
            return self.sudden_gain.points
        return self.reliable_change.threshold if self.reliable_change else None

    @property
    def sign(self) -> int:
        """+1 when a higher score is better, -1 when lower is better."""
        return 1 if self.direction == "higher" else -1


class Codebook(_Model):
    label: str
    source: str = Field(min_length=1)
    codes: dict[str, str] = Field(min_length=1)


class Vocabularies(_Model):
    modality: list[str]
    rating_raters: list[str]
    coding_raters: list[str]
    therapist_levels: list[str]
    theme_kinds: list[str]
    # sessions.attendance (CONTRACT.md extension); attended is true only for "attended".
    attendance: list[str] = ["attended", "no_show", "cancelled_late", "cancelled"]


class SuddenGainDefaults(_Model):
    pct: float = Field(gt=0, lt=1)
    alpha: float = Field(gt=0, lt=1)
    include_intake: bool
    multiple: Literal["largest", "first"] = "largest"
    source: str


class RuptureDefaults(_Model):
    method: Literal["sd", "points", "cutoff"]
    threshold: float = Field(gt=0)
    min_series: int = Field(ge=2)
    repair_window: int = Field(ge=1)
    min_drop_fraction: float = Field(default=0.1, gt=0, le=1)
    discrepancy_fraction: float = Field(default=0.2, gt=0, le=1)
    source: str


class NotOnTrackDefaults(_Model):
    min_sample: int = Field(ge=2)
    percentiles: tuple[float, float]
    exact_leave_one_out_max: int = Field(default=40, ge=0, le=200)
    folds: int = Field(default=2, ge=2, le=20)
    max_fit_clients: int = Field(default=1000, ge=20)
    source: str

    @field_validator("percentiles")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        return check_percentiles(value)


def check_percentiles(value) -> tuple[float, float]:
    """(lower, floor) of the expected-response band: 0 < floor < lower < 0.5."""
    lower, floor = value
    if not 0 < floor < lower < 0.5:
        raise ValueError("percentiles are (lower, floor) with 0 < floor < lower < 0.5, e.g. (0.25, 0.10); "
                         f"got {value!r}.")
    return float(lower), float(floor)


FLAG_CODES = ("risk", "harmed", "deteriorated", "not_on_track", "rupture_not_repaired", "coded_rupture_not_repaired",
              "sudden_loss", "alliance_below_cutoff", "behind_expected", "rupture_pending", "alliance_discrepancy",
              "countertransference", "barriers_unaddressed", "alliance_drop", "no_reliable_change", "sudden_gain",
              "attendance", "lost_contact", "boundary")


class TriageSettings(_Model):
    lookback_sessions: int = Field(ge=1)
    rupture_scales: list[str] = Field(min_length=1)
    stalled_after_sessions: int = Field(ge=2)
    barrier_min_unaddressed: int = Field(ge=1)
    barrier_high_severity: int = Field(ge=1, le=3)
    countertransference_codes: list[str]
    countertransference_share: float = Field(gt=0, le=1)
    # The flag's share of the attended sessions (coding is often sparse; the share of the
    # coded sessions is shown beside it). Project default, unconfirmed.
    countertransference_share_attended: float = Field(default=0.25, gt=0, le=1)
    countertransference_min_sessions: int = Field(ge=1)
    weights: dict[str, float]
    source: str

    @field_validator("weights")
    @classmethod
    def _known(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(FLAG_CODES))
        if unknown:
            raise ValueError(f"unknown flag code(s) {', '.join(unknown)}; the codes are {', '.join(FLAG_CODES)}")
        missing = [code for code in FLAG_CODES if code not in weights]
        if missing:
            raise ValueError(f"no weight for {', '.join(missing)}")
        if any(w < 0 for w in weights.values()):
            raise ValueError("weights must be >= 0")
        return weights


class ThemeSettings(_Model):
    """Transference evidence: a CCRT from fewer coded sessions than `ccrt_min_sessions` is
    labelled tentative."""
    ccrt_min_sessions: int = Field(default=10, ge=1)
    source: str = ("Minimum relationship episodes for a reliable CCRT, often quoted as about 10: unconfirmed "
                   "(Luborsky & Crits-Christoph 1998, ch. 6, not read); here sessions stand for episodes.")


class AttendanceSettings(_Model):
    """Missed sessions and lost contact, from the sessions' `attended` (false = a no-show or
    a late cancellation, the contract)."""
    min_missed: int = Field(default=2, ge=1)       # missed sessions within the lookback before a flag
    lost_contact_days: int = Field(default=28, ge=1)
    source: str = ("Dropout definitions disagree (Swift & Greenberg 2012): a missed session within the lookback "
                   "and no attended session for N days while sessions are still booked are this project's "
                   "settings (unconfirmed).")


class ConferenceDefaults(_Model):
    cases: int = Field(ge=1, le=50)
    minutes_per_case: int = Field(ge=1, le=240)
    min_group_clients: int = Field(ge=1)
    source: str


class CalibrationSettings(_Model):
    """The calibration exercise's agreement: the ICC's confidence level and Koo & Li's bands,
    read from the interval."""
    confidence: float = Field(default=0.95, gt=0, lt=1)
    icc_bands: list[tuple[float, str]] = [(0.5, "moderate"), (0.75, "good"), (0.9, "excellent")]
    below_bands: str = "poor"
    source: str = ("McGraw & Wong 1996 (interval, as R irr::icc); Koo & Li 2016, J Chiropr Med 15(2):155-163 "
                   "(bands, read from the 95 % interval)")


class SuppressionSettings(_Model):
    """Small cells (CMS cell size suppression policy): a count from `min_cell` to `max_cell`
    is never shown, nor one that such a count could be derived from."""
    min_cell: int = Field(default=1, ge=1)
    max_cell: int = Field(default=10, ge=1)
    source: str = "CMS cell size suppression policy (ResDAC 2024): no cell of 1-10, nor one from which it can be derived"

    @model_validator(mode="after")
    def _ordered(self) -> "SuppressionSettings":
        if self.max_cell < self.min_cell:
            raise ValueError("max_cell must be at least min_cell")
        return self

    def hidden(self, count) -> bool:
        """True when `count` is a small cell."""
        return count is not None and self.min_cell <= count <= self.max_cell


class PrivacySettings(_Model):
    max_note_chars: int = Field(gt=0)


REQUIRED_CODEBOOKS = ("transference", "countertransference", "ccrt_wish", "ccrt_ro", "ccrt_rs",
                      "barrier_categories", "events")


class Catalog(_Model):
    meta: dict[str, object] = {}
    instruments: dict[str, Instrument]
    codebooks: dict[str, Codebook]
    vocabularies: Vocabularies
    sudden_gains: SuddenGainDefaults
    ruptures: RuptureDefaults
    not_on_track: NotOnTrackDefaults
    triage: TriageSettings
    conference: ConferenceDefaults
    privacy: PrivacySettings
    calibration: CalibrationSettings = CalibrationSettings()
    attendance: AttendanceSettings = AttendanceSettings()
    themes: ThemeSettings = ThemeSettings()
    suppression: SuppressionSettings = SuppressionSettings()

    @model_validator(mode="after")
    def _consistent(self) -> "Catalog":
        missing = [name for name in REQUIRED_CODEBOOKS if name not in self.codebooks]
        if missing:
            raise ValueError(f"codebooks missing: {', '.join(missing)}")
        for kind in self.vocabularies.theme_kinds:
            if kind not in self.codebooks:
                raise ValueError(f"theme kind {kind!r} has no codebook")
        for key, instrument in self.instruments.items():
            unknown = set(instrument.raters) - set(self.vocabularies.rating_raters)
            if unknown:
                raise ValueError(f"instrument {key}: unknown raters {sorted(unknown)}")
        flags = self.codebooks.get("flags")
        unnamed = [code for code in FLAG_CODES if flags is not None and code not in flags.codes]
        if unnamed:
            raise ValueError(f"codebooks.flags: no words for the flag code(s) {', '.join(unnamed)}")
        ct = set(self.codebooks["countertransference"].codes)
        unknown = [c for c in self.triage.countertransference_codes if c not in ct]
        if unknown:
            raise ValueError(f"triage.countertransference_codes: {', '.join(unknown)} not in the countertransference codebook")
        return self

    def code_label(self, codebook: str, code: str) -> str:
        """The words people read for `code` of `codebook` (a flag, a barrier category, an
        event); a code the codebook lacks reads with spaces for its underscores."""
        book = self.codebooks.get(codebook)
        if book is not None and code in book.codes:
            return book.codes[code]
        return str(code).replace("_", " ")

    def flag_label(self, code: str) -> str:
        """A triage flag's words (codebook `flags`): "lost_contact" -> "Lost contact"."""
        return self.code_label("flags", code)

    def theme_codes(self, kind: str) -> list[str]:
        return list(self.codebooks[kind].codes)

    def instruments_of(self, kind: str) -> dict[str, Instrument]:
        return {k: v for k, v in self.instruments.items() if v.kind == kind}


ADDITIVE_FIELDS = ("codes", "scales")


def _merge(base: dict, extra: dict) -> dict:
    """Overlay a clinic's file: entries merge field by field; `codes` and `scales` add up.

    So `[instruments.BDI-II.reliable_change]` replaces only that instrument's reliable
    change, and a codebook's new `codes` join the default ones.
    """
    merged = dict(base)
    for section, entries in extra.items():
        if not (isinstance(entries, dict) and isinstance(merged.get(section), dict)):
            merged[section] = entries
            continue
        merged[section] = dict(merged[section])
        for key, entry in entries.items():
            old = merged[section].get(key)
            if not (isinstance(entry, dict) and isinstance(old, dict)):
                merged[section][key] = entry
                continue
            if section not in ("instruments", "codebooks"):
                merged[section][key] = {**old, **entry}  # e.g. [triage.weights]: change one weight
                continue
            new = dict(old)
            for name, value in entry.items():
                if name in ADDITIVE_FIELDS and isinstance(value, dict) and isinstance(old.get(name), dict):
                    new[name] = {**old[name], **value}
                else:
                    new[name] = value
            merged[section][key] = new
    return merged


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise CatalogError(f"The catalog file {path.name} was not found.") from None
    except tomllib.TOMLDecodeError as err:
        raise CatalogError(f"The catalog file {path.name} is not valid TOML: {err}.") from None


def _sentence(path_names: str, err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    more = len(err.errors()) - 1
    tail = f" ({more} more problem{'s' if more > 1 else ''} after this one)" if more else ""
    return (f"The catalog ({path_names}) is not valid at '{where}': {first['msg'].rstrip('.')}{tail}. "
            "Correct the file and start again.")


def load_catalog(extra: str | os.PathLike | None = None, base: str | os.PathLike | None = None) -> Catalog:
    """Read the default catalog, overlay a clinic's file if given, validate, return it."""
    base_path = Path(base) if base else DEFAULT_PATH
    data = _read_toml(base_path)
    names = base_path.name
    extra = extra or os.environ.get(ENV_VAR) or None
    if extra:
        extra_path = Path(extra)
        data = _merge(data, _read_toml(extra_path))
        names = f"{names} + {extra_path.name}"
    for key, entry in data.get("instruments", {}).items():
        if isinstance(entry, dict):
            entry["key"] = key
    try:
        return Catalog.model_validate(data)
    except ValidationError as err:
        raise CatalogError(_sentence(names, err)) from None


@lru_cache(maxsize=8)
def default_catalog(extra: str | None = None) -> Catalog:
    """The catalog in force for this process (cached: it is read once)."""
    return load_catalog(extra)
