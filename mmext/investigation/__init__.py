"""Investigating a run: the finding rules, the investigation (evidence,
actions, report) and the HTML run report. Each module is imported on use."""
