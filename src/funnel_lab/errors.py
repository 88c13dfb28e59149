"""The one exception funnel_lab raises for bad params or input, and the did-you-mean its messages end with."""

from __future__ import annotations

import difflib


class ParamsError(ValueError):
    """Bad params or unreadable input: the message names the file, key, column or row and what was expected.

    Every error a user can cause (a misspelt key, an unknown column in a rule or formula, an unreadable export, a
    column of the wrong type) is this one type, from the command line (exit 2) and from Python alike.
    """


def did_you_mean(word: str, choices) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or a list of the valid ones.

    Examples
    --------
    >>> did_you_mean("salesforc", ["salesforce", "hubspot"])
    "; did you mean 'salesforce'?"
    """
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; expected one of: {', '.join(choices)}" if choices else ""
