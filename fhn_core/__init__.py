"""fhn_core: the fully invertible hyperbolic network and its training (pure torch + numpy).

One concept per module, in the order they build on each other:
haar -> layers -> design -> reversible -> network -> losses -> memory -> paper
-> diagnostics -> stability -> coarse -> metrics -> sampler -> memory_check -> training
-> prediction (with stratigraphy and priors).
"""

from .design import NetworkDesign, Segment
from .diagnostics import diagnostics
from .errors import FhnError
from .losses import class_scores, partial_cross_entropy
from .memory import estimate_memory
from .network import HyperbolicNetwork

__all__ = [
    "FhnError",
    "HyperbolicNetwork",
    "NetworkDesign",
    "Segment",
    "class_scores",
    "diagnostics",
    "estimate_memory",
    "partial_cross_entropy",
]
