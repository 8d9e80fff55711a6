"""Training: `resdsl train` (plan, session), trained runs opened for eval and analysis, data sets, the shared training core and the standalone script."""
