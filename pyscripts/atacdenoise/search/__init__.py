"""NASH architecture search (Elsken et al. 2017), as the seed paper grew its CNN.

- :mod:`.data`: noisy/clean window pairs saved as ``.npz`` (``atacdenoise prepare``);
- :mod:`.nash`: hill climbing with network morphisms and SGDR (``atacdenoise search``);
- :mod:`.metrics`: validation Pearson and average precision;
- :mod:`.history`: the per-child log, summary and figure written beside the best model.
"""
