"""The ``auto`` recipe: settings chosen by spatially blocked cross-validation on the labels.

A user with a few labels cannot tell which inputs, network size or number of iterations
suit their data, and a score on a random share of their own labels flatters every choice
(:mod:`fhn_core.cross_validation`). The recipe therefore tries a small, fixed set of
candidates (:data:`CANDIDATES`; each a set of overrides of the run description, in its own
``section.key`` terms) on the same blocked folds of the user's labels, keeps the one the
rule below adopts, and reports its cross-validated score beside the per-cell baseline's
(:mod:`fhn_core.baseline`), scored on the same folds. Nothing here reads a file or draws a
widget: the caller turns a candidate into a task, a design and settings (``prepare``),
and trains the final model itself with :func:`final_config`.

**What the user fixed stays fixed.** A candidate override whose key the user set (in the
run TOML or on the Train page) is dropped (:func:`open_candidates`); a ``design.*``
override is dropped whenever the user gave a design at all. Candidates that become equal
are merged. If the user set ``training.iterations`` the count is kept, not chosen.

**Iterations (early stopping by cross-validation).** Every fold of a candidate trains for
the candidate's iteration budget (the user's ``training.iterations``, else
:data:`AUTO_ITERATIONS`) and is validated on its fold's held-out blocks every
``validate_every`` iterations. The candidate's iteration count ``t*`` is the validation
point where the mean kappa over its folds is highest (the earliest on ties); its score is
the folds' kappa at ``t*``. The final model is trained on all labels with the same
settings and schedule and stops after ``t*`` iterations (``TrainConfig.stop_after``), so
it is the procedure that was scored, trained on more labels. An ensemble candidate
(``training.ensemble``) is scored once, after its last iteration, on the mean of its
members' logits (:mod:`fhn_core.ensemble`), so its count is not chosen.

**The budget.** ``budget_seconds`` bounds the time spent (cross-validation, baseline and
the final training, whose cost is taken as one fold's). The first candidate is always
scored (there is nothing to report otherwise), so its cost is fitted to the budget first:
a pilot of ``PILOT_ITERATIONS`` training steps and one validation on fold 1 measures the
pace (and the set-up every training pays, such as a forest guide's teacher; the budget
keeps back the time of one prediction averaged over flips, so that a map follows within
it), and when the folds plus the final training at the iteration budget would not fit,
the iteration budget of every candidate is lowered to what fits (never below
``MIN_ITERATIONS``; not when the user fixed the iterations). A further candidate is
started only if the time left covers its folds plus the final training at the pace of the
quickest candidate so far and the folds plus the final training at its own pace, measured
by a pilot like the first's, fit the time left (candidates differ in pace: a forest-guided
one trains on windows, the others on the whole scene); after its first fold it goes on
only if its own pace covers its remaining folds and the final training. Candidates not
scored are listed as skipped, and why. When the first candidate's folds run slower than
its pilot said (a shared machine), its remaining folds stop at an earlier validation point
that fits the time left (:func:`shortened`; t* is then chosen among the points every fold
reached, and the final training stops at t* as always).

**Adoption rule** (fixed before any result was seen). The candidate with the highest mean
cross-validated kappa is the reference. Every candidate whose mean kappa lies within one
standard error of the reference's mean (its fold sd / sqrt(number of folds); the
one-standard-error rule of Breiman et al. 1984 and Hastie, Tibshirani & Friedman, *The
Elements of Statistical Learning*, section 7.10) is as good as the data can tell; of these
the one that cost least per fold (measured seconds) is adopted. Ties in cost go to the
earlier candidate of the list.

**The final model of two dates averages networks** (:func:`final_members`). From 50
points a class one network's map depends much on its start; for two dates the final model
is an ensemble of up to :data:`FINAL_MEMBERS` networks of the adopted candidate (member
seeds and averaged logits of :mod:`fhn_core.ensemble`), as many as the time left after
cross-validation covers at the adopted candidate's measured seconds per fold (never fewer
than one; not when the user set ``training.ensemble`` or the candidate is an ensemble).
Adopted in session 25 by a rule written before its run, on the twenty western Taizhou
proxies (``benchmarks.taizhou_proxy --method ensemble``; benchmarks/README.md).

**Seismic maps blend the network with the per-cell baseline** (:func:`mapped`). A
seismic run's final model predicts with the mean of its probabilities and the baseline
forest's (weight :data:`BASELINE_WEIGHTS`, :mod:`fhn_core.blending`). Adopted in session
27 by a rule written before its run, on the development surveys of
``benchmarks.seismic_generalisation`` (benchmarks/README.md); on the five test surveys,
scored once afterwards, it was neutral (mean IoU 0.859 against the same models' 0.858
alone). Other kinds predict with the network alone.

**The map is scored, not only the network** (:func:`mapped`). Where the final model's map
is not the network's own argmax (a blend; two dates, mapped with the scene's class mix of
:mod:`fhn_core.priors`), the record also holds the map's score on the same folds
(:func:`map_fold_scores`): each fold network's held-out logits blended with the forest
trained on the same fold's cells, and moved to the class mix EM found in that fold
network's map of the whole scene, as ``fhn predict`` moves the final model's. "The
baseline wins" compares the baseline with that score: it is what the user exports.

The score shown is the adopted candidate's cross-validated score, one network's (an
ensemble's final model is scored through its members' procedure, not as an ensemble). It
was selected among a few candidates and iteration counts, so it can be slightly
optimistic; the baseline's score involves no choice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import baseline as per_cell
from .blending import blended_logits
from .calibration import HeldOut
from .cross_validation import FoldScores, SpatialFolds
from .design import NetworkDesign
from .errors import FhnError
from .metrics import Metrics
from .task import SegmentationTask
from .training import Progress, TrainConfig, Trainer

AUTO_ITERATIONS = 200     # each fold's iteration budget when the user fixed none
VALIDATE_POINTS = 8       # validation points along a fold's training (the t* grid)
DEFAULT_FOLDS = 5
# Seismic: the labels are a few wells (a fold holds out whole wells) and every fold trains a
# 3D network, so the budget goes to iterations rather than to more folds.
SEISMIC_FOLDS = 2
PILOT_ITERATIONS = 3      # training steps timed before the first candidate
MIN_ITERATIONS = 20       # the budget never cuts the iteration budget below this
PREDICTION_PASSES = 8     # the budget keeps back one prediction averaged over 8 flips
# The default budget leaves a minute of a quarter of an hour to read the data and predict:
# on the development surveys (128^3, 2 CPU cores) fhn train with 15 minutes and the
# fhn predict --augment after it took 15.7 minutes (benchmarks/README.md).
DEFAULT_BUDGET_MINUTES = 14.0


@dataclass(frozen=True)
class Candidate:
    """One setting the recipe may adopt: overrides of the run description and why it is tried."""

    name: str
    overrides: Mapping[str, Any]   # "section.key" -> value, e.g. {"data.envelope_channel": True}
    why: str = ""


# The fixed candidate sets, per kind of data (the first is the product's default; the
# order is the order they are tried in, the budget permitting).
# ``design.layers_per_level``: the default design with that many layers at each level;
# ``training.ensemble``: that many networks, logits averaged (fhn_core.ensemble).
_SEISMIC_ALL = {"data.vertical_channel": True, "data.envelope_channel": True,
                "data.semblance_channel": True}
_SEISMIC_TIME = {"data.vertical_channel": True, "data.envelope_channel": False,
                 "data.semblance_channel": False}
# Seismic is trained the demo recipe's way (assets/demo_recipe.toml): windows of 64 traces a
# side and the whole trace, the default design with 1/2/3/4 layers at levels 0-3 and rank 4,
# Adam at 0.005, classes unweighted (with balanced weights a single salt well paints salt
# everywhere), the model the moving average of the weights; forest-guided first (over the
# three development surveys 101-103 it scored 0.846 mean IoU against 0.820 without the guide,
# most of it on the salt survey). Chosen on the development surveys of
# benchmarks/seismic_generalisation.py (benchmarks/README.md), never its test ones.
_SEISMIC_WINDOWS = {"design.layers_per_level": (1, 2, 3, 4), "design.rank": 4,
                    "training.patch": (64, 64, 0), "training.learning_rate": 0.005,
                    "training.class_weights": "none", "training.average_decay": 0.98}
_CHANGE = {"data.change_channels": True}
# The forest guide (fhn_core.pseudo_labels): dense pseudo-labels from the per-cell forest
# fitted on the (fold's) training labels, trained on windows of 128 cells a side.
GUIDE_PATCH = 128
_FOREST = {"training.guide": "forest"}
_GUIDED = {**_FOREST, "training.patch": (GUIDE_PATCH, GUIDE_PATCH)}
CANDIDATES: dict[str, tuple[Candidate, ...]] = {
    "seismic": (
        Candidate("attributes, windows, forest-guided",
                  {**_SEISMIC_ALL, **_SEISMIC_WINDOWS, **_FOREST},
                  "amplitude, sample time, envelope and semblance on windows of 64 traces a "
                  "side, with the forest's confident cells as extra, lighter targets"),
        Candidate("attributes, windows", {**_SEISMIC_ALL, **_SEISMIC_WINDOWS},
                  "the attributes on windows, the wells' labels only"),
        Candidate("amplitude and time, windows, forest-guided",
                  {**_SEISMIC_TIME, **_SEISMIC_WINDOWS, **_FOREST},
                  "fewer inputs: amplitude and sample time only, forest-guided"),
        Candidate("attributes, windows, 3 networks",
                  {**_SEISMIC_ALL, **_SEISMIC_WINDOWS, "training.ensemble": 3},
                  "the attributes on windows three times from different starts, averaged"),
    ),
    "dates": (
        Candidate("change channels, forest-guided",
                  {**_CHANGE, "design.layers_per_level": 2, **_GUIDED},
                  "the change channels, small design, trained on windows with the forest's "
                  "confident cells as extra, lighter targets"),
        Candidate("change channels", {**_CHANGE, "design.layers_per_level": 2},
                  "both dates, t2 - t1 and ||t2 - t1||, small design"),
        Candidate("dates only", {"data.change_channels": False, "design.layers_per_level": 2},
                  "both dates' bands only"),
        Candidate("change channels, deeper", {**_CHANGE, "design.layers_per_level": 4},
                  "the change channels with twice the layers per level"),
        Candidate("change channels, 3 networks", {**_CHANGE, "design.layers_per_level": 2,
                                                  "training.ensemble": 3},
                  "the change channels, three networks from different starts, averaged"),
    ),
    "maps": (
        Candidate("small", {"design.layers_per_level": 2},
                  "the data's channels, two layers per level"),
        Candidate("deeper", {"design.layers_per_level": 4},
                  "the data's channels, four layers per level"),
        Candidate("3 networks", {"design.layers_per_level": 2, "training.ensemble": 3},
                  "three networks from different starts, averaged"),
        Candidate("forest-guided", {"design.layers_per_level": 2, **_GUIDED},
                  "small design trained on windows with the forest's confident cells as "
                  "extra, lighter targets"),
    ),
}


# Networks averaged in the final model when the time left allows, per kind of data (others: 1).
FINAL_MEMBERS = {"dates": 5}
# The per-cell baseline's weight in the final model's prediction, per kind (others: 0).
BASELINE_WEIGHTS = {"seismic": 0.5}


def candidates_for(kind: str) -> tuple[Candidate, ...]:
    """The fixed candidate set for a data kind (seismic, two dates; anything else a map)."""
    return CANDIDATES[kind if kind in ("seismic", "dates") else "maps"]


def folds_for(kind: str) -> int:
    """The number of spatial folds when the user set none."""
    return SEISMIC_FOLDS if kind == "seismic" else DEFAULT_FOLDS


def open_candidates(candidates: Sequence[Candidate], fixed: set[str]) -> list[Candidate]:
    """The candidates with the overrides of user-fixed keys removed, duplicates merged.

    ``fixed`` holds "section.key" names the user set; "design" alone means the user gave a
    design, which closes every "design.*" override.
    """
    out: list[Candidate] = []
    seen: dict[tuple, int] = {}
    for c in candidates:
        kept = {k: v for k, v in c.overrides.items()
                if k not in fixed and not (k.startswith("design.") and "design" in fixed)}
        key = tuple(sorted(kept.items()))
        if key in seen:
            first = out[seen[key]]
            out[seen[key]] = replace(first, name=f"{first.name} (= {c.name})")
            continue
        seen[key] = len(out)
        out.append(Candidate(c.name, kept, c.why))
    return out


@dataclass(frozen=True)
class Prepared:
    """A candidate made concrete by the caller: the task (all labels), design and settings."""

    task: SegmentationTask
    design: NetworkDesign
    config: TrainConfig


@dataclass
class CandidateResult:
    """What cross-validation measured of one candidate."""

    candidate: Candidate
    status: str = "scored"             # "scored" | "skipped"
    reason: str = ""
    fold_seconds: list[float] = field(default_factory=list)
    curve: dict[int, list[Metrics]] = field(default_factory=dict)  # iteration -> per fold
    iterations: int = 0                # t*
    scores: FoldScores | None = None
    # the held-out logits each fold's validation scored, by iteration (t* only once scored)
    held_out: dict[int, list[HeldOut | None]] = field(default_factory=dict, repr=False)

    @property
    def seconds_per_fold(self) -> float:
        return float(np.mean(self.fold_seconds)) if self.fold_seconds else math.inf

    def standard_error(self) -> float:
        assert self.scores is not None
        return self.scores.kappa_sd / math.sqrt(len(self.scores.folds))

    def as_dict(self, class_names: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.candidate.name,
                               "overrides": dict(self.candidate.overrides),
                               "why": self.candidate.why, "status": self.status,
                               "reason": self.reason,
                               "fold_seconds": [round(s, 2) for s in self.fold_seconds]}
        if self.scores is not None:
            out["iterations"] = self.iterations
            out["score"] = self.scores.as_dict(class_names)
            out["curve"] = [{"iteration": it, "kappa": float(np.mean([m.kappa for m in ms]))}
                            for it, ms in sorted(self.curve.items())
                            if len(ms) == len(self.fold_seconds)]
        return out


@dataclass
class AutoChoice:
    """The recipe's outcome: what it adopted, why, and every candidate's record."""

    chosen: CandidateResult
    results: list[CandidateResult]
    folds: SpatialFolds
    budget_seconds: float
    seconds: float                      # spent on cross-validation (baseline included)
    baseline: FoldScores | None = None
    choose_iterations: bool = True
    reason: str = ""
    iteration_cap: int | None = None    # the iteration budget the time budget allowed
    final_members: int = 1              # networks the final model averages (final_members)
    baseline_weight: float = 0.0        # the baseline's share of the final map (mapped)
    mapped: FoldScores | None = None    # the map's scores where it is not the network's (mapped)
    map_label: str = ""                 # what the map adds to the network, e.g. "their mean"

    @property
    def map_scores(self) -> FoldScores | None:
        """The scores of what the final model maps: the map's own, else the network's."""
        return self.mapped if self.mapped is not None else self.chosen.scores

    @property
    def baseline_wins(self) -> bool:
        net = self.map_scores
        # equal fold kappas summed in another order must not read as a win
        return (self.baseline is not None and net is not None
                and self.baseline.kappa > net.kappa + 1e-9)

    def score_line(self) -> str:
        """'network kappa 0.71 ± 0.04, baseline 0.62 ± 0.05 (5 spatial folds)'."""
        return score_line(self.chosen.scores, self.baseline, self.mapped, self.map_label)

    def text(self) -> str:
        return f"{self.reason}\n{self.score_line()}" + (
            f"\n{BASELINE_WINS}" if self.baseline_wins else "")

    def as_dict(self, class_names: list[str] | None = None) -> dict[str, Any]:
        net = self.chosen.scores
        return {
            "recipe": "auto",
            "rule": ADOPTION_RULE,
            "chosen": self.chosen.candidate.name,
            "overrides": dict(self.chosen.candidate.overrides),
            "iterations": self.chosen.iterations,
            "iterations_chosen": self.choose_iterations,
            "iteration_cap": self.iteration_cap,
            "final_members": self.final_members,
            "baseline_weight": self.baseline_weight,
            "map": self.mapped.as_dict(class_names) if self.mapped is not None else None,
            "map_label": self.map_label,
            "why": self.reason,
            "score_line": self.score_line(),
            "network": net.as_dict(class_names) if net is not None else None,
            "baseline": (self.baseline.as_dict(class_names)
                         if self.baseline is not None else None),
            "baseline_name": BASELINE_NAME,
            "baseline_wins": self.baseline_wins,
            "folds": self.folds.as_dict(),
            "budget_seconds": self.budget_seconds,
            "seconds": round(self.seconds, 1),
            "candidates": [r.as_dict(class_names) for r in self.results],
        }


ADOPTION_RULE = ("highest mean cross-validated kappa; candidates within one standard error "
                 "of it (fold sd / sqrt(folds)) count as equal, and the cheapest of those "
                 "(seconds per fold) is adopted")
BASELINE_NAME = "random forest, 200 trees, per cell on the same input channels"
BASELINE_WINS = ("The per-cell baseline (random forest) scores higher than the network on "
                 "these labels: its prediction may be the better map; you can export it.")


def score_line(network: FoldScores | None, baseline: FoldScores | None,
               mapped: FoldScores | None = None, map_label: str = "") -> str:
    """The one line a user reads: the cross-validated kappas with their spread."""
    if network is None:
        return "no cross-validated score"
    text = f"network kappa {network.kappa:.2f} ± {network.kappa_sd:.2f}"
    if baseline is not None:
        text += f", baseline {baseline.kappa:.2f} ± {baseline.kappa_sd:.2f}"
    if mapped is not None:
        text += f", the map ({map_label}) {mapped.kappa:.2f} ± {mapped.kappa_sd:.2f}"
    return text + f" ({len(network.folds)} spatial folds, cross-validated)"


def check_folds(folds: SpatialFolds, labels: np.ndarray) -> None:
    """Every fold must leave at least two classes to train on."""
    for f in range(folds.n_folds):
        train, _ = folds.split(labels, f)
        if np.unique(train[train >= 0]).size < 2:
            raise FhnError(
                f"spatial fold {f + 1} of {folds.n_folds} leaves fewer than two classes to "
                "train on; label each class in more than one place, or use recipe = \"fixed\""
            )


def validation_points(iterations: int) -> int:
    """Validate every this many iterations: about VALIDATE_POINTS points along training."""
    return max(1, math.ceil(iterations / VALIDATE_POINTS))


def fold_config(config: TrainConfig, choose_iterations: bool) -> TrainConfig:
    """A fold's settings: no random hold-out, no checkpoints, validation along the way."""
    every = validation_points(config.iterations) if choose_iterations else config.iterations
    return replace(config, validation_fraction=0.0, checkpoint_every=0, validate_every=every,
                   stop_after=0)


def final_config(prepared: Prepared, result: CandidateResult, members: int = 1) -> TrainConfig:
    """The final model's settings: the candidate's, on all labels, stopped after t*; with
    ``members`` > 1 (:func:`final_members`) that many networks of it, logits averaged."""
    cfg = prepared.config
    stop = result.iterations if result.iterations < cfg.iterations else 0
    ensemble = members if cfg.ensemble == 1 else cfg.ensemble
    return replace(cfg, validation_fraction=0.0, validate_every=0, stop_after=stop,
                   ensemble=ensemble)


def final_members(kind: str, choice: AutoChoice, prepared: Prepared,
                  ensemble_fixed: bool = False) -> int:
    """How many networks the final model averages (module docstring), and the choice's
    reason says so. One when the kind has no final ensemble, the user fixed
    ``training.ensemble`` or the adopted candidate is itself an ensemble."""
    wanted = FINAL_MEMBERS.get(kind, 1)
    if wanted == 1 or ensemble_fixed or prepared.config.ensemble != 1:
        return 1
    left = choice.budget_seconds - choice.seconds
    members = max(1, min(wanted, int(left // max(choice.chosen.seconds_per_fold, 1e-9))))
    choice.final_members = members
    choice.reason += (f" The final model averages {members} network"
                      f"{'s' if members > 1 else ''} of it from different starts (up to "
                      f"{wanted} as the time left allows); the score shown is one network's.")
    return members


def mapped(kind: str, choice: AutoChoice, prepared: Prepared, seed: int = 0) -> Prepared:
    """The adopted candidate as its final model will map: the baseline's weight of the kind
    (module docstring) in its task, and, where the map is not the network's argmax under
    the training mix (a blend, the scene's class mix), the map's own scores on the same
    folds (:func:`map_fold_scores`, the baseline's ``seed``); the choice's reason says so."""
    weight = BASELINE_WEIGHTS.get(kind, 0.0)
    scene = prepared.task.class_priors == "scene"
    if weight == 0 and not scene:
        return prepared
    choice.baseline_weight = weight
    choice.map_label = map_label(weight, scene)
    choice.mapped = map_fold_scores(choice.chosen, prepared.task, choice.folds, weight, seed)
    what = []
    if weight > 0:
        what.append("is the mean of the network's class probabilities and the per-cell "
                    f"baseline's (the baseline's weight {weight:g})")
    if scene:
        what.append("moves the posteriors to the scene's class mix, re-estimated on the "
                    "predicted scene (EM)")
    scored = ("each model's alone (an ensemble candidate keeps no held-out logits)"
              if choice.mapped is None else
              f"the map's cross-validated kappa {choice.mapped.kappa:.3f} ± "
              f"{choice.mapped.kappa_sd:.3f}, each fold network's held-out logits "
              + " and ".join(filter(None, [
                  "averaged with its fold's baseline" if weight > 0 else "",
                  "moved to the class mix it finds on the whole scene" if scene else ""])))
    choice.reason += f" Its map {' and '.join(what)}; scores: {scored}."
    if weight == 0:
        return prepared
    return replace(prepared, task=replace(prepared.task, baseline_weight=weight))


def map_label(baseline_weight: float, scene_mix: bool) -> str:
    """What a map adds to the network's argmax, in the words of the score line."""
    return ", ".join(filter(None, ["their mean" if baseline_weight > 0 else "",
                                   "the scene's class mix" if scene_mix else ""]))


def map_fold_scores(chosen: CandidateResult, task: SegmentationTask, folds: SpatialFolds,
                    weight: float, seed: int = 0) -> FoldScores | None:
    """The map's scores on the folds: per fold, the fold network's held-out logits at t*
    blended (:func:`fhn_core.blending.blended_logits`, weight > 0) with the probabilities
    of the baseline trained on the same fold's cells, at the same cells, then, where the
    task maps with the scene's class mix, shifted to the mix EM found in that fold
    network's whole-scene map (:attr:`HeldOut.scene_shift`; estimated from the network
    alone, also where it is blended). None when the candidate kept no logits (an ensemble)
    or no scene mix (a streamed survey)."""
    held = chosen.held_out.get(chosen.iterations, [])
    scene = task.class_priors == "scene"
    if (len(held) != folds.n_folds or any(h is None for h in held)
            or (scene and any(h.scene_shift is None for h in held))):
        return None
    forest: Sequence[tuple[np.ndarray, np.ndarray] | None] = [None] * folds.n_folds
    if weight > 0:
        features = per_cell.cell_features(task.data, task.slice_axis)
        forest = per_cell.fold_probabilities(features, task.valid_labels(task.labels), folds,
                                             task.n_classes, seed)
    scores = []
    for network, fold_forest in zip(held, forest, strict=True):
        logits = network.logits
        if fold_forest is not None:
            logits = blended_logits(logits, _at_cells(fold_forest, network), weight)
        if scene:
            logits = logits + network.scene_shift.to(logits.dtype)[:, None]
        scores.append(HeldOut(logits, network.classes).metrics())
    return FoldScores(tuple(scores))


def _at_cells(fold_forest: tuple[np.ndarray, np.ndarray], network: HeldOut) -> np.ndarray:
    """The fold baseline's probabilities at the cells the fold network's logits hold."""
    proba, truth = fold_forest
    if network.positions is not None:
        proba, truth = proba[:, network.positions], truth[network.positions]
    if not np.array_equal(truth, network.classes):
        raise FhnError("the network's and the baseline's held-out cells differ; the map "
                       "cannot be scored (a bug: please report it)")
    return proba


def train_fold(prepared: Prepared, folds: SpatialFolds, fold: int, config: TrainConfig,
               should_stop: Callable[[], bool] | None = None
               ) -> dict[int, tuple[Metrics, HeldOut | None]]:
    """Train on fold ``fold``'s training cells; validation scores by iteration, each with
    the held-out logits it scored (thinned, :meth:`HeldOut.thinned`; the out-of-fold logits
    ``benchmarks.taizhou_proxy --method calibrated`` calibrates on).

    An ensemble (``config.ensemble`` > 1) is scored once, at its last iteration, on the
    mean of its members' logits (its iteration count is then not chosen; no logits kept).
    """
    task = prepared.task
    labels = task.valid_labels(task.labels)
    train, val = folds.split(labels, fold)
    fold_task = replace(task, labels=train, val_labels=val)
    if config.ensemble > 1:
        from .ensemble import EnsembleTrainer

        ensemble = EnsembleTrainer(fold_task, prepared.design, replace(config, validate_every=0))
        result = ensemble.run(None, should_stop)
        return ({} if result.validation is None
                else {config.last_iteration: (result.validation, None)})
    trainer = Trainer(fold_task, prepared.design, config, diagnostics=False)
    seen: dict[int, tuple[Metrics, HeldOut | None]] = {}

    def keep(p: Progress) -> None:
        if p.validation is not None:
            held = None if p.held_out is None else p.held_out.thinned(seed=config.seed)
            seen[p.iteration] = (p.validation, held)

    trainer.run(keep, should_stop)
    return seen


def choose(
    candidates: Sequence[Candidate],
    prepare: Callable[[Candidate], Prepared],
    folds: SpatialFolds,
    *,
    budget_seconds: float,
    choose_iterations: bool = True,
    baseline: Callable[[Prepared], FoldScores] | None = None,
    report: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[AutoChoice, Prepared]:
    """Cross-validate ``candidates`` within the budget and adopt one by the module's rule.

    Returns the choice and the adopted candidate's prepared task (for the final training,
    with :func:`final_config`). ``baseline`` scores the per-cell baseline on the adopted
    candidate's inputs; ``report`` receives one line per step.
    """
    if not candidates:
        raise FhnError("the auto recipe has no candidates to choose from")
    say = report or (lambda _line: None)
    start = clock()
    results: list[CandidateResult] = []
    prepared_of: dict[str, Prepared] = {}
    k = folds.n_folds
    cap: int | None = None
    for index, candidate in enumerate(candidates):
        result = CandidateResult(candidate)
        results.append(result)
        spent = clock() - start
        scored = [r for r in results if r.scores is not None]
        if scored:
            pace = min(r.seconds_per_fold for r in scored)
            if spent + pace * (k + 1) > budget_seconds:
                result.status = "skipped"
                result.reason = (f"not started: {k} folds and the final training at "
                                 f"{pace:.0f} s each would pass the budget")
                say(f"skipping {candidate.name}: {result.reason}")
                continue
        prepared = prepare(candidate)
        if index == 0 and choose_iterations:
            cap = iterations_within(prepared, folds, budget_seconds, clock, say)
        if cap is not None and cap < prepared.config.iterations:
            prepared = replace(prepared, config=replace(prepared.config, iterations=cap))
        if index > 0:
            # candidates differ in pace (windows vs the whole scene): time this one's own
            # steps before spending a fold on it
            fold = fold_estimate(prepared, folds, choose_iterations, clock)
            if clock() - start + fold * (k + 1) > budget_seconds:
                result.status = "skipped"
                result.reason = (f"not started: a pilot put a fold at {fold:.0f} s, so {k} "
                                 "folds and the final training would pass the budget")
                say(f"skipping {candidate.name}: {result.reason}")
                _skip_rest(results, candidates[index + 1:])
                break
        prepared_of[candidate.name] = prepared
        config = fold_config(prepared.config, choose_iterations)
        check_folds(folds, prepared.task.valid_labels(prepared.task.labels))
        trained: list[int] = []  # iterations each fold ran
        for f in range(k):
            t0 = clock()
            curve = train_fold(prepared, folds, f, config, should_stop)
            result.fold_seconds.append(clock() - t0)
            trained.append(config.last_iteration)
            for it, (m, held) in curve.items():
                result.curve.setdefault(it, []).append(m)
                result.held_out.setdefault(it, []).append(held)
            best = max((m.kappa for m, _ in curve.values()), default=float("nan"))
            say(f"{candidate.name}: fold {f + 1}/{k} in {result.fold_seconds[-1]:.0f} s, "
                f"kappa {best:.3f} (best along training)")
            if should_stop and should_stop():
                raise FhnError("the auto recipe was stopped before it chose")
            if index == 0 and choose_iterations and config.ensemble == 1 and f < k - 1:
                per_iteration = sum(result.fold_seconds) / sum(trained)
                stop = shortened(config, per_iteration, clock() - start, budget_seconds,
                                 trainings_left=k - 1 - f + 1)
                if stop is not None:
                    config = replace(config, stop_after=stop)
                    result.reason = (f"folds {f + 2}-{k} stopped at {stop} iterations: the "
                                     "folds ran slower than the pilot measured")
                    say(f"{candidate.name}: {result.reason}")
            if f == 0 and index > 0:
                pace = result.fold_seconds[0]
                left = pace * (k - 1) + pace
                if clock() - start + left > budget_seconds:
                    result.status = "skipped"
                    result.reason = (f"stopped after its first fold: {k - 1} more folds and "
                                     f"the final training at {pace:.0f} s each would pass "
                                     "the budget")
                    say(f"{candidate.name}: {result.reason}")
                    break
        if result.status == "scored":
            _score(result, k)
        if result.status == "skipped":
            _skip_rest(results, candidates[index + 1:])
            break
    chosen, reason = adopt(results)
    net_seconds = clock() - start
    prepared = prepared_of[chosen.candidate.name]
    base = None
    if baseline is not None:
        say("scoring the per-cell baseline on the same folds")
        base = baseline(prepared)
    choice = AutoChoice(chosen, results, folds, budget_seconds, clock() - start, base,
                        choose_iterations, reason, cap)
    if cap is not None:
        choice.reason += (f" The time budget allowed at most {cap} iterations per training "
                          "(a larger budget lets it try more).")
    if net_seconds > budget_seconds:
        choice.reason += (f" The first candidate alone took {net_seconds / 60:.1f} min, more "
                          f"than the budget of {budget_seconds / 60:.1f} min.")
    return choice, prepared


def shortened(config: TrainConfig, seconds_per_iteration: float, spent: float,
              budget_seconds: float, trainings_left: int) -> int | None:
    """Where the remaining trainings of the first candidate stop so they fit the time left.

    None when they fit as they are. The pilot's pace can be far off on a shared machine;
    stopping the remaining folds (and so the final training, which stops at t*) at a
    validation point keeps the folds comparable: every fold runs the same schedule, and t*
    is chosen among the validation points all folds reached. Never below MIN_ITERATIONS.
    """
    last, every = config.last_iteration, max(1, config.validate_every)
    if spent + seconds_per_iteration * last * trainings_left <= budget_seconds:
        return None
    fits = int(max(0.0, budget_seconds - spent) / (seconds_per_iteration * trainings_left))
    floor = min(last, math.ceil(MIN_ITERATIONS / every) * every)
    stop = max(floor, fits // every * every)
    return stop if stop < last else None


def _skip_rest(results: list[CandidateResult], later: Sequence[Candidate]) -> None:
    """The budget is what stopped a candidate: later ones are not started either."""
    results.extend(CandidateResult(c, "skipped", "not started: the budget was reached")
                   for c in later)


@dataclass(frozen=True)
class Pace:
    """What a pilot measured: seconds per training step, per validation, per training's
    set-up (building the trainer: a forest guide's teacher is fitted there), and the
    pilot's own seconds."""

    step: float
    validation: float
    setup: float
    seconds: float


def pilot_pace(prepared: Prepared, folds: SpatialFolds,
               clock: Callable[[], float] = time.perf_counter) -> Pace:
    """A pilot of PILOT_ITERATIONS steps (the pace from steps 2 on, past the first one's
    warm-up) and one validation on fold 1, with the candidate's settings."""
    pilot = replace(fold_config(prepared.config, True), iterations=PILOT_ITERATIONS,
                    validate_every=0, ensemble=1)
    task = prepared.task
    train, val = folds.split(task.valid_labels(task.labels), 0)
    t0 = clock()
    trainer = Trainer(replace(task, labels=train, val_labels=val), prepared.design, pilot,
                      diagnostics=False)
    seen: list[float] = []
    t1 = clock()
    trainer.run(lambda p: seen.append(clock() - t1))
    step = (seen[-1] - seen[0]) / max(1, len(seen) - 1)
    t2 = clock()
    trainer.validate()
    validation = clock() - t2
    return Pace(step, validation, t1 - t0, clock() - t0)


def fold_estimate(prepared: Prepared, folds: SpatialFolds, choose_iterations: bool,
                  clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds one fold of this candidate is expected to take, from a pilot (and the pilot's
    own time, already spent)."""
    pace = pilot_pace(prepared, folds, clock)
    config = fold_config(prepared.config, choose_iterations)
    points = math.ceil(config.iterations / config.validate_every)
    return config.ensemble * (pace.setup + config.iterations * pace.step) \
        + points * pace.validation


def iterations_within(prepared: Prepared, folds: SpatialFolds, budget_seconds: float,
                      clock: Callable[[], float] = time.perf_counter,
                      say: Callable[[str], None] = lambda _line: None) -> int | None:
    """The iteration budget that lets the folds and the final training fit the budget.

    None when the candidate's own iteration budget fits. Measured on a pilot
    (:func:`pilot_pace`): seconds per training step, per validation and per set-up on
    fold 1; every fold and the final training pay the set-up once, and the time of a
    prediction averaged over flips (PREDICTION_PASSES validations) is kept back.
    """
    t0 = clock()
    pace = pilot_pace(prepared, folds, clock)
    wanted = prepared.config.iterations
    k = folds.n_folds
    points = math.ceil(wanted / validation_points(wanted))
    spare = (budget_seconds - (clock() - t0) - k * points * pace.validation
             - (k + 1) * pace.setup - PREDICTION_PASSES * pace.validation)
    fits = int(spare / ((k + 1) * pace.step)) if pace.step > 0 else wanted
    say(f"pace: {pace.step:.2f} s a training step, {pace.validation:.1f} s a validation, "
        f"{pace.setup:.1f} s to set up a training")
    if fits >= wanted:
        return None
    cap = max(MIN_ITERATIONS, fits)
    say(f"the budget fits {k} folds and the final training at {cap} iterations (of {wanted})")
    return cap


def _score(result: CandidateResult, n_folds: int) -> None:
    """t*: the validation point with the highest mean kappa over all folds (earliest on ties)."""
    complete = {it: ms for it, ms in result.curve.items() if len(ms) == n_folds}
    if not complete:
        raise FhnError(f"candidate {result.candidate.name} was never validated on all folds")
    best = max(sorted(complete), key=lambda it: np.mean([m.kappa for m in complete[it]]))
    result.iterations = best
    result.scores = FoldScores(tuple(complete[best]))
    result.held_out = {best: result.held_out.get(best, [])}


def adopt(results: Sequence[CandidateResult]) -> tuple[CandidateResult, str]:
    """The module's adoption rule; returns the adopted candidate and the reason in words."""
    scored = [r for r in results if r.scores is not None]
    if not scored:
        raise FhnError("no candidate was scored; raise the budget")
    reference = max(scored, key=lambda r: r.scores.kappa)  # first on ties
    margin = reference.standard_error()
    equal = [r for r in scored if r.scores.kappa >= reference.scores.kappa - margin]
    chosen = min(equal, key=lambda r: r.seconds_per_fold)  # first on ties (stable)
    folds = len(chosen.scores.folds)
    reason = (f"Adopted '{chosen.candidate.name}' at {chosen.iterations} iterations: "
              f"cross-validated kappa {chosen.scores.kappa:.3f} ± {chosen.scores.kappa_sd:.3f} "
              f"over {folds} spatial folds")
    if chosen is reference:
        others = [r for r in scored if r is not chosen]
        reason += (" (the highest" + (", " + "; ".join(
            f"'{r.candidate.name}' {r.scores.kappa:.3f}" for r in others) if others else "")
            + ").")
    else:
        reason += (f"; '{reference.candidate.name}' scored {reference.scores.kappa:.3f}, within "
                   f"one standard error ({margin:.3f}), and costs "
                   f"{reference.seconds_per_fold / chosen.seconds_per_fold:.1f}x as much.")
    skipped = [r.candidate.name for r in results if r.status == "skipped"]
    if skipped:
        reason += f" Not tried within the budget: {', '.join(skipped)}."
    return chosen, reason
