#!/bin/sh
# Make lerobot 0.6.1's virtual environment ready for bench/baseline_lerobot.py: build it if
# missing (with ../shared/tools/lerobot-check, which `make compat` uses too), then pip-install
# the `rosbags` reader into it. LEROBOT_VENV overrides the environment's location, SHARED the
# shared folder's.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
VENV=${LEROBOT_VENV:-$HOME/.cache/lerobot-0.6.1-venv}
SHARED=${SHARED:-$here/../../shared}
if ! "$VENV/bin/python" -c 'import lerobot.datasets' 2>/dev/null; then
    LEROBOT_VENV=$VENV "$SHARED/tools/lerobot-check"
fi
if ! "$VENV/bin/python" -c 'import rosbags' 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet 'rosbags==0.11.9'
fi
"$VENV/bin/python" -c 'import importlib.metadata as m; print("lerobot", m.version("lerobot"), "rosbags", m.version("rosbags"))'
