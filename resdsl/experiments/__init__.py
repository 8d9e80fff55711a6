"""The experiment layer: sweeps over a grid of `--set` values (Optuna), reports in the paper's shape
(Table 6, Fig. 6, Fig. 4) and the paper's reference values. Above `train`, below `cli`."""
