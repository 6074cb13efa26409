"""Who may sign in, with which role, and what each role may see.

A user is the identity provider's subject (and issuer), shown everywhere by a
pseudonymous display id. The role is admin, supervisor or trainee; a trainee is a
therapist of the store (`therapist_id`); supervision groups are led (a supervisor) or
belonged to (a trainee). `scope_for` turns a signed-in user into the `access.Scope` of
every read, from the stored memberships, on the server, for every rerun.

The demo store has three demo users (one per role) whose issuer is "demo" (no identity
provider issues it); the demo sign-in offers them only while the store holds nothing but
the demo data (`is_demo_store`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import polars as pl

from .access import ROLES, AccessDenied, Scope
from .privacy import id_problem
from .store import Store

# Display ids and group names: the pseudonym character set of client and therapist ids.
PSEUDONYM = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
DEMO_ISSUER = "demo"
SYSTEM = Scope.system("user administration")
# The server's record of sign-ins is kept as the store's owner: it is read before anyone is signed in.
SIGN_IN = Scope.system("sign-in records")


class UserError(ValueError):
    """A user cannot be added, found or changed; a sentence."""


@dataclass(frozen=True)
class Identity:
    subject: str
    issuer: str
    display_id: str
    role: str
    therapist_id: str | None = None
    leads: frozenset[str] = field(default_factory=frozenset)
    member_of: frozenset[str] = field(default_factory=frozenset)

    @property
    def groups(self) -> frozenset[str]:
        return self.leads | self.member_of


def checked_pseudonym(value: str | None, what: str) -> str:
    """A display id or a group name: the pseudonym character set, and nothing that identifies."""
    value = (value or "").strip()
    if not PSEUDONYM.fullmatch(value):
        raise UserError(f"The {what} '{value[:40]}' is not a pseudonym: use 1 to 64 letters, digits, '.', '_' "
                        "or '-' (e.g. sup1, th-07, group-north).")
    problem = id_problem(value)
    if problem:
        raise UserError(f"The {what} '{value}' {problem}; use a pseudonym such as sup1.")
    return value


def add_user(store: Store, subject: str, role: str, *, issuer: str = "", name: str | None = None,
             therapist_id: str | None = None, groups=(), by: str = "system") -> Identity:
    """Add a user, or replace their role and groups when the subject is known. A supervisor's
    groups are the groups they lead; a trainee's, the groups they belong to."""
    subject, issuer = (subject or "").strip(), (issuer or "").strip()
    if not subject:
        raise UserError("Give the user's subject (the identity provider's id for them).")
    if role not in ROLES:
        raise UserError(f"The role '{role}' is not one of {', '.join(ROLES)}.")
    display = checked_pseudonym(name or subject, "display id (--name)" if name else "subject, used as display id")
    groups = [checked_pseudonym(g, "group name") for g in groups]
    if therapist_id is not None:
        therapist_id = checked_pseudonym(therapist_id, "therapist id")
    if role == "trainee" and not therapist_id:
        raise UserError("A trainee is a therapist of the store: give their therapist id (--therapist TH).")
    relation = "leads" if role == "supervisor" else "member"
    if role == "admin" and groups:
        raise UserError("An admin sees every group already; give groups to supervisors and trainees.")
    with store.transaction(Scope.system("user administration", user=by)) as cur:
        taken = cur.execute("SELECT subject, issuer FROM users WHERE display_id = ? AND NOT (subject = ? AND "
                            "issuer = ?)", [display, subject, issuer]).fetchall()
        if taken:
            raise UserError(f"The display id '{display}' belongs to another user; choose another (--name).")
        cur.execute("DELETE FROM user_groups WHERE subject = ? AND issuer = ?", [subject, issuer])
        cur.execute("DELETE FROM users WHERE subject = ? AND issuer = ?", [subject, issuer])
        cur.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [subject, issuer, display, role, therapist_id, datetime.now(timezone.utc), by])
        for group in dict.fromkeys(groups):
            cur.execute("INSERT INTO user_groups VALUES (?, ?, ?, ?)", [subject, issuer, group, relation])
    found = find_user(store, subject, issuer)
    assert found is not None
    return found


def remove_user(store: Store, subject: str, issuer: str | None = None) -> list[str]:
    """Remove a user (of any issuer when none is given) and their memberships; the display
    ids of those removed (what a log may name: the subject can be an e-mail address)."""
    where = "subject = ?" + ("" if issuer is None else " AND issuer = ?")
    params = [subject] + ([] if issuer is None else [issuer])
    with store.transaction(SYSTEM) as cur:
        removed = [row[0] for row in cur.execute(f"SELECT display_id FROM users WHERE {where} ORDER BY display_id",
                                                 params).fetchall()]
        cur.execute(f"DELETE FROM user_groups WHERE {where}", params)
        cur.execute(f"DELETE FROM users WHERE {where}", params)
        # Their open sign-ins end with them.
        cur.execute(f"UPDATE auth_sessions SET ended_at = now(), end_reason = 'user removed' WHERE {where} "
                    "AND ended_at IS NULL", params)
    return removed


def list_users(store: Store, scope: Scope) -> pl.DataFrame:
    """Every user with their role, therapist id and groups (an admin's read)."""
    if not scope.is_admin:
        raise AccessDenied("Only an admin may list the users.")
    return store.query(
        """SELECT u.display_id, u.role, u.therapist_id,
                  coalesce(array_agg(g.supervision_group ORDER BY g.supervision_group)
                           FILTER (WHERE g.supervision_group IS NOT NULL), ARRAY[]::VARCHAR[]) AS groups,
                  u.subject, u.issuer, u.created_at, u.created_by
           FROM users u LEFT JOIN user_groups g USING (subject, issuer)
           GROUP BY u.display_id, u.role, u.therapist_id, u.subject, u.issuer, u.created_at, u.created_by
           ORDER BY u.role, u.display_id""", scope=scope)


def find_user(store: Store, subject: str, issuer: str) -> Identity | None:
    """The user a sign-in names: the subject with this issuer, else with no issuer given."""
    rows = store.query(
        """SELECT u.subject, u.issuer, u.display_id, u.role, u.therapist_id,
                  array_agg(g.supervision_group) FILTER (WHERE g.relation = 'leads') AS leads,
                  array_agg(g.supervision_group) FILTER (WHERE g.relation = 'member') AS member_of
           FROM users u LEFT JOIN user_groups g USING (subject, issuer)
           WHERE u.subject = $s AND u.issuer IN ($i, '')
           GROUP BY u.subject, u.issuer, u.display_id, u.role, u.therapist_id
           ORDER BY u.issuer = $i DESC LIMIT 1""", {"s": subject, "i": issuer}, scope=SYSTEM)
    if rows.is_empty():
        return None
    row = rows.row(0, named=True)
    return Identity(row["subject"], row["issuer"], row["display_id"], row["role"], row["therapist_id"],
                    frozenset(row["leads"] or ()), frozenset(row["member_of"] or ()))


def scope_for(store: Store, identity: Identity) -> Scope:
    """What `identity` may see, from the stored memberships: an admin every case; a
    supervisor the cases of the therapists of the groups they lead; a trainee their own."""
    if identity.role == "admin":
        return Scope.admin(identity.display_id)
    if identity.role == "supervisor":
        therapists = store.query(
            "SELECT therapist_id FROM therapists WHERE supervision_group IN (SELECT unnest($g::VARCHAR[]))",
            {"g": sorted(identity.leads)}, scope=SYSTEM)["therapist_id"].to_list() if identity.leads else []
        return Scope.supervisor(identity.display_id, identity.leads, therapists)
    return Scope.trainee(identity.display_id, identity.therapist_id, identity.member_of)


# ----------------------------------------------------------------------------- the demo store

DEMO_USERS = (  # subject, role, therapist, groups
    ("demo-admin", "admin", None, ()),
    ("demo-supervisor", "supervisor", None, ("group-north",)),
    ("demo-trainee", "trainee", "th02", ("group-north",)),
)


def add_demo_users(store: Store) -> None:
    """One demo user per role, for the demo sign-in of the demo store."""
    for subject, role, therapist, groups in DEMO_USERS:
        add_user(store, subject, role, issuer=DEMO_ISSUER, therapist_id=therapist, groups=groups, by="demo")


def is_demo_store(store: Store) -> bool:
    """True while the store holds nothing but the bundled demo data (and its demo users)."""
    return bool(store.scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM store_info WHERE key = 'demo' AND value = 'false') "
        "AND EXISTS (SELECT 1 FROM users WHERE issuer = 'demo')", scope=SYSTEM)) and not store.is_empty()


def demo_users(store: Store) -> list[Identity]:
    """The demo users a demo sign-in offers (none unless `is_demo_store`)."""
    if not is_demo_store(store):
        return []
    found = [find_user(store, subject, DEMO_ISSUER) for subject, *_ in DEMO_USERS]
    return [user for user in found if user is not None and user.issuer == DEMO_ISSUER]


# ----------------------------------------------------------------------------- sign-in sessions
# The server's record of each sign-in, keyed by what the browser presents (for an OIDC
# sign-in, a digest of the identity token's subject, issuer, issue time and nonce, which
# the identity cookie carries): once ended, the same cookie is refused, even copied.

def session_state(store: Store, key: str, identity: Identity, max_age_s: float) -> str:
    """'new' (recorded now), 'active', 'ended' (signed out, or the user was removed) or
    'expired' (older than `max_age_s`; ended now)."""
    with store.transaction(SIGN_IN) as cur:
        found = cur.execute("SELECT started_at, ended_at, extract(epoch FROM now() - started_at) FROM auth_sessions "
                            "WHERE session_key = ?", [key]).fetchall()
        if not found:
            cur.execute("INSERT INTO auth_sessions VALUES (?, ?, ?, now(), NULL, NULL)",
                        [key, identity.subject, identity.issuer])
            return "new"
        _, ended_at, age = found[0]
        if ended_at is not None:
            return "ended"
        if age > max_age_s:
            cur.execute("UPDATE auth_sessions SET ended_at = now(), end_reason = 'expired' WHERE session_key = ?",
                        [key])
            return "expired"
        return "active"


def end_session(store: Store, key: str, reason: str = "signed out") -> None:
    with store.transaction(SIGN_IN) as cur:
        cur.execute("UPDATE auth_sessions SET ended_at = now(), end_reason = ? WHERE session_key = ? "
                    "AND ended_at IS NULL", [reason, key])
