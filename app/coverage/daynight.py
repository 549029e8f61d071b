"""Coverage at two instants, side by side: "day vs night" per district.

Two runs of the same parameters (mode, target, resolution, demand) that differ only in
`open_at` — by default the next working weekday at 12:00 and at 22:00
(`app.hours.moments`) — come from the same engine and cache as every other run. They share
the demand grid (same resolution and weight), so their cells line up one to one and the
comparison is cell by cell:

* **share within the target** at each instant: covered demand ÷ demand of the district's
  cells (the summary's definition);
* **stations open** at each instant: stations located in the district that serve in the run
  (status open, open at that instant by their hours or of unknown hours, on the network);
* **lost at night**: demand of cells within the target at the day instant and beyond it (or
  unreachable) at the night instant; **gained at night** the reverse (a station open only at
  night). `night share − day share = (gained − lost) ÷ demand`.

The arithmetic (`compare_arrays`) is pure numpy; `compare` and `gap_rows` read the two runs
(in memory, no database).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from app.coverage.service import Run

#: The comparison's CSV columns, in order (the API's district rows carry the same keys).
COLUMNS = [
    "code",
    "name",
    "name_en",
    "demand",
    "demand_unit",
    "day_stations",
    "night_stations",
    "day_covered_demand",
    "night_covered_demand",
    "day_share",
    "night_share",
    "change_pp",
    "lost_at_night",
    "gained_at_night",
]


def compare_arrays(
    weights: NDArray[np.float64],
    cell_group: NDArray[np.intp],
    n_groups: int,
    day_minutes: NDArray[np.float64],
    night_minutes: NDArray[np.float64],
    target: float,
    day_station_group: NDArray[np.intp],
    night_station_group: NDArray[np.intp],
) -> list[dict[str, Any]]:
    """One row per group 0..n_groups-1 and a last row for all cells (group -1 cells count
    only there): demand, stations at each instant, covered demand, shares, change in
    percentage points, demand lost and gained at night."""
    day_ok = day_minutes <= target + 1e-9
    night_ok = night_minutes <= target + 1e-9
    rows = []
    for g in [*range(n_groups), None]:
        cells = np.ones(len(weights), dtype=bool) if g is None else cell_group == g
        w = weights[cells]
        total = float(w.sum())
        day_cov = float(w[day_ok[cells]].sum())
        night_cov = float(w[night_ok[cells]].sum())
        lost = float(w[day_ok[cells] & ~night_ok[cells]].sum())
        gained = float(w[~day_ok[cells] & night_ok[cells]].sum())
        day_st = len(day_station_group) if g is None else int((day_station_group == g).sum())
        night_st = len(night_station_group) if g is None else int((night_station_group == g).sum())
        day_share = day_cov / total if total > 0 else None
        night_share = night_cov / total if total > 0 else None
        rows.append(
            {
                "demand": round(total, 1),
                "day_stations": day_st,
                "night_stations": night_st,
                "day_covered_demand": round(day_cov, 1),
                "night_covered_demand": round(night_cov, 1),
                "day_share": None if day_share is None else round(day_share, 4),
                "night_share": None if night_share is None else round(night_share, 4),
                "change_pp": (
                    None
                    if day_share is None or night_share is None
                    else round(100 * (night_share - day_share), 2)
                ),
                "lost_at_night": round(lost, 1),
                "gained_at_night": round(gained, 1),
            }
        )
    return rows


def _check_aligned(day: Run, night: Run) -> None:
    same = (
        day.grid.n_cells == night.grid.n_cells
        and np.array_equal(day.grid.cells, night.grid.cells)
        and day.district_codes == night.district_codes
        and day.params.minutes == night.params.minutes
    )
    if not same:  # pragma: no cover (both runs share every parameter but open_at)
        raise ValueError("day and night runs must share the grid, districts and target")


def compare(day: Run, night: Run, lang: str) -> dict[str, Any]:
    """{"districts": rows (with code, names, label, unit), "overall": row} of the two runs."""
    _check_aligned(day, night)
    rows = compare_arrays(
        day.weights,
        day.cell_district,
        len(day.district_codes),
        day.model.minutes,
        night.model.minutes,
        float(day.params.minutes),
        day.station_district,
        night.station_district,
    )
    unit = day.unit["en" if lang == "en" else "zh"]
    out = []
    for i, code in enumerate(day.district_codes):
        name, name_en = day.district_names[i]
        label = (name_en if lang == "en" else None) or name or code
        out.append(
            {
                "code": code,
                "name": name,
                "name_en": name_en,
                "label": label,
                "demand_unit": unit,
                **rows[i],
            }
        )
    overall = {"code": None, "name": None, "name_en": None, "label": "", "demand_unit": unit}
    return {"districts": out, "overall": {**overall, **rows[-1]}}


def gap_rows(
    run: Run, other: Run, district: str | None, limit: int, lang: str
) -> list[dict[str, Any]]:
    """The `limit` largest gap pieces of `run` (by uncovered demand; one district each, as
    the planner's gap list cuts them), each with the part of its demand that `other` covers
    (for the night's pieces: what the day covered and night lost)."""
    _check_aligned(run, other)
    names = {
        code: ((run.district_names[i][1] if lang == "en" else None) or run.district_names[i][0])
        for i, code in enumerate(run.district_codes)
    }
    other_ok = other.model.minutes <= other.params.minutes + 1e-9
    out = []
    for g in run.gap_pieces(district, limit):
        cells = np.asarray(g.cells, dtype=np.intp)
        out.append(
            {
                "rank": g.rank,
                "gap": g.gap,
                "uncovered_demand": round(float(g.demand), 1),
                "covered_by_other": round(float(run.weights[cells][other_ok[cells]].sum()), 1),
                "area_km2": round(float(g.area_km2), 3),
                "districts": [names.get(g.district) or str(g.district)] if g.district else [],
            }
        )
    return out
