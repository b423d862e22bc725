"""Taizhou change detection: the invertible network against a pixel-wise random forest.

The measured target of issue 4. Two Landsat dates (6 bands each, 400 x 400) of the real
Taizhou pair in ../shared/data; sparse reference labels (changed / unchanged masks).

Split: 50 labelled points per class drawn (seeded) from the western half (x < 200) of the
reference labels for training; every reference label of the eastern half for evaluation.
Network: a 2D design over (y, x) with the 6 bands x 2 dates (+ the 6 differences t2 - t1,
+ by default their magnitude) as 18 (19) input channels, trained on the whole scene in one
chunk; the default method adds one network in the paper's 3D time-lapse layout (bands as
an axis, dates as channels, the points labelled on every band slice) to three such 2D
networks, the two layouts weighted equally. Forest: scikit-learn, 200 trees, the same 18
features (t1, t2, t2 - t1) per pixel, trained on the same points.

How the network's settings were chosen: on western-half proxies only, never on the east.
The main proxy trains on the benchmark's own western points (``split(ref, seed)``) and
scores every other reference label of the western half (a second one, tried on seed 0,
trains on 50 points per class from x < 100 and scores 100 <= x < 200). Over seeds 0-2 the
small five-segment design below (levels 0-1-2-1-0, 8 layers, ranks 8/16), 75 iterations
of Adam (lr 3e-3, cosine decay) and weight decay 0.03 scored kappa 0.968 on the main proxy
(init seeds 0, 100, 200) against the forest's 0.949 (150 iterations scored 0.970 at twice
the time). Weight decay and fewer iterations were what helped; a third Haar level and
h = 0.4 did not. The eastern half was evaluated only once these were fixed.

The network method (``--method``) was chosen the same way, on the main proxy only: for
seeds 0-2, three networks per seed (init seeds seed, seed + 1000, seed + 2000) on the same
points, each predicted plainly and with test-time augmentation (logits averaged over the
8 flips/transposes of the map). Mean proxy kappa: one plain network 0.963 (the nine
networks' spread 0.955-0.971), one network with augmentation 0.965 (+0.002; 8 of 9
networks gained or tied), the 3-network logit average 0.966, the 3-network average with
augmentation 0.968 - above the mean single plain network on every seed (+0.001, +0.005,
+0.007), and the forest 0.949. Hence ``ensemble+tta``; it costs three trainings and 8
passes per network (about 340 s per seed on one core, 3x the plain run).

That proxy overstated the network: on the east ``ensemble+tta`` fell below the forest on
seeds 1, 3 and 4. So a west-to-east-like proxy replaced it: the scene is cropped to x < 200
before anything is computed (x >= 200 is never read), ``split`` on the crop draws 50 points
per class from x < 100, and every reference label with 100 <= x < 200 is scored, for seeds
0-4. Kappa (seeds 0-4, mean):

    forest (200 trees, 18 features)   0.747 0.789 0.725 0.704 0.945   0.782
    one network + tta                 0.891 0.780 0.874 0.859 0.910   0.863
    ensemble+tta (3 networks)         0.897 0.872 0.839 0.882 0.911   0.880
    ensemble of 5 + tta               0.893 0.867 0.847 0.883 0.913   0.881
    cva+tta (one network)             0.892 0.883 0.858 0.892 0.911   0.887
    cva+ensemble+tta (3 networks)     0.889 0.881 0.865 0.890 0.917   0.889

``cva`` adds the change-vector magnitude ||t2 - t1|| as a 19th channel. Tried and dropped
(single networks + tta unless said): self-training (train, add the most confident
predictions as pseudo-labels, retrain: top 1000 or 3000 per class fell to kappa 0.25-0.32
on seeds 1-2 although the pseudo-labels were 100 % right where a reference existed; 200 or
1000 drawn at random from the more confident half, or 1000 from the more confident half or
80 % of a 3-network ensemble's predictions, also fell below the teacher on every seed
tried), and on seeds 0-2 weight decay 0.1, 40 iterations and shallower designs (levels
0-1-0, level 0 only), and on seeds 0-4 3- and 5-network ensembles of the 0-1-0 design.
Single networks vary a lot with their initialisation (seed 1: kappa 0.31-0.88 across these
variants), which is what the ensemble averages out. Hence the default ``cva+ensemble+tta``
(same cost as ``ensemble+tta``). The east, evaluated once with it (seeds 0-4, one core,
32 min): kappa forest / network 0.918/0.942, 0.923/0.953, 0.911/0.927, 0.890/0.916,
0.921/0.894 (mean 0.912/0.926; OA 0.979/0.983). Above the forest and 0.90 on seeds 0-3;
seed 4 is below both (the proxy's seed 4 also had the forest ahead), so the target is not
met on every seed.

Tried and dropped after that east run, on the same west-to-east-like proxy (the east was
not looked at). Where one cva+tta network erred on proxy seed 4 and the forest did not:
mostly changed pixels (77 of 93) on thin structures one to three pixels wide (a new road,
field edges) whose change magnitude (median 82) lies far above the changed training
points' (37); the coarse levels blur them into their unchanged surroundings. More layers
at level 0 fixed most of them (changed pixels wrong 109 -> 55 with 4 + 8 layers). Single
networks + tta, kappa on proxy seeds 4 and 1 (forest 0.945, 0.789; seconds per network
on the 400 x 200 crop, one core):

    cva+tta (the design above, 2 layers at level 0)    0.911 0.883    65 s
    weight averaging (average_decay 0.95)              0.913 0.879
    Gaussian input noise, sd 0.3 (normalised units)    0.913 0.873
    spectral jitter (per-channel gain, offset sd 0.2)  0.914 0.884
    log(1 + ||d||) as the 19th channel                 0.911 0.874
    inputs clipped to their 1 % / 99 % quantiles       0.911 0.878
    +||d||, -||d|| as the class-score channels 0, 1    0.928 0.757
      (the same with log(1 + ||d||))                   0.918 0.793
    kernel size 1                                      0.435 0.393
    levels 0-1-2-1-0 with 2 + 3 layers at level 0      0.922 0.890
      (the same with rank 16 at level 0)               0.942 0.896
    3 + 5 layers at level 0                            0.943 0.901    86 s
      (the same with rank 16 at level 0)               0.943 0.897
    4 + 8 layers at level 0                            0.949 0.906   108 s

(noise and jitter were added to each training draw; the +-||d|| variant starts the class
scores as a change-vector threshold, which the 50 points could not correct on seed 1.)
Three networks + tta on proxy seed 4 come close to the forest, none passes it (0.9453):
4 + 8 layers 0.942 (members 0.949 0.944 0.932), 6 + 12 layers 0.944 (0.949 0.938
0.943; 138 s a network), 4 + 8 layers at rank 16 0.9450 (0.947 0.942 0.940; 142 s), the
six networks of the first two together 0.944. The 4 + 8 design's three-network ensemble
on all seeds (1.7x the default's time):

    4 + 8 layers, cva+ensemble+tta     0.895 0.875 0.833 0.887 0.942   0.886
      its member 0 alone (+ tta)       0.905 0.906 0.815 0.883 0.949   0.892

The lone network passes the forest on every seed only by its draw: the same design from
init seeds +1000 and +2000 scores 0.944 and 0.932 on seed 4. No variant's ensemble beats
the forest on every proxy seed, so the default stays.

Session 6 round, again on proxies only. A second, mirrored proxy joined the first: the
same x < 200 crop, 50 points per class drawn from 100 <= x < 200 (the crop flipped left
to right, then ``split``), every reference label of x < 100 scored. Finding: the output
channels that carry the class scores start as the input's first two channels - the
first two bands of t1 - which the layers must first undo. Two channels of zeros in
front of the data (the design's ``zero_channels``; 21 input channels) let the scores
start at zero. Three networks + tta, kappa, seeds 0-4 and mean:

    west-to-east-like proxy
    forest (200 trees, 18 features)   0.747 0.789 0.725 0.704 0.945   0.782
    cva+ensemble+tta                  0.889 0.881 0.865 0.890 0.917   0.889
    zeros+cva+ensemble+tta            0.898 0.908 0.877 0.892 0.912   0.897
    mirrored proxy
    forest                            0.923 0.644 0.632 0.926 0.641   0.753
    cva+ensemble+tta                  0.866 0.902 0.742 0.869 0.937   0.863
    zeros+cva+ensemble+tta            0.889 0.902 0.742 0.935 0.957   0.885

Zeros are ahead on 7 of the 10 splits, level on 2 (within 0.0003) and behind on one
(first proxy, seed 4: 0.912 against 0.917), at the same cost: the default since. The
east, run once with it: kappa forest / network 0.918/0.944, 0.923/0.950, 0.911/0.935,
0.890/0.910, 0.921/0.893 (mean 0.912/0.926, the old default's mean too; seed 4 still
below the forest). The network stays near kappa 0.9 on every draw while the forest
swings from 0.63 to 0.95 with its 100 points; where the forest wins (first proxy seed 4,
mirrored seeds 0 and 3 against the old default), the cells the network alone gets wrong
lie on the forest's class boundaries (mirrored seed 0: median distance 0 cells, against
6 for all scored cells).

Tried and dropped: pasting training pixels (short 1-3 cell segments carrying a training
point's values, at random places in every draw, so that a lone changed road cell counts:
50 per class, single networks 0.857 / 0.856 on first-proxy seeds 4 / 1; with zeros, 10
per class 0.920 / 0.903 and 5 per class 0.886 0.904 0.879 0.877 0.930, mean 0.895
against 0.897 - seed 4 gains, the others lose), replicating the input to 38 channels
(seed 4 ensemble 0.918, twice the time), zeros with 4 + 8 layers at level 0 (seeds 4 /
1: 0.933 / 0.886), an edge-aware refinement of the ensemble's logits (mean-field steps
of a local CRF with data-weighted Potts terms: +0.02 on the mirrored proxy, at most
+0.002 on the first, nothing on seed 4), and a flip-consistency loss on every cell (the
squared difference of the class probabilities of the map and of its flip, weight 3, at
twice the cost: first-proxy seed 4 0.909, mirrored seed 0 0.894, against 0.912 and
0.889).

Weight decay 0.01 instead of 0.03 (with zeros; rule fixed beforehand: adopt if the mean
is higher and it is ahead on at least 6 of the 10 splits):

    first proxy                       0.895 0.910 0.851 0.885 0.911   0.890
    mirrored proxy                    0.918 0.911 0.831 0.943 0.954   0.911

ahead on 5 of 10 (all its gain is on the mirrored proxy; the first, the more like the
real split, loses 0.007), so not adopted. 150 iterations instead of 75 (same rule, twice
the time):

    first proxy                       0.900 0.915 0.887 0.896 0.924   0.904
    mirrored proxy                    0.835 0.893 0.661 0.927 0.925   0.848

ahead on every split of the first proxy and behind on every split of the mirrored one
(5 of 10), so not adopted. Both are weaker regularisation, yet weight decay 0.01 helped
only the mirrored proxy and 150 iterations only the first: neither is a direction.

Session 7, screened first on the two forest-winning splits (first proxy seed 4, mirrored
seed 0; forest 0.945 / 0.923, default 0.912 / 0.889), three networks + tta: bagging
(each network trained on a random 80 % of the 100 points) 0.900 / 0.866, dropped there.
Channel dropout (each input channel of each draw set to zero - its mean after
normalisation - with probability 0.2, as the forest's feature subsampling) 0.912 / 0.932,
so run on all 10 splits (same rule):

    first proxy                       0.892 0.894 0.869 0.892 0.912   0.883
    mirrored proxy                    0.932 0.907 0.775 0.953 0.951   0.904

ahead on 4 of 10 (again all on the mirrored proxy), not adopted.

A mixed ensemble: the default's first two networks and a third with 4 + 8 layers at
level 0 (``with_level0_layers``; the design that fixed most thin-road errors as a single
network above), 1.2x the default's time. Screen 0.919 / 0.902, then all 10 splits:

    first proxy                       0.898 0.905 0.889 0.887 0.919   0.900
    mirrored proxy                    0.902 0.912 0.707 0.931 0.969   0.884

against the default's 0.897 / 0.885: mean over the 10 splits 0.8918 against 0.8912 and
ahead on 6 of 10 (first-proxy seed 0 by 0.0001), so adopted by the rule - by the
narrowest margin it allows, well inside the seed-to-seed noise.

The east, run once with it (``--method zeros+cva+mixed+tta``, two one-core processes,
about 8 min per seed): kappa forest / network 0.918/0.942, 0.923/0.939, 0.911/0.936,
0.890/0.918, 0.921/0.905 (mean 0.912/0.928; OA 0.979/0.983). Kappa >= 0.90 on every
seed for the first time; seed 4 is still below the forest (by 0.015, was 0.028). A
screen with two of the three networks at 4 + 8 layers: 0.929 / 0.896 on the two
forest-winning splits (mixed 0.919 / 0.902), not taken further.

Session 9: the paper's own time-lapse layout (``timelapse_volume``): a 3D design over
(band, y, x) with the same five segments, input channels t1, t2, t2 - t1 and ||t2 - t1||
(each band standardised over both dates) behind two zero channels, the labels embedded at
band slice 3 (eq. 3.20), tta over the 8 horizontal transforms only. One such network costs
about 360 s on the 400 x 200 crop on one core (5.5x a 2D network). One network + tta:

    first proxy                       0.895 0.893 0.747 0.868 0.927   0.866
    mirrored proxy                    0.969 0.985 0.811 0.974 0.959   0.940

mean 0.903 against the default's 0.892 but ahead on only 5 of 10 (every mirrored split and
first-proxy seed 4: the pattern of the earlier rounds), so not adopted alone. Its errors
are not the 2D networks' (it wins most where they lose), so the default's three 2D
networks and one time-lapse network, logits averaged (``zeros+cva+mixed+timelapse+tta``;
the rule fixed before the run; about 520 s per split):

    first proxy                       0.899 0.908 0.883 0.898 0.935   0.905
    mirrored proxy                    0.957 0.951 0.752 0.946 0.972   0.916

mean 0.910 against 0.892, ahead on 9 of 10 (behind on first-proxy seed 2: 0.883 against
0.889), so adopted. It is still below the forest on first-proxy seed 4 (0.935 against
0.945), closer than any earlier default.

The east, run once with it (``--seeds 4 0`` and ``--seeds 3 1`` as one-core processes,
18-20 min per seed, then ``--seeds 2`` on two threads): kappa forest / network
0.918/0.942, 0.923/0.942, 0.911/0.937, 0.890/0.924, 0.921/0.919 (mean 0.912/0.933; OA
0.979/0.984). Above the forest on seeds 0-3 by 0.019-0.034; seed 4 still below it, by
0.002 (0.9185 against 0.9207, the same OA 0.9811; the previous default was 0.015 behind).

Session 10: the four networks' logits summed give the one time-lapse network a quarter of
the vote, although alone it is the stronger layout on the mirrored proxy. Candidate fixed
before its results: the same four networks with the two layouts weighted equally - the
three 2D networks' logits averaged, then added to the time-lapse network's
(``zeros+cva+mixed+balanced-timelapse+tta``, ``combine_logits``), same rule. Every
network's logits were kept with ``--cache`` on the default's rerun (which reproduced every
one of the ten kappas above to four digits), so the candidate cost no training:

    first proxy                       0.900 0.907 0.872 0.904 0.943   0.905
    mirrored proxy                    0.977 0.973 0.805 0.960 0.971   0.937

mean 0.921 against 0.910, ahead on 7 of 10 (behind on first-proxy seeds 1 and 2 and,
by 0.0004, mirrored seed 4), so adopted. First-proxy seed 4, the split the forest won
against every earlier default, is now 0.943 against its 0.945.

The east, run once with it (``--seeds 4 0 2`` and ``--seeds 3 1``, one core each, about
18 min per seed): kappa forest / network 0.918/0.939, 0.923/0.931, 0.911/0.934,
0.890/0.926, 0.921/0.920 (mean 0.912/0.930; OA 0.979/0.984). Seed 4 is still below the
forest, by 0.001 (0.9195 against 0.9207; OA 0.9813 against 0.9811): the gap halved but the
mean fell by 0.003 against the summed logits (recomputed from the cache: all five kappas
as first measured), so the proxies' gain did not carry to the east.

Then, fixed before its results and against the balanced default: a second time-lapse
network (init seed + 4000), the two averaged before the layouts are
(``zeros+cva+mixed+balanced-timelapse2+tta``, +360 s per split, the other four networks
from the cache):

    first proxy                       0.900 0.905 0.865 0.899 0.942   0.902
    mirrored proxy                    0.976 0.975 0.791 0.968 0.966   0.935

mean 0.919 against 0.921, ahead on 3 of 10, not adopted; the east was not run with it.

Screened last in session 10, on the two forest-winning splits: the time-lapse network
with 4 + 8 layers at level 0 instead of 1 + 1
(``zeros+cva+mixed+balanced-finetimelapse+tta``; about 870-920 s per split on one core,
2.4x the plain time-lapse network): first-proxy seed 4 0.9455 (balanced default 0.9429,
forest 0.945), mirrored seed 0 0.9851 (0.9771), so it passed the screen. The ten splits
(finished in session 11):

    first proxy                       0.9170 0.9127 0.8679 0.9004 0.9455   0.9087
    mirrored proxy                    0.9851 0.9733 0.7594 0.9296 0.9057   0.9106

mean 0.910 against 0.921, ahead on 5 of 10 (it loses 0.03-0.07 on mirrored seeds 2-4),
not adopted; the east was not run. The two-split screen had picked the splits it helps.

Session 11, three candidates that need no new network on the proxies or the east (every
network is in the cache), each fixed before its results with the same rule against the
balanced default:

- the time-lapse layout's share of the vote, ``(1 - w) * mean(2D) + w * time-lapse``
  (``--timelapse-weight W``; w = 0.25 is the summed logits, 0.5 the balanced default),
  w in {0.375, 0.625, 0.75}, the best of the three to be tried: ten-split means 0.916,
  0.922, 0.920 (w = 0.25 and 0.5 reproduce 0.910 and 0.921). w = 0.625: first 0.901
  0.906 0.849 0.902 0.938, mirrored 0.981 0.977 0.827 0.965 0.970, mean 0.9216 against
  0.9211 but ahead on 5 of 10 (the first proxy prefers the 2D networks, the mirrored the
  time-lapse one), not adopted;
- "changed" wherever the balanced default's softmax gives it more than t instead of the
  argmax (kappa, unlike OA, rewards calling the smaller class where unsure), t in
  {0.45, 0.4, 0.3}: means 0.914, 0.903, 0.870; every t lowers the mean (at t = 0.45 it
  gains on first-proxy seeds 0 and 4 and mirrored seed 0 and loses on the other seven),
  not adopted. The proxies show no systematic under-calling of change to correct;
- the time-lapse layout as the mean of the plain and the finer time-lapse networks (both
  from init seed + 3000): first 0.9084 0.9126 0.8687 0.9005 0.9435, mirrored 0.9831
  0.9733 0.7805 0.9412 0.9424, mean 0.915, ahead on 5 of 10, not adopted.

The weights run with the flag above; the threshold and the two-network time-lapse layout
were scored by a short script over the cached logits (softmax / mean exactly as written
here) that is not kept. None was adopted, so the east was not run with any of them.

Last in session 11, one candidate that trains a new network, fixed before its results with
the same rule: the time-lapse network labelled on every band slice instead of one (the 50
points per class repeated along the band axis; eq. 3.20 embeds them at one slice) and its
logits averaged over the six slices (``zeros+cva+mixed+balanced-everyslice+tta``; the 2D
networks and the 0.5 weighting as the balanced default; about 360 s per split). Every
slice's output is now trained toward the labels, so the band axis carries six supervised
views of each point instead of one:

    first proxy                       0.9017 0.9151 0.8888 0.9042 0.9462   0.9112
    mirrored proxy                    0.9644 0.9756 0.8283 0.9727 0.9776   0.9437

mean 0.927 against 0.921, ahead on 9 of 10 (behind on mirrored seed 0: 0.964 against
0.977), so adopted. First-proxy seed 4 is now above the forest (0.946 against 0.945), the
first default to pass it there.

The east, run once with it (``--seeds 4 0 2`` and ``--seeds 3 1``, one core each, about
12.5 min per seed; the 2D networks from the cache): kappa forest / network 0.918/0.949,
0.923/0.939, 0.911/0.939, 0.890/0.940, 0.921/0.928 (mean 0.912/0.939; OA 0.979/0.986).
Above the forest on all five seeds, seed 4 by 0.008 (confusion [[1514, 188], [12,
10220]] against the previous default's [[1487, 215], [8, 10224]]: 27 more changed pixels
found for 4 more false alarms). This meets the issue's target on every seed. A rerun from
the cache reproduces the five kappas.

    python -m benchmarks.taizhou_change [--seeds 0 1 2 3 4] [--iterations 75] [--method plain]
        [--cache DIR] [--timelapse-weight W]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from fhn_core.design import NetworkDesign, Segment
from fhn_core.metrics import evaluate
from fhn_core.prediction import predict_logits
from fhn_core.task import SegmentationTask, to_input
from fhn_core.training import TrainConfig, Trainer
from io_adapters.hyperspectral import read_envi, stack_dates
from io_adapters.label_rasters import import_mask_pair

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "changedetection" / "taizhou"
POINTS_PER_CLASS = 50


class Method(NamedTuple):
    """How the network side of the benchmark is run (see ``network``)."""

    members: int                  # 2D networks from different init seeds, logits averaged
    augment: bool                 # test-time averaging over the map's flips/transposes
    cva: bool                     # ||t2 - t1|| appended as a 19th input channel (2D)
    zeros: bool                   # class scores start from two zero channels (2D)
    fine_last: tuple[int, int] | None = None   # last 2D network's level-0 layers (first, last)
    timelapse_members: int = 0    # networks in the paper's 3D layout, after the 2D ones
    timelapse_weight: float | None = None  # time-lapse layout's share; None: sum every network
    fine_timelapse: tuple[int, int] | None = None  # time-lapse level-0 layers (first, last)
    timelapse_every_slice: bool = False  # time-lapse labels on every band slice, not one


_MIXED = Method(3, True, True, True, fine_last=(4, 8))
_MIXED_TIMELAPSE = _MIXED._replace(timelapse_members=1)
_BALANCED = _MIXED_TIMELAPSE._replace(timelapse_weight=0.5)
METHODS = {"plain": Method(1, False, False, False), "tta": Method(1, True, False, False),
           "ensemble": Method(3, False, False, False),
           "ensemble+tta": Method(3, True, False, False),
           "cva+tta": Method(1, True, True, False),
           "cva+ensemble+tta": Method(3, True, True, False),
           "zeros+cva+ensemble+tta": Method(3, True, True, True),
           "zeros+cva+mixed+tta": _MIXED,
           "timelapse+tta": Method(0, True, False, False, timelapse_members=1),
           "zeros+cva+mixed+timelapse+tta": _MIXED_TIMELAPSE,
           "zeros+cva+mixed+balanced-timelapse+tta": _BALANCED,
           "zeros+cva+mixed+balanced-timelapse2+tta": _BALANCED._replace(timelapse_members=2),
           "zeros+cva+mixed+balanced-finetimelapse+tta":
               _BALANCED._replace(fine_timelapse=(4, 8)),
           "zeros+cva+mixed+balanced-everyslice+tta":
               _BALANCED._replace(timelapse_every_slice=True)}
DEFAULT_METHOD = "zeros+cva+mixed+balanced-everyslice+tta"

DESIGN = NetworkDesign(
    in_channels=18,
    spatial_dims=2,
    segments=[Segment(0, 1, 8), Segment(1, 2, 16), Segment(2, 2, 16), Segment(1, 2, 16),
              Segment(0, 1, 8)],
    name="taizhou change (2D, bands x dates)",
)
TIMELAPSE_DESIGN = dataclasses.replace(
    DESIGN, in_channels=6, spatial_dims=3, zero_channels=2,
    name="taizhou change (3D time-lapse: band, y, x; dates as channels)",
)
# the labels sit at band slice 3 (eq. 3.20); the band axis is never flipped
TIMELAPSE_EMBEDDING = {"slice_axis": 0, "slice_index": 3, "fixed_axes": (0,)}


def load_scene() -> tuple[np.ndarray, np.ndarray]:
    """Features (18, y, x): t1, t2, t2 - t1; reference labels (y, x): 0 changed, 1 unchanged."""
    cube = stack_dates([read_envi(DATA / "2000TM"), read_envi(DATA / "2003TM")]).values
    t1, t2 = cube[..., 0], cube[..., 1]                  # (y, x, band)
    features = np.concatenate([t1, t2, t2 - t1], axis=-1).transpose(2, 0, 1)
    ref = import_mask_pair(DATA / "change.bmp", DATA / "unchanged.bmp", cube.shape[:2]).labels
    return features.astype(np.float32), ref.astype(np.int64)


def split(ref: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """50 training points per class from the west; all reference labels of the east."""
    rng = np.random.default_rng(seed)
    half = ref.shape[1] // 2
    train = np.full_like(ref, -1)
    for k in (0, 1):
        rows, cols = np.nonzero(ref[:, :half] == k)
        pick = rng.choice(rows.size, POINTS_PER_CLASS, replace=False)
        train[rows[pick], cols[pick]] = k
    test = np.full_like(ref, -1)
    test[:, half:] = ref[:, half:]
    return train, test


def change_magnitude(features: np.ndarray) -> np.ndarray:
    """The change-vector magnitude ||t2 - t1|| over the 6 bands, shape (1, y, x).

    Change vector analysis' classic change score; the network gets it as one more channel
    (normalised like the others) because it cannot cheaply form a norm of the differences
    from 100 labelled points itself. The forest keeps the 18 features.
    """
    return np.sqrt((features[12:18] ** 2).sum(0, keepdims=True))


def timelapse_volume(features: np.ndarray) -> np.ndarray:
    """The paper's time-lapse layout: channels t1, t2, t2 - t1, ||t2 - t1|| over (band, y, x).

    Each band is standardised with the statistics of both dates together (so that t2 - t1
    keeps its sign and scale), then the dates become channels and the bands a third spatial
    axis; the change magnitude, one value per pixel, is repeated along the bands.
    """
    t1, t2 = features[0:6], features[6:12]
    both = np.stack([t1, t2])
    mean = both.mean(axis=(0, 2, 3))[:, None, None]
    std = both.std(axis=(0, 2, 3))[:, None, None]
    t1, t2 = (t1 - mean) / std, (t2 - mean) / std
    difference = t2 - t1
    magnitude = np.sqrt((difference**2).sum(0, keepdims=True))
    return np.stack([t1, t2, difference, np.broadcast_to(magnitude, t1.shape)]).astype(np.float32)


def forest(features: np.ndarray, train: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.ensemble import RandomForestClassifier

    x = features.reshape(features.shape[0], -1).T
    known = train.ravel() >= 0
    rf = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=2)
    rf.fit(x[known], train.ravel()[known])
    return rf.predict(x).reshape(train.shape)


def with_level0_layers(design: NetworkDesign, first: int, last: int) -> NetworkDesign:
    """The design with ``first`` and ``last`` layers in its level-0 end segments."""
    segments = list(design.segments)
    segments[0] = dataclasses.replace(segments[0], layers=first)
    segments[-1] = dataclasses.replace(segments[-1], layers=last)
    return dataclasses.replace(design, segments=segments)


def flat_layout(features: np.ndarray, method: Method) -> tuple[np.ndarray, NetworkDesign]:
    """The 2D layout's input channels and design: bands x dates (+ ||d||) behind the zeros."""
    if method.cva:
        features = np.concatenate([features, change_magnitude(features)]).astype(np.float32)
    blank = 2 if method.zeros else 0
    return features, dataclasses.replace(DESIGN, in_channels=features.shape[0] + blank,
                                         zero_channels=blank)


def member_logits(data: np.ndarray, train: np.ndarray, design: NetworkDesign,
                  embedding: dict, seed: int, iterations: int, augment: bool,
                  cache: Path | None = None) -> torch.Tensor:
    """Logits of one network trained from ``seed`` on the training points: (2, y, x), or
    (2, band, y, x) for a time-lapse network labelled on every band slice.

    With ``cache`` the logits are kept there (``cached_logits_path``), so that methods
    sharing members (the same network, seed and points) train each member once; training
    on the CPU is deterministic, so a cached member equals a rerun.
    """
    config = TrainConfig(iterations=iterations, learning_rate=3e-3, schedule="cosine",
                         weight_decay=0.03, validation_fraction=0.0, validate_every=0,
                         seed=seed)
    path = None
    if cache is not None:
        path = cached_logits_path(cache, data, train, design, embedding, config, augment)
        if path.exists():
            return torch.from_numpy(np.load(path))
    task = SegmentationTask(data, train, 2, class_names=["changed", "unchanged"], **embedding)
    model = Trainer(task, design, config).run().model
    x = to_input(data, model.info.normalisation, model.design)
    logits = predict_logits(model.net, x, 2, fixed_axes=model.info.fixed_axes,
                            slice_axis=model.info.slice_axis,
                            slice_index=model.info.slice_index, augment=augment)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npy")
        np.save(partial, logits.numpy())
        partial.replace(path)
    return logits


def cached_logits_path(cache: Path, data: np.ndarray, train: np.ndarray,
                       design: NetworkDesign, embedding: dict, config: TrainConfig,
                       augment: bool) -> Path:
    """Where one network's logits are kept: a digest of everything that determines them.

    The inputs, points, design, embedding, training settings, augmentation, device and
    torch version - not fhn_core's code: empty the folder after changing how training or
    prediction works.
    """
    digest = hashlib.sha256()
    for part in (data, train):
        digest.update(repr((part.shape, part.dtype.str)).encode())
        digest.update(np.ascontiguousarray(part).tobytes())
    device = "cuda" if torch.cuda.is_available() and config.device != "cpu" else "cpu"
    digest.update(repr((design, sorted(embedding.items()), config, augment, device,
                        torch.__version__)).encode())
    return cache / f"{digest.hexdigest()[:32]}.npy"


def method_spec(name: str, timelapse_weight: float | None = None) -> tuple[Method, str]:
    """The named method, its time-lapse layout's weight replaced when one is given, and
    the label its rows are printed with."""
    if timelapse_weight is None:
        return METHODS[name], name
    return (METHODS[name]._replace(timelapse_weight=timelapse_weight),
            f"{name}, time-lapse weight {timelapse_weight}")


def network(features: np.ndarray, train: np.ndarray, seed: int, iterations: int,
            method: str | Method = DEFAULT_METHOD, cache: Path | None = None) -> np.ndarray:
    """Class map of the method's networks; an ensemble averages its members' logits.

    Member m trains from seed ``seed + 1000 m`` (initialisation and window draws) on the
    same points; member 0 is the plain network. Test-time augmentation averages each
    member's logits over the map's flips and transposes (fhn_core.prediction). The cva
    methods append ``change_magnitude`` as a 19th input channel; the zeros methods put two
    channels of zeros in front of the data (the design's ``zero_channels``), where the two
    class scores start. The mixed method gives its last 2D network more layers at full
    resolution (``with_level0_layers``), for the one-to-three-pixel changes that the
    coarse levels blur. Timelapse members use the paper's layout instead: a 3D design over
    (band, y, x) on ``timelapse_volume`` with two zero channels, the labels embedded at one
    band slice (eq. 3.20), or with ``timelapse_every_slice`` repeated on every band slice
    and the logits averaged over the bands; their augmentation never flips the band axis.
    Methods with a ``timelapse_weight`` average each layout's networks first and then
    weight the two averages (the balanced ones: 0.5, so the one time-lapse network weighs
    as much as the three 2D networks together); the others sum every network's logits.
    ``cache``: see ``member_logits``.
    """
    spec = METHODS[method] if isinstance(method, str) else method
    members: list[tuple[np.ndarray, np.ndarray, NetworkDesign, dict]] = []
    if spec.members:
        flat, design = flat_layout(features, spec)
        for m in range(spec.members):
            fine = spec.fine_last is not None and m == spec.members - 1
            members.append((flat, train, with_level0_layers(design, *spec.fine_last) if fine
                            else design, {}))
    if spec.timelapse_members:
        volume = timelapse_volume(features)
        design = (TIMELAPSE_DESIGN if spec.fine_timelapse is None
                  else with_level0_layers(TIMELAPSE_DESIGN, *spec.fine_timelapse))
        labels, embedding = train, TIMELAPSE_EMBEDDING
        if spec.timelapse_every_slice:
            labels = np.repeat(train[None], volume.shape[1], axis=0)
            embedding = {"fixed_axes": (0,)}
        members += [(volume, labels, design, embedding)] * spec.timelapse_members
    logits = [member_logits(data, labels, design, embedding, seed + 1000 * m, iterations,
                            spec.augment, cache)
              for m, (data, labels, design, embedding) in enumerate(members)]
    # a network labelled on every band slice predicts every slice: average over the bands
    logits = [member.mean(1) if member.ndim == 4 else member for member in logits]
    return combine_logits(logits, spec).argmax(0).numpy()


def combine_logits(logits: list[torch.Tensor], spec: Method) -> torch.Tensor:
    """The members' logits (2D networks first) summed, or each layout averaged and then
    weighted: (1 - w) * mean(2D) + w * mean(time-lapse), w = ``spec.timelapse_weight``.
    """
    if spec.timelapse_weight is None:
        return sum(logits)
    flat, timelapse = logits[:spec.members], logits[spec.members:]
    if not flat or not timelapse:
        return sum(logits) / len(logits)
    weight = spec.timelapse_weight
    return (1 - weight) * sum(flat) / len(flat) + weight * sum(timelapse) / len(timelapse)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=75)
    parser.add_argument("--method", choices=list(METHODS), default=DEFAULT_METHOD,
                        help="network method (default: the one chosen on the west proxy)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder keeping each network's logits, so that methods "
                             "sharing networks train them once")
    parser.add_argument("--timelapse-weight", type=float, default=None,
                        help="the time-lapse layout's share of the vote, replacing the "
                             "method's (0.5 balanced)")
    args = parser.parse_args(argv)
    spec, label = method_spec(args.method, args.timelapse_weight)
    if not DATA.is_dir():
        print(f"Taizhou data not found at {DATA}; clone with ../shared beside the repository")
        return 1
    features, ref = load_scene()
    rows = []
    for seed in args.seeds:
        train, test = split(ref, seed)
        runs = (
            ("random forest (200 trees, 18 features)", forest, (features, train, seed)),
            (f"fhn invertible network ({label})", network,
             (features, train, seed, args.iterations, spec, args.cache)),
        )
        for name, method, method_args in runs:
            start = time.perf_counter()
            m = evaluate(method(*method_args), test, 2)
            rows.append((seed, name, m.overall_accuracy, m.kappa, time.perf_counter() - start))
            print(f"seed {seed}  {name:<42} OA {m.overall_accuracy:.4f}  kappa {m.kappa:.4f}  "
                  f"({rows[-1][4]:.0f} s)", flush=True)
    print("\nmean over seeds")
    for name in dict.fromkeys(r[1] for r in rows):
        sel = [r for r in rows if r[1] == name]
        print(f"{name:<42} OA {np.mean([r[2] for r in sel]):.4f}  "
              f"kappa {np.mean([r[3] for r in sel]):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
