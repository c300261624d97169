"""The robot drawn from its URDF meshes: placement, occlusion, clipping, real episodes."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pinocchio as pin
import pytest

import pipeline
import retarget
import robots
from pipeline.placement import camera_pose_to_base
from pipeline.tracks import Intrinsics
from pipeline.viz import (
    draw_overlay,
    hand_points_in_camera,
    joint_fingers,
    load_episode,
    project,
    render_episode,
    robot_cameras,
)
from pipeline.viz.drawing import caption_height
from pipeline.viz.meshes import RobotMeshes, robot_meshes
from pipeline.viz.raster import rasterize
from pipeline.viz.render import Posed, composite, look_rotation, render
from pipeline.viz.scene import arms_of, panel_view, scene_at
from retarget.collision import robot_geometry

ZED = "frames/pour_water_egocentric_zed"


def test_the_end_effector_mesh_is_drawn_where_kinematics_and_the_camera_put_it(
    robots_loaded,
) -> None:
    panda = robots_loaded["panda"]
    meshes = robot_meshes(panda)
    intrinsics = Intrinsics.from_fov(640, 480, 60.0)
    q = panda.rest + 0.3 * (panda.upper - panda.rest)
    # A camera 0.4 m from the hand, looking at it from the front and above.
    hand = panda.frame_placements(q, ("panda_hand",))[0][:3, 3]
    camera = np.eye(4)
    camera[:3, :3] = look_rotation(np.array([-1.0, -0.3, -0.5]), np.array([0.0, 0.0, 1.0]))
    camera[:3, 3] = hand - 0.4 * camera[:3, 2]
    # Independently: the URDF's own visual mesh of the hand, posed by Pinocchio's geometry
    # placements and projected with OpenCV.
    model, geometry, _ = robot_geometry(panda, pin.GeometryType.VISUAL)
    data, geometry_data = model.createData(), pin.GeometryData(geometry)
    pin.updateGeometryPlacements(model, data, geometry, geometry_data, panda.model_configuration(q))
    index = geometry.getGeometryId("panda_hand_0")
    vertices = np.asarray(geometry.geometryObjects[index].geometry.vertices())
    in_base = geometry_data.oMg[index].homogeneous
    in_camera = (np.linalg.inv(camera) @ in_base)[:3]
    points = vertices @ in_camera[:, :3].T + in_camera[:, 3]
    pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), intrinsics.matrix, None)
    shape = geometry.geometryObjects[index].geometry
    triangles = (shape.tri_indices(i) for i in range(shape.num_tris))
    faces = np.array([[t[0], t[1], t[2]] for t in triangles]).reshape(-1, 3)
    expected = np.zeros((480, 640), dtype=np.uint8)  # OpenCV fills the full-detail triangles
    for corners in np.round(pixels.reshape(-1, 2)[faces]).astype(np.int32):
        cv2.fillConvexPoly(expected, corners, 1)
    part = [p.name for p in meshes.parts].index("panda_hand_0")
    alone = render([Posed(meshes, q, camera, visible=frozenset({part}))], intrinsics)
    assert alone.scale == 1.0
    drawn = alone.part == part
    overlap = (drawn & (expected > 0)).sum() / (drawn | (expected > 0)).sum()
    assert overlap > 0.9, overlap  # the simplified mesh, drawn where the URDF mesh projects
    # With the whole robot, the hand shows only within that outline (the fingers hide some).
    rendered = render([Posed(meshes, q, camera)], intrinsics)
    ys, xs = np.nonzero(rendered.part == part)
    assert len(xs) > 0.5 * expected.sum()
    grown = cv2.dilate(expected, np.ones((5, 5), np.uint8))
    assert grown[ys, xs].all()
    # Its depth there is the mesh's: between the nearest and farthest vertex.
    depth = rendered.depth[ys, xs]
    assert points[:, 2].min() - 2e-3 < depth.min() and depth.max() < points[:, 2].max() + 2e-3


def test_a_link_hidden_behind_another_is_not_drawn_over_it(robots_loaded) -> None:
    panda = robots_loaded["panda"]
    meshes = robot_meshes(panda)
    camera = camera_pose_to_base([0.9, -0.9, 0.5, 0.0, 0.2, 3 * np.pi / 4])
    intrinsics = Intrinsics.from_fov(320, 240, 60.0)
    q = panda.rest + 0.5 * (panda.lower - panda.rest)
    whole = render([Posed(meshes, q, camera)], intrinsics)
    alone = np.stack(
        [
            render([Posed(meshes, q, camera, visible=frozenset({k}))], intrinsics).depth
            for k in range(len(meshes.parts))
        ]
    )
    # Each pixel shows the nearest of the parts that cover it, at that part's depth.
    nearest = alone.min(axis=0)
    covered = np.isfinite(nearest)
    overlapping = (np.isfinite(alone).sum(axis=0) > 1).sum()
    assert overlapping > 500  # the view does put links in front of each other
    np.testing.assert_array_equal(whole.part[covered], alone.argmin(axis=0)[covered])
    np.testing.assert_allclose(whole.depth[covered], nearest[covered], atol=1e-12)
    assert (whole.part[~covered] == -1).all()
    # The same for two robots, one 0.4 m behind the other, in either order.
    behind = camera.copy()
    behind[:3, 3] += camera[:3, 2] * -0.4  # the camera backs off: a second copy further away
    near, far = Posed(meshes, q, camera), Posed(meshes, q, behind)
    for scene, first in (([near, far], 0), ([far, near], len(meshes.parts))):
        both = render(scene, intrinsics)
        mask = whole.part >= 0
        np.testing.assert_array_equal(both.part[mask], whole.part[mask] + first)


def test_geometry_at_or_behind_the_camera_plane_is_never_projected() -> None:
    intrinsics = Intrinsics.from_fov(640, 480, 60.0)
    # A point 1 um in front of the camera would project to ~1e8 px: it is dropped.
    assert np.isnan(project(np.array([[0.3, 0.2, 1e-6]]), intrinsics)).all()
    # The lines OpenCV could not take (a far-off pixel such as the 5.5e10 of the report) are
    # clipped to the image before they are drawn.
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    robot = np.array([[320.0, 240.0], [55158808157.0, 24622513753.0], [np.nan, 1.0]])
    draw_overlay(image, None, robot, [(0, 1), (1, 2)], flags=0)
    slope = (24622513753.0 - 240.0) / (55158808157.0 - 320.0)
    assert tuple(image[round(240 + 100 * slope), 420]) == (255, 140, 0)  # on the line's way out
    # A triangle with a corner behind the near plane is not rasterised; the rest is.
    pixels = np.array([[10.0, 10.0], [100.0, 10.0], [10.0, 100.0], [5e9, -3e9]])
    depth = np.array([1.0, 1.0, 1.0, 1e-9])
    raster = rasterize(pixels, depth, np.array([[0, 1, 2], [0, 1, 3]]), (120, 120))
    assert set(np.unique(raster.triangle)) == {-1, 0}
    assert raster.mask.sum() == pytest.approx(91 * 92 / 2, rel=0.03)


def test_composite_blends_the_robot_over_the_frame(robots_loaded) -> None:
    allegro = robots_loaded["allegro_right"]
    meshes = robot_meshes(allegro)
    camera = camera_pose_to_base([0.35, 0.05, 0.05, 0.0, 0.0, np.pi])
    intrinsics = Intrinsics.from_fov(1280, 720, 60.0)
    rendered = render([Posed(meshes, allegro.rest, camera)], intrinsics, color=(1.0, 0.5, 0.0))
    assert rendered.scale == pytest.approx(0.5)  # rendered at 640 px, then scaled up
    image = np.full((720, 1280, 3), 100, dtype=np.uint8)
    composite(image, rendered, alpha=0.6)
    drawn = (image != 100).any(axis=-1)
    scaled_up = cv2.resize((rendered.part >= 0).astype(np.uint8), (1280, 720)) > 0
    assert abs(int(drawn.sum()) - int(scaled_up.sum())) < 0.05 * scaled_up.sum()
    # Full coverage: pixels whose render neighbourhood (3x3) is all robot.
    solid = cv2.erode((rendered.part >= 0).astype(np.uint8), np.ones((3, 3), np.uint8))
    inner = cv2.resize(solid, (1280, 720), interpolation=cv2.INTER_NEAREST).astype(bool)
    assert inner.sum() > 0.8 * scaled_up.sum() * 0.5
    # Inside the hand: 40% frame, 60% of a shaded orange (red channel above green above blue).
    r, g, b = (image[inner].astype(int) - 40).T  # 0.4 * 100 of the frame
    assert (r >= g - 1).all() and (g >= b - 1).all() and (np.abs(b) <= 1).all()
    assert r.max() > 100  # the lit faces: 0.6 * 255 * (0.35 .. 1)


def test_meshes_are_simplified_and_belong_to_the_right_links(robots_loaded) -> None:
    for name in ("panda", "so101", "allegro_right", "ur5_allegro"):
        meshes = robot_meshes(robots_loaded[name])
        assert len(meshes.triangles) < 1.5 * 6000, name
        assert {p.link for p in meshes.parts} <= {f.name for f in robots_loaded[name].model.frames}
    ur5 = robot_meshes(robots_loaded["ur5_allegro"])
    hand = [p for p in ur5.parts if p.on_hand]
    assert len(hand) == 21 and all(p.link.startswith(("link_", "palm")) for p in hand)
    # Primitive visuals (a user URDF's boxes and cylinders) become meshes too.
    assert len(RobotMeshes(robots_loaded["panda"], triangle_budget=800).triangles) < 1200


def test_joint_names_are_grouped_by_finger(robots_loaded) -> None:
    fingers = joint_fingers(robots_loaded["allegro_right"])
    assert fingers["joint_0.0"] == "index" and fingers["joint_4.0"] == "middle"
    assert fingers["joint_8.0"] == "ring" and fingers["joint_15.0"] == "thumb"
    assert len(fingers) == 16
    arm_hand = joint_fingers(robots_loaded["ur5_allegro"])
    assert len(arm_hand) == 16 and "shoulder_pan_joint" not in arm_hand
    assert joint_fingers(robots_loaded["panda"]) == {}


@pytest.fixture(scope="module")
def zed_datasets(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The egocentric ZED frames retargeted onto every single-arm robot of the registry."""
    base = tmp_path_factory.mktemp("zed")
    roots = {}
    for name in robots.names():
        roots[name] = base / name
        pipeline.convert(
            shared_data / ZED,
            retarget.load_robot(name),
            roots[name],
            placement=pipeline.PlacementConfig(egocentric=True),
            cache=base / "cache",
        )
    return roots


def test_the_zed_frames_render_with_every_robot(zed_datasets: dict[str, Path], tmp_path) -> None:
    for name, root in zed_datasets.items():
        video = tmp_path / f"{name}.mp4"
        assert render_episode(root, 0, video) == 14, name
        with av.open(str(video)) as container:
            frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        width = load_episode(root, 0).intrinsics.width
        height = frames.shape[1]
        panel = frames[:, : height - caption_height(height), width:]
        # The panel frames the robot: it spans at least half the panel's height, every frame.
        drawn = (np.abs(panel.astype(int) - 40).max(axis=-1) > 12).any(axis=2)
        spans = [np.ptp(np.flatnonzero(rows)) + 1 for rows in drawn]
        assert min(spans) >= 0.5 * height, (name, min(spans), height)
        # The legend and the frame counter are written along the bottom (white text).
        caption = frames[:, height - caption_height(height) :]
        assert ((caption > 230).all(axis=-1).sum(axis=(1, 2)) > 100).all()
        assert render_episode(root, 0, tmp_path / "skeleton.mp4", skeleton=True) == 14


def test_a_floating_hand_is_drawn_at_the_palm_its_wrist_implies(
    zed_datasets: dict[str, Path],
) -> None:
    episode = load_episode(zed_datasets["allegro_right"], 0)
    allegro = retarget.load_robot("allegro_right")
    cameras = robot_cameras(episode, allegro)
    present = episode.rows["observation.human.present"].astype(bool).reshape(-1)
    assert present.sum() >= 8
    human = project(hand_points_in_camera(episode), episode.intrinsics)
    state = episode.rows["observation.state"].astype(np.float64)
    meshes = robot_meshes(allegro)
    palm = [k for k, p in enumerate(meshes.parts) if p.link == "palm_link"]
    moved = []
    for t in np.flatnonzero(present):
        size = pipeline.hand_identity.hand_sizes(human[t][None])[0]
        # The drawn hand's wrist (its frame H: the palm frame times transform_hand_to_ee).
        palm_pose = allegro.frame_placements(state[t], ("palm_link",))[0]
        wrist = np.linalg.inv(cameras[t]) @ palm_pose @ allegro.transform_hand_to_ee
        drawn_wrist = project(wrist[:3, 3], episode.intrinsics)
        assert np.linalg.norm(drawn_wrist - human[t, 0]) < 0.1 * size
        # The drawn palm mesh sits on the human palm (the Allegro's palm is larger: 25%).
        rendered = render([Posed(meshes, state[t], cameras[t])], episode.intrinsics, max_size=4000)
        ys, xs = np.nonzero(np.isin(rendered.part, palm))
        centre = human[t][[0, 5, 9, 13, 17]].mean(axis=0)
        assert np.linalg.norm([xs.mean(), ys.mean()] - centre) < 0.25 * size
        moved.append(wrist[:3, 3])
    # Not a fixed pose: the palm moves with the wrist across the clip (centimetres).
    assert np.ptp(np.array(moved), axis=0).max() > 0.05


def test_the_rerun_recording_holds_a_mesh_for_every_link(
    zed_datasets: dict[str, Path], tmp_path: Path
) -> None:
    from rerun.chunk import RrdReader

    from pipeline.viz import record_rerun

    output = tmp_path / "ur5.rrd"
    assert record_rerun(zed_datasets["ur5_allegro"], 0, output) == 14
    meshes, transforms = set(), {}
    for chunk in RrdReader(output).stream():
        path = str(chunk.entity_path)
        columns = set(chunk.to_record_batch().schema.names)
        if {"Mesh3D:vertex_positions", "Mesh3D:triangle_indices"} <= columns:
            meshes.add(path)
        if path.startswith("/world/robot/") and "Transform3D:translation" in columns:
            transforms[path] = transforms.get(path, 0) + chunk.num_rows
    parts = robot_meshes(retarget.load_robot("ur5_allegro")).parts
    expected = {f"/world/robot/ur5_allegro/{p.link}/{p.name}" for p in parts}
    assert expected <= meshes, sorted(expected - meshes)[:5]
    assert all(transforms.get(path) == 14 for path in expected)


def test_panel_view_is_fixed_and_frames_a_bimanual_robot(robots_loaded) -> None:
    pair = retarget.load_any_robot("bimanual_panda")
    arms = arms_of(pair)
    state = np.stack([pair.rest, pair.rest + 0.3 * (pair.upper - pair.rest)])
    camera, intrinsics = panel_view(arms, state, (240, 320))
    assert np.allclose(camera[:3, :3].T @ camera[:3, :3], np.eye(3))
    rendered = render(scene_at(arms, state[0], camera), intrinsics)
    rows = np.flatnonzero((rendered.part >= 0).any(axis=1))
    assert np.ptp(rows) + 1 >= 0.5 * 240
    parts = len(arms[0].meshes.parts)
    seen = set(np.unique(rendered.part)) - {-1}
    assert any(k < parts for k in seen) and any(k >= parts for k in seen)  # both arms drawn


def test_links_in_contact_are_drawn_red_on_a_self_collision_frame(
    shared_data: Path, tmp_path: Path
) -> None:
    """The ZED frames on the UR5 + Allegro with the fingers' targets taken from the wrist
    (``finger_roots=False``, earlier releases): a fingertip meets the UR5's forearm there."""
    from pipeline.viz.scene import Contacts

    robot = retarget.load_robot("ur5_allegro")
    pipeline.convert(
        shared_data / ZED,
        robot,
        tmp_path / "ur5_allegro",
        retarget=retarget.RetargetConfig(finger_roots=False),
        placement=pipeline.PlacementConfig(egocentric=True),
        cache=tmp_path / "cache",
    )
    episode = load_episode(tmp_path / "ur5_allegro", 0)
    flags = episode.rows["flags"].astype(np.int64)
    colliding = np.flatnonzero(flags & retarget.Flag.SELF_COLLISION)
    assert len(colliding) >= 1  # the clip has such frames (the forearm against a fingertip)
    arms = arms_of(robot)
    contacts = Contacts(arms)
    state = episode.rows["observation.state"].astype(np.float64)
    row = int(colliding[0])
    found = contacts.at(state[row], int(flags[row]))[0]
    links = {arms[0].meshes.parts[k].link for k in found}
    assert len(links) >= 2, links  # both sides of the pair
    assert contacts.at(state[row], 0) == [frozenset()]  # an unflagged frame: none
    camera, intrinsics = panel_view(arms, state, (240, 320))
    red = render(scene_at(arms, state[row], camera, [found]), intrinsics).color.astype(int)
    plain = render(scene_at(arms, state[row], camera), intrinsics).color.astype(int)
    assert _reddish(red) > 200 and _reddish(plain) == 0


def _reddish(image: np.ndarray) -> int:
    return int(((image[..., 0] > 150) & (image[..., 1] < 60)).sum())
