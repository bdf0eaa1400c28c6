#!/usr/bin/env bash
# A newcomer's path, timed: fresh clone, the README's first command, an independent inlet.
set -u
# usage: PYLSL_PYTHON=/path/to/python-with-pylsl bash scripts/newcomer_check.sh
rm -rf /tmp/fresh && t0=$(date +%s.%N)
git clone -q "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" /tmp/fresh && cd /tmp/fresh
( LDNS_SIM_LSL_SCOPE=machine bash scripts/quickstart.sh > /tmp/newcomer_quickstart.log 2>&1; echo "quickstart exit $?" >> /tmp/newcomer_quickstart.log ) &
"${PYLSL_PYTHON:-python3}" - <<PY  # any Python with pylsl installed
import time, pylsl
pylsl.set_config_content("[log]\nlevel = -2\n[multicast]\nResolveScope = machine\n")
t0 = float("$t0")
infos = []
while not infos and time.time() - t0 < 900:
    infos = pylsl.resolve_byprop("type", "SpikeCounts", 1, 2.0)
inlet = pylsl.StreamInlet(infos[0])
first = None; n = 0; end = time.time() + 30
while time.time() < end:
    chunk, ts = inlet.pull_chunk(timeout=0.5)
    if ts and first is None:
        first = time.time() - t0
    n += len(ts)
    if first and not ts:
        break
print(f"seconds from clone to first bin at an independent inlet: {first:.1f}; bins received: {n}; channels: {infos[0].channel_count()}; name: {infos[0].name()}")
PY
wait
tail -3 /tmp/newcomer_quickstart.log
