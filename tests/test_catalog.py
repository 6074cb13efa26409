"""The catalog is data: complete, sourced, validated on load, extensible without code."""

import pytest

from core.catalog import CatalogError, compare, load_catalog

CONTRACT_INSTRUMENTS = ["SRS", "WAI-SR", "HAq-II", "ORS", "OQ-45", "PHQ-9", "GAD-7", "CORE-10", "BDI-II"]
CONTRACT_CODES = {
    "transference": "idealizing devaluing dependent mistrustful hostile erotic abandonment_fear compliant "
                    "competitive withdrawn",
    "countertransference": "overwhelmed_disorganized helpless_inadequate positive special_overinvolved sexualized "
                           "disengaged parental_protective criticized_mistreated",
    "ccrt_wish": "assert_self oppose_control_others be_controlled be_distant be_close_accepting be_loved_understood "
                 "feel_good achieve_help_others",
    "ccrt_ro": "strong controlling upset bad rejecting_opposing helpful likes_me understanding",
    "ccrt_rs": "helpful unreceptive respected_accepted oppose_hurt_others self_controlled helpless "
               "disappointed_depressed anxious_ashamed",
    "barrier_categories": "communication_style cultural language reluctance_to_share resistance_to_vulnerability "
                          "boundary other",
    "events": "rupture_withdrawal rupture_confrontation repair",
}


def test_default_catalog_has_every_contract_instrument(catalog):
    assert set(CONTRACT_INSTRUMENTS) <= set(catalog.instruments)


@pytest.mark.parametrize("codebook", sorted(CONTRACT_CODES))
def test_default_catalog_has_every_contract_code(catalog, codebook):
    assert set(CONTRACT_CODES[codebook].split()) <= set(catalog.codebooks[codebook].codes)


def test_every_number_has_a_source(catalog):
    for instrument in catalog.instruments.values():
        assert instrument.source
        if instrument.cutoff:
            assert instrument.cutoff.source
        if instrument.reliable_change:
            assert instrument.reliable_change.source


def test_domain_ranges_and_directions(catalog):
    expected = {"SRS": (0, 40, "higher"), "WAI-SR": (12, 60, "higher"), "ORS": (0, 40, "higher"),
                "OQ-45": (0, 180, "lower"), "PHQ-9": (0, 27, "lower"), "GAD-7": (0, 21, "lower"),
                "CORE-10": (0, 40, "lower"), "BDI-II": (0, 63, "lower")}
    for key, (low, high, direction) in expected.items():
        assert catalog.instruments[key].scales["total"] == (low, high)
        assert catalog.instruments[key].direction == direction
    assert catalog.instruments["WAI-SR"].scales["bond"] == (4, 20)


def test_cutoff_boundaries_follow_the_rule(catalog):
    phq = catalog.instruments["PHQ-9"].cutoff
    assert phq.is_clinical(10) and not phq.is_clinical(9)
    srs = catalog.instruments["SRS"].cutoff
    assert srs.is_clinical(35) and not srs.is_clinical(36)
    assert compare(36, "le", 36) and not compare(36, "lt", 36)


def test_reliable_change_from_sd_and_reliability(tmp_path):
    # DOMAIN.md check: SD 7.5, r .80 -> threshold 9.296925 (CECPfuns tests).
    extra = tmp_path / "clinic.toml"
    extra.write_text('[instruments.BDI-II.reliable_change]\nsd = 7.5\nreliability = 0.8\nz = 1.959964\n'
                     'source = "clinic norms"\n')
    bdi = load_catalog(extra).instruments["BDI-II"]
    assert bdi.reliable_change.threshold == pytest.approx(9.296925, abs=1e-6)


def test_clinic_file_adds_an_instrument_and_a_code_without_code_change(tmp_path):
    extra = tmp_path / "clinic.toml"
    extra.write_text(
        '[instruments.K10]\nname = "Kessler 10"\nkind = "outcome"\ndirection = "lower"\nsource = "Kessler 2002"\n'
        'scales = { total = [10, 50] }\n'
        '[codebooks.barrier_categories]\nlabel = "Barrier"\nsource = "clinic"\n'
        'codes = { language = "Language", hearing = "Hearing impairment" }\n')
    catalog = load_catalog(extra)
    assert "K10" in catalog.instruments and "PHQ-9" in catalog.instruments
    assert "hearing" in catalog.codebooks["barrier_categories"].codes


def test_an_invalid_catalog_gets_a_sentence_naming_the_key(tmp_path):
    extra = tmp_path / "clinic.toml"
    extra.write_text('[instruments.BAD]\nname = "Bad"\nkind = "outcome"\ndirection = "sideways"\n'
                     'source = "x"\nscales = { total = [0, 10] }\n')
    with pytest.raises(CatalogError, match="instruments.BAD.direction"):
        load_catalog(extra)


def test_a_range_with_max_below_min_is_refused(tmp_path):
    extra = tmp_path / "clinic.toml"
    extra.write_text('[instruments.BAD]\nname = "Bad"\nkind = "outcome"\ndirection = "lower"\n'
                     'source = "x"\nscales = { total = [10, 0] }\n')
    with pytest.raises(CatalogError, match="maximum must be greater"):
        load_catalog(extra)


def test_broken_toml_is_a_sentence(tmp_path):
    extra = tmp_path / "clinic.toml"
    extra.write_text("[instruments\n")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(extra)
