"""Hand extraction on real shared video, with the model obtained from PyPI (no manual step)."""

import numpy as np
import pytest

import pipeline


@pytest.fixture(scope="module")
def stove(shared_data):
    # 60 frames, 384x288, egocentric; MANIFEST measures hands in 100% of its frames.
    return pipeline.extract_hands(shared_data / "videos/stove_stir_egocentric.mp4")


def test_model_is_obtained_and_identified():
    info = pipeline.ensure_model()
    assert info.source == "pypi:mediapipe==0.10.21"
    assert info.path.is_file() and len(info.sha256) == 64
    # Built deterministically: the same bundle bytes on every machine.
    assert info.sha256 == "6bbbde8c9ceef075c7daa9ccca97dcc45396ba44eaa19eea243e9ea0d2904ccc"


def test_model_bundle_members_are_stored_whole_and_aligned():
    import hashlib
    import struct
    import zipfile

    from pipeline.model import _MEMBERS, ALIGNMENT

    path = pipeline.ensure_model().path
    expected = {name: digest for name, digest in _MEMBERS.values()}
    with zipfile.ZipFile(path) as bundle, open(path, "rb") as raw:
        assert sorted(bundle.namelist()) == sorted(expected)
        for member in bundle.infolist():
            assert member.compress_type == zipfile.ZIP_STORED
            # The data follows the local header (30 bytes, the name, the local extra field).
            raw.seek(member.header_offset)
            header = raw.read(30)
            assert header[:4] == b"PK\x03\x04"
            name_size, extra_size = struct.unpack("<HH", header[26:30])
            start = member.header_offset + 30 + name_size + extra_size
            assert start % ALIGNMENT == 0, (member.filename, start)
            raw.seek(start)
            data = raw.read(member.file_size)
            assert hashlib.sha256(data).hexdigest() == expected[member.filename]


def test_user_model_hash_follows_the_file(tmp_path):
    import os
    import zipfile

    default = pipeline.ensure_model()
    user = tmp_path / "hand_landmarker.task"
    user.write_bytes(default.path.read_bytes())
    assert pipeline.ensure_model(user).sha256 == default.sha256
    # Rewritten in place (the hash is kept per path, size and modification time): hashed anew.
    with zipfile.ZipFile(user, "w") as bundle:
        bundle.writestr("hand_detector.tflite", b"other")
    os.utime(user, ns=(1, 1))
    changed = pipeline.ensure_model(user).sha256
    assert changed != default.sha256 and len(changed) == 64


def test_real_video_one_row_per_frame(stove):
    assert stove.num_frames == 60
    assert stove.timestamps[0] == 0.0
    np.testing.assert_allclose(np.diff(stove.timestamps), 1 / 30, atol=1e-3)
    any_hand = stove.hands["left"].present | stove.hands["right"].present
    assert any_hand.mean() >= 0.9
    assert stove.model["sha256"] and len(stove.source["sha256"]) == 64
    for hand in stove.hands.values():
        present = hand.present
        assert np.isnan(hand.world_keypoints[~present]).all()
        assert np.isfinite(hand.transform_wrist_to_camera[present]).all()
        # Hands in front of a head camera: 0.1-1.5 m deep, proper rotations.
        depth = hand.transform_wrist_to_camera[present, 2, 3]
        assert np.all((depth > 0.1) & (depth < 1.5))


def test_pnp_recovers_known_pose():
    rng = np.random.default_rng(0)
    intrinsics = pipeline.Intrinsics.from_fov(1280, 720, 60.0)
    from tests.synthetic import random_rigid, template_keypoints

    world = template_keypoints("right") + rng.normal(scale=0.005, size=(21, 3))
    world[:, 2] += rng.normal(scale=0.01, size=21)  # a non-planar hand
    for _ in range(10):
        pose = random_rigid(rng)
        pose[:3, 3] = [rng.uniform(-0.2, 0.2), rng.uniform(-0.1, 0.1), rng.uniform(0.4, 0.9)]
        camera = world @ pose[:3, :3].T + pose[:3, 3]
        if np.any(camera[:, 2] < 0.1):
            continue
        pixels = camera[:, :2] / camera[:, 2:] * intrinsics.matrix[0, 0] + intrinsics.matrix[:2, 2]
        estimate, error = pipeline.solve_wrist_pose(world, pixels, intrinsics, "right")
        import retarget

        expected = pose @ retarget.hand_frame_from_keypoints(world, "right")[0]
        assert np.linalg.norm(estimate[:3, 3] - expected[:3, 3]) < 1e-3
        cos = (np.trace(estimate[:3, :3].T @ expected[:3, :3]) - 1) / 2
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))) < 0.1
        assert error < 1e-3
