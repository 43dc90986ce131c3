"""Password hashing with Argon2id (argon2-cffi).

Parameters: argon2-cffi's defaults, RFC 9106's "low memory" profile — Argon2id, time cost 3,
memory 64 MiB, parallelism 4, 16-byte salt, 32-byte hash (about 60 ms per hash on one core of
the 2-core CI machine). ``needs_rehash`` upgrades stored hashes when the parameters change.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against for unknown users, so that "no such user" takes as long as a wrong
    password; made on first use (an Argon2 hash costs ~60 ms, which token-authenticated CLI
    commands such as an emergency stop must not pay at import)."""
    return _HASHER.hash("not a password of anybody")


MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing or malformed hash never matches."""
    try:
        return _HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters (this one has {len(password)})"
    if password.strip() != password:
        return "a password may not start or end with white space"
    return None
