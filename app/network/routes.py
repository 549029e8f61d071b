"""Travel-time routes: isochrones from a point and station service areas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import DbDep, NetworkDep
from app.api.openapi import GEOJSON, IsochroneCollection, ServiceAreaCollection, body, errors
from app.api.params import CoordSysQ, LatQ, LonQ, StationId
from app.api.responses import GeoJSONResponse, dumps
from app.errors import InvalidInputError
from app.geo import coords
from app.network import service
from app.network.travel import Mode

router = APIRouter(prefix="/api/v1", tags=["network"])

ModeQ = Annotated[Mode, Query(description="walk (5 km/h), ebike (15 km/h) or car")]
MinutesQ = Annotated[
    str, Query(max_length=40, description="whole minutes 1-60, or nested rings: 5,10,15")
]


@router.get(
    "/isochrones",
    summary="Where a worker at a point gets within N minutes on the road network",
    response_class=GeoJSONResponse,
    responses=body(IsochroneCollection, media=GEOJSON) | errors(409, 422, 503),
)
async def isochrones(
    db: DbDep,
    state: NetworkDep,
    lat: LatQ,
    lon: LonQ,
    mode: ModeQ = Mode.WALK,
    minutes: MinutesQ = "15",
    coord_sys: CoordSysQ = "wgs84",
) -> Response:
    rings = service.parse_minutes(minutes)
    try:
        wlon, wlat = coords.to_wgs84(lon, lat, coord_sys)
    except ValueError as exc:
        raise InvalidInputError(str(exc), field="lat/lon") from exc

    def work() -> bytes:
        with db.read() as conn:
            return dumps(
                service.isochrone_collection(conn, state, wlon, wlat, mode, rings, coord_sys)
            )

    return Response(await run_in_threadpool(work), media_type=GeoJSONResponse.media_type)


@router.get(
    "/stations/{station_id:int}/service-area",
    summary="From where workers reach a station within N minutes (cached)",
    response_class=GeoJSONResponse,
    responses=body(ServiceAreaCollection, media=GEOJSON) | errors(404, 409, 422, 503),
)
async def service_area(
    db: DbDep,
    state: NetworkDep,
    station_id: StationId,
    mode: ModeQ = Mode.WALK,
    minutes: MinutesQ = "15",
    coord_sys: CoordSysQ = "wgs84",
) -> Response:
    rings = service.parse_minutes(minutes)

    def work() -> bytes:
        with db.write() as conn:  # a miss stores the computed rings
            return service.service_area_response(conn, state, station_id, mode, rings, coord_sys)

    return Response(await run_in_threadpool(work), media_type=GeoJSONResponse.media_type)
