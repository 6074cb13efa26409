"""The handout of a conference: one self-contained HTML file and the actions as CSV.

The HTML holds the agenda, each case's overview chart (Plotly, with plotly.js embedded,
so it opens offline), its notes and decisions, and the follow-up of the previous
conference. Every text is HTML-escaped. Before anything is written:

- the privacy guard scans every free text that goes in (reasons, notes, actions, and the
  texts inside the charts, such as barrier notes); a finding stops the export with a
  sentence that says where, the identifying spans masked;
- with `deidentify`, cases appear by their labels only: every client or therapist id in a
  text becomes words (`labels`: "Case B", "another case", "the therapist of Case B", "a
  therapist"), an action's owner stays the pseudonymous user id it is, attendees a
  count; a final check refuses to write if any client or therapist id of the store is left.

The actions CSV is written with `export.csv_bytes` (formula injection neutralised).
Files are written whole or not at all (a temporary file renamed into place).
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import tempfile
from pathlib import Path

import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from ..access import Scope
from ..analytics.suppression import count_words
from ..catalog import FLAG_CODES, Catalog
from ..export import csv_bytes
from ..privacy import find_identifiers, mask
from ..store import Store
from ..views import case_parts, overview_figure
from .followup import follow_up
from .labels import id_labels
from .meetings import ConferenceError, agenda, conference, group_scope
from .notes import entries

# Figure keys whose strings are people's words or labels (not numbers or styling).
_TEXT_KEYS = {"text", "hovertext", "name", "title", "customdata"}


class HandoutError(ConferenceError):
    """The handout cannot be written; the message says why (identifying spans masked)."""


def _strings(value, key: str | None = None):
    """The text strings of a figure's JSON (titles, names, hover texts), where people's
    words can be."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k != "template":
                yield from _strings(v, k)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v, key)
    elif isinstance(value, str) and key in _TEXT_KEYS:
        yield value
    elif hasattr(value, "tolist") and key in _TEXT_KEYS:  # numpy arrays of strings
        yield from (v for v in value.tolist() if isinstance(v, str))


def _map_strings(value, fn, key: str | None = None):
    """The figure's JSON with `fn` applied to the same text strings `_strings` yields."""
    if isinstance(value, dict):
        return {k: (v if k == "template" else _map_strings(v, fn, k)) for k, v in value.items()}
    if key not in _TEXT_KEYS:
        return value
    if isinstance(value, (list, tuple)):
        return [_map_strings(v, fn, key) for v in value]
    if hasattr(value, "tolist") and getattr(value, "dtype", None) is not None and value.dtype.kind in "OU":
        return [_map_strings(v, fn, key) for v in value.tolist()]
    return fn(value) if isinstance(value, str) else value


def _scan(where: str, texts, problems: list[str]) -> None:
    for text in texts:
        if not isinstance(text, str) or not text:
            continue
        plain = re.sub(r"<[^>]+>", " ", text)  # hover texts carry <br> and <b>
        findings = find_identifiers(plain)
        if findings:
            kinds = ", ".join(sorted({f.kind for f in findings}))
            problems.append(f"{where}: {kinds} in \"{mask(plain, findings)}\"")


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _table(frame: pl.DataFrame, headers: dict[str, str]) -> str:
    if frame.is_empty():
        return "<p class='none'>None.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers.values())
    rows = "".join("<tr>" + "".join(f"<td>{_e(', '.join(v) if isinstance(v, list) else v)}</td>"
                                    for v in row) + "</tr>"
                   for row in frame.select(list(headers)).iter_rows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.8rem; } h2 { border-bottom: 2px solid #0072B2; padding-bottom: .2rem; margin-top: 2.5rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%; }
th, td { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f4f8; } td:first-child { white-space: nowrap; } .meta, .none { color: #555; } .note { white-space: pre-wrap; margin: .3rem 0; }
@media print { .case { break-before: page; } }
"""


def build_handout(store: Store, catalog: Catalog, conference_id: int, *, scope: Scope,
                  deidentify: bool = False) -> tuple[str, pl.DataFrame]:
    """The handout's HTML and its actions table, as `scope` may see the conference (a
    de-identified reader always gets the de-identified handout); raises `HandoutError`
    when the privacy guard finds identifying text or a de-identified handout would still
    name an id."""
    reader = scope
    info = conference(store, conference_id, reader)
    scope = group_scope(store, reader, info["group"])
    deidentify = deidentify or scope.deidentified
    items = agenda(store, conference_id, scope=scope)
    therapist_of = dict(store.query("SELECT client_id, any_value(therapist_id) AS t FROM sessions "
                                    "WHERE client_id IN (SELECT unnest($c::VARCHAR[])) GROUP BY 1",
                                    {"c": items["client_id"].to_list()}, scope=scope).iter_rows())
    labels = dict(zip(items["client_id"], items["case_label"]))
    ids, words, person = None, (lambda s: s), (lambda s: s)
    if deidentify:  # every id of the store, to replace and then to look for: only in this case
        ids = id_labels(store, items)
        words, person = ids.sub, ids.person
    notes = entries(store, conference_id, scope=scope)
    problems: list[str] = []
    body: list[str] = []
    chart_texts: list[str] = []  # the charts' texts as written, for the final de-identification check

    attendees = info["attendees"] or []
    who = "not recorded" if not attendees else f"{len(attendees)} attendee(s)" if deidentify else ", ".join(attendees)
    body.append(f"<h1>Case conference: {_e(info['group'])}, {_e(info['date'])}</h1>"
                f"<p class='meta'>Attendees: {_e(who)}. Made by {_e(person(info['created_by']))}. "
                f"Handout written {_e(dt.datetime.now().strftime('%Y-%m-%d %H:%M'))}"
                f"{'; cases by label only' if deidentify else ''}.</p>")

    # Agenda
    shown = items.with_columns(pl.col("reason").map_elements(words, return_dtype=pl.String))
    columns = {"case_label": "Case", "reason": "Why it is on the agenda", "minutes": "Minutes"}
    if not deidentify:
        columns = {"case_label": "Case", "client_id": "Client", "reason": "Why it is on the agenda",
                   "minutes": "Minutes"}
    _scan("the agenda", items["reason"].to_list(), problems)
    body.append("<h2>Agenda</h2>" + _table(shown, columns))

    # Follow-up of the previous conference
    follow = follow_up(store, catalog, conference_id, reader)
    if follow["previous"] is not None:
        prev = follow["previous"]
        body.append(f"<h2>Since the conference of {_e(prev['date'])}</h2>")
        acts = pl.concat([follow["actions"], follow["still_open"]], how="vertical_relaxed")
        _scan("a previous action", acts["text"].to_list(), problems)
        acts = acts.with_columns(pl.col("text").map_elements(words, return_dtype=pl.String),
                                 pl.col("owner").map_elements(person, return_dtype=pl.String))
        body.append("<h3>Decisions</h3>" + _table(acts, {"conference_date": "Decided", "case_label": "Case",
                                                          "text": "Action", "owner": "Owner", "due_on": "Due",
                                                          "status": "Status"}))
        changes = follow["changes"].filter(pl.col("changed"))
        # Flags in the catalog's words, never as codes.
        words_of = {code: catalog.flag_label(code) for code in FLAG_CODES}
        changes = changes.with_columns(pl.col("flags_resolved", "new_flags").list.eval(pl.element().replace(words_of)))
        if deidentify:
            others = changes.filter(~pl.col("client_id").is_in(list(labels))).height
            changes = changes.filter(pl.col("client_id").is_in(list(labels))).with_columns(
                pl.col("client_id").replace_strict(labels, default=None))
        body.append("<h3>What changed in the data</h3>" + _table(changes, {
            "client_id": "Case", "new_sessions": "New sessions", "flags_resolved": "Flags resolved",
            "new_flags": "New flags"}))
        if deidentify and others:  # a count of 1-10 cases is a small cell (catalog [suppression])
            body.append(f"<p class='meta'>{_e(count_words(others, catalog.suppression, 'other case'))} of the group "
                        "changed too.</p>")

    # One section per case
    for item in items.iter_rows(named=True):
        client = item["client_id"]
        label = item["case_label"]
        heading = label if deidentify else f"{label}: client {client}, therapist {therapist_of.get(client) or '-'}"
        body.append(f"<section class='case'><h2>{_e(heading)}</h2>"
                    f"<p><b>Why:</b> {_e(words(item['reason']))} "
                    f"<span class='meta'>({item['minutes']} min)</span></p>")
        parts = case_parts(store, catalog, client, scope)
        fig = overview_figure(parts, catalog, title=f"{label}: case overview" if deidentify else None)
        spec = fig.to_plotly_json()
        _scan(f"the chart of {label}", _strings(spec), problems)
        if deidentify:
            spec = _map_strings(spec, ids.sub)
            chart_texts.extend(_strings(spec))
        body.append(pio.to_html(spec, full_html=False, include_plotlyjs=False, validate=False,
                                config={"displaylogo": False, "responsive": True}, default_height="720px"))
        mine = notes.filter(pl.col("client_id") == client)
        said = mine.filter(pl.col("kind") == "note")
        _scan(f"the notes on {label}", said["text"].to_list(), problems)
        body.append("<h3>Notes</h3>" + ("".join(
            f"<p class='note'>{_e(words(n['text']))} <span class='meta'>({_e(person(n['saved_by']))}, "
            f"{_e(n['saved_at'].strftime('%Y-%m-%d %H:%M'))})</span></p>" for n in said.iter_rows(named=True))
            or "<p class='none'>None.</p>"))
        decided = mine.filter(pl.col("kind") == "action")
        _scan(f"the actions on {label}", decided["text"].to_list(), problems)
        decided = decided.with_columns(pl.col("text").map_elements(words, return_dtype=pl.String),
                                       pl.col("owner").map_elements(person, return_dtype=pl.String))
        body.append("<h3>Decisions</h3>" + _table(decided, {"text": "Action", "owner": "Owner", "due_on": "Due",
                                                            "status": "Status"}) + "</section>")

    if problems:
        raise HandoutError("The handout was not written: the privacy guard found identifying details in "
                           + "; ".join(problems) + ". Edit those texts and export again.")
    text = "\n".join(body)
    if deidentify:
        # The page's words outside the charts' scripts, and the charts' texts: numbers in a
        # chart's data are not names, so a numeric id cannot be told from a session number there.
        left = ids.left(html.unescape(re.sub(r"<script.*?</script>|<[^>]+>", " ", text, flags=re.S)))
        left += ids.left("\n".join(chart_texts))
        if left:
            raise HandoutError(f"The de-identified handout still names {len(set(left))} client or therapist id(s); "
                               "it was not written.")
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Case conference {_e(info['group'])} {_e(info['date'])}</title>"
            f"<style>{_STYLE}</style><script>{get_plotlyjs()}</script></head><body>{text}</body></html>")
    return page, _actions(notes, items, deidentify, words, person)


def _actions(notes: pl.DataFrame, items: pl.DataFrame, deidentify: bool, words, person) -> pl.DataFrame:
    acts = (notes.filter(pl.col("kind") == "action")
            .join(items.select("client_id", "case_label"), on="client_id", how="left")
            .with_columns(pl.col("text").map_elements(words, return_dtype=pl.String),
                          pl.col("owner", "saved_by").map_elements(person, return_dtype=pl.String)))
    columns = ["case_label"] + ([] if deidentify else ["client_id"]) + [
        "text", "owner", "due_on", "status", "saved_by", "saved_at"]
    return acts.select(columns).rename({"case_label": "case", "text": "action"})


def actions_bytes(actions: pl.DataFrame) -> bytes:
    """The actions table as a spreadsheet-safe CSV file (`export.csv_bytes`)."""
    return csv_bytes(actions.with_columns(pl.col("saved_at").dt.strftime("%Y-%m-%d %H:%M")))


def _write(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_handout(store: Store, catalog: Catalog, conference_id: int, html_path, actions_csv=None, *,
                  scope: Scope, deidentify: bool = False) -> dict:
    """Write the handout (and the actions CSV); returns the files and their sizes in bytes.
    Nothing is written when the privacy guard refuses."""
    page, actions = build_handout(store, catalog, conference_id, scope=scope, deidentify=deidentify)
    written = {}
    data = page.encode("utf-8")
    _write(html_path, data)
    written[str(html_path)] = len(data)
    if actions_csv:
        data = actions_bytes(actions)
        _write(actions_csv, data)
        written[str(actions_csv)] = len(data)
    return {"html": str(html_path), "actions": actions.height, "files": written}
