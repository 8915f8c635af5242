"""Hyperparameter search with keras-tuner, nested inside cross-validation.

`space.py` declares the searched space (narrowed or widened from a JSON/YAML file);
`hypermodel.py` builds, compiles and fits the model for each sampled point; `search.py` runs
Hyperband (default), Bayesian optimisation or random search on the inner split of one outer fold,
alone or as keras-tuner chief/workers, and writes `best_hparams.json` (for `cv_train.py --hparams`)
and the trial table. `tune.tune(...)` (also `tf_resattn.tune`) runs a search and returns its
result; the command line `scripts/tune.py` (`tf_resattn.tuning.cli.main`) parses and calls it.

Only `space` is imported here (keras-tuner is not); import the other modules where needed.
"""

from tf_resattn.tuning.space import DEFAULT_SPACE, SpaceError, load_space, merge_space

__all__ = ["DEFAULT_SPACE", "SpaceError", "load_space", "merge_space"]
