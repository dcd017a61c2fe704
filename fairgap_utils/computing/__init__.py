"""The machinery that computes results: what a profile needs and its keys (`pipeline`), the processes that
share the work (`workers`), time estimates (`estimate`), submitit / SLURM jobs (`launcher`), the
learning-rate search and KeepGap's calibration (`tune`), checkpoints and claims (`artifacts`).

The science it runs (data, models, hooks, fairness, attacks, metrics, train, unlearn/) sits one level
up, in `fairgap_utils`; the book reads the result files without importing this sub-package.
"""
