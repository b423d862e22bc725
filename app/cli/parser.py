"""The ``fhn`` argument parser: every subcommand, its options and its help."""

from __future__ import annotations

import argparse

from app.cli.common import PROG
from app.cli.demo import cmd_demo, cmd_synth
from app.cli.design_tools import cmd_diagnose, cmd_estimate
from app.cli.evaluate import cmd_evaluate, cmd_sample_points
from app.cli.predict import cmd_ingest, cmd_predict
from app.cli.train import cmd_train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Segment seismic volumes, maps and hyperspectral cubes from sparse labels "
                    "with a fully invertible hyperbolic network.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    device_help = "cpu, cuda or auto (default: auto = CUDA when available)"

    p = sub.add_parser("estimate", help="memory a design needs (Table 1) and whether it fits",
                       description="Print the memory estimate of a design (paper Table 1) and "
                                   "whether training fits the device's free memory.")
    p.add_argument("design", metavar="DESIGN", help="design TOML file or preset name")
    p.add_argument("--input-shape", type=int, nargs="+",
                   metavar="N", help="N C and the spatial sizes, e.g. 1 12 248 248 248 "
                                     "(default for a paper preset: the paper's input, and its "
                                     "Table 1 figures are printed beside ours)")
    p.add_argument("--device", default="auto", help=device_help)
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("train", help="train on data + labels described by a TOML file",
                       description=_run_description_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG", help="run description (TOML)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. training.learning_rate=0.005 (repeatable)")
    p.add_argument("--iterations", type=int, help="training iterations")
    p.add_argument("--learning-rate", type=float, dest="learning_rate", help="learning rate")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--device", help=device_help)
    p.add_argument("--out", help="output folder (checkpoint/ and model/ go there)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in the output folder")
    p.add_argument("--ignore-memory", action="store_true",
                   help="train even when the memory estimate says it does not fit")
    p.add_argument("--no-estimate", action="store_true",
                   help="skip timing a training step and a whole-data pass to print the "
                        "run's estimated time before it starts")
    p.add_argument("--progress-log", metavar="FILE",
                   help="write the progress as JSON lines to FILE (rank 0 under torchrun)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="apply a trained model and export the result",
                       description="Apply a trained model to data and write the prediction on "
                                   "the data's grid (.sgy with the source's headers, .tif with "
                                   "its georeferencing, .npy, .nc).")
    p.add_argument("model", metavar="MODEL", help="model folder (or a training output folder)")
    p.add_argument("data", metavar="DATA", nargs="+",
                   help="data file(s) of the kind the model was trained on")
    p.add_argument("--out", required=True, help="output file: .sgy, .segy, .tif, .npy or .nc")
    p.add_argument("--what", choices=("classes", "probabilities", "entropy"), default="classes",
                   help="what to write (default: classes)")
    p.add_argument("--class", dest="class_", metavar="CLASS",
                   help="with --what probabilities and SEG-Y: the class whose probability to "
                        "write (default: the probability of the predicted class)")
    p.add_argument("--block", type=int, help="predict in overlapping blocks of this size")
    p.add_argument("--overlap", type=int,
                   help="cells blocks overlap by (default: a quarter of --block, at most 16)")
    p.add_argument("--augment", action="store_true",
                   help="average over the horizontal flips and transposes the network was "
                        "trained with (test-time augmentation; 4-8x the time)")
    p.add_argument("--stratigraphic-order", action="store_true",
                   help="keep the classes in the top-to-bottom order the training labels "
                        "showed, down every trace (law of superposition; seismic only)")
    p.add_argument("--class-priors", choices=("training", "scene"),
                   help="the class mix to predict with: 'scene' re-estimates it on this data "
                        "(for labels drawn per class, not in the scene's proportions), "
                        "'training' keeps the training labels' (default: the model's; "
                        "'scene' for two dates)")
    p.add_argument("--baseline", action="store_true",
                   help="write the run's per-cell baseline (random forest, refitted from the "
                        "run's labels and seed) instead of the network; runs trained with "
                        "the auto recipe")
    p.add_argument("--baseline-weight", type=float, metavar="W",
                   help="the share of the run's per-cell baseline in the map: the mean of its "
                        "probabilities (weight W) and the network's (1 - W); 0 is the network "
                        "alone (default: the model's; 0.5 for seismic runs of the auto recipe)")
    p.add_argument("--kind", help="data kind when the extension does not tell")
    p.add_argument("--device", default="auto", help=device_help)
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a dask.distributed cluster, e.g. tcp://10.0.0.5:8786 (streamed "
                        "prediction; the workers need the data and model paths)")
    p.add_argument("--store", metavar="ZARR",
                   help="streamed prediction: write classes, probabilities and entropy into "
                        "this Zarr store (default: --out with .zarr; .zarr data always stream)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="streamed prediction without --scheduler: local threads (default: cores)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("ingest", help="copy a SEG-Y into a chunked Zarr store (for large surveys)",
                       description="Copy a post-stack SEG-Y into a chunked Zarr store, a block of "
                                   "inlines at a time. An interrupted ingest resumes when run "
                                   "again; the store gets its name only when complete. Give the "
                                   "store instead of the SEG-Y to predict or train.")
    p.add_argument("segy", metavar="SEGY", help="the SEG-Y file")
    p.add_argument("store", metavar="STORE", help="the Zarr store to write, e.g. survey.zarr")
    p.add_argument("--iline", type=int, default=189, help="inline number byte (default 189)")
    p.add_argument("--xline", type=int, default=193, help="crossline number byte (default 193)")
    p.add_argument("--fill-missing", action="store_true",
                   help="put dead (zero) traces where the survey has none")
    p.add_argument("--chunks", type=int, nargs=3, metavar=("N_ILINE", "N_XLINE", "N_SAMPLE"),
                   help="cells per chunk along each axis (default: 64 64 64)")
    p.add_argument("--restart", action="store_true",
                   help="start over instead of resuming an interrupted ingest")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--fast-slices", action="store_true",
                   help="also write crossline- and time-slice-ordered copies (twice the store's "
                        "size more) so the viewer shows those slices as fast as inlines; on an "
                        "existing store, add them to it")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("evaluate", help="score a prediction against a reference",
                       description="Per-class IoU and accuracy, mean IoU, overall accuracy and "
                                   "Cohen's kappa. Both maps hold class ids 0..K-1 (-1 or "
                                   "nodata = unlabelled): .npy, .npz label file, .nc, SEG-Y "
                                   "or one-band GeoTIFF.")
    p.add_argument("prediction", metavar="PREDICTION")
    p.add_argument("reference", metavar="REFERENCE", nargs="?",
                   help="class map, or points (.csv/.geojson: x,y,class or row,col,class, "
                        "as for training); or give --masks")
    p.add_argument("--masks", nargs=2, metavar=("MEMBER", "NON_MEMBER"),
                   help="the reference as two mask images (white = member), as [labels] "
                        "masks in training")
    p.add_argument("--radius", type=float, default=0.0,
                   help="points: cells around each point that count (default 0: the point)")
    p.add_argument("--data", nargs="+", metavar="DATA",
                   help="points in map coordinates: the data the prediction was made from "
                        "(default: the prediction file's own grid)")
    p.add_argument("--region", metavar="EXPR",
                   help="score only these cells, e.g. \"x >= 400\" or \"x < 200 and y < 100\" "
                        "(cell indices; x = column, y = row; volumes: iline, xline, sample)")
    p.add_argument("--model", metavar="MODEL",
                   help="the model folder whose class table names the classes (default: "
                        "the prediction's own, else the reference's)")
    p.add_argument("--classes", type=int, metavar="K",
                   help="number of classes (default: largest id + 1)")
    p.add_argument("--error-map", metavar="PNG", help="write an error-map image")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sample-points", help="draw sparse points per class from a reference",
                       description="Draw N labelled points per class from a dense reference "
                                   "(a class map or a mask pair), seeded, inside a region, and "
                                   "write them as row,col,class CSV for [labels] points = "
                                   "... (how a benchmark gives the network a few surveyed "
                                   "points).")
    p.add_argument("reference", metavar="REFERENCE", nargs="?",
                   help="class map (.npy ids 0..K-1, -1 unlabelled; .npz label set; .nc; "
                        "one-band GeoTIFF)")
    p.add_argument("--masks", nargs=2, metavar=("MEMBER", "NON_MEMBER"),
                   help="the reference as two mask images (classes changed, unchanged)")
    p.add_argument("--per-class", type=int, required=True, metavar="N",
                   help="points drawn per class")
    p.add_argument("--region", metavar="EXPR",
                   help="draw only here, e.g. \"x < 200\" (cell indices; x = column, y = row)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    p.add_argument("--classes", nargs="+", metavar="NAME",
                   help="class names to write (default: the reference's, else class 1 ...)")
    p.add_argument("--out", required=True, help="the CSV to write")
    p.set_defaults(func=cmd_sample_points)

    p = sub.add_parser("diagnose", help="the paper's Fig. 3 properties of a design or model",
                       description="Energy growth ||g(X)||/||X||, stability ||g(X)-g(X+dX)||/"
                                   "||dX|| with ||dX|| = 0.1 ||X|| (mean and std over draws) "
                                   "and invertibility error ||g^-1(g(X))-X||/||X|| (paper "
                                   "section 2.1, Fig. 3), on standard normal X.")
    p.add_argument("target", metavar="DESIGN|MODEL",
                   help="design TOML, preset name (untrained weights) or model folder")
    p.add_argument("--input-shape", type=int, nargs="+", metavar="N",
                   help="N C and the spatial sizes (default: 1 C 32 ...)")
    p.add_argument("--sweep-h", type=float, nargs="*", metavar="H",
                   help="measure over these h values (the same weights); alone: "
                        "0.05 0.1 0.2 0.3 0.4 0.5 0.6 0.8 1.0")
    p.add_argument("--plot", metavar="PNG", help="with --sweep-h: write Fig. 3's curves here")
    p.add_argument("--draws", type=int, default=5, help="perturbations drawn (default 5)")
    p.add_argument("--perturbation", type=float, default=0.1,
                   help="||dX|| / ||X|| (default 0.1, the paper's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and of X")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("demo", help="train on the built-in synthetic survey",
                       description="Build the synthetic demo survey if missing, train on its "
                                   "borehole labels with assets/demo_recipe.toml and score "
                                   "the result against the full ground truth.")
    p.add_argument("--iterations", type=int, help="training iterations (default: the recipe's)")
    p.add_argument("--out", default="fhn-demo", help="output folder (default: ./fhn-demo)")
    p.add_argument("--shape", type=int, nargs=3, metavar=("N_ILINE", "N_XLINE", "N_SAMPLES"),
                   help="survey size (default 128 128 128)")
    p.add_argument("--demo-dir", help="where the demo survey is built (default: a cache "
                                      "folder under assets/generated)")
    p.add_argument("--recipe", help="a recipe TOML instead of assets/demo_recipe.toml")
    p.add_argument("--device", help=device_help)
    p.set_defaults(func=cmd_demo)

    from assets.demo_survey import STYLES

    p = sub.add_parser("synth", help="write a synthetic survey of a geological style",
                       description="Write a synthetic 3D survey (SEG-Y), its wells (CSV), the "
                                   "reference volume (.npy, every cell's unit) and a run.toml "
                                   "for fhn train. Styles: demo (the built-in survey), "
                                   "layered, faulted, salt, thin-beds, random; a style's "
                                   "numbers (faults, dip, beds, wavelet, noise) are drawn from "
                                   "the seed.")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--style", choices=STYLES, default="demo", help="geological style "
                                                                  "(default: demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--shape", type=int, nargs=3, default=(128, 128, 128),
                   metavar=("N_ILINE", "N_XLINE", "N_SAMPLES"),
                   help="survey size (default 128 128 128)")
    p.add_argument("--wells", type=int, default=9, help="number of wells (default 9)")
    p.add_argument("--name", help="file name stem (default: STYLE-SEED)")
    p.add_argument("--overwrite", action="store_true",
                   help="rebuild even when the files are already there")
    p.set_defaults(func=cmd_synth)
    return parser


def _run_description_help() -> str:
    """``fhn train --help``: the run description's layout, from the package's docstring
    (its paragraphs after the first two)."""
    import app.cli  # by now imported: this runs inside app.cli.main

    return app.cli.__doc__.split("\n\n", 2)[2].replace("``", "")
