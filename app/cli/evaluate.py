"""``fhn evaluate`` and ``fhn sample-points``: a prediction scored against labels in any form
training takes (rasters, mask pairs, points), over the whole grid or a region."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.cli.common import EXIT_OK, UserError, model_folder
from app.cli.run_config import label_kind, read_labels


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from fhn_core.metrics import error_map, evaluate
    from io_adapters.open_data import load_class_map

    pred = load_class_map(args.prediction)
    names = _class_names_for(args)
    ref, ref_names = _reference(args, pred.shape, names)
    names = names or ref_names
    if pred.shape != ref.shape:
        raise UserError(
            f"the prediction {args.prediction} has shape {pred.shape} but the reference "
            f"{args.reference or 'labels'} has {ref.shape}; compare maps on the same grid"
        )
    if args.region is not None:
        from app.regions import region_mask

        ref = np.where(region_mask(args.region, ref.shape), ref, -1)
    known = ref >= 0
    if args.classes is not None:
        n_classes = int(args.classes)
    else:
        n_classes = max(int(max(pred[known].max(initial=0), ref.max(initial=0))) + 1,
                        len(names))
    if known.any() and pred[known].min() < 0:
        raise UserError(f"{args.prediction} has no class at cells the reference labels")
    metrics = evaluate(pred, ref, n_classes)
    where = f" in the region {args.region}" if args.region else ""
    print(f"{int(known.sum())} reference cells{where}, {n_classes} classes")
    print(metrics.table(names[:n_classes] if len(names) >= n_classes else None))
    if args.error_map is not None:
        _write_error_map(Path(args.error_map), np.asarray(error_map(pred, ref)))
        print(f"error map written to {args.error_map}")
    return EXIT_OK


def _class_names_for(args: argparse.Namespace) -> list[str]:
    """The class table to print: the model's (--model), else the prediction file's (.nc)."""
    if args.model is not None:
        folder = model_folder(Path(args.model))
        try:
            info = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read the class table of {folder} ({err}); give a model "
                            "folder written by fhn train") from err
        return [str(n) for n in info.get("class_names", [])]
    if Path(args.prediction).suffix.lower() == ".nc":
        import xarray as xr

        try:
            with xr.open_dataarray(args.prediction, engine="h5netcdf") as arr:
                return [str(n) for n in json.loads(arr.attrs.get("class_names", "[]"))]
        except (OSError, ValueError):
            return []
    return []


def _reference(args: argparse.Namespace, shape: tuple[int, ...],
               names: list[str]) -> tuple[Any, list[str]]:
    """The reference labels on the prediction's grid, in one of training's label forms, and
    the class names they carry: a class map (ids 0..K-1, -1 unlabelled), a mask pair, or
    points (CSV/GeoJSON, ``--radius`` cells, 0 by default) placed on the grid of ``--data``
    or, without it, of the prediction file."""
    from io_adapters.open_data import load_class_map, load_data

    given = [form for form, value in (("REFERENCE", args.reference), ("--masks", args.masks))
             if value]
    if len(given) != 1:
        raise UserError("give the reference as one of: a class map or points file "
                        "(REFERENCE), or --masks MEMBER NON_MEMBER")
    if args.masks:
        spec: dict[str, Any] = {"masks": list(args.masks)}
    elif label_kind(Path(args.reference)) in ("points",):
        spec = {"path": args.reference, "radius": args.radius}
    else:
        if args.radius != 0.0:
            raise UserError("--radius is for points; a class map is used cell for cell")
        return load_class_map(args.reference), []
    if args.data:
        paths = [Path(p) for p in args.data]
        grid = load_data(paths if len(paths) > 1 else paths[0])
    else:
        grid = _grid_of_prediction(Path(args.prediction), shape)
    labelset = read_labels(spec, grid, Path.cwd(), class_names=names or None)
    return labelset.labels.astype("int64"), list(labelset.class_names)


def _grid_of_prediction(path: Path, shape: tuple[int, ...]):
    """The prediction's own grid (with its georeferencing where the file has one)."""
    import numpy as np
    import xarray as xr

    from io_adapters.open_data import load_data

    if path.suffix.lower() in (".tif", ".tiff", ".sgy", ".segy"):
        return load_data(path)
    if len(shape) != 2:
        raise UserError(f"{path} holds no grid coordinates; give the data it was predicted "
                        "from with --data")
    return xr.DataArray(np.zeros(shape, np.float32), dims=("y", "x"))


def cmd_sample_points(args: argparse.Namespace) -> int:
    from app.regions import region_mask
    from io_adapters.reference_points import sample_per_class, write_points_csv

    labels, names = _dense_reference(args)
    region = region_mask(args.region, labels.shape) if args.region else None
    drawn = sample_per_class(labels, args.per_class, args.seed, region)
    if args.classes:
        names = list(args.classes)
    if len(names) < int(labels.max()) + 1:
        names = [*names, *(f"class {k + 1}" for k in range(len(names), int(labels.max()) + 1))]
    written = write_points_csv(Path(args.out), drawn, names)
    where = f" in {args.region}" if args.region else ""
    print(f"{int((drawn >= 0).sum())} points ({args.per_class} per class{where}, seed "
          f"{args.seed}) written to {written}; train on them with [labels] points = "
          f"\"{written}\"")
    return EXIT_OK


def _dense_reference(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """A reference to draw points from: a mask pair or a class map, and its class names."""
    from io_adapters.open_data import load_class_map

    if bool(args.reference) == bool(args.masks):
        raise UserError("give the reference as a class map (REFERENCE) or --masks MEMBER "
                        "NON_MEMBER")
    if args.reference:
        if Path(args.reference).suffix.lower() == ".npz":
            from io_adapters.labels import load_labels

            labelset = load_labels(args.reference)
            return labelset.labels.astype("int64"), list(labelset.class_names)
        return load_class_map(args.reference), []
    from PIL import Image

    from io_adapters.label_rasters import import_mask_pair

    first = Path(args.masks[0])
    if not first.is_file():
        raise UserError(f"mask image {first} not found; check the path")
    with Image.open(first) as img:
        shape = (img.height, img.width)
    labelset = import_mask_pair(args.masks[0], args.masks[1], shape)
    return labelset.labels.astype("int64"), list(labelset.class_names)


def _write_error_map(path: Path, errors) -> None:
    """PNG of right (green) / wrong (red) / unlabelled (grey); 3D: the middle inline."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from io_adapters.atomic import atomic_output

    if errors.ndim not in (2, 3):
        raise UserError(f"an error-map image needs 2D or 3D class maps, these are "
                        f"{errors.ndim}D; leave out --error-map")
    title, xlabel, ylabel = "error map", "column", "row"
    if errors.ndim == 3:
        middle = errors.shape[0] // 2
        errors = errors[middle].T  # (samples, xline): time down the page
        title = f"error map, middle inline (index {middle})"
        xlabel, ylabel = "crossline index", "sample index"
    fig = Figure(figsize=(6, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = ListedColormap(["#bbbbbb", "#2ca02c", "#d62728"])
    ax.imshow(errors.astype(np.int8) + 1, cmap=cmap, vmin=0, vmax=2, interpolation="nearest",
              aspect="auto")
    wrong = int((errors == 1).sum())
    scored = int((errors >= 0).sum())
    ax.set_title(f"{title}\n{wrong} of {scored} scored cells wrong (red), right (green), "
                 "unlabelled (grey)", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)

