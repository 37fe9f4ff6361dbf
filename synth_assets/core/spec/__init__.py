"""The calibrated spec: the metrics pack after consistency post-processing, overrides and sizes.

Post-processing of DP output spends no budget. The spec is everything the generator sees.
"""

from .calibration import SPEC_FORMAT, SPEC_VERSION, calibrate, canonical_json, content_hash
from .columns import _null_fix
from .denoise import (
    SIZE_TAIL_SIGMAS,
    connected_to_signal,
    denoise,
    denoise_fanout,
    denoise_marginal,
    denoise_ordered,
    denoise_tail,
    ipf,
    normalize,
    pair_joint,
    project,
    separable_how,
    significant,
    smooth_days,
    smooth_how,
    tail_support,
)
from .rules import check_rules
from .sizing import (
    SIZE_FACTOR,
    SIZE_FLOOR_SIGMAS,
    child_source_rows,
    fanout_mids,
    released_rows,
    size_bounds,
    tilt_fanout,
)

__all__ = [
    "SIZE_FACTOR",
    "SIZE_FLOOR_SIGMAS",
    "SIZE_TAIL_SIGMAS",
    "SPEC_FORMAT",
    "SPEC_VERSION",
    "_null_fix",
    "calibrate",
    "canonical_json",
    "check_rules",
    "connected_to_signal",
    "child_source_rows",
    "content_hash",
    "denoise",
    "denoise_fanout",
    "denoise_marginal",
    "denoise_ordered",
    "denoise_tail",
    "fanout_mids",
    "ipf",
    "normalize",
    "pair_joint",
    "project",
    "released_rows",
    "significant",
    "size_bounds",
    "smooth_days",
    "separable_how",
    "smooth_how",
    "tail_support",
    "tilt_fanout",
]
