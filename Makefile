# mmext: `make demo` runs the main job on the built-in demo dataset, `make test` runs the tests.
# Both install everything they need into $(VENV) first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmext-installed
DEMO := work_dirs/demo
DEMO_CFG := configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py
DEMO_ITERS ?= 800
PYTEST_ARGS ?=

.PHONY: install demo test clean-demo

install: $(STAMP)

$(STAMP): setup.py requirements/runtime.txt requirements/tests.txt requirements/constraints.txt tools/install_env.sh
	bash tools/install_env.sh $(VENV)
	touch $@

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: install
	$(PY) tools/make_demo_dataset.py --out $(DEMO)/data --seed 0
	$(PY) tools/train.py $(DEMO_CFG) --work-dir $(DEMO) --data-root $(DEMO)/data --max-iters $(DEMO_ITERS)
	$(PY) tools/test.py $(DEMO_CFG) $(DEMO)/iter_$(DEMO_ITERS).pth --work-dir $(DEMO)/eval --data-root $(DEMO)/data --out $(DEMO)/eval/predictions.pkl
	# demo-steps: later tools add their run on the demo outputs below this line
	$(PY) tools/plot_pseudo_stats.py $(DEMO) --write-config $(DEMO)/per_class_thr/per-class-thr.py
	$(PY) tools/check_config.py $(DEMO)/per_class_thr/per-class-thr.py --json $(DEMO)/check_config/per_class_thr.json
	$(PY) tools/investigate.py $(DEMO) --data-root $(DEMO)/data
	$(PY) tools/report.py $(DEMO)
	$(PY) tools/anchor_fit.py $(DEMO_CFG) --data-root $(DEMO)/data --out-dir $(DEMO)/anchor_fit --no-progress
	$(PY) tools/class_efficiency.py --config $(DEMO_CFG) --data-root $(DEMO)/data --work-dir $(DEMO) --metrics $(DEMO)/eval/metrics.json --out-dir $(DEMO)/analysis/class_efficiency
	$(PY) tools/threshold_sweep.py $(DEMO)/eval/predictions.pkl --gt $(DEMO)/data/annotations/val.json --config $(DEMO_CFG) --compare 0.25 0.6 --out-dir $(DEMO)/analysis/threshold_sweep
	$(PY) tools/error_breakdown.py $(DEMO)/eval/predictions.pkl --gt $(DEMO)/data/annotations/val.json --config $(DEMO_CFG) --out-dir $(DEMO)/analysis/error_breakdown
	$(PY) tools/config_diff.py $(DEMO_CFG) configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo_focal-lower-thr.py --out $(DEMO)/analysis/config_diff.json
	$(PY) tools/check_dataset.py $(DEMO_CFG) --data-root $(DEMO)/data --out-dir $(DEMO)/check_dataset --predictions $(DEMO)/eval/predictions.pkl
	$(PY) tools/check_config.py $(DEMO_CFG) --json $(DEMO)/check_config/demo.json
	$(PY) tools/check_config.py configs/focal/soft-teacher_faster-rcnn_tiny_demo_focal.py --json $(DEMO)/check_config/focal.json
	$(PY) tools/class_counts.py $(DEMO)/data/annotations/train_labeled.json --beta 0.99 --background-weight 1.0 --json $(DEMO)/class_counts/class_balanced.json
	$(PY) tools/demo_summary.py $(DEMO)

clean-demo:
	rm -rf $(DEMO)
