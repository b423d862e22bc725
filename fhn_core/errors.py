"""The exception fhn_core raises for a bad design, bad tensor or bad labels."""


class FhnError(ValueError):
    """Bad input to the network or its training: the message says what is wrong and what to do.

    The app and the command line show ``str(err)`` to the user instead of a traceback.
    """
