"""The one exception type the library raises for problems a user can fix.

Messages name the bad value and the fix ("no dataset.pt in artifacts/ — run
`rnnkit tokenize` first"). Only the CLI prints them, as one line, and exits non-zero.
"""


class RnnkitError(Exception):
    """A problem with the user's input or artifacts, with a message that says how to fix it."""
