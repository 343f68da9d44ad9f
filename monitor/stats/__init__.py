"""Statistics shared by the drift, data-quality and confidence detectors.

* :mod:`monitor.stats.univariate` -- two-sample tests (Kolmogorov-Smirnov correct with ties,
  chi-squared) and effect sizes (PSI, Jensen-Shannon, normalised Wasserstein, mean shift, scale
  ratio) on raw samples or on binned counts;
* :mod:`monitor.stats.sequential` -- an always-valid sequential detector over binned streams with
  thresholds calibrated analytically from an expected run time (ERT);
* :mod:`monitor.stats.multiple_testing` -- Bonferroni, Holm and Benjamini-Hochberg.

Importing this package imports nothing heavy; the submodules import numpy/scipy.
"""

from __future__ import annotations

__all__: list[str] = []
