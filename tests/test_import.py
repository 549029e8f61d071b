"""All-or-nothing imports of station FeatureCollections, and the shipped demo sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from app.accounts.policy import SYSTEM
from app.errors import InvalidInputError
from app.stations import service
from app.stations.importer import read_collection
from app.stations.vocab import AMENITY_CODES
from tests.factories import feature

DEMO = Path(__file__).resolve().parents[1] / "geodata" / "wuhan_demo_stations.geojson"


def write(tmp_path: Path, features: list[dict], name: str = "in.geojson") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return p


def count(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM stations")).scalar_one()


def test_import_then_reimport_updates_in_place(conn, tmp_path, ctx):
    feats = [feature(f"I-{i}", lon=114.2 + i / 100, lat=30.5) for i in range(5)]
    assert (
        service.import_collection(
            conn, read_collection(write(tmp_path, feats)).features, ctx, SYSTEM
        )
        == 5
    )
    feats[0]["properties"]["name"] = "改名后的驿站"
    service.import_collection(conn, read_collection(write(tmp_path, feats)).features, ctx, SYSTEM)
    assert count(conn) == 5
    row = conn.execute(text("SELECT name, version FROM stations WHERE external_id = 'I-0'")).one()
    assert row == ("改名后的驿站", 2)


def test_one_bad_feature_rejects_the_whole_file_naming_it(conn, tmp_path, ctx):
    feats = [feature(f"I-{i}") for i in range(4)]
    feats[2]["properties"]["amenities"] = ["sauna"]
    with pytest.raises(InvalidInputError, match=r"features\.2\.properties\.amenities"):
        read_collection(write(tmp_path, feats))
    assert count(conn) == 0


def test_duplicate_external_ids_in_one_file_are_rejected(conn, tmp_path, ctx):
    feats = [feature("SAME"), feature("OTHER"), feature("SAME")]
    coll = read_collection(write(tmp_path, feats))
    with pytest.raises(InvalidInputError, match=r"features\[2\].*SAME"):
        service.import_collection(conn, coll.features, ctx, SYSTEM)
    assert count(conn) == 0


@pytest.mark.parametrize(
    "content", [b"", b"not json", b"\xff\xfe\x00", b'{"type": "Feature"}', b"[]"]
)
def test_unreadable_files_are_clear_errors(tmp_path, content):
    p = tmp_path / "bad.geojson"
    p.write_bytes(content)
    with pytest.raises(InvalidInputError):
        read_collection(p)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_collection(tmp_path / "nope.geojson")


def test_demo_sample_is_valid_realistic_and_inside_wuhan(conn, ctx):
    raw = json.loads(DEMO.read_text("utf-8"))
    assert raw.get("sample_data") is True
    coll = read_collection(DEMO)
    n = len(coll.features)
    assert 200 <= n <= 1000
    for f in coll.features:
        assert 113.98 <= f.geometry.lon <= 114.55
        assert 30.38 <= f.geometry.lat <= 30.78
        assert f.properties.district_code and f.properties.district_code.startswith("4201")
    service.import_collection(conn, coll.features, ctx, SYSTEM)
    assert count(conn) == n
    # varied: many host types, every amenity somewhere, a mix of statuses
    hosts = conn.execute(text("SELECT count(DISTINCT host_type) FROM stations")).scalar_one()
    assert hosts >= 6
    used = set(conn.execute(text("SELECT DISTINCT unnest(amenities) FROM stations")).scalars())
    assert used == set(AMENITY_CODES)
    statuses = set(conn.execute(text("SELECT DISTINCT status FROM stations")).scalars())
    assert "open" in statuses and len(statuses) >= 2
    # denser in the centre than at the edges: the old town (Jianghan Road ±3 km) holds far more
    # stations per km² than the whole box does on average
    centre = conn.execute(
        text(
            "SELECT count(*) FROM stations WHERE ST_DWithin(geom::geography, "
            "ST_SetSRID(ST_MakePoint(114.29, 30.58), 4326)::geography, 3000)"
        )
    ).scalar_one()
    centre_density = centre / (3.14159 * 9)
    box_km2 = 0.57 * 96.0 * 0.40 * 111.0
    assert centre_density > 4 * (n / box_km2)
