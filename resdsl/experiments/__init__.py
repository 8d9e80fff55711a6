"""The experiment layer, above `train` and below `cli`: sweeps over a grid of `--set` values (Optuna),
reports in the paper's shape (Table 6, Fig. 6, Fig. 4) with the paper's reference values, and looks
inside trained runs (layer responses, Fig. 7; NIN's class confidence maps)."""
