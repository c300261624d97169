"""Seeing a written episode: over its source video, as a plot, in 3D.

- :mod:`~pipeline.viz.episode`: an episode's rows, its cameras, the lifted hand.
- :mod:`~pipeline.viz.meshes`, :mod:`~pipeline.viz.raster`, :mod:`~pipeline.viz.render`: the
  robot's URDF visual meshes, simplified, rasterised with a depth buffer, composited.
- :mod:`~pipeline.viz.scene`: the robot as scenes from the input's camera, the side panel's
  and the hand inset's fixed viewpoints, the links in contact on a ``SELF_COLLISION`` frame.
- :mod:`~pipeline.viz.drawing`: skeletons, flags, the legend and the frame counter.
- :mod:`~pipeline.viz.video` (:func:`render_episode`), :mod:`~pipeline.viz.plot`
  (:func:`plot_episode`), :mod:`~pipeline.viz.recording` (:func:`record_rerun`).
"""

from pipeline.viz.drawing import (
    HAND_EDGES,
    draw_overlay,
    draw_trail,
    robot_points_in_camera,
    robot_skeleton,
)
from pipeline.viz.episode import (
    Episode,
    episode_cameras,
    hand_points_in_camera,
    hands_present,
    load_episode,
    robot_cameras,
    trail_in_camera,
    wrists_in_world,
)
from pipeline.viz.plot import joint_fingers, plot_episode
from pipeline.viz.recording import record_rerun
from pipeline.viz.render import project
from pipeline.viz.video import render_episode

__all__ = [
    "HAND_EDGES",
    "Episode",
    "draw_overlay",
    "draw_trail",
    "episode_cameras",
    "hand_points_in_camera",
    "hands_present",
    "joint_fingers",
    "load_episode",
    "plot_episode",
    "project",
    "record_rerun",
    "render_episode",
    "robot_cameras",
    "robot_points_in_camera",
    "robot_skeleton",
    "trail_in_camera",
    "wrists_in_world",
]
