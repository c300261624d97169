import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.run import retarget_sides, retarget_tracks
from pipeline.tracks import read_tracks, write_tracks
from pipeline.tracks import read_tracks as load_tracks
from retarget import Flag
from tests.conftest import SAMPLE_TRACKS, run_cli


@pytest.fixture(scope="module")
def sample():
    return load_tracks(SAMPLE_TRACKS)


def test_sample_is_real_and_complete(sample):
    assert sample.num_frames == 287  # MANIFEST: kettle_pour_third_person.mp4 has 287 frames
    assert np.all(np.diff(sample.timestamps) > 0)
    np.testing.assert_allclose(np.median(np.diff(sample.timestamps)), 1001 / 30000, rtol=1e-3)
    assert sample.model["sha256"] and sample.source["sha256"]
    left = sample.hands["left"]
    assert left.present.mean() > 0.95
    wrist = left.transform_wrist_to_camera[left.present]
    # A hand on a table 0.2-1.5 m in front of the camera, rotations proper.
    assert np.all((wrist[:, 2, 3] > 0.2) & (wrist[:, 2, 3] < 1.5))
    np.testing.assert_allclose(np.linalg.det(wrist[:, :3, :3]), 1.0, atol=1e-6)


def test_track_file_round_trip(sample, tmp_path):
    path = write_tracks(sample, tmp_path / "copy.parquet")
    again = read_tracks(path)
    np.testing.assert_array_equal(again.timestamps, sample.timestamps)
    for side in ("left", "right"):
        a, b = again.hands[side], sample.hands[side]
        np.testing.assert_array_equal(a.present, b.present)
        np.testing.assert_allclose(a.world_keypoints, b.world_keypoints, equal_nan=True)
        np.testing.assert_allclose(
            a.transform_wrist_to_camera, b.transform_wrist_to_camera, equal_nan=True
        )
    assert again.intrinsics.source == sample.intrinsics.source


@pytest.mark.parametrize("name", ["panda", "allegro_left", "so101", "ur5_allegro"])
def test_sample_retargets_onto_every_kind(sample, robots_loaded, name):
    robot = robots_loaded[name]
    done = retarget_tracks(sample, robot, side="left" if name != "ur5_allegro" else "right")
    res = done.result
    assert res.q.shape == (287, robot.nq)
    assert np.all(np.isfinite(res.q))
    assert np.all((res.q >= robot.lower - 1e-9) & (res.q <= robot.upper + 1e-9))
    hand = sample.hands[done.side]
    np.testing.assert_array_equal((res.flags & Flag.NO_HAND) != 0, ~hand.present)
    if robot.arm_joints:
        # Where the solver says it reached, forward kinematics agrees.
        ok = res.residual.position < 1e-3
        assert ok.sum() > 10
        reached = res.transform_ee_to_base[ok, :3, 3]
        again = np.stack(
            [robot.frame_placements(q, (robot.description.ee_frame,))[0, :3, 3] for q in res.q[ok]]
        )
        np.testing.assert_allclose(reached, again, atol=1e-9)


def test_panda_on_sample_is_mostly_reachable(sample, robots_loaded):
    res = retarget_tracks(sample, robots_loaded["panda"], side="left").result
    # Default placement centres the clip on the Panda's nominal point: most frames reachable.
    assert np.median(res.residual.position) < 0.02
    assert res.feasible.mean() > 0.3


def test_a_hand_in_no_frame_is_an_error_naming_the_input_and_the_other_hand(sample, robots_loaded):
    import dataclasses

    from retarget.exceptions import InvalidInputError

    def without(tracks, side):
        hand = dataclasses.replace(tracks.hands[side], present=np.zeros(287, dtype=bool))
        return dataclasses.replace(tracks, hands={**tracks.hands, side: hand})

    no_right = without(sample, "right")  # the left hand is in all 287 frames
    name = Path(sample.source["path"]).name  # the input the sample was extracted from
    message = f"{re.escape(name)}: no right hand in any of its 287 frames"
    with pytest.raises(InvalidInputError, match=f"{message} \\(the left hand is in 287\\)"):
        retarget_tracks(no_right, robots_loaded["allegro_right"])  # a right hand takes its own
    with pytest.raises(InvalidInputError, match="'allegro_right' is a right hand; choose a left"):
        retarget_tracks(no_right, robots_loaded["allegro_right"])
    with pytest.raises(InvalidInputError, match="choose --hand left or auto"):
        retarget_tracks(no_right, robots_loaded["panda"], side="right")
    assert retarget_tracks(no_right, robots_loaded["panda"]).side == "left"  # auto finds it
    nothing = without(no_right, "left")
    for robot, side in (("panda", "auto"), ("allegro_left", "auto"), ("panda", "both")):
        with pytest.raises(InvalidInputError, match="no hand detected in any of its 287 frames"):
            retarget_sides(nothing, robots_loaded[robot], side=side)


def test_cli_retarget_prints_summary():
    result = CliRunner().invoke(app, ["retarget", str(SAMPLE_TRACKS), "--robot", "panda"])
    assert result.exit_code == 0, result.output
    assert "287 (287 with a hand)" in result.output
    assert "panda_joint1" in result.output and "feasible" in result.output


def test_cli_bad_input_exit_code(tmp_path, capsys):

    bad = tmp_path / "not_tracks.parquet"
    bad.write_text("hello")
    done = run_cli("retarget", bad)
    assert done.returncode == 2
    assert "not a readable Parquet file" in done.stderr
    done = run_cli("retarget", SAMPLE_TRACKS, "--robot", "nope")
    assert done.returncode == 2 and "valid choices: allegro_left" in done.stderr
