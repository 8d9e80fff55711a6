"""Experiments on trained runs: layer responses (resdsl responses) and class confidence maps (resdsl maps)."""
