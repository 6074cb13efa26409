"""The state database's schema in PostgreSQL: its migrations and its row-level security.

The tables are the DuckDB store's state tables (core/store.py) with the same columns and
meanings; JSON is jsonb, lists are arrays, ids come from the same sequences. They live in
the schema `caseconf`, owned by the role that migrates. The app connects as a login that
is a member of `caseconf_app`, and every transaction it opens says whose it is in four
settings (`SCOPE_SETTINGS`); the policies below let a transaction see and write only what
core/access.py lets that scope see. They are a second line behind that choke point, not a
replacement: they stop a query that forgot its scope, not app code that lies about it.

Each migration takes the database from version i to i + 1 in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA = "caseconf"
APP_ROLE = "caseconf_app"

# The settings each app transaction sets with set_config(name, value, true), i.e. SET LOCAL:
#   caseconf.user     the reader's pseudonymous display id (Scope.user)
#   caseconf.role     admin, supervisor, trainee or system (Scope.role)
#   caseconf.clients  the client ids the reader may see, as a PostgreSQL text array literal
#                     ({"c001","c002"}), or * for every client (admin and system only)
#   caseconf.groups   the supervision groups whose conferences and exercises the reader may
#                     see, in the same form; * for every group (admin and system only)
# Unset, empty or malformed: the transaction sees no row and writes none (fail closed).
SCOPE_SETTINGS = ("caseconf.user", "caseconf.role", "caseconf.clients", "caseconf.groups")
EVERY = "*"

SEQUENCES = ("batch_ids", "conference_ids", "entry_ids", "exercise_ids")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_TABLES = (
    "CREATE SEQUENCE batch_ids START 1",
    "CREATE SEQUENCE conference_ids START 1",
    "CREATE SEQUENCE entry_ids START 1",
    "CREATE SEQUENCE exercise_ids START 1",
    # One import: who, when, which file, and per table what it loaded, quarantined, inserted,
    # updated and ignored. The analytic rows themselves live in the DuckDB snapshots.
    """CREATE TABLE batches (
        batch_id integer PRIMARY KEY DEFAULT nextval('batch_ids'),
        imported_at timestamptz NOT NULL,
        imported_by text NOT NULL,
        file_name text NOT NULL,
        sha256 text NOT NULL,
        redacted boolean NOT NULL,
        loaded jsonb NOT NULL,
        quarantined jsonb NOT NULL,
        inserted jsonb NOT NULL,
        updated jsonb NOT NULL,
        ignored jsonb NOT NULL
    )""",
    # One row per quarantined input row: its raw values (identifying text masked) and every
    # reason, so it can be fixed and imported again.
    """CREATE TABLE quarantine (
        batch_id integer NOT NULL,
        table_name text NOT NULL,
        source text NOT NULL,
        line integer,
        raw jsonb NOT NULL,
        problems jsonb NOT NULL
    )""",
    "CREATE INDEX quarantine_batch ON quarantine (batch_id)",
    """CREATE TABLE conferences (
        conference_id integer PRIMARY KEY DEFAULT nextval('conference_ids'),
        supervision_group text NOT NULL,
        held_on date NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL,
        attendees text[] NOT NULL,
        generation integer
    )""",
    "CREATE INDEX conferences_group ON conferences (supervision_group, held_on)",
    # One row per case on the agenda, in order; a removed item is kept with who, when and why.
    """CREATE TABLE agenda_items (
        conference_id integer NOT NULL,
        position integer NOT NULL,
        case_label text NOT NULL,
        client_id text NOT NULL,
        reason text NOT NULL,
        minutes integer NOT NULL,
        deleted_at timestamptz,
        deleted_by text,
        deleted_why text
    )""",
    # A case is on an agenda once: two servers adding it at the same moment cannot both win.
    "CREATE UNIQUE INDEX agenda_items_active ON agenda_items (conference_id, client_id) WHERE deleted_at IS NULL",
    # Every case of the group as the triage saw it when the conference was made.
    """CREATE TABLE conference_snapshots (
        conference_id integer NOT NULL,
        client_id text NOT NULL,
        sessions integer NOT NULL,
        latest_session integer,
        priority double precision NOT NULL,
        flags text[] NOT NULL
    )""",
    "CREATE INDEX conference_snapshots_conference ON conference_snapshots (conference_id)",
    # Notes and action items, append-only: every save is a new version. The primary key is
    # what keeps two saves of the same version from overwriting each other: the second is
    # refused, whichever server it came through.
    """CREATE TABLE conference_entries (
        entry_id integer NOT NULL,
        version integer NOT NULL,
        conference_id integer NOT NULL,
        client_id text NOT NULL,
        kind text NOT NULL,
        text text NOT NULL,
        owner text,
        due_on date,
        status text,
        saved_by text NOT NULL,
        saved_at timestamptz NOT NULL,
        deleted boolean NOT NULL,
        why text,
        PRIMARY KEY (entry_id, version)
    )""",
    "CREATE INDEX conference_entries_conference ON conference_entries (conference_id, client_id)",
    """CREATE TABLE calibration_exercises (
        exercise_id integer PRIMARY KEY DEFAULT nextval('exercise_ids'),
        supervision_group text NOT NULL,
        client_id text NOT NULL,
        kind text NOT NULL,
        subject text NOT NULL,
        sessions integer[] NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL
    )""",
    """CREATE TABLE calibration_answers (
        exercise_id integer NOT NULL,
        rater text NOT NULL,
        session_number integer NOT NULL,
        score double precision,
        code text,
        saved_at timestamptz NOT NULL,
        PRIMARY KEY (exercise_id, rater, session_number)
    )""",
    # A user is the identity provider's subject; issuer '' accepts the subject from any
    # provider the server trusts.
    """CREATE TABLE users (
        subject text NOT NULL,
        issuer text NOT NULL,
        display_id text NOT NULL UNIQUE,
        role text NOT NULL,
        therapist_id text,
        created_at timestamptz NOT NULL,
        created_by text NOT NULL,
        PRIMARY KEY (subject, issuer)
    )""",
    # relation: 'leads' (a supervisor's group) or 'member' (a trainee's group).
    """CREATE TABLE user_groups (
        subject text NOT NULL,
        issuer text NOT NULL,
        supervision_group text NOT NULL,
        relation text NOT NULL,
        PRIMARY KEY (subject, issuer, supervision_group)
    )""",
    """CREATE TABLE auth_sessions (
        session_key text PRIMARY KEY,
        subject text NOT NULL,
        issuer text NOT NULL,
        started_at timestamptz NOT NULL,
        ended_at timestamptz,
        end_reason text
    )""",
    # Append-only and hash-chained (core/audit.py): each entry's hash covers the previous one's.
    """CREATE TABLE audit_log (
        seq bigint PRIMARY KEY,
        logged_at timestamptz NOT NULL,
        user_id text NOT NULL,
        role text NOT NULL,
        scope text NOT NULL,
        action text NOT NULL,
        target text NOT NULL,
        session_id text NOT NULL,
        outcome text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL
    )""",
    """CREATE TABLE purges (
        entry_id integer NOT NULL,
        purged_by text NOT NULL,
        purged_at timestamptz NOT NULL,
        why text NOT NULL
    )""",
    "CREATE TABLE store_info (key text PRIMARY KEY, value text NOT NULL)",
    # What the DuckDB store calls schema_info, read from the migrations themselves.
    "CREATE VIEW schema_info AS SELECT coalesce(max(version), 0) AS version FROM schema_migrations",
)

# The scope of the current transaction, read from its settings. Each function answers for
# a missing or malformed setting with "nothing": no role, no client, no group.
_SCOPE_FUNCTIONS = (
    """CREATE FUNCTION scope_role() RETURNS text LANGUAGE sql STABLE AS $$
        SELECT r FROM (SELECT current_setting('caseconf.role', true) AS r) s
        WHERE r IN ('admin', 'supervisor', 'trainee', 'system')
           AND coalesce(current_setting('caseconf.user', true), '') <> '' $$""",
    """CREATE FUNCTION scope_user() RETURNS text LANGUAGE sql STABLE AS $$
        SELECT CASE WHEN caseconf.scope_role() IS NOT NULL THEN current_setting('caseconf.user', true) END $$""",
    """CREATE FUNCTION is_admin() RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT coalesce(caseconf.scope_role() IN ('admin', 'system'), false) $$""",
    # Every client or every group: only an admin's or the system's scope may say so.
    """CREATE FUNCTION all_clients() RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT caseconf.is_admin() AND current_setting('caseconf.clients', true) = '*' $$""",
    """CREATE FUNCTION all_groups() RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT caseconf.is_admin() AND current_setting('caseconf.groups', true) = '*' $$""",
    """CREATE FUNCTION scope_clients() RETURNS text[] LANGUAGE sql STABLE AS $$
        SELECT CASE WHEN caseconf.scope_role() IS NOT NULL AND s LIKE '{%}' THEN s::text[] ELSE '{}'::text[] END
        FROM (SELECT current_setting('caseconf.clients', true) AS s) x $$""",
    """CREATE FUNCTION scope_groups() RETURNS text[] LANGUAGE sql STABLE AS $$
        SELECT CASE WHEN caseconf.scope_role() IS NOT NULL AND s LIKE '{%}' THEN s::text[] ELSE '{}'::text[] END
        FROM (SELECT current_setting('caseconf.groups', true) AS s) x $$""",
    # Three answers that need rows the reader may not see; each runs as the owner and gives
    # away no more than its name says.
    # The subjects of the reader's own user rows (a policy on users cannot read users).
    """CREATE FUNCTION own_subjects() RETURNS text[] LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = caseconf, pg_temp AS $$
        SELECT coalesce(array_agg(subject), '{}') FROM users WHERE display_id = caseconf.scope_user() $$""",
    # The exercises out of the blind phase: two raters have answered every session
    # (the rule of calibration.complete_raters).
    """CREATE FUNCTION completed_exercises() RETURNS integer[] LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = caseconf, pg_temp AS $$
        SELECT coalesce(array_agg(exercise_id), '{}') FROM (
            SELECT exercise_id FROM (
                SELECT a.exercise_id, a.rater
                FROM calibration_answers a JOIN calibration_exercises e USING (exercise_id)
                WHERE a.session_number = ANY (e.sessions)
                GROUP BY a.exercise_id, a.rater, cardinality(e.sessions)
                HAVING count(DISTINCT a.session_number) = cardinality(e.sessions)) finished
            GROUP BY exercise_id HAVING count(*) >= 2) done $$""",
    # The audit log's last entry, so that anyone may append to the chain without reading
    # it. The lock (held until the transaction ends) makes appends from several servers
    # take their turns: each reads the tail the previous one committed.
    """CREATE FUNCTION audit_tail(OUT seq bigint, OUT hash text) LANGUAGE plpgsql VOLATILE SECURITY DEFINER
        SET search_path = caseconf, pg_temp AS $$
        BEGIN
            IF caseconf.scope_role() IS NULL THEN
                RAISE EXCEPTION 'no scope is set in this transaction' USING ERRCODE = '42501';
            END IF;
            PERFORM pg_advisory_xact_lock(hashtext('caseconf.audit_log'));
            SELECT a.seq, a.hash INTO seq, hash FROM audit_log a ORDER BY a.seq DESC LIMIT 1;
        END $$""",
)

# Conditions the policies are made of. A function in a sub-select is evaluated once per
# statement, not once per row.
ADMIN = "(SELECT caseconf.is_admin())"
ANY_SCOPE = "((SELECT caseconf.scope_role()) IS NOT NULL)"
SEES_CLIENT = "((SELECT caseconf.all_clients()) OR client_id = ANY ((SELECT caseconf.scope_clients())::text[]))"
SEES_GROUP = "((SELECT caseconf.all_groups()) OR supervision_group = ANY ((SELECT caseconf.scope_groups())::text[]))"
# Scope.may_edit_group: an admin over every group, or the supervisor of the group.
EDITS_GROUP = ("((SELECT caseconf.is_admin()) AND (SELECT caseconf.all_groups()) OR "
               "(SELECT caseconf.scope_role()) = 'supervisor' AND "
               "supervision_group = ANY ((SELECT caseconf.scope_groups())::text[]))")
SEES_CONFERENCE = "conference_id IN (SELECT conference_id FROM caseconf.conferences)"
EDITS_CONFERENCE = f"conference_id IN (SELECT conference_id FROM caseconf.conferences WHERE {EDITS_GROUP})"
IS_RATER = "rater = (SELECT caseconf.scope_user())"


def _policies() -> tuple[str, ...]:
    """Each table's privileges for the app role and the policies that narrow them."""
    # table: (privileges, [(policy, command, using, with check)])
    rules: dict[str, tuple[str, list[tuple[str, str, str | None, str | None]]]] = {}
    for table, privileges in (("batches", "SELECT, INSERT"), ("quarantine", "SELECT, INSERT"),
                              ("auth_sessions", "SELECT, INSERT, UPDATE"), ("purges", "SELECT, INSERT")):
        rules[table] = (privileges, [("admin_only", "ALL", ADMIN, ADMIN)])
    # The audit trail: anyone appends as themselves, only an admin reads, nobody changes it.
    rules["audit_log"] = ("SELECT, INSERT", [
        ("admin_reads", "SELECT", ADMIN, None),
        ("append_as_oneself", "INSERT", None,
         f"{ANY_SCOPE} AND user_id = (SELECT caseconf.scope_user()) AND role = (SELECT caseconf.scope_role())")])
    rules["store_info"] = ("SELECT, INSERT, UPDATE, DELETE", [
        ("anyone_reads", "SELECT", ANY_SCOPE, None), ("admin_inserts", "INSERT", None, ADMIN),
        ("admin_updates", "UPDATE", ADMIN, ADMIN), ("admin_deletes", "DELETE", ADMIN, None)])
    own = f"({ADMIN} OR subject = ANY ((SELECT caseconf.own_subjects())::text[]))"
    for table in ("users", "user_groups"):
        rules[table] = ("SELECT, INSERT, UPDATE, DELETE", [
            ("own_rows", "SELECT", own, None), ("admin_inserts", "INSERT", None, ADMIN),
            ("admin_updates", "UPDATE", ADMIN, ADMIN), ("admin_deletes", "DELETE", ADMIN, None)])
    rules["conferences"] = ("SELECT, INSERT, UPDATE", [
        ("group_reads", "SELECT", SEES_GROUP, None), ("editor_inserts", "INSERT", None, EDITS_GROUP),
        ("editor_updates", "UPDATE", EDITS_GROUP, EDITS_GROUP)])
    sees_case = f"{SEES_CONFERENCE} AND {SEES_CLIENT}"
    edits_case = f"{EDITS_CONFERENCE} AND {SEES_CLIENT}"
    rules["agenda_items"] = ("SELECT, INSERT, UPDATE", [
        ("case_reads", "SELECT", sees_case, None), ("editor_inserts", "INSERT", None, edits_case),
        ("editor_updates", "UPDATE", edits_case, edits_case)])
    rules["conference_snapshots"] = ("SELECT, INSERT", [
        ("case_reads", "SELECT", sees_case, None), ("editor_inserts", "INSERT", None, edits_case)])
    # Append-only: a new version is an insert; only a purge (an admin's) rewrites text.
    rules["conference_entries"] = ("SELECT, INSERT, UPDATE", [
        ("case_reads", "SELECT", sees_case, None), ("editor_inserts", "INSERT", None, edits_case),
        ("admin_purges", "UPDATE", ADMIN, ADMIN)])
    # A trainee sees their groups' exercises on any of the group's cases (they rate it blind).
    rules["calibration_exercises"] = ("SELECT, INSERT", [
        ("group_reads", "SELECT", f"{SEES_GROUP} AND ((SELECT caseconf.scope_role()) = 'trainee' OR {SEES_CLIENT})",
         None),
        ("editor_inserts", "INSERT", None, f"{EDITS_GROUP} AND {SEES_CLIENT}")])
    # Blind: a trainee reads only their own answers until two raters completed every session.
    sees_exercise = "exercise_id IN (SELECT exercise_id FROM caseconf.calibration_exercises)"
    unblinded = (f"((SELECT caseconf.scope_role()) IN ('admin', 'supervisor', 'system') OR {IS_RATER} "
                 "OR exercise_id = ANY ((SELECT caseconf.completed_exercises())::integer[]))")
    rules["calibration_answers"] = ("SELECT, INSERT, UPDATE", [
        ("blind_reads", "SELECT", f"{sees_exercise} AND {unblinded}", None),
        ("rater_inserts", "INSERT", None, f"{sees_exercise} AND {IS_RATER}"),
        ("rater_updates", "UPDATE", f"{sees_exercise} AND {IS_RATER}", f"{sees_exercise} AND {IS_RATER}")])

    statements = [
        # The group role the app's login is granted; made here when the migrating role may.
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN;
            END IF;
        END $$""",
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE}",
                  f"GRANT SELECT ON schema_migrations, schema_info TO {APP_ROLE}",
                  f"GRANT USAGE, SELECT ON SEQUENCE {', '.join(SEQUENCES)} TO {APP_ROLE}",
                  f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {SCHEMA} FROM PUBLIC",
                  f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {SCHEMA} TO {APP_ROLE}"]
    for table, (privileges, policies) in rules.items():
        statements += [f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
                       f"GRANT {privileges} ON {table} TO {APP_ROLE}"]
        for name, command, using, check in policies:
            statements.append(f"CREATE POLICY {name} ON {table} FOR {command} TO {APP_ROLE}"
                              + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))
    return tuple(statements)


STATE_TABLES = ("batches", "quarantine", "conferences", "agenda_items", "conference_snapshots",
                "conference_entries", "calibration_exercises", "calibration_answers", "users", "user_groups",
                "auth_sessions", "audit_log", "purges", "store_info")

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "state tables", _TABLES),
    Migration(2, "scope functions", _SCOPE_FUNCTIONS),
    Migration(3, "row-level security", _policies()),
)
SCHEMA_VERSION = len(MIGRATIONS)
