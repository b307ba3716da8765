"""Checks before and after training: configs (silent mismatches), datasets
(annotations, pipelines, homographies), predictions. Each module is imported
on use."""
