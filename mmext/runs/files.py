"""File names mmext's hooks and tools write inside a work_dir.

The hooks write with these names and every reader of a run
(:class:`~mmext.runs.work_dir.WorkDir`) reads with them, so a rename is one
edit here.
"""

#: PseudoLabelStatsHook: one JSON record per logging interval.
PSEUDO_LABEL_STATS = 'pseudo_label_stats.jsonl'
#: AnchorMatchStatsHook: one JSON record per logging interval.
ANCHOR_MATCH_STATS = 'anchor_match_stats.jsonl'
#: LossStabilityHook: one JSON record per window.
LOSS_STABILITY = 'loss_stability.jsonl'
#: ClassAPTrackerHook: the per-class AP history (JSON and CSV).
CLASS_AP_HISTORY = 'class_ap_history.json'
CLASS_AP_HISTORY_CSV = 'class_ap_history.csv'
#: TeacherCompetenceHook: per-class precision/recall curves per validation.
TEACHER_COMPETENCE = 'teacher_competence.jsonl'
#: tools/test.py --out, where investigate looks for predictions.
PREDICTIONS = 'eval/predictions.pkl'
#: tools/investigate.py's output folder and its findings.
INVESTIGATION_DIR = 'investigation'
FINDINGS = 'investigation/findings.json'
#: mmengine's scalar log inside each ``<timestamp>`` folder.
SCALARS = 'vis_data/scalars.json'
