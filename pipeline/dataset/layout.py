"""Where things live in a LeRobot v3.0 dataset folder, and the format versions hand2robot writes.

Layout (``../shared/LEROBOT_FORMAT.md``; loads in lerobot 0.4 and later)::

    meta/info.json  meta/stats.json  meta/tasks.parquet  meta/episodes/chunk-000/file-000.parquet
    meta/hand2robot.json                      provenance: surrogate data from human video
    data/chunk-CCC/file-FFF.parquet           one file per appended input
    videos/observation.images.<camera>/chunk-CCC/file-FFF.mp4
    README.md                                 dataset card
"""

from __future__ import annotations

CODEBASE_VERSION = "v3.0"
PROVENANCE_PATH = "meta/hand2robot.json"
PROVENANCE_FORMAT = 1
CHUNKS_SIZE = 1000
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
CARD_PATH = "README.md"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
#: The files every append writes anew (all others are kept as they are).
REWRITTEN = frozenset(
    {INFO_PATH, STATS_PATH, TASKS_PATH, EPISODES_PATH, PROVENANCE_PATH, CARD_PATH}
)
