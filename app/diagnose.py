"""`fhn diagnose`: the paper's Fig. 3 properties of a design or a trained model, and its plot.

A design (TOML or preset) is measured with the weights training would start from (seed
0 unless given); a model folder with its trained weights. X is standard normal noise of
the requested shape, which is what standardised data look like to the network's first
layer (training and prediction standardise every channel). The numbers come from
:mod:`fhn_core.diagnostics`; this module only picks the network and the input and draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from fhn_core.checkpoint import TrainedModel
from fhn_core.design import PRESETS, NetworkDesign
from fhn_core.diagnostics import Diagnostics
from fhn_core.errors import FhnError
from fhn_core.network import HyperbolicNetwork

# Fig. 3's h axis: the default of this product (0.2) and well past the leapfrog bound.
DEFAULT_SWEEP = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def network_of(target: str, *, seed: int = 0) -> tuple[HyperbolicNetwork, str]:
    """The network to measure and a title: a model folder, a design TOML or a preset."""
    path = Path(target)
    if path.is_dir():
        for folder in (path, path / "model"):
            if (folder / "model.json").is_file():
                model = TrainedModel.load(folder)
                return model.net.eval(), f"trained model {folder}"
        raise FhnError(f"{path} holds no trained model (model.json); give a model folder, a "
                       f"design TOML or a preset ({', '.join(PRESETS)})")
    if target in PRESETS:
        design = PRESETS[target]()
    elif path.is_file():
        design = NetworkDesign.load(path)
    else:
        raise FhnError(f"{target!r} is neither a model folder, a design TOML nor a preset "
                       f"({', '.join(PRESETS)}); check the path")
    torch.manual_seed(seed)
    return HyperbolicNetwork(design).eval(), f"untrained {design.name or path.name} (seed {seed})"


def default_input_shape(design: NetworkDesign, edge: int = 32) -> tuple[int, ...]:
    """(1, C, edge, ...) with edge rounded up to a multiple of 2^max_level."""
    m = 2**design.max_level
    edge = max(m, -(-edge // m) * m)
    return (1, design.in_channels, *([edge] * design.spatial_dims))


def noise_input(shape: Sequence[int], seed: int = 0) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed + 1))


def table(rows: Sequence[tuple[float, Diagnostics]]) -> str:
    lines = [f"{'h':>6}{'energy growth':>15}{'stability mean':>16}{'std':>10}"
             f"{'invertibility error':>21}"]
    for h, d in rows:
        lines.append(f"{h:>6.3g}{d.energy_growth:>15.4g}{d.stability:>16.4g}"
                     f"{d.stability_std:>10.2g}{d.invertibility_error:>21.3g}")
    return "\n".join(lines)


def plot_sweep(rows: Sequence[tuple[float, Diagnostics]], path: Path, title: str) -> Path:
    """Fig. 3's three panels over h as a PNG (temporary file, then rename)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from io_adapters.atomic import atomic_output

    hs = [h for h, _ in rows]
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    panels = fig.subplots(1, 3)
    energy = [d.energy_growth for _, d in rows]
    panels[0].plot(hs, energy, "o-")
    panels[0].set_title("energy growth ||g(X)|| / ||X||")
    mean = [d.stability for _, d in rows]
    std = [d.stability_std for _, d in rows]
    panels[1].errorbar(hs, mean, yerr=std, fmt="o-", capsize=3)
    draws = rows[0][1].draws if rows else 0
    panels[1].set_title(f"stability ||g(X)-g(X+dX)|| / ||dX||\n(mean +- std, {draws} draws, "
                        f"||dX|| = {rows[0][1].perturbation:g} ||X||)" if rows else "stability")
    errors = [max(d.invertibility_error, 1e-16) for _, d in rows]
    panels[2].plot(hs, errors, "o-")
    panels[2].set_title("invertibility error ||g^-1(g(X)) - X|| / ||X||")
    for ax in panels:
        ax.set_xlabel("h")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path
