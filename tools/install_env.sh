#!/usr/bin/env bash
# Create or complete the virtualenv that mmext runs in. Idempotent: every step
# first checks whether its part is already importable and does nothing if so.
# Usage: tools/install_env.sh VENV_DIR
set -euo pipefail
venv=$(realpath -m "${1:-.venv}")
here=$(cd "$(dirname "$0")/.." && pwd)
cons="$here/requirements/constraints.txt"
py="$venv/bin/python"
pipi() { "$py" -m pip install --disable-pip-version-check -q "$@" 2>&1 | grep -vE "^WARNING: Location|dependency resolver does not|requires setuptools>=" || true; }
has() { (cd / && "$py" -c "$1") >/dev/null 2>&1; }

if [ ! -x "$py" ]; then
  echo "[install] creating virtualenv $venv"
  python3 -m venv "$venv"
fi
if ! has "import torch"; then
  echo "[install] torch==2.13.0 (no torch importable in $venv)"
  pipi torch==2.13.0
else
  echo "[install] keeping torch $("$py" -c 'import torch; print(torch.__version__)')"
fi
# torch pulls a new setuptools; mmcv's build and mmengine's mmdet:: scope need pkg_resources.
# (pip then notes that torch asks for setuptools>=77: only its cpp_extension builder uses it.)
has "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) >= 70)" || pipi -c "$cons" 'setuptools<70' wheel
has "import mmengine, numpy, matplotlib, pycocotools, faster_coco_eval, orjson, msgspec, scipy, shapely, terminaltables, pytest, hypothesis, tidecv" || {
  echo "[install] runtime and test requirements"
  pipi -c "$cons" -r "$here/requirements/runtime.txt" -r "$here/requirements/tests.txt" ninja
}
if ! has "import mmcv, mmcv.ops; assert mmcv.__version__.startswith('2.1')"; then
  echo "[install] mmcv 2.1.0 with compiled ops: there is no wheel for this torch, so it is built"
  echo "[install] from source. That takes 6-10 minutes on 2 cores the first time; pip keeps the"
  echo "[install] built wheel in its cache (~/.cache/pip/wheels), so later installs take seconds."
  # -v shows ninja's [step/total] counter: print it as progress, drop the compiler noise.
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "$py" -m pip install -v --disable-pip-version-check -c "$cons" --no-build-isolation mmcv==2.1.0 \
    2>&1 | sed -nuE 's/^ *\[([0-9]+)\/([0-9]+)\] .*/[install] mmcv build: compiled \1 of \2 files/p; /(Stored in|Successfully installed|Using cached|^ERROR|error:)/p' || true
  has "import mmcv.ops" || { echo "[install] mmcv build failed" >&2; exit 1; }
fi
# mmdet's own requirement list drags in mmcv again; its deps are in runtime.txt.
has "import mmdet; assert mmdet.__version__ == '3.3.0'" || { echo "[install] mmdet 3.3.0"; pipi --no-deps mmdet==3.3.0; }
has "import mmext" || { echo "[install] mmext (editable)"; pipi --no-deps --no-build-isolation -e "$here"; }
"$py" -c "import torch, mmcv, mmcv.ops, mmdet, mmengine, mmext; print('[install] ready: torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmdet', mmdet.__version__, '| mmengine', mmengine.__version__)"
