"""yizhan (驿站): union rest stations for outdoor workers, on real PostGIS."""

__version__ = "0.1.0"
