"""The exception io_adapters raises for anything wrong with a user's file or value."""


class DataError(ValueError):
    """Bad input data: the message names the file (or value) and says how to fix it.

    The app and the command line show ``str(err)`` to the user instead of a traceback.
    """
