"""Pure computations, no database: parsing, vocabularies, settings, error shaping."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import Settings, normalise_database_url
from app.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    status_for,
    validation_body,
)
from app.stations.schemas import (
    PointGeometry,
    check_lon_lat,
    normalise_amenities,
    parse_bbox,
    parse_csv_codes,
)
from app.stations.vocab import AMENITIES, AMENITY_CODES, HOST_TYPES, STATUS_CODES


def test_amenity_vocabulary_is_complete_and_bilingual():
    required = {
        "drinking_water",
        "hot_water",
        "microwave",
        "fridge",
        "phone_charging",
        "ebike_charging",
        "toilet",
        "air_conditioning",
        "heating",
        "seating",
        "first_aid",
        "wifi",
        "rain_shelter",
        "lockers",
        "accessible_entrance",
    }
    assert required <= set(AMENITY_CODES)
    assert len(set(AMENITY_CODES)) == len(AMENITY_CODES)
    for term in (*AMENITIES, *HOST_TYPES):
        assert term.zh and term.en and term.code.isascii()


def test_normalise_amenities_dedupes_and_orders():
    assert normalise_amenities(["wifi", "toilet", "wifi"]) == ["toilet", "wifi"]
    assert normalise_amenities([]) == []
    with pytest.raises(ValueError, match="'sauna'"):
        normalise_amenities(["toilet", "sauna"])


def test_parse_csv_codes():
    assert parse_csv_codes(None, STATUS_CODES, "status") == []
    assert parse_csv_codes(" open ,closed,open", STATUS_CODES, "status") == ["open", "closed"]
    with pytest.raises(ValueError, match=r"^status: unknown value 'shut'"):
        parse_csv_codes("open,shut", STATUS_CODES, "status")


def test_parse_bbox_accepts_good_boxes():
    assert parse_bbox("113.98,30.38,114.55,30.78") == (113.98, 30.38, 114.55, 30.78)
    assert parse_bbox(" -180, -90, 180, 90 ") == (-180, -90, 180, 90)
    assert parse_bbox("1e1,2,3e1,4") == (10.0, 2.0, 30.0, 4.0)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1,2,3",
        "1,2,3,4,5",
        "a,2,3,4",
        "nan,2,3,4",
        "inf,2,3,4",
        "3,2,1,4",
        "1,4,3,2",
        "1,2,181,4",
        "1,-91,3,4",
        "0x10,2,3,4",
    ],
)
def test_parse_bbox_rejects(raw):
    with pytest.raises(ValueError):
        parse_bbox(raw)


@given(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_check_lon_lat_accepts_exactly_finite_in_range(lon, lat):
    ok = math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90
    if ok:
        check_lon_lat(lon, lat)
    else:
        with pytest.raises(ValueError):
            check_lon_lat(lon, lat)


def test_point_geometry_keeps_lon_lat_order():
    p = PointGeometry(type="Point", coordinates=[114.3, 30.6, 25.0])
    assert (p.lon, p.lat) == (114.3, 30.6)
    with pytest.raises(ValueError):
        PointGeometry(type="Point", coordinates=[30.6, 114.3 + 100])


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("postgres://u:p@h:5/d", "postgresql+psycopg://u:p@h:5/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg2://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
    ],
)
def test_database_url_is_normalised_to_psycopg3(given_url, expected):
    assert normalise_database_url(given_url) == expected


def test_settings_read_unprefixed_env(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://a@b/c")
    monkeypatch.setenv("ADMIN_TOKEN", "s3cret")
    monkeypatch.setenv("YIZHAN_MAX_BODY_BYTES", "1234")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url == "postgresql+psycopg://a@b/c"
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert s.max_body_bytes == 1234


def test_error_table_and_validation_shape():
    assert status_for(NotFoundError("x")) == 404
    assert status_for(ConflictError("x")) == 409
    assert status_for(InvalidInputError("x")) == 422
    body = validation_body(
        [{"loc": ("body", "properties", "name"), "msg": "Value error, too long", "type": "v"}]
    )
    assert body["detail"] == "properties.name: too long"
    assert body["errors"][0]["field"] == "properties.name"


@given(
    st.datetimes(
        min_value=datetime(2026, 1, 1),
        max_value=datetime(2027, 1, 1),
        timezones=st.just(UTC),
    ),
    st.sampled_from(
        [
            "24/7",
            "Mo-Fr 09:00-17:00; PH off",
            "Mo-Su 22:00-06:00",
            "Su 20:00-24:00; Mo 00:00-08:00",
            "Mo-Fr 08:30-17:45; Sa 09:15-12:00",
            None,
        ]
    ),
    st.sampled_from(["open", "temporarily_closed"]),
)
def test_minute_memo_of_station_state_is_exact(at, hours, status):
    from app.hours import default_calendar, describe, station_state
    from app.stations.service import _state

    cal = default_calendar()
    direct = describe(station_state(hours, status, at, "Asia/Shanghai", cal), at, "Asia/Shanghai")
    assert _state(hours, status, at, "Asia/Shanghai", cal) == direct
