"""Street names for suggested sites (pure: no database).

A suggested site is a point snapped onto an edge of the network. When the network carries
street names (an OSM PBF's `name:zh`/`name`, an edge table's `name` column or property), the
site takes the name of the edge it sits on; on an unnamed edge (a service road, a footway, a
link) the name of the nearest named edge the run's mode may use, up to STREET_NEAR_M away,
measured to the edge's geometry (not its midpoint: a long street's middle may be far from a
site on it); else none, and the caller names the site by its nearest station instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

#: A site on an unnamed edge takes the name of a named edge up to this far (metres).
STREET_NEAR_M = 150.0
#: Metres per degree of latitude, and of longitude at the equator (local equirectangular;
#: over 150 m its error is far below a metre).
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0


@dataclass(frozen=True, eq=False)
class NamedStreets:
    """The named edges of a network that a mode may use, indexed for "nearest named edge"."""

    names: Sequence[str | None]
    #: Edge indices of the named, usable edges; tree item i is edge index[i].
    index: NDArray[np.intp]
    geometry: NDArray[np.object_]
    tree: shapely.STRtree

    @classmethod
    def build(
        cls,
        names: Sequence[str | None],
        geometry: NDArray[np.object_] | Sequence[Any],
        usable: NDArray[np.bool_] | None = None,
    ) -> NamedStreets:
        """From each edge's name (None when unnamed) and WGS-84 LineString; `usable` (per
        edge) keeps only the edges the mode may use as neighbours to borrow a name from."""
        named = np.asarray([n is not None for n in names], dtype=bool)
        if usable is not None:
            named &= np.asarray(usable, dtype=bool)
        index = np.flatnonzero(named).astype(np.intp)
        geoms = np.asarray(geometry, dtype=object)[index]
        return cls(names=names, index=index, geometry=geoms, tree=shapely.STRtree(geoms))

    def street_at(
        self, lon: float, lat: float, edge: int | None, radius_m: float = STREET_NEAR_M
    ) -> tuple[str | None, float | None]:
        """The street name of a site at (lon, lat) snapped onto `edge` (an index, or None
        when unknown), and its distance in metres: 0 on a named edge of its own, else the
        nearest named edge's within `radius_m` (ties: the lower edge index); (None, None)
        when there is none."""
        if edge is not None and 0 <= edge < len(self.names):
            own = self.names[edge]
            if own is not None:
                return own, 0.0
        if not len(self.index):
            return None, None
        kx = M_PER_DEG_LON * max(math.cos(math.radians(lat)), 1e-6)
        dx, dy = radius_m / kx, radius_m / M_PER_DEG_LAT
        hits = self.tree.query(shapely.box(lon - dx, lat - dy, lon + dx, lat + dy))
        if not len(hits):
            return None, None
        scale = np.asarray([kx, M_PER_DEG_LAT])
        origin = np.asarray([lon, lat])
        local = shapely.transform(self.geometry[hits], lambda xy: (xy - origin) * scale)
        dist = shapely.distance(local, shapely.Point(0.0, 0.0))
        order = np.lexsort((self.index[hits], dist))
        best = int(order[0])
        if not dist[best] <= radius_m:
            return None, None
        return self.names[int(self.index[hits[best]])], float(dist[best])
