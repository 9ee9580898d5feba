"""The CPU candidate scan of the nearest-neighbour engine keeps each row's n_cand smallest entries
and a floor below which nothing was left out, whatever the tile widths."""

import numpy as np
import pytest

from synth_pipeline.tile_scan import GROUP, scan_tile


@pytest.mark.parametrize("widths", [[1024, 1024, 300], [17, 5], [GROUP * 3]])
def test_the_scan_keeps_the_smallest_entries_over_tiles(widths):
    rng = np.random.default_rng(0)
    rows, n_cand, m = 40, 6, sum(widths)
    full = rng.integers(0, 50, size=(rows, m)).astype(np.float32)  # many ties
    r_sq = rng.integers(0, 5, size=m).astype(np.float32)
    best_d = np.full((rows, n_cand), np.inf, dtype=np.float32)
    best_i = np.zeros((rows, n_cand), dtype=np.int64)
    tau = np.full(rows, np.inf, dtype=np.float32)
    r0 = 0
    for w in widths:
        scan_tile(np.ascontiguousarray(full[:, r0 : r0 + w]), r_sq[r0 : r0 + w], r0, best_d, best_i, tau)
        r0 += w
    entries = full + r_sq
    expect = np.sort(entries, axis=1)[:, :n_cand]
    np.testing.assert_array_equal(np.sort(best_d, axis=1), expect)
    np.testing.assert_array_equal(np.take_along_axis(entries, best_i, axis=1), best_d)  # the right columns
    assert all(len(set(r)) == n_cand for r in best_i.tolist())
    np.testing.assert_array_equal(tau, best_d.max(axis=1))
    left_out = np.ones_like(entries, dtype=bool)
    np.put_along_axis(left_out, best_i, False, axis=1)
    assert (entries[left_out].reshape(rows, -1) >= tau[:, None]).all()
