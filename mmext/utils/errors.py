"""The project's exception: a bad input that a CLI reports in one line."""


class MMExtError(ValueError):
    """Bad input to an mmext function or tool.

    The message names the file (or config key) and the problem, so that a CLI
    can print it as one line on stderr and exit with code 2.
    """
