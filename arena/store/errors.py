"""The store's own errors: what callers catch instead of the database driver's exceptions."""


class StoreError(Exception):
    """What the store raises: a write its rules refuse, or a database it cannot reach."""


class DuplicateVote(StoreError):
    """This round of this battle already has a vote."""


class UnknownBattle(StoreError):
    """No battle with that id (or it may not be voted on)."""


class DuplicateFeedback(StoreError):
    """This session already rated this answer."""


class StoreUnavailable(StoreError):
    """The database did not take a read or write, even after retries (locked, full, down, read-only)."""


class CommitFailed(StoreUnavailable):
    """A transaction broke a rule only the commit checks (a deferred constraint): nothing of it was stored."""
