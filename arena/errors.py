"""Errors whose message is a sentence a user may read."""


class UserError(Exception):
    """Refused on purpose; str(error) is the sentence shown to the user."""


class InputRejected(UserError):
    """A message that cannot be sent as it is."""


class VoteRefused(UserError):
    """A vote that does not count (too early, twice, on an errored round …)."""


class NotEnoughModels(UserError):
    """Fewer contestants than a battle needs."""
