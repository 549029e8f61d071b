"""Passwords (Argon2id through pwdlib), opaque tokens and login throttling.

Tokens and invitation codes are 256-bit random strings shown once; only their SHA-256 is
stored (they are random, so a slow hash adds nothing), and lookups go by that digest. The
common-password list is zxcvbn's (PyPI, MIT): its 30,000 most common passwords.
"""

from __future__ import annotations

import hashlib
import secrets as _random
import time
from functools import lru_cache

from limits import RateLimitItem, parse_many, storage, strategies
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.errors import InvalidInputError, TooManyRequestsError

TOKEN_PREFIX = "yz_"  # noqa: S105 - a recognisable prefix, not a secret
MAX_PASSWORD = 256


class Passwords:
    """Hash and verify passwords with the deployment's Argon2id costs."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self.hasher = PasswordHash(
            (Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism),)
        )
        # Verified when the account does not exist, so that both answers take as long.
        self._dummy = self.hasher.hash(_random.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """(valid, a new hash when the stored one used other costs). A missing hash (unknown
        user, or an account without a password) costs one verification all the same."""
        if stored is None:
            self.hasher.verify(password, self._dummy)
            return False, None
        try:
            return self.hasher.verify_and_update(password, stored)
        except Exception:  # a malformed stored hash is a failed login, not a 500
            return False, None


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """zxcvbn's list of the most common passwords (lower-case)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def check_password(password: str, username: str | None, min_length: int) -> None:
    """NIST-style rules: long enough, not common (nor the user name, nor one repeated
    character); nothing more. Raises InvalidInputError naming `password`."""
    if len(password) < min_length:
        raise InvalidInputError(
            f"password: at least {min_length} characters (密码至少 {min_length} 位)",
            field="password",
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidInputError(
            f"password: at most {MAX_PASSWORD} characters (密码过长)", field="password"
        )
    if "\x00" in password:
        raise InvalidInputError("password: must not contain NUL characters", field="password")
    low = password.lower()
    if (
        low in common_passwords()
        or len(set(low)) == 1
        or (username is not None and low == username.lower())
    ):
        raise InvalidInputError(
            "password: too common, choose another (密码过于常见，请换一个)", field="password"
        )


def new_token() -> str:
    """A fresh opaque token (shown once to its owner)."""
    return TOKEN_PREFIX + _random.token_urlsafe(32)


def new_code() -> str:
    """A fresh invitation code (URL-safe, shown once)."""
    return _random.token_urlsafe(24)


def digest(secret: str) -> str:
    """What is stored of a token or code."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class LoginThrottle:
    """Failed logins per account and per client address (moving windows of `limits`)."""

    def __init__(self, per_account: str, per_address: str, storage_uri: str) -> None:
        self.account: list[RateLimitItem] = parse_many(per_account)
        self.address: list[RateLimitItem] = parse_many(per_address)
        self.limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))

    def _keys(self, username: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        return [(i, "login-account", username.lower()) for i in self.account] + [
            (i, "login-address", address) for i in self.address
        ]

    def check(self, username: str, address: str) -> None:
        """Refuse (429) before any password is verified when either budget is spent."""
        for item, ns, key in self._keys(username, address):
            if not self.limiter.test(item, ns, key):
                reset = self.limiter.get_window_stats(item, ns, key).reset_time
                wait = max(1, int(reset - time.time()) + 1)
                raise TooManyRequestsError(
                    f"username: too many failed logins; try again in {wait} s "
                    f"(登录失败次数过多，请 {wait} 秒后再试)",
                    wait,
                )

    def failed(self, username: str, address: str) -> None:
        for item, ns, key in self._keys(username, address):
            self.limiter.hit(item, ns, key)
