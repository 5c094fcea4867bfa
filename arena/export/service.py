"""Exports for the admin section of the web app: token check, filters from form fields, files in a private folder."""

from __future__ import annotations

import hmac
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine

from arena.domain import VoteFilter
from arena.errors import UserError
from arena.export import formats
from arena.export.formats import FORMATS, Judges
from arena.export.run import Summary, export, leaderboard_strengths
from arena.export.writers import ExportError

MIN_TOKEN_CHARS = 16
KEEP_SECONDS = 3600  # exported files older than this are removed from the service's folder


class AccessDenied(UserError):
    """The admin token is missing or wrong."""


def check_admin_token(token: str) -> str:
    """Refuse admin tokens short enough to guess; the message is one sentence for the operator."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"CORRAL_ADMIN_TOKEN must be at least {MIN_TOKEN_CHARS} characters long.")
    return token


def parse_day(text: str, label: str) -> date | None:
    """An optional YYYY-MM-DD form field."""
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{label} must be a date written YYYY-MM-DD, for example 2026-03-01.") from None


class ExportService:
    """Runs exports for holders of the admin token; compares tokens in constant time."""

    def __init__(self, engine: Engine, judges: Judges, admin_token: str, *, folder: Path | None = None) -> None:
        self._engine = engine
        self._judges = judges
        self._token = check_admin_token(admin_token).encode()
        self._folder = folder or Path(tempfile.mkdtemp(prefix="corral-exports-"))

    def authorised(self, token: str | None) -> bool:
        """True for the admin token (constant-time comparison)."""
        return hmac.compare_digest((token or "").encode(), self._token)

    def run(self, token: str | None, fmt: str, suffix: str, filters: VoteFilter, *, margin: bool = False) -> Summary:
        """Write one export into the service's folder; refuses a wrong token or bad request with a sentence.

        The UI builds `filters` from run.EXPORT_FILTER, so self-play votes go out as they always have.
        """
        if not self.authorised(token):
            raise AccessDenied("That admin token is not right.")
        spec = FORMATS.get(fmt)
        if spec is None:
            raise UserError(f"Choose one of the formats: {', '.join(FORMATS)}.")
        if margin and not spec.margin:
            raise UserError(f"A margin column only applies to the {formats.with_margin()} format.")
        if filters.since and filters.until and filters.since >= filters.until:
            raise UserError("The first day must come before the last day.")
        self._clean()
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = self._folder / f"corral-{fmt}-{stamp}-{time.monotonic_ns() % 10**6:06d}{suffix}"
        strengths = leaderboard_strengths(self._engine, filters) if margin else None
        try:
            return export(self._engine, fmt, path, filters, judges=self._judges, strengths=strengths)
        except ExportError as exc:
            raise UserError(str(exc)) from None

    def _clean(self) -> None:
        cutoff = time.time() - KEEP_SECONDS
        for old in self._folder.glob("corral-*"):
            if old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)
