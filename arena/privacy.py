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


MIN_SALT_BYTES = 16


class SaltError(ValueError):
    """The configured salt is too short to keep IP hashes secret; the message is one sentence."""


def check_salt(salt: bytes, where: str) -> bytes:
    """Refuse salts too short to keep hashed IPs from being reversed by brute force."""
    if len(salt) < MIN_SALT_BYTES:
        raise SaltError(f"{where} holds {len(salt)} bytes; an IP-hash salt needs at least {MIN_SALT_BYTES}.")
    return salt


def load_or_create_salt(path: Path) -> bytes:
    """The salt stored at `path`, created on first use with 0600 permissions (written whole, then renamed)."""
    if path.exists():
        return check_salt(path.read_bytes(), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_bytes(32)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(salt)
    partial.replace(path)  # a crash never leaves an empty or partial salt file behind
    return salt


SALT_ENV = "CORRAL_IP_SALT"
SALT_FILE = "ip-salt.secret"


def deployment_salt(env_value: str | None, data_dir: Path) -> bytes:
    """The deployment's salt: the CORRAL_IP_SALT value when set, else the data folder's secret file (made once)."""
    if env_value:
        return check_salt(env_value.encode(), SALT_ENV)
    return load_or_create_salt(data_dir / SALT_FILE)
