"""The ``fhn`` command line: estimate, train, predict, ingest, evaluate, diagnose, demo, synth.

Every subcommand has ``--help``. Exit codes: 0 success; 2 bad input (one line on stderr,
``fhn: error: <message>``, never a traceback; argparse usage errors too); 1 training
diverged (the last good weights are saved); 130 training stopped by Ctrl-C (a checkpoint
is saved; ``fhn train CONFIG --resume`` continues it). Data that reads but looks wrong
(io_adapters' DataWarning) prints one ``fhn: warning: <message>`` line each and the command
goes on. ``fhn train`` and ``fhn demo`` lock their output folder (fhn_core.run_lock): a
second run on it ends with exit code 2, naming the pid of the run that holds it.

``fhn train`` reads a TOML run description::

    output = "runs/f3"                 # checkpoints and the model go here

    [data]
    path = "f3.sgy"                    # or a list: two ENVI cubes (dates), several GeoTIFFs
    # project = "my-survey"            # instead of path: an app project folder's data, as
                                       #   the app loads it (every source, its options)
    kind = "segy"                      # optional; else by extension
    options = { iline = 189 }          # optional reader options
    vertical_channel = true            # seismic: add sample time/depth as a channel
    envelope_channel = true            # seismic: add the envelope (instantaneous amplitude)
    semblance_channel = true           # seismic: add the semblance (trace coherence)
    change_channels = true             # two dates: add t2 - t1 per band and ||t2 - t1||
    every_slice = true                 # 3D over bands: labels on every band slice, logits
                                       #   averaged over the bands (else one slice, eq. 3.20)

    [labels]
    path = "wells.csv"                 # .npz LabelSet (or listed label cells, kind =
                                       #   "labelcells"), label raster (.tif/.npy/.sgy),
    radius = 1.5                       #   boreholes/points CSV, points GeoJSON; radius in
                                       #   cells (boreholes 1.5, points 0 unless given)
    classes = ["sand", "shale"]        # optional class names (order = ids)
    # masks = ["change.bmp", "unchanged.bmp"]   # instead of path: two-mask reference
    # points = "points.csv"            # instead of path: x,y,class or row,col,class
    #                                  #   (CSV or GeoJSON; fhn sample-points writes one)
    # validation = "val.npz"                    # optional held-back labels

    [design]                           # preset = "seismic-3d", or file = "design.toml",
    spatial_dims = 3                   #   or the design keys inline; omitted: a small
    in_channels = 4                    #   default design for the data, which
                                       #   layers_per_level = 2 (or [1, 2, 3, 4], one
                                       #   count per level) and rank = 4 size alone
    segments = [[0, 2, 8], [1, 2, 16], [0, 2, 8]]
    # channel_expansion = "haar"       # more classes than channels (section 3.2): Haar-
                                       #   transform the input, output 2x coarser (3.4)

    [training]                         # any fhn_core.training.TrainConfig field, and
    recipe = "auto"                    #   auto (default): channels, design size and
                                       #   iterations left open are chosen by spatially
                                       #   blocked cross-validation; "fixed": as given
    budget_minutes = 14                # auto: the time it may spend (default 14)
    folds = 5                          # auto: spatial folds (default 5)
    iterations = 200                   # auto: the most iterations; set = not chosen
    learning_rate = 0.005
    ensemble = 1                       # N networks (seeds seed, seed + 1000, ...) trained
                                       #   one after another, their logits averaged

The auto recipe writes OUTPUT/cross_validation.json (what it chose and why, the network's
and a per-cell random forest's cross-validated scores) and OUTPUT/baseline/ (what refits
the forest: ``fhn predict MODEL DATA --out F --baseline``). Relative paths are relative to
the TOML file. ``--set section.key=value`` overrides any
key (the value is read as TOML, else taken as text); ``--iterations``, ``--device``,
``--learning-rate``, ``--seed`` and ``--out`` are shortcuts for the common ones. Before
training starts, the run's time is estimated from one timed step and one whole-data pass
(``--no-estimate`` skips it). ``--progress-log FILE`` writes the run's progress as JSON
lines for a program watching it (:mod:`app.train_log`; the app's multi-process training).
"""


from __future__ import annotations

from collections.abc import Sequence

from app.cli.common import EXIT_STOPPED, EXIT_USAGE, UserError, data_warnings_on_stderr, print_error
from app.cli.parser import build_parser
from fhn_core.errors import FhnError
from io_adapters.errors import DataError

__all__ = ["main", "build_parser"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fhn`` command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return int(exc.code or 0)
    from fhn_core.distributed import LostRankError, leave_after_lost_rank

    try:
        with data_warnings_on_stderr():
            return int(args.func(args))
    except LostRankError as err:  # under torchrun only: another rank died
        print_error(str(err))
        leave_after_lost_rank(EXIT_USAGE)
    except (UserError, DataError, FhnError) as err:
        print_error(str(err))
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        what = f"{err.strerror}: {err.filename}" if err.filename else str(err)
        print_error(f"{what}; check the path")
    except KeyboardInterrupt:
        print_error("interrupted")
        return EXIT_STOPPED
    return EXIT_USAGE

