#!/usr/bin/env bash
# Build a separate Python environment with the real lerobot, to check that hand2robot's datasets
# load in it (scripts/check_lerobot.py, tests/test_lerobot_load.py). hand2robot itself does not
# depend on lerobot or torch.
#
#   bash scripts/lerobot_env.sh [VENV_DIR]        (default .lerobot-venv)
#   export HAND2ROBOT_LEROBOT_PYTHON=VENV_DIR/bin/python
#
# lerobot 0.4.4 is the last release for Python 3.11. Its pins (torch < 2.11, torchvision < 0.26)
# would download a multi-GB CUDA torch here, so it is installed without its dependency pins
# beside the torch/torchvision on this machine class's disk and the libraries its dataset
# loader imports; torchcodec decodes the videos through the system's FFmpeg (Debian packages).
set -euo pipefail
venv="${1:-.lerobot-venv}"
if ! ldconfig -p | grep -q 'libavutil\.so\.57'; then
  apt-get install -y -q libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 \
    libavdevice59 libavfilter8 >/dev/null
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1"
"$venv/bin/pip" install -q --no-deps "lerobot==0.4.4"
"$venv/bin/pip" install -q "datasets>=4,<5" "huggingface-hub<0.36" "draccus==0.10.0" \
  "av>=15,<16" "torchcodec==0.17.0" jsonlines pandas pillow einops deepdiff termcolor \
  packaging accelerate
"$venv/bin/python" -c "from lerobot.datasets.lerobot_dataset import LeRobotDataset"
echo "lerobot environment ready: $venv/bin/python"
