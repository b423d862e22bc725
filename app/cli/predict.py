"""``fhn predict`` (in memory, or streamed block by block into Zarr) and ``fhn ingest``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.cli.common import EXIT_OK, UserError, model_folder


def cmd_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.export import export_prediction
    from app.layout import layout_for_model
    from fhn_core.checkpoint import TrainedModel
    from fhn_core.prediction import predict
    from fhn_core.priors import mix_text
    from io_adapters.open_data import load_data

    streamed = args.scheduler or args.store or any(Path(p).suffix.lower() == ".zarr"
                                                   for p in args.data)
    if streamed and args.baseline:
        raise UserError("--baseline predicts in memory; leave out --scheduler/--store, or "
                        "give the SEG-Y instead of the .zarr store")
    if streamed:
        return _predict_streamed(args)
    model = TrainedModel.load(model_folder(Path(args.model)))
    paths = [Path(p) for p in args.data]
    da = load_data(paths if len(paths) > 1 else paths[0], kind=args.kind)
    layout = layout_for_model(da, model)
    if layout.slice_axis != model.info.slice_axis:
        raise UserError(
            f"the model embeds labels at spatial axis {model.info.slice_axis} but this data's "
            f"layout has {layout.slice_axis}; apply the model to the kind of data it was "
            "trained on"
        )
    info = model.info
    if layout.data.shape[0] != info.data_channels:
        raise UserError(
            f"{', '.join(map(str, paths))} give(s) {layout.data.shape[0]} channel(s) but the "
            f"model was trained on {info.data_channels}; apply it to the kind of data it was "
            "trained on"
        )
    table = list(zip(info.class_names or [f"class {i}" for i in range(info.n_classes)],
                     info.class_colours or [""] * info.n_classes, strict=False))
    class_index = None
    if args.class_ is not None:
        names = [n for n, _ in table]
        if args.class_ in names:
            class_index = names.index(args.class_)
        elif args.class_.isdigit():
            class_index = int(args.class_)
        else:
            raise UserError(f"--class {args.class_!r} is not a class; classes are {names}")
    if args.block is not None and args.block < 1:
        raise UserError(f"--block {args.block} must be a positive number of cells")
    overlap = args.overlap if args.overlap is not None else min(16, (args.block or 0) // 4)
    if args.block is not None and not 0 <= overlap < args.block:
        # fhn_core steps blocks by (block - overlap), at least 1: one block per cell otherwise
        raise UserError(f"--overlap {overlap} must be at least 0 and less than --block")
    if args.baseline and (args.augment or args.stratigraphic_order or args.class_priors
                          or args.baseline_weight is not None):
        raise UserError("--baseline predicts each cell alone: leave out --augment, "
                        "--stratigraphic-order, --class-priors and --baseline-weight")
    weight = _baseline_weight(args, info.baseline_weight)
    with tqdm(total=100, desc="predicting", unit="%", dynamic_ncols=True) as bar:

        def progress(fraction: float) -> None:
            bar.update(round(fraction * 100) - bar.n)

        if args.baseline:
            from app import auto_run

            folder = auto_run.baseline_folder(model_folder(Path(args.model)))
            prediction = auto_run.baseline_prediction(folder, layout, progress)
        else:
            forest = None
            if weight > 0:
                from app import auto_run
                from io_adapters.errors import DataError

                bar.set_description("predicting (the per-cell baseline)")
                try:
                    folder = auto_run.baseline_folder(model_folder(Path(args.model)))
                    forest = auto_run.baseline_prediction(folder, layout).probabilities
                except DataError as err:
                    raise UserError(f"{err}. This model blends its map with that baseline "
                                    f"(weight {weight:g}); give --baseline-weight 0 for the "
                                    "network alone") from err
                bar.set_description("predicting (the network)")
            prediction = predict(model, layout.data, block=args.block, overlap=overlap,
                                 augment=args.augment,
                                 stratigraphic_order=args.stratigraphic_order,
                                 class_priors=args.class_priors,
                                 baseline_probabilities=forest, baseline_weight=weight,
                                 device=args.device, progress=progress)
    written = export_prediction(prediction, da, Path(args.out), what=args.what,
                                         class_table=table, class_index=class_index)
    grid = "the data grid"
    if prediction.output_factor > 1:
        grid = (f"the data grid (brought back by nearest from the {prediction.output_factor}x "
                "coarser output grid)" if args.what != "probabilities" else
                f"the network's output grid, {prediction.output_factor}x coarser than the data")
    who = "the per-cell baseline's " if args.baseline else ""
    print(f"{who}{args.what} written to {written}, on {grid}")
    if not args.baseline and weight > 0:
        print(f"the map is the mean of the network's class probabilities and the run's "
              f"per-cell baseline's (the baseline's weight {weight:g}; --baseline-weight 0 "
              "gives the network alone)")
    if prediction.scene_prior is not None:
        mix = mix_text(prediction.scene_prior, [name for name, _ in table])
        print(f"class mix re-estimated on the scene: {mix} "
              "(--class-priors training keeps the training labels')")
    return EXIT_OK


def _baseline_weight(args: argparse.Namespace, model_weight: float) -> float:
    """--baseline-weight checked, else the model's."""
    from fhn_core.blending import check_baseline_weight
    from fhn_core.errors import FhnError

    if args.baseline_weight is None:
        return model_weight
    try:
        return check_baseline_weight(args.baseline_weight)
    except FhnError as err:
        raise UserError(f"--baseline-weight {args.baseline_weight:g}: {err}") from err


def _predict_streamed(args: argparse.Namespace) -> int:
    """Predict block by block on Dask into a Zarr store, then export from it (app.streamed)."""
    from tqdm import tqdm

    from app import streamed
    from io_adapters.open_data import load_data

    if len(args.data) != 1:
        raise UserError("streamed prediction takes one survey (a .zarr store or a SEG-Y)")
    if args.augment:
        raise UserError("--augment is not available with --scheduler/--store/.zarr data; "
                        "leave it out (or predict in memory)")
    if args.baseline_weight is not None and args.baseline_weight != 0:
        raise UserError("the per-cell baseline is not blended in with --scheduler/--store/"
                        ".zarr data; give --baseline-weight 0 (the network alone) or predict "
                        "in memory")
    if args.class_priors == "scene":
        raise UserError("--class-priors scene is not available with --scheduler/--store/.zarr "
                        "data (the class mix is estimated over the whole scene); leave it out "
                        "(or predict in memory)")
    out = Path(args.out)
    store = out if out.suffix.lower() == ".zarr" else Path(args.store or out.with_suffix(".zarr"))
    da = load_data(Path(args.data[0]), kind=args.kind)
    where = args.scheduler or "local threads"
    with tqdm(total=100, desc=f"predicting ({where})", unit="%", dynamic_ncols=True) as bar:

        def progress(fraction: float) -> None:
            bar.update(round(fraction * 100) - bar.n)

        streamed.predict_to_store(
            model_folder(Path(args.model)), da, store, block=args.block or 64,
            overlap=args.overlap, stratigraphic_order=args.stratigraphic_order,
            device=args.device, scheduler=args.scheduler,
            workers=args.workers, overwrite=True, network_alone=args.baseline_weight == 0,
            progress=progress)
    print(f"classes, probabilities and entropy written to {store}")
    if store != out:
        names = json.loads(streamed.open_prediction(store).attrs["class_names"])
        class_index = None
        if args.class_ is not None:
            if args.class_ not in names and not args.class_.isdigit():
                raise UserError(f"--class {args.class_!r} is not a class; classes are {names}")
            class_index = names.index(args.class_) if args.class_ in names else int(args.class_)
        written = streamed.export_store(store, out, what=args.what, class_index=class_index)
        print(f"{args.what} written to {written}")
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from io_adapters.zarr_store import add_fast_slices, ingest_segy, is_segy_store

    adding = args.fast_slices and not args.overwrite and is_segy_store(args.store) \
        and not args.restart
    with tqdm(total=100, desc="fast slices" if adding else "ingesting", unit="%",
              dynamic_ncols=True) as bar:

        def progress(fraction: float) -> None:
            bar.update(round(fraction * 100) - bar.n)

        if adding:  # an existing store: the copies come from its chunks, not the SEG-Y
            store = add_fast_slices(args.store, progress=progress)
        else:
            store = ingest_segy(args.segy, args.store, iline=args.iline, xline=args.xline,
                                fill_missing=args.fill_missing, chunks=args.chunks,
                                restart=args.restart, overwrite=args.overwrite,
                                fast_slices=args.fast_slices, progress=progress)
    print(f"crossline and time-slice copies written into {store}" if adding
          else f"{args.segy} ingested into {store}")
    return EXIT_OK

