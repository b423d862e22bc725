"""The exception io_adapters raises for anything wrong with a user's file or value, and
the warning for data that reads but looks wrong."""

from __future__ import annotations

import warnings

import numpy as np


class DataError(ValueError):
    """Bad input data: the message names the file (or value) and says how to fix it.

    The app and the command line show ``str(err)`` to the user instead of a traceback.
    """


class DataWarning(UserWarning):
    """Data that reads but looks wrong (IBM floats labelled IEEE, NaN samples, a raster
    that misses the grid): the message names the file and what to check.

    The command line prints it as ``fhn: warning: ...`` on stderr, the app as a warning on
    the page; training goes on, since the data may be right after all.
    """


def warn_data(message: str) -> None:
    """Issue a :class:`DataWarning` attributed to the caller of the reader."""
    warnings.warn(message, DataWarning, stacklevel=3)


def warn_non_finite(values: np.ndarray, source: object, what: str = "samples") -> None:
    """Warn when ``values`` hold NaN or inf (readers whose formats have no nodata marker)."""
    bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if bad:
        warn_data(f"{source}: {bad:,} of {values.size:,} {what} ({bad / values.size:.2%}) are "
                  "NaN or inf; training and prediction treat those cells as nodata, so check "
                  "the file (or its sample format) if that is not meant")
