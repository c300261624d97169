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
    size = group * n
    b = rhs.reshape(clips, count, size, 1)
    factors, couplings, partial = [], [], []
    factor = torch.linalg.cholesky(diagonal[:, 0])
    factors.append(factor)
    partial.append(torch.cholesky_solve(b[:, 0], factor))
    for g in range(1, count):
        coupling = torch.cholesky_solve(upper[:, g - 1], factors[-1])  # S_{g-1}^-1 U_{g-1}
        couplings.append(coupling)
        lower = upper[:, g - 1].transpose(-1, -2)
        factor = torch.linalg.cholesky(diagonal[:, g] - lower @ coupling)
        factors.append(factor)
        partial.append(torch.cholesky_solve(b[:, g] - lower @ partial[-1], factor))
    x = [partial[-1]]
    for g in range(count - 2, -1, -1):
        x.append(partial[g] - couplings[g] @ x[-1])
    out = torch.stack(x[::-1], dim=1).reshape(clips, count * group, n)
    return out[:, :frames]


def _assemble(
    blocks: torch.Tensor, bands: torch.Tensor, group: int, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Diagonal blocks (B, G, kn, kn) and the blocks above them (B, G - 1, kn, kn)."""
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
    upper = upper.permute(0, 1, 2, 4, 3, 5).reshape(clips, count, size, size)
    return diagonal, upper[:, :-1]
