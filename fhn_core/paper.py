"""The paper's three examples: their designs, input sizes and Table 1 memory figures.

Table 1 of the paper gives, per example, the memory of the network states (invertible:
3 input-sized tensors; non-invertible: one per layer) and of the convolution kernels
(full C x C x k^d, or block-low-rank r x C x k^d, eq. 3.17), in GB of float32.
:func:`table1_comparison` recomputes each figure from the preset design and input size
(:func:`fhn_core.memory.estimate_memory`) and says whether it agrees with the printed one.

Agreement: within 1 % of the printed figure. Four printed figures have only one or two
significant digits (aquifer BLR kernels 0.12, hyperspectral kernels 0.02 and 0.003), so a
1 % band is narrower than their own rounding; those count as agreeing when the estimate,
rounded to the decimals the paper prints, is the printed figure. ``Agreement.rule`` says
which test a figure passed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .design import PRESETS, NetworkDesign
from .memory import GB, estimate_memory

QUANTITIES = ("states, invertible", "states, non-invertible", "kernels, full",
              "kernels, BLR")


@dataclass(frozen=True)
class PaperExample:
    """One example of the paper: preset name, input (N, C, *S) and Table 1 as printed."""

    preset: str
    title: str
    input_shape: tuple[int, ...]
    table1: tuple[str, str, str, str]  # printed GB, in the order of QUANTITIES

    def design(self) -> NetworkDesign:
        return PRESETS[self.preset](in_channels=self.input_shape[1])


EXAMPLES: dict[str, PaperExample] = {
    e.preset: e
    for e in (
        PaperExample("seismic-3d", "3D seismic (Table 3)", (1, 12, 248, 248, 248),
                     ("2.19", "21.96", "41.16", "0.23")),
        PaperExample("multi-raster-map", "aquifer mapping (Table 2)", (1, 112, 848, 1456),
                     ("1.66", "21.02", "32.19", "0.12")),
        PaperExample("hyperspectral-timelapse", "hyperspectral time-lapse (Table 2)",
                     (1, 16, 368, 288, 184), ("3.7", "22.5", "0.02", "0.003")),
    )
}


@dataclass(frozen=True)
class Agreement:
    quantity: str
    estimate_gb: float
    paper: str
    relative_error: float
    rule: str  # "within 1 %", "same at printed precision" or "DIFFERS"

    @property
    def agrees(self) -> bool:
        return self.rule != "DIFFERS"


def _significant_digits(printed: str) -> int:
    return len(printed.replace(".", "").lstrip("0"))


def agreement(quantity: str, estimate_gb: float, printed: str) -> Agreement:
    paper = float(printed)
    error = abs(estimate_gb - paper) / paper
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    if error <= 0.01:
        rule = "within 1 %"
    elif _significant_digits(printed) < 3 and round(estimate_gb, decimals) == paper:
        rule = "same at printed precision"
    else:
        rule = "DIFFERS"
    return Agreement(quantity, estimate_gb, printed, error, rule)


def table1_comparison(example: PaperExample) -> list[Agreement]:
    """Each Table 1 figure of ``example``: our estimate against the printed one."""
    est = estimate_memory(example.design(), example.input_shape)
    ours = (est.states_invertible, est.states_plain, est.kernels_full, est.kernels_blr)
    return [agreement(q, b / GB, p) for q, b, p in zip(QUANTITIES, ours, example.table1,
                                                       strict=True)]


def comparison_table(example: PaperExample) -> str:
    lines = [f"{'Table 1 figure':<24}{'ours GB':>10}{'paper GB':>10}  agreement"]
    for a in table1_comparison(example):
        lines.append(f"{a.quantity:<24}{a.estimate_gb:>10.3f}{a.paper:>10}  {a.rule} "
                     f"({a.relative_error:.1%})")
    return "\n".join(lines)
