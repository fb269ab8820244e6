"""Errors the CLI turns into one clear line (no traceback) and exit status 2."""


class EdgeEmnistError(Exception):
    """A problem the user can fix: bad input, missing files, no network."""


class DataError(EdgeEmnistError):
    """A dataset file is missing, malformed or does not match what it claims to be."""
