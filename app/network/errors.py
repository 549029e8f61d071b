"""Errors of the road-network import and lookups (domain errors: 4xx/503 in the API)."""

from __future__ import annotations

from app.errors import ConflictError, InvalidInputError, ServiceUnavailableError

NO_NETWORK_MESSAGE = (
    "network: no road network loaded yet; load one with `yizhan network demo` (the Wuhan "
    "sample) or `yizhan network import FILE` (.osm.pbf, .parquet or .geojson)"
)


class NetworkImportError(InvalidInputError):
    """A network file that cannot be imported; nothing was written, the live network stays."""

    def __init__(self, detail: str, field: str = "file") -> None:
        super().__init__(detail, field=field)


class NoNetworkError(ConflictError):
    """No road network is live yet (409: the request needs a state the server is not in; the
    message says how to load one)."""

    def __init__(self, detail: str = NO_NETWORK_MESSAGE) -> None:
        super().__init__(detail, field="network")


class SourceUnavailableError(ServiceUnavailableError):
    """A sample data set could not be fetched (no registry access, changed upload…)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="source")
