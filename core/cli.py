"""`python -m core`: the batch interface, a thin layer over the functions the pages use.

Exit codes of `import`: 0 every row loaded; 1 loaded, with some rows quarantined; 2
nothing loaded (unreadable input, a required table or column missing). Every failure a
person can cause is printed as a sentence on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .catalog import CatalogError, default_catalog
from .store import StoreError, default_path, open_store


class CommandError(Exception):
    """A sentence for stderr; the command exits 2."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="FILE", help="the DuckDB file (default: CASECONF_DB or data/caseconf.duckdb)")
    parser.add_argument("--catalog", metavar="FILE", help="a clinic's catalog that extends the default one")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Supervision case-conference tool: "
                                     "import data, load the demo, summarise cases, run benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    imp = commands.add_parser("import", help="import an export (folder, .zip or .xlsx)")
    imp.add_argument("path", metavar="PATH")
    imp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    imp.add_argument("--redact", action="store_true",
                     help="mask identifying details in notes and load them, instead of quarantining the rows")
    imp.add_argument("--user", help="who is importing (default: CASECONF_USER or the login name)")
    imp.add_argument("--progress", action="store_true", help="print each step on stderr (for logs)")
    _common(imp)

    demo = commands.add_parser("demo", help="load the bundled demo dataset")
    demo.add_argument("--if-empty", action="store_true", help="only when the store holds no sessions yet")
    _common(demo)

    case = commands.add_parser("case", help="the case summary (flags, change, sudden gains, ruptures, themes, barriers)")
    case.add_argument("client_ids", nargs="+", metavar="CLIENT_ID")
    case.add_argument("--json", action="store_true", help="print JSON (one object; an array for several ids)")
    case.add_argument("--sg-cutoff", type=_positive, metavar="POINTS",
                      help="sudden gains criterion 1 in points (default: each instrument's reliable change)")
    case.add_argument("--sg-pct", type=_fraction, metavar="SHARE",
                      help="criterion 2 as a share of the pregain score, e.g. 0.25 (default: the catalog's)")
    case.add_argument("--sg-alpha", type=_fraction, metavar="ALPHA", help="criterion 3 significance (default .05)")
    case.add_argument("--sg-include-intake", action="store_true", default=None,
                      help="also examine the interval 1->2, with the intake score in its pregain window")
    _common(case)

    conference = commands.add_parser("conference", help="prepare a case conference")
    conf_commands = conference.add_subparsers(dest="conference_command", required=True, metavar="ACTION")
    new = conf_commands.add_parser("new", help="create a conference with its agenda pre-filled from the triage")
    new.add_argument("--group", required=True, help="the supervision group (therapists.supervision_group)")
    new.add_argument("--date", type=_date, help="the day of the meeting, YYYY-MM-DD (default: today)")
    new.add_argument("--cases", type=int, help="cases on the agenda (default: the catalog's [conference] cases)")
    new.add_argument("--user", help="who prepares it (default: CASECONF_USER or the login name)")
    new.add_argument("--attendees", default="", metavar="ID,ID",
                     help="who will attend: pseudonymous user ids, separated by commas")
    new.add_argument("--json", action="store_true", help="print one JSON object with id and agenda")
    _common(new)
    export = conf_commands.add_parser("export", help="write a conference's handout (HTML) and its actions (CSV)")
    export.add_argument("id", type=int, metavar="ID", help="the conference id (from 'conference new')")
    export.add_argument("--html", required=True, type=Path, metavar="FILE", help="the handout, one offline HTML file")
    export.add_argument("--actions-csv", type=Path, metavar="FILE", help="also write the action items as CSV")
    export.add_argument("--deidentify", action="store_true",
                        help="cases by their labels only: no client or therapist ids in the files")
    _common(export)

    bench = commands.add_parser("bench", help="benchmarks that print figures and ratios")
    bench.add_argument("what", choices=["import", "analytics", "pages"])
    bench.add_argument("--sessions", type=int, default=100_000)
    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return value


def _fraction(text: str) -> float:
    value = _positive(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must lie between 0 and 1, e.g. 0.25")
    return value


def _date(text: str):
    import datetime as dt
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date written YYYY-MM-DD") from None


def _catalog(args):
    return default_catalog(getattr(args, "catalog", None))


def _cmd_import(args) -> int:
    from .importer import ImportFailed, import_dataset
    store = open_store(args.db)
    try:
        progress = (lambda fraction, text: print(f"{fraction:4.0%} {text}", file=sys.stderr, flush=True)
                    ) if args.progress else None
        result = import_dataset(args.path, store, catalog=_catalog(args), redact=args.redact, imported_by=args.user,
                                progress=progress)
    except ImportFailed as err:
        if args.json:
            print(json.dumps({"batch": None, "loaded": {}, "quarantined": {}, "ignored": [], "problems": [],
                              "error": str(err)}))
        raise CommandError(str(err)) from None
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(result.summary())
        for item in result.ignored:
            print(f"  ignored column '{item['column']}' of {item['table']}")
        for problem in result.problems:
            where = f"{problem.source}, line {problem.line}" if problem.line else problem.source
            print(f"  {where}: {problem.message}")
        if result.problems_truncated:
            print(f"  ... {result.problems_truncated} more problems not listed (every row is in the quarantine); "
                  "problems per table, column and rule:")
            for count in result.problem_counts:
                print(f"  {count['count']:>9}  {count['table']}, {count['column'] or 'the line'}: {count['rule']}")
    return result.exit_code


def _cmd_demo(args) -> int:
    from .importer import load_demo
    result = load_demo(open_store(args.db), only_if_empty=args.if_empty)
    print(result.summary() if result else "The store already holds data; the demo was not loaded.")
    return 0


def _cmd_case(args) -> int:
    from .analytics.outcomes import SuddenGainParams
    from .analytics.summary import UnknownClients, case_summaries, summary_text
    catalog = _catalog(args)
    store = _existing_store(args)
    sg = SuddenGainParams.from_catalog(catalog, cutoff=args.sg_cutoff, pct=args.sg_pct, alpha=args.sg_alpha,
                                       include_intake=args.sg_include_intake)
    try:
        summaries = case_summaries(store, catalog, args.client_ids, sg=sg)
    except UnknownClients as err:
        raise CommandError(str(err)) from None
    if args.json:
        print(json.dumps(summaries[0] if len(summaries) == 1 else summaries, ensure_ascii=False))
    else:
        print("\n\n".join(summary_text(s) for s in summaries))
    return 0


def _existing_store(args):
    path = Path(args.db or default_path())
    if not path.exists():
        raise CommandError(f"There is no database at {path.name}: import an export first "
                           "(python -m core import PATH) or load the demo (python -m core demo).")
    return open_store(path)


def _cmd_conference(args) -> int:
    from .conference.meetings import ConferenceError, new_conference
    from .importer import _who as who
    if args.conference_command == "export":
        return _conference_export(args)
    try:
        made = new_conference(_existing_store(args), _catalog(args), args.group, held_on=args.date,
                              cases=args.cases, created_by=who(args.user),
                              attendees=[a.strip() for a in args.attendees.split(",") if a.strip()])
    except ConferenceError as err:
        raise CommandError(str(err)) from None
    if args.json:
        print(json.dumps(made, ensure_ascii=False))
    else:
        print(made["id"])
        for item in made["agenda"]:
            print(f"  {item['case_label']} ({item['client_id']}, {item['minutes']} min): {item['reason']}",
                  file=sys.stderr)
    return 0


def _conference_export(args) -> int:
    from .conference.handout import write_handout
    from .conference.meetings import ConferenceError
    try:
        written = write_handout(_existing_store(args), _catalog(args), args.id, args.html, args.actions_csv,
                                deidentify=args.deidentify)
    except ConferenceError as err:
        raise CommandError(str(err)) from None
    except OSError as err:
        raise CommandError(f"The handout cannot be written to {Path(err.filename or args.html).name}: "
                           f"{err.strerror or err}.") from None
    for path, size in written["files"].items():
        print(f"{path} ({size:,} bytes)")
    return 0


def _cmd_bench(args) -> int:
    from . import bench
    return bench.run(args.what, sessions=args.sessions)


COMMANDS = {"import": _cmd_import, "demo": _cmd_demo, "case": _cmd_case, "conference": _cmd_conference,
            "bench": _cmd_bench}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CommandError, CatalogError, StoreError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Stopped; nothing half-written was kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
