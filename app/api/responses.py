"""Fast JSON responses: orjson bytes, GeoJSON media type where the body is GeoJSON."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def dumps(content: Any) -> bytes:
    """Serialise to UTF-8 JSON bytes (Chinese text kept as is, datetimes in ISO 8601)."""
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class JSONBytesResponse(Response):
    """`application/json` serialised with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class GeoJSONResponse(JSONBytesResponse):
    """`application/geo+json` (RFC 7946)."""

    media_type = "application/geo+json"
