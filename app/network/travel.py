"""Travel modes: which OSM road classes each mode may use, how fast, and which way.

Pure Python (numpy only). The app builds a `TravelSettings` from its Settings; everything else
takes it as a plain value.

Modes and the rules chosen (every set is explicit; a class in no set is usable by no mode, so
`construction`, `proposed`, `raceway`, `busway`, `platform` … are never routed on):

* **walk** (sanitation workers, anyone on foot), `walk_kmh` = 5, on every class in
  `WALK_CLASSES`: all ordinary streets and all paths, steps and indoor corridors. Not on
  `motorway`/`motorway_link` (forbidden to pedestrians), and **not on `trunk`/`trunk_link`
  either**: in Chinese OSM data `trunk` is mostly the urban expressway (城市快速路, e.g. Wuhan's
  elevated ring roads) and its ramps, closed to pedestrians and non-motor vehicles. Ground-level
  national roads tagged `trunk` do exist in the suburbs; excluding them errs towards showing a
  gap rather than hiding one (a deployment can add them through `walk_classes`). Walking ignores
  one-way rules.
* **ebike** (couriers and delivery riders; electric bicycles are non-motor vehicles under
  GB 17761-2018), `ebike_kmh` = 15 (a 25 km/h legal maximum less junctions and signals), ridden
  on `EBIKE_CLASSES`: not on motorways or trunk roads (the law keeps non-motor vehicles off
  highways and urban expressways), not on steps or indoor corridors. On `EBIKE_PUSH_CLASSES`
  (pedestrian streets, footways, paths) the rider may *push* the bike at walking speed, as a
  pedestrian, so a pedestrian street is a slow connection, not a wall. Riding obeys one-way
  rules (riding against the traffic, 逆行, is an offence for non-motor vehicles too); pushing
  does not.
* **car** (taxi drivers), speed by road class from `car_kmh_by_class`; the classes in that table
  are exactly the ones a car may use (`DEFAULT_CAR_KMH`: no footway, path, cycleway, steps,
  pedestrian, bridleway, corridor or track). The defaults are congestion-aware urban averages
  including signals, not speed limits. Cars obey one-way rules.

The stretch between a query point and the road network is always walked, at `walk_kmh`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.network.modes import Mode as Mode  # re-exported: its home has no numpy (CLI)

WALK_CLASSES: frozenset[str] = frozenset(
    {
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "road",
        "pedestrian",
        "footway",
        "path",
        "cycleway",
        "steps",
        "track",
        "bridleway",
        "corridor",
    }
)

EBIKE_CLASSES: frozenset[str] = frozenset(
    {
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "road",
        "cycleway",
        "track",
    }
)

#: Classes where an e-bike rider gets off and pushes: walking speed, no one-way rule.
EBIKE_PUSH_CLASSES: frozenset[str] = frozenset({"pedestrian", "footway", "path"})

DEFAULT_CAR_KMH: Mapping[str, float] = MappingProxyType(
    {
        "motorway": 80.0,
        "motorway_link": 40.0,
        "trunk": 60.0,
        "trunk_link": 30.0,
        "primary": 40.0,
        "primary_link": 30.0,
        "secondary": 35.0,
        "secondary_link": 25.0,
        "tertiary": 30.0,
        "tertiary_link": 20.0,
        "unclassified": 25.0,
        "residential": 20.0,
        "road": 20.0,
        "living_street": 10.0,
        "service": 10.0,
    }
)


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: must be a positive number, got {value!r}")


@dataclass(frozen=True)
class TravelSettings:
    """Speeds, class sets and the off-network limit; defaults are the documented choices."""

    walk_kmh: float = 5.0
    ebike_kmh: float = 15.0
    car_kmh_by_class: Mapping[str, float] = field(default_factory=lambda: DEFAULT_CAR_KMH)
    walk_classes: frozenset[str] = WALK_CLASSES
    ebike_classes: frozenset[str] = EBIKE_CLASSES
    ebike_push_classes: frozenset[str] = EBIKE_PUSH_CLASSES
    #: A query point further than this from every road the mode may use is rejected.
    max_off_network_m: float = 500.0

    def __post_init__(self) -> None:
        _positive("walk_kmh", self.walk_kmh)
        _positive("ebike_kmh", self.ebike_kmh)
        _positive("max_off_network_m", self.max_off_network_m)
        for cls, kmh in self.car_kmh_by_class.items():
            _positive(f"car_kmh_by_class.{cls}", kmh)
        object.__setattr__(self, "car_kmh_by_class", MappingProxyType(dict(self.car_kmh_by_class)))
        object.__setattr__(self, "walk_classes", frozenset(self.walk_classes))
        object.__setattr__(self, "ebike_classes", frozenset(self.ebike_classes))
        object.__setattr__(
            self, "ebike_push_classes", frozenset(self.ebike_push_classes) - self.ebike_classes
        )

    def __hash__(self) -> int:
        return hash(
            (
                self.walk_kmh,
                self.ebike_kmh,
                tuple(sorted(self.car_kmh_by_class.items())),
                self.walk_classes,
                self.ebike_classes,
                self.ebike_push_classes,
                self.max_off_network_m,
            )
        )

    @property
    def walk_mps(self) -> float:
        """Walking speed in metres per second (also used off the network in every mode)."""
        return self.walk_kmh / 3.6


DEFAULT_SETTINGS = TravelSettings()


def allowed_classes(
    mode: Mode | str, settings: TravelSettings = DEFAULT_SETTINGS
) -> frozenset[str]:
    """Every highway class the mode may travel on at all (the filter for snapping a point)."""
    mode = Mode(mode)
    if mode is Mode.WALK:
        return settings.walk_classes
    if mode is Mode.EBIKE:
        return settings.ebike_classes | settings.ebike_push_classes
    return frozenset(settings.car_kmh_by_class)


def class_speeds_kmh(
    mode: Mode | str, settings: TravelSettings = DEFAULT_SETTINGS
) -> dict[str, float]:
    """Speed on each allowed class, km/h."""
    mode = Mode(mode)
    if mode is Mode.WALK:
        return dict.fromkeys(settings.walk_classes, settings.walk_kmh)
    if mode is Mode.EBIKE:
        speeds = dict.fromkeys(settings.ebike_push_classes, settings.walk_kmh)
        speeds.update(dict.fromkeys(settings.ebike_classes, settings.ebike_kmh))
        return speeds
    return dict(settings.car_kmh_by_class)


def max_speed_mps(mode: Mode | str, settings: TravelSettings = DEFAULT_SETTINGS) -> float:
    """The fastest the mode can go anywhere, off-network walking included (m/s).

    Network seconds ≥ straight-line metres / this speed, because edge lengths follow the road:
    a bound to stop widening a straight-line candidate list for "nearest by network time".
    """
    return max([settings.walk_kmh, *class_speeds_kmh(mode, settings).values()]) / 3.6


def obeys_oneway_classes(
    mode: Mode | str, settings: TravelSettings = DEFAULT_SETTINGS
) -> frozenset[str]:
    """Classes on which the mode must follow one-way rules (none when walking or pushing)."""
    mode = Mode(mode)
    if mode is Mode.WALK:
        return frozenset()
    if mode is Mode.EBIKE:
        return settings.ebike_classes
    return frozenset(settings.car_kmh_by_class)


@dataclass(frozen=True, eq=False)
class EdgeCosts:
    """Per edge: travel seconds end to end (inf where not allowed) and the usable directions."""

    seconds: NDArray[np.float64]
    forward: NDArray[np.bool_]  # source → target
    backward: NDArray[np.bool_]  # target → source


def edge_costs(
    mode: Mode | str,
    length_m: ArrayLike,
    highway: Sequence[str] | NDArray[np.str_] | NDArray[np.object_],
    oneway: ArrayLike,
    settings: TravelSettings = DEFAULT_SETTINGS,
) -> EdgeCosts:
    """Travel seconds and allowed directions of every edge for a mode.

    `oneway` is OSM-like: 0 both ways, 1 only source→target, -1 only target→source.
    """
    length = np.asarray(length_m, dtype=np.float64)
    ow = np.asarray(oneway, dtype=np.int8)
    classes, inverse = np.unique(np.asarray(highway, dtype=str), return_inverse=True)
    inverse = inverse.reshape(-1)
    if not (length.shape == ow.shape == inverse.shape):
        raise ValueError("length_m, highway and oneway must have the same length")
    if np.any(~np.isfinite(length) | (length < 0)):
        raise ValueError("length_m: every length must be finite and ≥ 0")
    if np.any((ow != 0) & (ow != 1) & (ow != -1)):
        raise ValueError("oneway: values must be 0, 1 or -1")

    speeds = class_speeds_kmh(mode, settings)
    strict = obeys_oneway_classes(mode, settings)
    class_mps = np.array([speeds.get(str(c), np.nan) / 3.6 for c in classes], dtype=np.float64)
    class_strict = np.array([str(c) in strict for c in classes], dtype=bool)

    mps = class_mps[inverse] if len(classes) else np.empty(0)
    allowed = np.isfinite(mps)
    with np.errstate(invalid="ignore", divide="ignore"):
        seconds = np.where(allowed, length / np.where(allowed, mps, 1.0), np.inf)
    obey = class_strict[inverse] if len(classes) else np.empty(0, dtype=bool)
    forward = allowed & ~(obey & (ow == -1))
    backward = allowed & ~(obey & (ow == 1))
    return EdgeCosts(seconds=seconds, forward=forward, backward=backward)
