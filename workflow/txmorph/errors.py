"""Errors that are the user's to fix (bad input or config), as opposed to bugs."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: the message names the file, the row/column, what is wrong and what to do.

    Rule scripts catch it and print the message alone (no traceback), since a traceback
    would only bury the one line the user needs.

    Parameters
    ----------
    message : str
        The whole message the user sees.
    """
