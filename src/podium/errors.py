"""The one exception type for mistakes a user can fix: bad input, a missing file, a wrong setting."""


class PodiumError(Exception):
    """An error whose message states what is wrong, on which value, and what to do next.

    The command line prints the message alone, without a traceback.
    """
