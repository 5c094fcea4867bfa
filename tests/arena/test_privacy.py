"""Salted IP hashes and the salt file."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.privacy import SaltError, check_salt, hash_ip, load_or_create_salt


def test_salt_file_is_created_once_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "secret" / "salt"
    salt = load_or_create_salt(path)
    assert len(salt) == 32 and oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_or_create_salt(path) == salt
    assert [p.name for p in path.parent.iterdir()] == ["salt"]  # no partial file left behind


def test_short_or_empty_salts_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "salt"
    path.write_bytes(b"")
    with pytest.raises(SaltError, match="needs at least 16"):
        load_or_create_salt(path)
    with pytest.raises(SaltError, match="CORRAL_IP_SALT holds 4 bytes"):
        check_salt(b"abcd", "CORRAL_IP_SALT")


def test_hashes_are_keyed_and_never_the_ip() -> None:
    a, b = hash_ip("203.0.113.7", b"k" * 32), hash_ip("203.0.113.7", b"j" * 32)
    assert a != b and a is not None and "203" not in a and len(a) == 32
    assert hash_ip(None, b"k" * 32) is None
