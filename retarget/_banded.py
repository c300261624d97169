"""Block-tridiagonal solves of Gauss-Newton systems that are block diagonal plus banded in time.

A trajectory optimiser's normal equations couple each frame's joints with each other (its
tracking Jacobian) and each joint with itself a few frames away (the smoothness terms, bands
up to ``d = 3``). Grouping ``k >= 3`` consecutive frames into one block makes the matrix block
tridiagonal; block Cholesky (forward elimination, back substitution) then solves it exactly in
``T / k`` sequential steps, each a batched dense factorisation: on the CPU or a GPU alike.
"""

from __future__ import annotations

import torch


def group_frames(joints: int) -> int:
    """Frames per block: at least 3 (the jerk's reach), about 64 unknowns per block."""
    return max(3, 64 // max(joints, 1))


def solve(blocks: torch.Tensor, bands: torch.Tensor, rhs: torch.Tensor, group: int) -> torch.Tensor:
    """Solve ``H x = rhs`` per clip.

    Args:
        blocks: Shape (B, T, n, n): each frame's own block (tracking, damping), SPD with
            ``bands[0]``.
        bands: Shape (4, B, T, n): per joint, the coupling of frame ``t`` with ``t + d``.
        rhs: Shape (B, T, n).
        group: Frames per block, >= 3.

    Returns:
        Shape (B, T, n).
    """
    clips, frames, n = rhs.shape
    count = -(-frames // group)
    pad = count * group - frames
    if pad:
        eye = torch.eye(n, dtype=rhs.dtype, device=rhs.device).expand(clips, pad, n, n)
        blocks = torch.cat([blocks, eye], dim=1)  # padding frames: x = 0
        bands = torch.nn.functional.pad(bands, (0, 0, 0, pad))
        rhs = torch.nn.functional.pad(rhs, (0, 0, 0, pad))
    diagonal, upper = _assemble(blocks, bands, group, count)
    # The coupling of a group with the next joins only its last three frames to the next
    # group's first three (the bands reach three frames): U = E_last C E_first^T with C of
    # size 3n. Block Cholesky then needs S^-1 only on the last three frames' columns.
    size, edge = group * n, 3 * n
    b = rhs.reshape(clips, count, size, 1)
    last = torch.zeros(size, edge, dtype=rhs.dtype, device=rhs.device)
    last[size - edge :] = torch.eye(edge, dtype=rhs.dtype, device=rhs.device)
    reaches: list[torch.Tensor] = []  # S_g^-1 E_last C_g, (B, kn, 3n)
    partial: list[torch.Tensor] = []  # S_g^-1 y_g
    current = diagonal[:, 0]
    right = b[:, 0]
    for g in range(count):
        factor = torch.linalg.cholesky(current)
        partial.append(torch.cholesky_solve(right, factor))
        if g == count - 1:
            break
        coupling = upper[:, g]  # (B, 3n, 3n): last three frames of g -> first three of g + 1
        reach = torch.cholesky_solve(last.expand(clips, size, edge), factor) @ coupling
        reaches.append(reach)
        current = diagonal[:, g + 1].clone()
        current[:, :edge, :edge] -= coupling.transpose(-1, -2) @ reach[:, size - edge :]
        right = b[:, g + 1].clone()
        right[:, :edge] -= coupling.transpose(-1, -2) @ partial[-1][:, size - edge :]
    x = [partial[-1]]
    for g in range(count - 2, -1, -1):
        x.append(partial[g] - reaches[g] @ x[-1][:, :edge])
    out = torch.stack(x[::-1], dim=1).reshape(clips, count * group, n)
    return out[:, :frames]


def _assemble(
    blocks: torch.Tensor, bands: torch.Tensor, group: int, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Diagonal blocks (B, G, kn, kn) and the couplings above them, (B, G - 1, 3n, 3n).

    A coupling is the nonzero corner of the block above the diagonal: the last three frames
    of a group against the first three of the next.
    """
    clips, frames, n = blocks.shape[:3]
    grouped = bands.reshape(4, clips, count, group, n)
    diagonal = torch.zeros(
        clips, count, group, group, n, n, dtype=blocks.dtype, device=blocks.device
    )
    upper = torch.zeros(clips, count, group, group, n, n, dtype=blocks.dtype, device=blocks.device)
    own = blocks.reshape(clips, count, group, n, n)
    for a in range(group):
        diagonal[:, :, a, a] = own[:, :, a] + torch.diag_embed(grouped[0, :, :, a])
        for d in range(1, 4):
            band = torch.diag_embed(grouped[d, :, :, a])
            if a + d < group:
                diagonal[:, :, a, a + d] = band
                diagonal[:, :, a + d, a] = band
            else:  # frame a + d lies in the next group, at a + d - group
                upper[:, :, a, a + d - group] = band
    size = group * n
    diagonal = diagonal.permute(0, 1, 2, 4, 3, 5).reshape(clips, count, size, size)
    corner = upper[:, :-1, group - 3 :, :3]  # rows: the last three frames; columns: the first
    corner = corner.permute(0, 1, 2, 4, 3, 5).reshape(clips, count - 1, 3 * n, 3 * n)
    return diagonal, corner
