"""Planner's view: demand cells, coverage, gaps, over-density and site suggestions."""
