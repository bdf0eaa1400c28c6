#!/usr/bin/env bash
# Newcomer set-up: a virtual environment with ldns-sim, then a 20 s live stream of the default
# model, recorded to session.nwb. Headless: the scripted user drives the model, no gamepad.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU build of torch; on this project's machines 2.13.0 is available without a large
# download. On another machine pick your build at pytorch.org before this line.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/ldns-sim stream --condition script:center-out --duration 20 --record session.nwb
echo "Recorded session.nwb. Next: .venv/bin/ldns-sim --help"
