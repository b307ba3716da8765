#!/usr/bin/env python
"""Start-up time of every tool: ``tools/<tool>.py --help``, as a ratio.

A mistyped flag should cost a second, not six: every tool answers
``--help`` (and argument errors) before torch and mmdet are imported, and
registers mmext only after its arguments are parsed. This prints, per tool,
the median wall time of ``--help`` over ``--repeats`` runs, and its ratio to
the same measure of a bare ``python -c "import argparse"`` (the floor of
any Python CLI on this machine, measured in the same run). Requirement:
every tool under 1 s.

Example:
    python benchmarks/tool_startup.py --repeats 3
"""
import argparse
import glob
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT_S = 1.0


def wall_time(cmd, repeats: int) -> float:
    """Median seconds of ``cmd`` (its output discarded); exit code checked."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        times.append(time.perf_counter() - start)
        if rc != 0:
            raise SystemExit(f'{" ".join(cmd)} exited {rc}')
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args(argv)
    floor = wall_time([sys.executable, '-c', 'import argparse'], args.repeats)
    print(f'baseline: python -c "import argparse" {floor:.2f} s')
    print(f'{"tool":20s} {"--help s":>9s} {"x baseline":>11s}')
    slow = []
    for path in sorted(glob.glob(os.path.join(ROOT, 'tools', '*.py'))):
        name = os.path.basename(path)[:-3]
        seconds = wall_time([sys.executable, path, '--help'], args.repeats)
        print(f'{name:20s} {seconds:9.2f} {seconds / floor:11.1f}',
              flush=True)
        if seconds >= LIMIT_S:
            slow.append(name)
    print(f'{len(slow)} tool(s) at or above {LIMIT_S:g} s'
          + (f': {", ".join(slow)}' if slow else ''))
    return 1 if slow else 0


if __name__ == '__main__':
    sys.exit(main())
