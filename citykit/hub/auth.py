"""`CohortAuthenticator`: NativeAuthenticator (accounts and passwords kept in the hub's database)
for pilots without the city's single sign-on, limited to the cohort's accounts.

- **firstuse**: `citykit hub setup` gives every account a first password (printed nowhere; written
  to `first-passwords.csv`, readable by root only, for whoever hands them out) and the hub knows
  only their bcrypt hashes (`first-passwords.json`, 0600). People sign in with their account name
  and that password, then choose their own at `/hub/change-password`.
- **native**: instructors get first passwords as above; learners sign up themselves at
  `/hub/signup` with their account name, and an instructor approves each at `/hub/authorize`
  before they can sign in (NativeAuthenticator's approval).

Either way only the cohort's accounts may sign up or sign in: a sign-up under another name is
refused (`validate_username`), and a password is checked only for an account the hub knows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator import handlers as native
from nativeauthenticator.orm import UserInfo
from traitlets import Unicode


class _NoStatsd:
    """NativeAuthenticator 1.3's login handler times logins with `self.statsd`, which JupyterHub 6
    no longer has; this takes the calls and does nothing."""

    def timer(self, *args, **kwargs):
        return self

    def start(self):
        return self

    def stop(self, *args, **kwargs):
        return None


class LoginHandler(native.LoginHandler):
    statsd = _NoStatsd()

    def _render(self, login_error=None, username=None, **_ignored):  # JupyterHub 6 passes more (sync, message)
        return super()._render(login_error=login_error, username=username)


class CohortAuthenticator(NativeAuthenticator):
    first_passwords_file = Unicode("", help="0600 JSON: account -> bcrypt hash of its first password").tag(config=True)
    state_file = Unicode("", help="the hub's state file: the cohort's accounts").tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed_first_passwords()

    def cohort_accounts(self) -> set[str]:
        if not self.state_file:
            return set()
        raw = json.loads(Path(self.state_file).read_text(encoding="utf-8"))
        return {m["account"] for m in raw.get("members", [])}

    def seed_first_passwords(self) -> int:
        """Accounts with a first password that the hub's database does not know yet; return how many."""
        path = Path(self.first_passwords_file) if self.first_passwords_file else None
        if path is None or not path.exists():
            return 0
        if os.name == "posix" and path.stat().st_mode & 0o077:
            raise PermissionError(f"{path} can be read by others; `chmod 600 {path}`")
        hashes = json.loads(path.read_text(encoding="utf-8"))
        added = 0
        for account, hashed in hashes.items():
            if UserInfo.find(self.db, account) is None:
                self.db.add(UserInfo(username=account, password=hashed.encode(), is_authorized=True))
                added += 1
        if added:
            self.db.commit()
            self.log.info("first passwords: %d account(s) added", added)
        return added

    def get_user(self, username):
        """The account's record read afresh from the database (`citykit hub reset-password` changes it
        while the hub runs; the session would otherwise keep the old password hash)."""
        user = super().get_user(username)
        if user is not None:
            self.db.refresh(user)
        return user

    def get_handlers(self, app):
        return [(url, LoginHandler if url == r"/login" else handler) for url, handler in super().get_handlers(app)]

    def validate_username(self, username: str) -> bool:
        accounts = self.cohort_accounts()
        return super().validate_username(username) and (not accounts or username in accounts)
