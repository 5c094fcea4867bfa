"""Voter privacy: IP addresses are stored only as keyed hashes, with a secret salt."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


def hash_ip(ip: str | None, salt: bytes) -> str | None:
    """A keyed hash of an IP address (HMAC-SHA256, hex, 32 chars); None stays None."""
    if not ip:
        return None
    return hmac.new(salt, ip.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def load_or_create_salt(path: Path) -> bytes:
    """The salt stored at `path`, created with 0600 permissions on first use."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(salt)
    return salt
