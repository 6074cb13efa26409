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

import polars as pl

from . import audit
from .access import Scope
from .catalog import CatalogError, default_catalog
from .store import StoreError, default_path, open_store as _open_store


class CommandError(Exception):
    """A sentence for stderr; the command exits 2."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="FILE", help="the DuckDB file (default: CASECONF_DB or data/caseconf.duckdb)")
    parser.add_argument("--catalog", metavar="FILE", help="a clinic's catalog that extends the default one")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description="Supervision case-conference tool: "
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
    new.add_argument("--again", action="store_true",
                     help="make it even when the group already has a conference on that date")
    new.add_argument("--json", action="store_true", help="print one JSON object with id and agenda")
    _common(new)
    export = conf_commands.add_parser("export", help="write a conference's handout (HTML) and its actions (CSV)")
    export.add_argument("id", type=int, metavar="ID", help="the conference id (from 'conference new')")
    export.add_argument("--html", required=True, type=Path, metavar="FILE", help="the handout, one offline HTML file")
    export.add_argument("--actions-csv", type=Path, metavar="FILE", help="also write the action items as CSV")
    export.add_argument("--deidentify", action="store_true",
                        help="cases by their labels only: no client or therapist ids in the files")
    _common(export)

    users = commands.add_parser("users", help="who may sign in: add, list or remove users")
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = user_commands.add_parser("add", help="add a user (or replace a known subject's role and groups)")
    add.add_argument("subject", metavar="SUBJECT", help="the identity provider's subject ('sub' claim) for the user")
    add.add_argument("--role", required=True, choices=["admin", "supervisor", "trainee"])
    add.add_argument("--issuer", metavar="URL", help="the provider's issuer ('iss'); default: any trusted provider")
    add.add_argument("--name", metavar="PSEUDONYM", help="the display id shown for the user (default: the subject)")
    add.add_argument("--therapist", metavar="TH", help="the therapist id a trainee is")
    add.add_argument("--group", action="append", metavar="G",
                     help="a supervision group the supervisor leads, or the trainee belongs to (repeat for more)")
    add.add_argument("--db", metavar="FILE", help="the DuckDB file (default: CASECONF_DB or data/caseconf.duckdb)")
    listing = user_commands.add_parser("list", help="every user with role, therapist and groups")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.add_argument("--db", metavar="FILE", help="the DuckDB file (default: CASECONF_DB or data/caseconf.duckdb)")
    remove = user_commands.add_parser("remove", help="remove a user; their open sign-ins end")
    remove.add_argument("subject", metavar="SUBJECT")
    remove.add_argument("--db", metavar="FILE", help="the DuckDB file (default: CASECONF_DB or data/caseconf.duckdb)")

    audit_cmd = commands.add_parser("audit", help="read the audit log, or verify its hash chain ('audit verify')")
    audit_cmd.add_argument("verify", nargs="?", choices=["verify"], help="check the hash chain: exit 0 intact, 1 not")
    audit_cmd.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="entries from this day on (UTC)")
    audit_cmd.add_argument("--user", help="entries of this user (display id)")
    audit_cmd.add_argument("--action", help="entries of this action (sign_in, view_case, download, import, ...)")
    audit_cmd.add_argument("--json", action="store_true", help="print one JSON array of objects")
    audit_cmd.add_argument("--db", metavar="FILE", help="the DuckDB file (default: CASECONF_DB or data/caseconf.duckdb)")

    migrate = commands.add_parser("migrate", help="bring the PostgreSQL state database to this software's schema")
    migrate.add_argument("--dsn", metavar="URL", help="postgresql://OWNER@HOST:PORT/DATABASE, as the role that owns it "
                         "(default: CASECONF_POSTGRES or [connections.caseconf] postgres in secrets.toml)")

    bench = commands.add_parser("bench", help="benchmarks that print figures and ratios")
    bench.add_argument("what", choices=["import", "faulty", "analytics", "pages", "browser", "privacy", "serve"])
    bench.add_argument("--sessions", type=int, default=100_000)
    bench.add_argument("--pages", nargs="+", metavar="PAGE", help="browser: these pages only (Caseload Case ...)")
    bench.add_argument("--warm", type=int, default=3, help="browser: warm visits a page (the median is kept)")
    bench.add_argument("--timeout", type=_positive, default=60.0, help="browser: seconds any one wait may take")
    bench.add_argument("--notes", type=int, default=200_000, help="notes the privacy benchmark scans")
    bench.add_argument("--replicas", type=int, default=2, help="serve: app servers behind nginx")
    bench.add_argument("--users", type=int, default=8, help="serve: simulated people, a browser session each")
    bench.add_argument("--seconds", type=float, default=60.0, help="serve: how long the people work")
    bench.add_argument("--postgres", metavar="URL", help="serve: the state database, or 'local' for a throwaway PostgreSQL on loopback "
                       "(default: the embedded store)")
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
    from .importer import _who as who
    store = open_store(args.db)
    try:
        progress = (lambda fraction, text: print(f"{fraction:4.0%} {text}", file=sys.stderr, flush=True)
                    ) if args.progress else None
        result = import_dataset(args.path, store, catalog=_catalog(args), redact=args.redact, imported_by=args.user,
                                progress=progress)
    except ImportFailed as err:
        audit.record(store, _system(who(args.user)), "import", "", outcome="nothing loaded")
        if args.json:
            print(json.dumps({"batch": None, "loaded": {}, "quarantined": {}, "ignored": [], "problems": [],
                              "error": str(err)}))
        raise CommandError(str(err)) from None
    audit.record(store, _system(who(args.user)), "import", f"batch {result.batch_id}",
                 outcome="ok" if result.exit_code == 0 else "some rows quarantined")
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
        summaries = case_summaries(store, catalog, args.client_ids, _system(), sg=sg)
    except UnknownClients as err:
        raise CommandError(str(err)) from None
    if args.json:
        print(json.dumps(summaries[0] if len(summaries) == 1 else summaries, ensure_ascii=False))
    else:
        print("\n\n".join(summary_text(s) for s in summaries))
    return 0


def open_store(path=None):
    """The store, with the triage each published snapshot keeps registered first: a store
    this command migrates (an older snapshot, published again) keeps its triage."""
    from .analytics import triage  # noqa: F401  (registers the kept triage as a publish step)
    return _open_store(path)


def _missing_store(args) -> Path | None:
    """The store's path when no store is there yet (server mode keeps no state file)."""
    from .pg.state import default_dsn
    path = Path(args.db or default_path())
    return None if path.exists() or default_dsn() else path


def _existing_store(args):
    """The store the command names; a sentence, not a new empty store, when there is none
    (a mistyped --db must not look like an empty clinic)."""
    missing = _missing_store(args)
    if missing:
        raise CommandError(f"There is no database at {missing}: check --db (or CASECONF_DB), or import an export "
                           "first (python -m core import PATH) or load the demo (python -m core demo).")
    return open_store(args.db)


def _cmd_conference(args) -> int:
    from .conference.meetings import ConferenceError, SameDay, new_conference
    from .importer import _who as who
    if args.conference_command == "export":
        return _conference_export(args)
    try:
        store = _existing_store(args)
        scope = _system(who(args.user))
        made = new_conference(store, _catalog(args), args.group, scope=scope, held_on=args.date,
                              cases=args.cases, attendees=[a.strip() for a in args.attendees.split(",") if a.strip()],
                              another_same_day=args.again)
    except SameDay as err:
        raise CommandError(f"{err} To make a second one, add --again.") from None
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
        store = _existing_store(args)
        written = write_handout(store, _catalog(args), args.id, args.html, args.actions_csv, scope=_system(),
                                deidentify=args.deidentify)
        audit.record(store, _system(), "download", f"conference {args.id} handout"
                     + (" de-identified" if args.deidentify else ""))
    except ConferenceError as err:
        raise CommandError(str(err)) from None
    except OSError as err:
        raise CommandError(f"The handout cannot be written to {Path(err.filename or args.html).name}: "
                           f"{err.strerror or err}.") from None
    for path, size in written["files"].items():
        print(f"{path} ({size:,} bytes)")
    return 0


def _system(user: str = "system") -> Scope:
    """Whoever runs the command line holds the store's file: they read as its owner."""
    return Scope.system("command line", user=user)


def _cmd_users(args) -> int:
    from .identity import UserError, add_user, list_users, remove_user
    if args.users_command != "add":
        store = _existing_store(args)
    else:  # the first admin of a new clinic makes its store
        made = _missing_store(args)
        store = open_store(args.db)
        if made:
            print(f"There was no database at {made}: made a new, empty one (check --db or CASECONF_DB "
                  "if the clinic's store is elsewhere).", file=sys.stderr)
    scope = _system(_login_name())
    if args.users_command == "add":
        try:
            user = add_user(store, args.subject, args.role, issuer=args.issuer or "", name=args.name,
                            therapist_id=args.therapist, groups=args.group or (), by=scope.user)
        except UserError as err:
            raise CommandError(str(err)) from None
        audit.record(store, scope, "user_change", f"add {user.display_id} as {user.role}")
        print(f"{user.display_id}: {user.role}" + (f", therapist {user.therapist_id}" if user.therapist_id else "")
              + (f", groups {', '.join(sorted(user.groups))}" if user.groups else ""))
        return 0
    if args.users_command == "remove":
        removed = remove_user(store, args.subject)
        if not removed:
            raise CommandError(f"There is no user with the subject '{args.subject}'; "
                               "'python -m core users list' shows them.")
        # The log names the display id, as the admin page does: the subject can be an e-mail.
        audit.record(store, scope, "user_change", f"remove {', '.join(removed)}")
        print(f"Removed {', '.join(removed)}.")
        return 0
    users = list_users(store, scope)
    if args.json:
        print(users.with_columns(pl.col("created_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_json())
    else:
        for row in users.iter_rows(named=True):
            print(f"{row['display_id']}\t{row['role']}\t{row['therapist_id'] or '-'}\t"
                  f"{','.join(row['groups']) or '-'}\t{row['subject']}\t{row['issuer'] or '(any issuer)'}")
    return 0


def _cmd_audit(args) -> int:
    store = _existing_store(args)
    scope = _system(_login_name())
    if args.verify:
        intact, sentence = audit.verify(store, scope)
        print(sentence, file=sys.stdout if intact else sys.stderr)
        return 0 if intact else 1
    found = audit.entries(store, scope, since=args.since, user=args.user, action=args.action)
    if args.json:
        print(found.drop("seq").write_json())
    else:
        for row in found.iter_rows(named=True):
            print(f"{row['time']}Z\t{row['user']}\t{row['role']}\t{row['action']}\t{row['target']}\t"
                  f"{row['outcome']}")
    return 0


def _login_name() -> str:
    from .importer import _who as who
    return who(None)


def _cmd_migrate(args) -> int:
    from .pg import SCHEMA_VERSION, PgStateError, default_dsn, describe, migrate
    try:
        dsn = args.dsn or default_dsn()
        if not dsn:
            raise CommandError("Name the PostgreSQL database: --dsn, CASECONF_POSTGRES, or [connections.caseconf] "
                               "postgres in .streamlit/secrets.toml.")
        applied = migrate(dsn)
    except PgStateError as err:
        raise CommandError(str(err)) from None
    if applied:
        print(f"Migrated the state database {describe(dsn)} to schema {SCHEMA_VERSION} (applied "
              f"{', '.join(map(str, applied))}).")
    else:
        print(f"The state database {describe(dsn)} is already at schema {SCHEMA_VERSION}; nothing to do.")
    return 0


def _cmd_bench(args) -> int:
    # The benchmarks are development tools beside this package (devtools/ in a checkout of
    # the repository), never part of it: an installed package has none.
    try:
        if args.what == "serve":
            from devtools import bench_serve
        else:
            from devtools import bench
    except ImportError as err:
        if err.name not in ("devtools", "devtools.bench", "devtools.bench_serve"):
            raise
        raise CommandError("The benchmarks are development tools of the repository (its devtools folder), not "
                           "part of the installed package: run them from the top folder of a checkout of the "
                           "repository.") from None
    if args.what == "serve":
        return bench_serve.run(args.replicas, args.users, args.seconds, postgres=args.postgres)
    if args.what == "browser":
        return bench.run(args.what, pages=args.pages, warm=args.warm, timeout=args.timeout)
    return bench.run(args.what, sessions=args.sessions, notes=args.notes)


COMMANDS = {"import": _cmd_import, "demo": _cmd_demo, "case": _cmd_case, "conference": _cmd_conference,
            "bench": _cmd_bench, "users": _cmd_users, "audit": _cmd_audit, "migrate": _cmd_migrate}


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
