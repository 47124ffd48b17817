"""Staff users and their roles, from a configuration file (docs/operations.md).

The file is TOML, one table per user; passwords are stored only as hashes made by
werkzeug.security (`complaintflow hash-password` prints one):

    [users.li]
    name = "李客服"
    roles = ["reception"]
    password_hash = "scrypt:32768:8:1$..."
    lang = "zh"            # optional: zh (default) or en

COMPLAINTFLOW_USERS_FILE names the file; without it the demo users of
data/users/demo.toml are used (every role has one; password "demo") and `serve` says so.

A running inbox notices when the file changes (`UserDirectory.refresh`, one stat per
request) and reads it again: a new password or a removed user ends that user's sessions
(web/auth.py), changed roles apply to the next page. A file that no longer reads (half
saved, a typo) is logged and the last good one stays in force.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.security import check_password_hash

log = logging.getLogger("complaintflow.web")

DEMO_USERS = Path(__file__).resolve().parents[2] / "data" / "users" / "demo.toml"


class UsersFileError(ValueError):
    """The users file is missing or malformed; the message names the user and key at fault."""


@dataclass(frozen=True)
class User:
    login: str
    name: str
    roles: frozenset[str]
    password_hash: str = field(repr=False)
    lang: str = "zh"

    def check_password(self, password: str) -> bool:
        return bool(password) and check_password_hash(self.password_hash, password)

    @property
    def credential(self) -> str:
        """A fingerprint of the stored password hash, kept with each session: when the
        password changes, so does this, and sessions made with the old one end."""
        return hashlib.sha256(self.password_hash.encode("utf-8")).hexdigest()


def _stamp(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class UserDirectory:
    def __init__(self, users: dict[str, User], source: Path, demo: bool, known_roles: set[str] | None = None):
        self.users, self.source, self.demo = users, source, demo
        self.known_roles = known_roles
        self._stamp = _stamp(source)
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Read the users file again if it changed since it was read; True when it was.
        A file that does not read is logged and the users read before stay."""
        stamp = _stamp(self.source)
        if stamp == self._stamp or stamp is None:
            return False
        with self._lock:
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                fresh = load_users(self.source, self.known_roles)
            except UsersFileError as err:
                log.error("users file changed but was not taken: %s; the users read before stay in force", err)
                return False
            self.users = fresh.users
            log.info("users file %s read again: %d users", self.source, len(self.users))
            return True

    def get(self, login: str | None) -> User | None:
        return self.users.get(login or "")

    def authenticate(self, login: str, password: str) -> User | None:
        user = self.get(login.strip())
        return user if user and user.check_password(password) else None

    def holders(self, role: str) -> list[User]:
        return [u for u in self.users.values() if role in u.roles]


def load_users(path: str | Path | None = None, known_roles: set[str] | None = None) -> UserDirectory:
    explicit = path or os.environ.get("COMPLAINTFLOW_USERS_FILE")
    source = Path(explicit) if explicit else DEMO_USERS
    if not source.is_file():
        raise UsersFileError(f"users file '{source}' does not exist")
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise UsersFileError(f"users file '{source}' is not valid TOML: {err}") from err
    table = raw.get("users")
    if not isinstance(table, dict) or not table:
        raise UsersFileError(f"users file '{source}' has no [users.NAME] tables")
    users = {}
    for login, entry in table.items():
        where = f"users file '{source}', user '{login}'"
        if not isinstance(entry, dict):
            raise UsersFileError(f"{where}: must be a table")
        roles = entry.get("roles")
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            raise UsersFileError(f"{where}: 'roles' must be a non-empty list of role ids")
        unknown = sorted(set(roles) - known_roles) if known_roles is not None else []
        if unknown:
            raise UsersFileError(f"{where}: unknown role(s) {', '.join(unknown)} (roles are defined in processes/roles.json)")
        digest = entry.get("password_hash")
        if not isinstance(digest, str) or ":" not in digest:
            raise UsersFileError(f"{where}: 'password_hash' must be a werkzeug password hash "
                                 "(make one with `complaintflow hash-password`)")
        lang = entry.get("lang", "zh")
        if lang not in ("zh", "en"):
            raise UsersFileError(f"{where}: 'lang' must be zh or en")
        users[login] = User(login, str(entry.get("name") or login), frozenset(roles), digest, lang)
    return UserDirectory(users, source, demo=not explicit, known_roles=known_roles)
