#!/usr/bin/env bash
# Install everything the tests need from this repository's own files, then run them.
# Used as-is by CI (.ci/run). torch is pinned to the CPU build that the CI machines carry;
# on your own machine any torch >= 2.4 works (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && ! command -v chromium >/dev/null 2>&1; then
  # Headless Chromium (Debian package) for the report's browser tests; never a downloaded browser.
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "note: could not install chromium"
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The versions the tests were proven with (constraints/test.txt); users get the package's ranges.
.venv/bin/python -m pip install -q -c constraints/test.txt "torch==2.13.0" -e ".[dev]"
.venv/bin/python -m ruff check diffbench tests benchmarks
.venv/bin/python -m mypy
# Tests run side by side, one pytest-xdist worker per core (at most 4; DIFFBENCH_TEST_WORKERS sets
# it, 0 runs them in this process), each test file on one worker so that a file's shared fixtures
# run once. Each worker's torch runs one thread (tests/conftest.py). On a 2-core VM, fresh clone:
# 2026-12-06, beside two other CPU burners: 840 tests in 26m39s (2026-11-30, quiet: 641 tests in 11m37s).
workers="${DIFFBENCH_TEST_WORKERS:-$(( $(nproc) < 4 ? $(nproc) : 4 ))}"
.venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
# The tests must hold on a busy machine: the survival tests (signals, kills, resume, time limits)
# once more beside two CPU-burning processes, side by side as above (test by test: it is one file).
# torch runs one thread here: with two OpenMP threads on two cores a burner slows every parallel
# region about tenfold, which tests the scheduler, not diffbench. Skipped when pytest was given a
# selection, or with DIFFBENCH_SKIP_BUSY_PASS=1.
selection=0
for arg in "$@"; do case "$arg" in -*) ;; *) selection=1 ;; esac; done
if [ "${DIFFBENCH_SKIP_BUSY_PASS:-0}" != 1 ] && [ "$selection" = 0 ]; then
  echo "survival tests again, beside 2 CPU burners:"
  OMP_NUM_THREADS=1 DIFFBENCH_TEST_BURN_CPU=2 .venv/bin/python -m pytest -n "$workers" --dist load "$@" tests/test_survival.py
fi
