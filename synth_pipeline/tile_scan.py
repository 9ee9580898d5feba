"""The CPU candidate scan of the nearest-neighbour engine (neighbors._TorchBlocks): each distance
tile torch.mm writes is folded, while still in the core's cache, into every query row's running
n_cand smallest distances — one pass over the tile, no top-k, no gather, no second tile pass.

Compiled by numba (on first use; cached on disk) without the GIL, so the engine's worker threads
scan in parallel."""

import numba
import numpy as np

GROUP = 64  # a tile's columns j, j + 64, j + 128, ... form one group, screened by its minimum


@numba.njit(nogil=True, cache=True)
def _keep(best_d, best_i, a, x, col):
    """Put (x, col) in place of row a's largest kept entry; return the new largest."""
    n = best_d.shape[1]
    worst = 0
    for u in range(1, n):
        if best_d[a, u] > best_d[a, worst]:
            worst = u
    best_d[a, worst] = x
    best_i[a, worst] = col
    t = best_d[a, 0]
    for u in range(1, n):
        if best_d[a, u] > t:
            t = best_d[a, u]
    return t


@numba.njit(nogil=True, cache=True)
def scan_tile(tile, r_sq, r0, best_d, best_i, tau):
    """Fold one tile into each row's running n_cand smallest entries (best_d, best_i: (rows, n_cand),
    tau: (rows,) their largest, +inf while a row has empty slots): entry (a, j) is
    tile[a, j] + r_sq[j] in float32, reference row r0 + j.

    The elementwise minimum of each group (one vectorised pass) screens it; only a group whose
    minimum is below the row's tau is read again. An entry below tau replaces the largest kept one.
    So every entry left out is >= the final tau: it was >= tau when seen, and tau only decreases."""
    rows, cols = tile.shape
    full = cols // GROUP * GROUP  # GROUP is a compile-time constant: the loops below vectorise
    mins = np.empty(GROUP, dtype=tile.dtype)
    for a in range(rows):
        t = tau[a]
        row = tile[a]
        if full:
            for j in range(GROUP):
                mins[j] = row[j] + r_sq[j]
        for s in range(GROUP, full, GROUP):
            for j in range(GROUP):
                x = row[s + j] + r_sq[s + j]
                mins[j] = x if x < mins[j] else mins[j]
        for j in range(GROUP if full else 0):
            if mins[j] < t:
                for c in range(j, full, GROUP):
                    x = row[c] + r_sq[c]
                    if x < t:
                        t = _keep(best_d, best_i, a, x, r0 + c)
        for c in range(full, cols):  # the columns after the last full group
            x = row[c] + r_sq[c]
            if x < t:
                t = _keep(best_d, best_i, a, x, r0 + c)
        tau[a] = t
