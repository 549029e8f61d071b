"""Helpers that build valid station Features and insert many stations fast."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection


def feature(
    external_id: str = "T-0001",
    lon: float = 114.2875,
    lat: float = 30.5825,
    **props: Any,
) -> dict[str, Any]:
    """A valid station Feature; keyword arguments override properties."""
    base: dict[str, Any] = {
        "external_id": external_id,
        "name": "江汉路街道户外劳动者服务站点",
        "address": "武汉市江汉区江汉路100号",
        "district_code": "420103",
        "host_type": "community",
        "operator": "江汉区总工会",
        "access": "outdoor_workers",
        "amenities": ["drinking_water", "microwave"],
        "opening_hours": "Mo-Su 08:00-20:00",
        "status": "open",
        "phone": "027-85551234",
        "capacity": 12,
    }
    base.update(props)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": base,
    }


def bulk_insert(
    conn: Connection, points: list[tuple[float, float, list[str], str]], prefix: str = "B"
) -> list[int]:
    """Insert (lon, lat, amenities, status) rows directly; returns their ids in order."""
    ids: list[int] = []
    stmt = text(
        "INSERT INTO stations (external_id, name, amenities, status, geom) "
        "VALUES (:e, :n, CAST(:a AS text[]), :s, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
        "RETURNING id"
    )
    for i, (lon, lat, amenities, status) in enumerate(points):
        row = conn.execute(
            stmt,
            {
                "e": f"{prefix}-{i:06d}",
                "n": f"站点{i}",
                "a": "{" + ",".join(amenities) + "}",
                "s": status,
                "lon": lon,
                "lat": lat,
            },
        )
        ids.append(int(row.scalar_one()))
    return ids
