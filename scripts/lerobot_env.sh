#!/usr/bin/env bash
# Build a separate Python environment with the real lerobot, to check that hand2robot's datasets
# load in it and that lerobot's own tools work on them (scripts/check_lerobot.py,
# tests/test_lerobot_edit.py). hand2robot itself does not depend on lerobot or torch.
#
#   bash scripts/lerobot_env.sh [VENV_DIR] [VERSION]   (defaults .lerobot-venv and 0.4.4)
#   exit status 3: VERSION 0.6.1 and no Python 3.12 on this machine
#   export HAND2ROBOT_LEROBOT_PYTHON=VENV_DIR/bin/python[:OTHER_VENV/bin/python]
#
# VERSION 0.4.4 is the last release for Python 3.11. Its pins (torch < 2.11, torchvision < 0.26)
# would download a multi-GB CUDA torch here, so it is installed without its dependency pins
# beside the torch/torchvision on this machine class's disk and the libraries its dataset
# loader imports.
# VERSION 0.6.1 (the newest release) needs Python 3.12, for which no torch lies on this disk: it
# is installed with its own pins from PyPI (torch 2.11, a CUDA build that runs on the CPU here;
# about 2.6 GB of downloads and 5.4 GB in the environment, about 2 minutes).
# In both, torchcodec decodes the videos through the system's FFmpeg (Debian packages).
set -euo pipefail
venv="${1:-.lerobot-venv}"
version="${2:-0.4.4}"
if ! ldconfig -p | grep -q 'libavutil\.so\.57'; then
  apt-get install -y -q libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 \
    libavdevice59 libavfilter8 >/dev/null
fi
case "$version" in
0.4.4)
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1"
  "$venv/bin/pip" install -q --no-deps "lerobot==0.4.4"
  "$venv/bin/pip" install -q "datasets>=4,<5" "huggingface-hub<0.36" "draccus==0.10.0" \
    "av>=15,<16" "torchcodec==0.17.0" jsonlines pandas pillow einops deepdiff termcolor \
    packaging accelerate
  ;;
0.6.1)
  python=""
  for candidate in "$(command -v python3.12 || true)" \
    "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.12*/bin/python3.12; do
    if [ -n "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
      python="$candidate"
      break
    fi
  done
  if [ -z "$python" ]; then
    echo "lerobot 0.6.1 needs Python 3.12: none found (looked for python3.12 on PATH and" \
      "in pyenv's versions); install one and run this again" >&2
    exit 3  # .ci/run tells this apart from a failed install
  fi
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q "lerobot[dataset]==0.6.1"
  ;;
*)
  echo "unknown lerobot version '$version': choose 0.4.4 or 0.6.1" >&2
  exit 2
  ;;
esac
"$venv/bin/python" -c "from lerobot.datasets.lerobot_dataset import LeRobotDataset"
echo "lerobot $version environment ready: $venv/bin/python"
