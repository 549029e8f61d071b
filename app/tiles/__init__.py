"""Vector tiles (Mapbox Vector Tile) of stations and coverage cells, made by PostGIS."""
