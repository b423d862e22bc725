"""Benchmark 8: the paper's Fig. 3 for the untrained Table 3 design, over h.

Energy growth ||g(X)|| / ||X||, stability ||g(X) - g(X + dX)|| / ||dX|| with
||dX|| = 0.1 ||X|| (mean and standard deviation over draws) and invertibility error
||g^-1(g(X)) - X|| / ||X||, for the seismic design of Table 3 (12 channels, 30 layers,
Glorot-initialised, seed 0) on standard normal X, the weights fixed and h swept. The
input is small so the sweep runs in a few minutes on 2 CPU cores; the properties are
ratios, so they depend on the input's size only through the boundary of the convolutions.
Writes the table and ``benchmarks/results/fig3.png`` (the same plot as
``fhn diagnose seismic-3d --sweep-h --plot``).

    python -m benchmarks.fig3 [--quick]
"""

from __future__ import annotations

import sys

from .harness import BenchOptions, BenchResult, Column, main_for, timed

NAME = "fig3"
HS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
COLUMNS = [
    Column("h", "h", ".2f"),
    Column("energy_growth", "energy growth", ".4g"),
    Column("stability", "stability mean", ".4g"),
    Column("stability_std", "stability std", ".2g"),
    Column("invertibility_error", "invertibility error", ".3g"),
    Column("bound_ratio", "h^2 lambda_max / 4", ".3f"),
]


def run(opts: BenchOptions) -> BenchResult:
    return timed(lambda: _run(opts))


def _run(opts: BenchOptions) -> BenchResult:
    import torch

    from app.diagnose import noise_input, plot_sweep
    from fhn_core.diagnostics import sweep_h
    from fhn_core.network import HyperbolicNetwork
    from fhn_core.paper import EXAMPLES
    from fhn_core.stability import check_stability

    torch.set_num_threads(opts.threads)
    design = EXAMPLES["seismic-3d"].design()
    shape = (1, 12, 16, 16, 16) if opts.quick else (1, 12, 32, 32, 32)
    draws = 2 if opts.quick else 5
    hs = HS[::3] if opts.quick else HS
    torch.manual_seed(0)
    net = HyperbolicNetwork(design).to(opts.device).eval()
    x = noise_input(shape).to(opts.device)
    rows = sweep_h(net, x, hs, draws=draws)
    bound = check_stability(net)
    lam = bound.lambda_max
    table = [{"h": h, **d.as_dict(), "bound_ratio": h * h * lam / 4} for h, d in rows]
    opts.results_dir.mkdir(parents=True, exist_ok=True)
    png = plot_sweep(rows, opts.results_dir / "fig3.png",
                     f"Fig. 3 properties, untrained Table 3 design (seed 0), X {shape}")
    return BenchResult(
        NAME, "Fig. 3: the untrained Table 3 design over h", COLUMNS, table,
        notes=[f"X = standard normal {shape}, {draws} perturbation draws per h, "
               f"||dX|| = 0.1 ||X||; plot: {png}",
               f"leapfrog bound: h <= {bound.h_max:.3g} for these weights (worst layer "
               f"{bound.worst_layer}, level {bound.worst_level})"],
    )


def main(argv: list[str] | None = None) -> int:
    return main_for(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
