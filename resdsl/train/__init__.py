"""Training: the runner behind `resdsl train`, data sets, the shared training core and the standalone script."""
