"""The one base of every error a user's input or environment can cause.

Each such error is a subclass with a one-line message naming the culprit (a file and line,
a config key, a flag, a model version). The command line catches `NmtKerasError` once and
prints that line; a program catches it (or the subclass it cares about) the same way.
Errors about a value a caller passed are also `ValueError`s, as Python code expects.
"""


class NmtKerasError(Exception):
    """Base of the errors a user can cause; the message is one line naming the culprit."""
