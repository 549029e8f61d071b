"""Time bands and the minutes shown beside them: one rule decides both.

A cell's **band** is '0-5', '5-10', '10-15' … up to the target minutes (each band includes its
upper edge: exactly 10.0 minutes is in '5-10'), and 'gap' beyond the target or when no station
can be reached.

The **minutes shown** (cells' GeoJSON and CSV, vector tiles, the gap and summary figures) are
the minutes **rounded up** to 0.1. Plain rounding contradicts the bands: 10.02 minutes is in
'10-15' but rounds to "10.0", which reads as the '5-10' band, and a 15.04-minute gap rounds to
"15.0", which reads as within a 15-minute target. Rounded up, 10.02 shows "10.1" and 15.04
"15.1", while 10.0 stays "10.0" and 14.96 shows "15.0" (in '10-15', which includes 15): as the
band edges are whole minutes, the shown value always lies in the band the cell is coloured and
counted in, and never understates the time to a station (by at most 0.1 minute). Minutes
within `EDGE_TOLERANCE` above a tenth count as on it, as they do for the band. Unreachable
cells show no minutes (None).

Pure Python, no database (the tiles' SQL repeats the rule: `app/tiles/queries.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Minutes within this of an edge count as on it (floating-point noise of the searches).
EDGE_TOLERANCE = 1e-9
#: Decimals of the minutes shown.
SHOWN_DECIMALS = 1


def band_label(minutes: float, bands: Sequence[float], target: float) -> str:
    """'0-5', '5-10', '10-15' … up to the target; beyond it (or unreachable) 'gap'."""
    if not math.isfinite(minutes) or minutes > target + EDGE_TOLERANCE:
        return "gap"
    lo: float = 0
    for b in sorted(bands):
        if b > target:
            break
        if minutes <= b + EDGE_TOLERANCE:
            return f"{lo:g}-{b:g}"
        lo = b
    return f"{lo:g}-{target:g}"


def shown_minutes(minutes: float | None) -> float | None:
    """The minutes as shown: rounded up to 0.1 (see the module docstring), so that they fall
    in the band of `minutes` whenever the band edges are whole minutes. None when unreachable."""
    if minutes is None or not math.isfinite(minutes):
        return None
    scale = 10**SHOWN_DECIMALS
    return max(0.0, math.ceil((minutes - EDGE_TOLERANCE) * scale) / scale)
