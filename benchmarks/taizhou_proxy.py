"""The western proxies on which the Taizhou benchmark's network settings were chosen.

The eastern half, where ``taizhou_change`` scores, is never read here: the scene is cropped
to x < 200 before anything is computed. Two splits of the crop mimic the benchmark's
west-to-east split (``taizhou_change.split`` applied to the crop):

- ``first``: 50 points per class drawn from x < 100, every reference label of
  100 <= x < 200 scored;
- ``mirrored``: the crop flipped left to right first, so the points come from
  100 <= x < 200 and every reference label of x < 100 is scored.

Seeds 0-4 of both give ten splits. A change of method was adopted only by a rule fixed
before its results: the mean kappa over the ten splits higher than the default's AND ahead
on at least 6 of the 10 (the module docstring of ``taizhou_change`` has every round).

``--method guided`` trains the product's forest-guided network instead
(:mod:`fhn_core.pseudo_labels`: the auto recipe's first two-date candidate, i.e. the
change channels with ``change_magnitude``, the default design with two layers per level,
``guide = "forest"`` on windows), for ``--iterations`` steps with the given
``--guide-threshold``, ``--guide-weight`` and ``--patch``; the same rule chose its
defaults (the module docstring of ``fhn_core.pseudo_labels``). ``--device`` runs it on a
GPU where one is lent (the choice of settings does not depend on where they ran).

``--method blend`` (session 23) runs the guided network and the product's per-cell forest
(:mod:`fhn_core.baseline`, on the same channels) and scores each and the mean of their
probabilities. Rule written before its first run: averaging the forest's probabilities
into the network's output becomes a product setting only if, over the ten splits at 100
iterations (the auto recipe's t* on Taizhou seeds 0-4 was 44-100), the mean's kappa is
higher than both the forest's and the guided network's AND it is ahead of the forest on
at least 6 of the 10. Result: mean 0.819 against 0.803 (forest) and 0.792, ahead of the
forest on 4 of 10: not adopted.

``--em-priors`` (sessions 23-24) adds each model with its posteriors moved to the class mix
that EM re-estimates on the crop (:mod:`fhn_core.priors`). Rule written before its first
run: the re-estimate becomes the default of two-date prediction if, over the ten splits,
the guided network with it has a higher mean kappa than without AND is ahead on at least 6
of the 10. Result: 0.827 against 0.793, ahead on 6 of 10 (first 0-3, mirrored 1-2):
adopted (benchmarks/README.md has the table). The east then disagreed (scored once), so a
second rule, written before seeds 5-9 were run: it stays only if, pooled over seeds 0-9 of
both proxies, its mean kappa is higher AND it is ahead on at least 11 of 20. Result: 0.851
against 0.802, ahead on 14 of 20: it stays.

``--method ensemble`` (session 25) trains the guided network as the product's ensemble
(:class:`fhn_core.ensemble.EnsembleTrainer`, ``--members`` networks, member seeds of
:func:`fhn_core.ensemble.member_seed`) and scores member 0 alone and the mean of the
members' logits, both with the scene's class mix re-estimated (the two-date default).
Rule written before its first run: the auto recipe's final model for two dates becomes an
ensemble of 5 networks (when the time left allows) only if, pooled over the twenty splits
(seeds 0-9 of both proxies, 100 iterations), the five networks' mean kappa is higher than
member 0's AND they are ahead on at least 11 of 20 (a tie is not ahead). Result: 0.854
against 0.851, ahead on 13 of 20 (first 9 of 10, mirrored 4 of 10): adopted
(``fhn_core.auto_recipe.FINAL_MEMBERS``; benchmarks/README.md has the table). The rows
"training mix" (the same logits, not moved) answer a second rule, written before they were
run: with the five-network final the scene's class mix stays the two-date default only if,
pooled over the twenty splits, its mean kappa is higher than the training mix's AND it is
ahead on at least 11 of 20; otherwise the default becomes the training mix. Result: 0.854
against 0.817, ahead on 12 of 20 (first 9 of 10, mirrored 3 of 10): it stays.

``--method calibrated`` (session 26) adds, before the five networks, the product's spatial
folds of the training points (``fhn_core.auto_recipe``; 5 folds at ``--iterations``) and
fits a temperature and a bias per class (:mod:`fhn_core.calibration`) on their out-of-fold
logits; rows: the five networks with EM as the product does, EM from the calibrated logits,
and the training mix. Rule written before any calibration code existed: EM from calibrated
posteriors becomes the two-date default only if, pooled over the twenty splits, its mean
kappa is higher than plain EM's AND it is ahead on at least 11 of 20. Stopped after twelve
splits, behind on 10 (ahead on first 0 and 7 only; mirrored 0 fell to 0.153): not adopted.

``--method chosen`` (session 28) runs the product's 5 spatial folds of the training points
(at ``--iterations``, the task mapping with the scene's class mix) to score the map as the
auto recipe now does (:func:`fhn_core.auto_recipe.map_fold_scores`) and the forest
(:func:`fhn_core.baseline.cross_validated`), then the five networks; rows: today's map
(five networks, the scene's class mix), the product forest, and the map chosen between
them by that CV (the forest where its fold kappa is above the map's). Rule written before
its first run: for two dates the auto recipe maps with the forest (training mix) where
its CV kappa is above the map's only if, on the ten western splits (seeds 0-4 of both
proxies, 100 iterations), the chosen map's mean kappa is higher than today's map's AND,
among the splits where the choice switched to the forest, it is ahead of today's map on
at least half (at least one switched). Result: the forest's CV kappa was above the map's on
all ten splits (0.82-0.96 against 0.66-0.89), so the choice is the forest everywhere:
mean 0.803 against today's 0.831, ahead on 4 of 10: not adopted (benchmarks/README.md).

    python -m benchmarks.taizhou_proxy [--method NAME] [--proxies first mirrored]
        [--seeds 0 1 2 3 4] [--iterations 75] [--no-forest] [--cache DIR]
        [--timelapse-weight W] [--guide-threshold T] [--guide-weight W] [--patch P]
        [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.taizhou_change import (
    DATA,
    DEFAULT_METHOD,
    METHODS,
    forest,
    load_scene,
    method_spec,
    network,
    split,
)
from fhn_core.metrics import evaluate
from fhn_core.priors import scene_prior, shift_to_prior
from fhn_core.pseudo_labels import DEFAULT_THRESHOLD, DEFAULT_WEIGHT

CROP = 200          # columns kept: the western half of the 400-column scene
PROXIES = ("first", "mirrored")
GUIDED = "guided"
BLEND = "blend"   # the product forest, the guided network and the mean of their probabilities
ENSEMBLE = "ensemble"   # the guided network as the product's ensemble: member 0 against all
CALIBRATED = "calibrated"   # the ensemble's scene mix from calibrated posteriors
CHOSEN = "chosen"   # the ensemble's map or the forest, whichever the auto recipe's CV ranks first


def guided_network(features: np.ndarray, train: np.ndarray, seed: int, iterations: int,
                   threshold: float = DEFAULT_THRESHOLD, weight: float = DEFAULT_WEIGHT,
                   patch: int = 128, device: str = "cpu") -> np.ndarray:
    """Class map of the product's forest-guided network (fixed iterations, no CV)."""
    return guided_probabilities(features, train, seed, iterations, threshold, weight, patch,
                                device).argmax(0)


def product_forest_probabilities(features: np.ndarray, train: np.ndarray,
                                 seed: int) -> np.ndarray:
    """(2, y, x) probabilities of the product's per-cell baseline (fhn_core.baseline) on
    the guided network's input channels (the dates and the change magnitude)."""
    from benchmarks.taizhou_change import change_magnitude
    from fhn_core.baseline import cell_features, fit_forest, predict_forest

    data = np.concatenate([features, change_magnitude(features)]).astype(np.float32)
    cells = cell_features(data)
    return predict_forest(fit_forest(cells, train, seed), cells, 2)[1]


def guided_probabilities(features: np.ndarray, train: np.ndarray, seed: int, iterations: int,
                         threshold: float = DEFAULT_THRESHOLD, weight: float = DEFAULT_WEIGHT,
                         patch: int = 128, device: str = "cpu") -> np.ndarray:
    """(2, y, x) softmax of the product's forest-guided network (fixed iterations, no CV)."""
    return guided_member_logits(features, train, seed, iterations, threshold, weight, patch,
                                device)[0].softmax(0).numpy()


def guided_member_logits(features: np.ndarray, train: np.ndarray, seed: int, iterations: int,
                         threshold: float = DEFAULT_THRESHOLD, weight: float = DEFAULT_WEIGHT,
                         patch: int = 128, device: str = "cpu",
                         members: int = 1) -> list[torch.Tensor]:
    """(2, y, x) logits of each member of the product's forest-guided ensemble."""
    from fhn_core.ensemble import EnsembleTrainer
    from fhn_core.prediction import predict_logits
    from fhn_core.task import to_input

    prepared = guided_prepared(features, train, seed, iterations, threshold, weight, patch,
                               device, members)
    trainer = EnsembleTrainer(prepared.task, prepared.design, prepared.config)
    model = trainer.run().model
    x = to_input(prepared.task.data, model.info.normalisation, prepared.design)
    return [predict_logits(net, x, 2, device=trainer.device) for net in model.networks]


def guided_prepared(features: np.ndarray, train: np.ndarray, seed: int, iterations: int,
                    threshold: float = DEFAULT_THRESHOLD, weight: float = DEFAULT_WEIGHT,
                    patch: int = 128, device: str = "cpu", members: int = 1):
    """The auto recipe's first two-date candidate as ``fhn_core.auto_recipe.Prepared``: the
    dates and their change magnitude, the default design, the forest guide on windows."""
    from app.layout import DataLayout
    from app.training_task import default_design
    from benchmarks.taizhou_change import change_magnitude
    from fhn_core.auto_recipe import Prepared
    from fhn_core.task import SegmentationTask
    from fhn_core.training import TrainConfig

    data = np.concatenate([features, change_magnitude(features)]).astype(np.float32)
    design = default_design(DataLayout(data, (), ("y", "x"), ("y", "x"), "dates"), 2)
    config = TrainConfig(iterations=iterations, seed=seed, device=device, guide="forest",
                         guide_threshold=threshold, guide_weight=weight,
                         patch=(patch, patch), validation_fraction=0.0, checkpoint_every=0,
                         ensemble=members)
    return Prepared(SegmentationTask(data, train, 2), design, config)


def out_of_fold_calibration(crop: np.ndarray, train: np.ndarray, seed: int,
                            args: argparse.Namespace):
    """The product's calibration (fhn_core.calibration) of the guided candidate's
    out-of-fold logits: its spatial folds of the training points (auto_recipe's number),
    each fold trained for ``--iterations`` and scored at its end, as the auto recipe does
    with the iteration count fixed."""
    from fhn_core.calibration import HeldOut, fit_calibration

    prepared = guided_prepared(crop, train, seed, args.iterations, args.guide_threshold,
                               args.guide_weight, args.patch, args.device)
    pooled = HeldOut.pooled(out_of_fold_logits(prepared, train, seed)[1])
    return fit_calibration(pooled, 2), pooled.metrics().kappa


def out_of_fold_logits(prepared, train: np.ndarray, seed: int):
    """The auto recipe's spatial folds of the training points for two dates, and each
    fold network's held-out logits at the end of its training (the iteration count fixed)."""
    from fhn_core import auto_recipe
    from fhn_core.cross_validation import spatial_folds

    folds = spatial_folds(train, auto_recipe.folds_for("dates"), seed=seed)
    config = auto_recipe.fold_config(prepared.config, choose_iterations=False)
    return folds, [auto_recipe.train_fold(prepared, folds, f, config)[config.last_iteration][1]
                   for f in range(folds.n_folds)]


def proxy_split(features: np.ndarray, ref: np.ndarray, seed: int,
                proxy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cropped (and for ``mirrored`` flipped) features, training points, scored labels."""
    if proxy not in PROXIES:
        raise ValueError(f"proxy must be one of {PROXIES}, got {proxy!r}")
    crop_features, crop_ref = features[..., :CROP], ref[:, :CROP]
    if proxy == "mirrored":
        crop_features, crop_ref = crop_features[..., ::-1], crop_ref[:, ::-1]
    crop_features, crop_ref = np.ascontiguousarray(crop_features), np.ascontiguousarray(crop_ref)
    train, test = split(crop_ref, seed)
    return crop_features, train, test


def blend_rows(crop: np.ndarray, train: np.ndarray, seed: int,
               args: argparse.Namespace) -> list[tuple[str, np.ndarray]]:
    """The product's forest, the guided network and their probabilities averaged."""
    forest_p = product_forest_probabilities(crop, train, seed)
    network_p = guided_probabilities(crop, train, seed, args.iterations, args.guide_threshold,
                                     args.guide_weight, args.patch, args.device)
    rows = [("product forest", forest_p), (f"guided i{args.iterations}", network_p),
            (f"guided i{args.iterations} + forest, mean", (forest_p + network_p) / 2)]
    if args.em_priors:  # both models are trained class-balanced: their prior is uniform
        rows += [(f"{name}, EM priors", prior_adjusted(p, np.full(2, 0.5)))
                 for name, p in rows[:2]]
    return rows


def ensemble_rows(crop: np.ndarray, train: np.ndarray, seed: int,
                  args: argparse.Namespace) -> list[tuple[str, np.ndarray]]:
    """Member 0 alone and the members' mean logits, each with the training mix and moved to
    the scene's class mix."""
    logits = guided_member_logits(crop, train, seed, args.iterations, args.guide_threshold,
                                  args.guide_weight, args.patch, args.device, args.members)
    uniform = [0.5, 0.5]   # balanced training: the prior the networks learnt under
    rows = []
    for name, mean in (("member 0", logits[0]),
                       (f"{len(logits)} networks", torch.stack(logits).mean(0))):
        rows.append((f"{name}, EM priors", scene_mix(mean, uniform)))
        rows.append((f"{name}, training mix", mean.softmax(0).numpy()))
    return rows


def calibrated_rows(crop: np.ndarray, train: np.ndarray, seed: int,
                    args: argparse.Namespace) -> list[tuple[str, np.ndarray]]:
    """The five networks' mean logits with the scene's class mix estimated from them as
    trained and after the out-of-fold calibration (:func:`out_of_fold_calibration`)."""
    calibration, cv_kappa = out_of_fold_calibration(crop, train, seed, args)
    logits = guided_member_logits(crop, train, seed, args.iterations, args.guide_threshold,
                                  args.guide_weight, args.patch, args.device, args.members)
    mean = torch.stack(logits).mean(0).double()
    uniform = [0.5, 0.5]
    calibrated = calibration.apply(mean)
    print(f"  out-of-fold kappa {cv_kappa:.3f}; {calibration.text()}; class 0 share on the "
          f"crop as trained {float(scene_prior(mean, uniform)[0]):.3f}, calibrated "
          f"{float(scene_prior(calibrated, list(calibration.prior))[0]):.3f}", flush=True)
    name = f"{len(logits)} networks"
    return [(f"{name}, EM priors", scene_mix(mean, uniform)),
            (f"{name}, calibrated EM", scene_mix(calibrated, list(calibration.prior))),
            (f"{name}, training mix", mean.softmax(0).numpy())]


def chosen_rows(crop: np.ndarray, train: np.ndarray, seed: int,
                args: argparse.Namespace) -> list[tuple[str, np.ndarray]]:
    """Today's map (the five networks, the scene's class mix), the product forest, and the
    map chosen between them by the auto recipe's cross-validation: the forest where its
    fold kappa is above the map's (:func:`fhn_core.auto_recipe.map_fold_scores`)."""
    from dataclasses import replace

    from fhn_core import auto_recipe, baseline
    from fhn_core.auto_recipe import Candidate, CandidateResult

    prepared = guided_prepared(crop, train, seed, args.iterations, args.guide_threshold,
                               args.guide_weight, args.patch, args.device)
    prepared = replace(prepared, task=replace(prepared.task, class_priors="scene"))
    folds, held = out_of_fold_logits(prepared, train, seed)
    last = prepared.config.last_iteration
    result = CandidateResult(Candidate("guided", {}), iterations=last, held_out={last: held})
    cv_map = auto_recipe.map_fold_scores(result, prepared.task, folds, 0.0).kappa
    cv_forest = baseline.cross_validated(prepared.task, folds, seed).kappa
    logits = guided_member_logits(crop, train, seed, args.iterations, args.guide_threshold,
                                  args.guide_weight, args.patch, args.device, args.members)
    today = scene_mix(torch.stack(logits).mean(0), [0.5, 0.5])
    forest_p = product_forest_probabilities(crop, train, seed)
    switch = cv_forest > cv_map + 1e-9
    print(f"  CV kappa: the map {cv_map:.3f}, the forest {cv_forest:.3f} -> "
          f"{'forest' if switch else 'network'}", flush=True)
    return [(f"{len(logits)} networks, EM priors", today), ("product forest", forest_p),
            ("chosen by CV", forest_p if switch else today)]


def scene_mix(logits: torch.Tensor, training_prior: list[float]) -> np.ndarray:
    """Softmax of ``logits`` moved to the class mix EM re-estimates on the crop: the
    product's :mod:`fhn_core.priors` (Saerens, Latinne & Decaestecker 2002)."""
    logits = logits.double()
    prior = scene_prior(logits, training_prior)
    return shift_to_prior(logits, training_prior, prior).softmax(0).numpy()


def prior_adjusted(probabilities: np.ndarray, training_prior: np.ndarray) -> np.ndarray:
    """Posteriors moved to the scene's class mix (:func:`scene_mix` on their logarithms)."""
    logits = torch.from_numpy(np.log(np.clip(probabilities, 1e-12, None)))
    return scene_mix(logits, list(training_prior))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=[*METHODS, GUIDED, BLEND, ENSEMBLE, CALIBRATED, CHOSEN],
                        default=DEFAULT_METHOD)
    parser.add_argument("--proxies", nargs="+", choices=PROXIES, default=list(PROXIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--iterations", type=int, default=75)
    parser.add_argument("--no-forest", action="store_true", help="skip the forest rows")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder keeping each network's logits (see taizhou_change)")
    parser.add_argument("--timelapse-weight", type=float, default=None,
                        help="the time-lapse layout's share of the vote (see taizhou_change)")
    parser.add_argument("--guide-threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--guide-weight", type=float, default=DEFAULT_WEIGHT)
    parser.add_argument("--patch", type=int, default=128, help="guided: window side")
    parser.add_argument("--device", default="cpu", help="guided: cpu, cuda or auto")
    parser.add_argument("--em-priors", action="store_true",
                        help="blend: also each model with EM-adjusted class priors")
    parser.add_argument("--members", type=int, default=5, help="ensemble: networks")
    args = parser.parse_args(argv)
    if args.method in (GUIDED, BLEND, ENSEMBLE, CALIBRATED, CHOSEN):
        label = (f"guided t{args.guide_threshold:g} w{args.guide_weight:g} "
                 f"p{args.patch} i{args.iterations}")
    else:
        spec, label = method_spec(args.method, args.timelapse_weight)
    if not DATA.is_dir():
        print(f"Taizhou data not found at {DATA}; clone with ../shared beside the repository")
        return 1
    features, ref = load_scene()
    kappas: dict[str, list[float]] = {}
    for proxy in args.proxies:
        for seed in args.seeds:
            crop, train, test = proxy_split(features, ref, seed, proxy)
            runs = [] if args.no_forest else [("forest", forest, (crop, train, seed))]
            if args.method in (BLEND, ENSEMBLE, CALIBRATED, CHOSEN):
                start = time.perf_counter()
                rows = {BLEND: blend_rows, ENSEMBLE: ensemble_rows,
                        CALIBRATED: calibrated_rows,
                        CHOSEN: chosen_rows}[args.method](crop, train, seed, args)
                for name, proba in rows:
                    kappa = evaluate(proba.argmax(0), test, 2).kappa
                    kappas.setdefault(name, []).append(kappa)
                    print(f"{proxy:<8} seed {seed}  {name:<32} kappa {kappa:.4f}  "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
            elif args.method == GUIDED:
                runs.append((label, guided_network,
                             (crop, train, seed, args.iterations, args.guide_threshold,
                              args.guide_weight, args.patch, args.device)))
            else:
                runs.append((label, network,
                             (crop, train, seed, args.iterations, spec, args.cache)))
            for name, method, method_args in runs:
                start = time.perf_counter()
                kappa = evaluate(method(*method_args), test, 2).kappa
                kappas.setdefault(name, []).append(kappa)
                print(f"{proxy:<8} seed {seed}  {name:<32} kappa {kappa:.4f}  "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
    print("\nmean kappa over the splits run")
    for name, values in kappas.items():
        print(f"{name:<32} {np.mean(values):.4f}  ({' '.join(f'{v:.3f}' for v in values)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
