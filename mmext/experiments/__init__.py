"""Experiments on configs: the config differ and its risk rules, ablation
arms, per-class threshold configs, comparing runs with intervals, and what
mmext's own benchmarks measured each action to do. Each module is imported
on use."""
