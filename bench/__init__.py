"""``make bench``: the figures that matter for hands-off remediation, each against its target.

One module per benchmark (``NAME`` and ``run(quick) -> list[Figure]``); ``python -m bench`` runs
them and exits 1 when any target is missed. Machines here are noisy, so figures are ratios
measured within one run wherever a ratio says what matters. See bench/README.md.
"""
