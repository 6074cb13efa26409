"""Server mode's state database: PostgreSQL for everything people write.

`schema` holds the versioned migrations and the row-level security; `state` the
connection layer the app and the command line use (`migrate`, `PgState`); `audit` the
hash-chained audit log written through it.
"""

from .audit import append_audit, verify_audit
from .schema import APP_ROLE, MIGRATIONS, SCHEMA, SCHEMA_VERSION, SCOPE_SETTINGS, STATE_TABLES
from .state import PgConflict, PgDenied, PgScope, PgState, PgStateError, default_dsn, describe, migrate, next_id

__all__ = ["APP_ROLE", "MIGRATIONS", "SCHEMA", "SCHEMA_VERSION", "SCOPE_SETTINGS", "STATE_TABLES", "PgConflict",
           "PgDenied", "PgScope", "PgState", "PgStateError", "append_audit", "default_dsn", "describe", "migrate",
           "next_id", "verify_audit"]
