"""Planner-imported demand layers: weights (population, delivery orders …) on H3 cells."""
