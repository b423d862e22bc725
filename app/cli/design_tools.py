"""``fhn estimate`` and ``fhn diagnose``: a design's memory (the paper's Table 1) and its
stability (Fig. 3), without training."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.common import EXIT_OK, UserError, available_memory
from app.cli.run_config import load_design_arg


def cmd_estimate(args: argparse.Namespace) -> int:
    from fhn_core.memory import GB, estimate_memory
    from fhn_core.memory_check import check_memory
    from fhn_core.paper import EXAMPLES, comparison_table

    example = EXAMPLES.get(args.design)
    if args.input_shape is None and example is None:
        raise UserError("--input-shape is needed for a design that is not one of the paper's "
                        f"examples ({', '.join(EXAMPLES)}), e.g. --input-shape 1 12 248 248 248")
    shape = tuple(args.input_shape or example.input_shape)
    if len(shape) < 4:
        raise UserError("--input-shape needs N C and 2 or 3 spatial sizes, e.g. 1 12 248 248 248")
    design = load_design_arg(args.design, in_channels=shape[1])
    estimate = estimate_memory(design, shape)
    title = design.name or args.design
    print(f"design: {title}, {design.n_layers} layers; input {shape}")
    print(estimate.table())
    if example is not None and shape == example.input_shape:
        print(f"\nthe paper's Table 1 for {example.title}, input {shape}:")
        print(comparison_table(example))
    where, free = available_memory(args.device)
    check = check_memory(design, shape[2:], None, free)
    print(f"\ntraining on this whole input (fhn_core.memory_check):\n{check.breakdown()}")
    need = check.needed / GB
    if free is None:
        print(f"device {where}: available memory unknown; training needs about {need:.3f} GB")
    elif check.fits:
        print(f"device {where}: {free / GB:.3f} GB available; training needs {need:.3f} GB: "
              "fits")
    else:
        print(f"device {where}: {free / GB:.3f} GB available; training needs {need:.3f} GB: "
              "DOES NOT FIT (use a smaller input, fewer channels or a smaller design)")
    return EXIT_OK


def cmd_diagnose(args: argparse.Namespace) -> int:
    from app import diagnose
    from fhn_core.diagnostics import diagnostics, sweep_h

    net, title = diagnose.network_of(args.target, seed=args.seed)
    shape = tuple(args.input_shape or diagnose.default_input_shape(net.design))
    if len(shape) != net.design.spatial_dims + 2:
        raise UserError(f"--input-shape needs N C and {net.design.spatial_dims} spatial sizes "
                        f"for this {net.design.spatial_dims}D network, got {list(shape)}")
    x = diagnose.noise_input(shape, args.seed)  # the network validates it (sizes, channels)
    print(f"{title}: {net.design.n_layers} layers, h = {net.design.h:g}; X = standard normal "
          f"noise {shape}")
    if args.sweep_h is None:
        result = diagnostics(net, x, perturbation=args.perturbation, draws=args.draws,
                             seed=args.seed)
        print(diagnose.table([(net.design.h, result)]))
        return EXIT_OK
    hs = args.sweep_h or list(diagnose.DEFAULT_SWEEP)
    rows = sweep_h(net, x, hs, perturbation=args.perturbation, draws=args.draws, seed=args.seed)
    print(diagnose.table(rows))
    if args.plot:
        diagnose.plot_sweep(rows, Path(args.plot), f"Fig. 3 properties, {title}, X {shape}")
        print(f"plot written to {args.plot}")
    return EXIT_OK

