"""Who may see what: the one choke point every read goes through.

A reader's `Scope` comes from the signed-in identity (`identity.scope_for`), resolved on
the server for every rerun from the stored memberships; the command line, run by whoever
holds the store's file, reads as `Scope.system`. `scoped_sql` shadows every table of the
store with a scoped common table expression, so a query written against plain table
names (`sessions`, `agenda_items`, ...) sees only the rows in scope; no page, report or
command filters by hand. A query that names a table schema-qualified (`main.sessions`),
a table this module has no rule for, or a table function that reads files is refused:
it would read around the scope.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, replace

import duckdb

# The contract's tables whose rows belong to a session, and so to the session's therapist.
from .contract import SESSION_TABLES

ROLES = ("admin", "supervisor", "trainee")

# Conference tables whose rows name a client: seen when the conference and the client are.
CONFERENCE_CLIENT_TABLES = ("agenda_items", "conference_snapshots", "conference_entries")
# What only an admin reads: imports, their quarantine and history, the audit trail, the
# server-side sign-in sessions and the purge tombstones.
ADMIN_TABLES = ("batches", "quarantine", "history", "audit_log", "auth_sessions", "purges")
# Tables that name no client, therapist or person.
PUBLIC_TABLES = ("schema_info", "store_info", "snapshot_info", "triage_info")
# The triage each snapshot keeps per client (analytics.triage.summarize): a row is seen
# when its client is, i.e. when the scope sees one of the client's sessions.
SUMMARY_TABLES = ("triage_cases", "triage_flags")
# The clinic's expected-change reference each snapshot keeps (analytics.expected): made from
# every client, read only by the reference's own reader (a scope that sees everything).
REFERENCE_TABLES = ("reference_info", "reference_severity", "reference_model", "reference_loo")
# Each user's own rows.
USER_TABLES = ("users", "user_groups")
# Table functions a scoped query may use (they read no table and no file).
SAFE_FUNCTIONS = frozenset({"unnest", "range", "generate_series"})


class AccessDenied(PermissionError):
    """A read or a write outside the reader's scope; a sentence."""


@dataclass(frozen=True)
class Scope:
    """What one reader may see.

    role: admin, supervisor, trainee, or "system" (the command line and the importer).
    user: the reader's pseudonymous display id (the author of what they write).
    therapist_ids: whose cases may be seen (None: every therapist's).
    client_ids: narrowed further to these clients (None: no narrowing).
    groups: the supervision groups whose conferences and calibration may be seen (None: all).
    deidentified: the cases may be shown only as presentation mode shows them (labels, no ids).
    """
    role: str
    user: str
    therapist_ids: frozenset[str] | None = None
    client_ids: frozenset[str] | None = None
    groups: frozenset[str] | None = None
    deidentified: bool = False
    label: str = ""

    # -- constructors: every scope is made on purpose, none by default
    @classmethod
    def system(cls, why: str = "command line", user: str = "system") -> "Scope":
        """The store's owner at the command line or a maintenance job: every row. `user`
        names who runs it (the author of what the command writes)."""
        return cls("system", user, label=f"every case ({why})")

    @classmethod
    def admin(cls, user: str) -> "Scope":
        return cls("admin", user, label="every case")

    @classmethod
    def supervisor(cls, user: str, groups, therapists) -> "Scope":
        groups = frozenset(groups)
        return cls("supervisor", user, frozenset(therapists), None, groups,
                   label=f"the cases of {', '.join(sorted(groups)) or 'no group'}")

    @classmethod
    def trainee(cls, user: str, therapist_id: str | None, groups) -> "Scope":
        return cls("trainee", user, frozenset([therapist_id] if therapist_id else []), None, frozenset(groups),
                   label=f"the cases of {therapist_id}" if therapist_id else "no case")

    @classmethod
    def therapists(cls, ids, label: str | None = None) -> "Scope":
        """A system scope narrowed to some therapists' cases (a job that prepares a group)."""
        ids = frozenset(ids)
        return cls("system", "system", ids, label=label or f"{len(ids)} therapist(s)")

    # -- questions
    @property
    def is_everything(self) -> bool:
        return self.role in ("admin", "system") and self.therapist_ids is None and self.client_ids is None \
            and self.groups is None

    @property
    def is_admin(self) -> bool:
        return self.role in ("admin", "system")

    def sees_group(self, group: str) -> bool:
        return self.groups is None or group in self.groups

    def may_edit_group(self, group: str) -> bool:
        """Whether this reader may prepare and record a group's conferences and exercises:
        an admin, or a supervisor who leads the group."""
        return self.is_admin and self.groups is None or (self.role == "supervisor" and self.sees_group(group))

    def require_editor(self, group: str) -> None:
        if not self.may_edit_group(group):
            raise AccessDenied(f"Only the supervisor of {group} or an admin may change its conferences "
                               "and exercises.")

    def sees_therapist(self, therapist_id: str | None) -> bool:
        return self.therapist_ids is None or therapist_id in self.therapist_ids

    def key(self) -> tuple:
        """A hashable, order-independent form: part of every cache key."""
        sort = lambda values: None if values is None else tuple(sorted(values))  # noqa: E731
        return (self.role, self.user, sort(self.therapist_ids), sort(self.client_ids), sort(self.groups),
                self.deidentified)

    @classmethod
    def from_key(cls, key: tuple) -> "Scope":
        role, user, therapists, clients, groups, deidentified = key
        freeze = lambda values: None if values is None else frozenset(values)  # noqa: E731
        return cls(role, user, freeze(therapists), freeze(clients), freeze(groups), deidentified)

    def describe(self) -> str:
        """For the audit log: the role and what the scope covers, without any client id."""
        parts = [self.role]
        if self.therapist_ids is not None:
            parts.append("therapists=" + ",".join(sorted(self.therapist_ids)))
        if self.groups is not None:
            parts.append("groups=" + ",".join(sorted(self.groups)))
        if self.client_ids is not None:
            parts.append(f"clients={len(self.client_ids)}")
        if self.deidentified:
            parts.append("deidentified")
        return " ".join(parts)

    # -- derived scopes, each checked against this one
    def for_group(self, group: str, therapists) -> "Scope":
        """The cases of one supervision group, for its conference or its group-level figures.
        A trainee sees a group's cases only de-identified (as presentation mode shows them)."""
        if not self.sees_group(group):
            raise AccessDenied(f"The supervision group {group} is not one of yours.")
        therapists = frozenset(therapists)
        if self.therapist_ids is not None and self.role != "trainee":
            therapists &= self.therapist_ids
        return replace(self, therapist_ids=therapists, groups=frozenset([group]),
                       deidentified=self.deidentified or self.role == "trainee", label=group)

    def for_clients(self, group: str, clients) -> "Scope":
        """A group's cases narrowed to some clients (a conference's agenda, an exercise's case)."""
        if not self.sees_group(group):
            raise AccessDenied(f"The supervision group {group} is not one of yours.")
        trainee = self.role == "trainee"
        return replace(self, therapist_ids=None if trainee else self.therapist_ids,
                       client_ids=frozenset(clients), groups=frozenset([group]),
                       deidentified=self.deidentified or trainee, label=f"{group}, {len(clients)} case(s)")


def _literal_list(values) -> str:
    quoted = ", ".join("'" + str(v).replace("'", "''") + "'" for v in sorted(values))
    return quoted or "NULL"


_ON_DATA_SIDE = object()  # the client rule reads the scoped `sessions` in the same query


def _rules(scope: Scope, visible_clients=_ON_DATA_SIDE, schema: str = "main") -> dict[str, str]:
    """Each table's scoped definition, in dependency order (a later one may read an earlier).

    `visible_clients`: on the state side (a file without sessions) the clients the scope
    may see, as the store looked them up (None: every client). `schema`: where the tables
    are (`main` in a DuckDB file, `caseconf` in the state database)."""
    t_ids = None if scope.therapist_ids is None else _literal_list(scope.therapist_ids)
    c_ids = None if scope.client_ids is None else _literal_list(scope.client_ids)
    g_ids = None if scope.groups is None else _literal_list(scope.groups)
    user = _literal_list([scope.user])
    admin = scope.is_admin

    def where(*conditions):
        kept = [c for c in conditions if c]
        return " WHERE " + " AND ".join(kept) if kept else ""

    def client_rule(column: str) -> str | None:
        if visible_clients is _ON_DATA_SIDE:
            return f"{column} IN (SELECT client_id FROM sessions)"
        return None if visible_clients is None else f"{column} IN ({_literal_list(visible_clients)})"

    rules = {table: f"SELECT * FROM main.{table}" for table in PUBLIC_TABLES}
    rules["sessions"] = "SELECT * FROM main.sessions" + where(
        t_ids and f"therapist_id IN ({t_ids})", c_ids and f"client_id IN ({c_ids})")
    for table in SESSION_TABLES:
        rules[table] = (f"SELECT t.* FROM main.{table} t SEMI JOIN sessions s "
                        "ON t.client_id = s.client_id AND t.session_number = s.session_number")
    for table in SUMMARY_TABLES:
        rules[table] = f"SELECT t.* FROM main.{table} t" + where(
            None if t_ids is None and c_ids is None else "t.client_id IN (SELECT client_id FROM sessions)")
    rules["therapists"] = "SELECT * FROM main.therapists" + where(
        t_ids and f"therapist_id IN ({t_ids})", c_ids and "therapist_id IN (SELECT therapist_id FROM sessions)")
    rules["conferences"] = "SELECT * FROM main.conferences" + where(g_ids and f"supervision_group IN ({g_ids})")
    for table in CONFERENCE_CLIENT_TABLES:
        rules[table] = (f"SELECT t.* FROM main.{table} t" + where(
            "t.conference_id IN (SELECT conference_id FROM conferences)", client_rule("t.client_id")))
    # A trainee sees their groups' exercises on any of the group's cases (they rate it blind);
    # everyone else the exercises on cases they may see.
    own_cases = None if scope.role == "trainee" else client_rule("client_id")
    if admin and t_ids is None and c_ids is None:
        own_cases = None
    rules["calibration_exercises"] = "SELECT * FROM main.calibration_exercises" + where(
        g_ids and f"supervision_group IN ({g_ids})", own_cases)
    # Blind: until two raters have answered every session of an exercise, a trainee reads
    # only their own answers (the rule `calibration.complete_raters` applies).
    blind = None
    if scope.role == "trainee":
        blind = (f"(t.rater IN ({user}) OR t.exercise_id IN (SELECT exercise_id FROM ("
                 "SELECT a.exercise_id, a.rater FROM main.calibration_answers a JOIN main.calibration_exercises e "
                 "USING (exercise_id) WHERE a.session_number = ANY(e.sessions) "
                 "GROUP BY a.exercise_id, a.rater, cardinality(e.sessions) "
                 "HAVING count(DISTINCT a.session_number) = cardinality(e.sessions)) AS finished GROUP BY exercise_id "
                 "HAVING count(*) >= 2))")
    rules["calibration_answers"] = "SELECT t.* FROM main.calibration_answers t" + where(
        "t.exercise_id IN (SELECT exercise_id FROM calibration_exercises)", blind)
    for table in USER_TABLES:
        rules[table] = f"SELECT * FROM main.{table}" + ("" if admin else " WHERE subject IN (SELECT subject FROM "
                                                        f"main.users WHERE display_id IN ({user}))")
    for table in ADMIN_TABLES:
        rules[table] = f"SELECT * FROM main.{table}" + ("" if admin else " WHERE false")
    for table in REFERENCE_TABLES:  # a scope that sees everything is never rewritten
        rules[table] = f"SELECT * FROM main.{table} WHERE false"
    if schema != "main":  # the same rules over another schema (never inside a quoted value)
        rules = {name: _MAIN.sub(lambda m: m.group(0) if m.group(0)[0] == "'" else f"{schema}.", body)
                 for name, body in rules.items()}
    return rules


_MAIN = re.compile(r"'(?:[^']|'')*'|\bmain\.")


KNOWN_TABLES = frozenset(_rules(Scope.admin("x")))
_WITH = re.compile(r"^\s*with\s+(recursive\s+)?", re.IGNORECASE)
_parser = duckdb.connect()  # only parses SQL; never holds data


@functools.lru_cache(maxsize=4096)
def _references(sql: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """The tables a query reads (without the ones its own CTEs define) and its refusals."""
    cur = _parser.cursor()
    try:
        tree = json.loads(cur.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchall()[0][0])
    finally:
        cur.close()
    if tree.get("error"):
        return frozenset(), (f"the query cannot be parsed: {tree.get('error_message', '')}",)
    tables, ctes, refused = set(), set(), []

    def walk(node):
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "BASE_TABLE":
                if node.get("schema_name") or node.get("catalog_name"):
                    refused.append(f"it names the table {node['table_name']} with its schema")
                tables.add(node.get("table_name", ""))
            elif kind == "TABLE_FUNCTION":
                name = (node.get("function") or {}).get("function_name", "")
                if name not in SAFE_FUNCTIONS:
                    refused.append(f"it reads through the table function {name}")
            if isinstance(node.get("cte_map"), dict):
                ctes.update(entry["key"] for entry in node["cte_map"].get("map", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    unknown = sorted(tables - ctes - KNOWN_TABLES)
    if unknown:
        refused.append(f"it reads {', '.join(unknown)}, which the scope has no rule for")
    return frozenset(tables - ctes), tuple(refused)


def checked_sql(sql: str) -> frozenset[str]:
    """The store tables `sql` reads; AccessDenied when it would read around the scope."""
    tables, refused = _references(sql)
    if refused:
        raise AccessDenied("A query was refused: " + "; ".join(refused) + ".")
    return tables


def scoped_sql(sql: str, scope: Scope, visible_clients=_ON_DATA_SIDE, schema: str = "main") -> str:
    """Return `sql` so that it reads only what `scope` may see.

    `visible_clients`: for a query on the state side, the clients `scope` may see (None:
    all), since the state holds no sessions to look them up in."""
    if not isinstance(scope, Scope):
        raise AccessDenied("A read without a scope was refused: every read names its reader's scope.")
    tables = checked_sql(sql)
    if scope.is_everything:
        return sql
    rules = _rules(scope, visible_clients, schema)
    # Only the tables the query reads, with those their rules read in turn.
    needed = set(tables)
    data_tables = set(SESSION_TABLES) | set(SUMMARY_TABLES) | {"therapists"}
    if visible_clients is _ON_DATA_SIDE:
        data_tables |= set(CONFERENCE_CLIENT_TABLES) | {"calibration_exercises"}
    if needed & data_tables:
        needed.add("sessions")
    if needed & set(CONFERENCE_CLIENT_TABLES):
        needed.add("conferences")
    if "calibration_answers" in needed:
        needed |= {"calibration_exercises"} | ({"sessions"} if visible_clients is _ON_DATA_SIDE else set())
    ctes = [f"{name} AS ({body})" for name, body in rules.items() if name in needed]
    if not ctes:
        return sql
    prefix = ",\n".join(ctes)
    match = _WITH.match(sql)
    if match:
        recursive = "RECURSIVE " if match.group(1) else ""
        return f"WITH {recursive}{prefix},\n{sql[match.end():]}"
    return f"WITH {prefix}\n{sql}"
