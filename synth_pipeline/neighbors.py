"""The exact nearest-neighbour engine both arms share (tabular DCR / NNDR, MRI memorisation).

Exact, not approximate: a copy must never hide behind an index's recall. float32 distance tiles
pre-select candidates (on CPU folded into each row's running candidates by tile_scan, while the
tile is in the cache), then a float64 re-rank makes the returned neighbours and distances exact.
"""

import threading

import numpy as np

from synth_pipeline import cluster

_F32_EPS = 2.0**-24  # unit round-off of float32
_F64_EPS = 2.0**-53
_PAIR_CHUNK = 1 << 16  # pairs re-ranked at once in the fallback pass (× dims × 8 bytes)
_CPU_TILE_ROWS, _CPU_TILE_COLS = 256, 1024  # torch on CPU: the distance tile (cache-sized)
# torch on CPU: candidates by tile_scan.scan_tile from this many query × reference pairs on (below
# it the group-minima path GPUs take: numba's one-off import and compile, or load from its disk
# cache, would cost more than the scan saves)
_SCAN_MIN_PAIRS = 1 << 30
_GROUPS = 16  # torch: a tile's columns fall into groups of 16 whose minimum pre-selects the top-k
_SUPER = 128  # torch: tiles whose group minima are ranked together (at most _SUPER_MINS minima)
_SUPER_MINS = 8192
_KEEP_COLS = 16384  # torch: a reference this small (in full tiles) keeps its tiles instead of recomputing
_WAIT_S = 0.1  # the calling thread waits for worker threads in slices this long (signals run in between)


class SearchStopped(Exception):
    """A worker thread's block abandoned because the search as a whole was stopped."""


def _check_inputs(query: np.ndarray, reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    query = np.ascontiguousarray(query, dtype=np.float64)
    reference = np.ascontiguousarray(reference, dtype=np.float64)
    if query.ndim != 2 or reference.ndim != 2 or query.shape[1] != reference.shape[1]:
        raise ValueError(f"query {query.shape} and reference {reference.shape} must be 2-D with equal width")
    if not 1 <= k <= len(reference):
        raise ValueError(f"k={k} must be between 1 and the reference size {len(reference)}")
    if not (np.isfinite(query).all() and np.isfinite(reference).all()):
        raise ValueError("query and reference must be finite (embed NaN before the search)")
    return query, reference


class _NumpyBlocks:
    """float32 squared distances (minus the per-row constant ||q||²) on numpy/BLAS, blockwise."""

    def __init__(self, r32: np.ndarray, block_cols: int):
        self.r32, self.block_cols, self.m = r32, block_cols, len(r32)
        self.r_sq = np.einsum("ij,ij->i", r32, r32)

    def _blocks(self, qb: np.ndarray):
        for r0 in range(0, self.m, self.block_cols):
            r1 = min(self.m, r0 + self.block_cols)
            d2 = qb @ self.r32[r0:r1].T
            d2 *= -2.0
            d2 += self.r_sq[None, r0:r1]
            yield r0, d2

    def candidates(self, q32: np.ndarray, n_cand: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        best_d = np.empty((len(q32), 0), dtype=np.float32)
        best_i = np.empty((len(q32), 0), dtype=np.int64)
        for r0, d2 in self._blocks(q32):
            if d2.shape[1] > n_cand:
                keep = np.argpartition(d2, n_cand - 1, axis=1)[:, :n_cand]
                d2 = np.take_along_axis(d2, keep, axis=1)
            else:
                keep = np.broadcast_to(np.arange(d2.shape[1]), d2.shape)
            best_d, best_i = np.hstack([best_d, d2]), np.hstack([best_i, keep + r0])
            if best_d.shape[1] > n_cand:
                keep = np.argpartition(best_d, n_cand - 1, axis=1)[:, :n_cand]
                best_d, best_i = np.take_along_axis(best_d, keep, axis=1), np.take_along_axis(best_i, keep, axis=1)
        approx = best_d + np.einsum("ij,ij->i", q32, q32)[:, None]
        return approx, best_i, approx.max(axis=1)  # every row left out is >= the largest kept

    def within(self, q32: np.ndarray, bound: np.ndarray):
        """(rows, cols) of every pair whose float32 squared distance is <= bound[row], block by block."""
        limit = (bound - np.einsum("ij,ij->i", q32, q32).astype(np.float64))[:, None]
        for r0, d2 in self._blocks(q32):
            rows, cols = np.nonzero(d2 <= limit)
            yield rows, cols + r0


class _TorchBlocks:
    """The same on torch: GPU when pick_device() says so, else CPU (run single-threaded per worker
    thread by nearest(), see _run_threaded). On a GPU each tile is one matmul of augmented rows,
    [-2q, 1, 0…] · [r, ||r||², 0…] = ||r||² - 2q·r (padded to a multiple of 8 columns), so no
    separate pass adds the norms, and candidates come from group minima (_candidates). On CPU with
    `scan` (nearest() sets it from _SCAN_MIN_PAIRS pairs on) the matmul takes the first d columns
    only and tile_scan.scan_tile adds the norms while it selects the candidates (_scan_candidates)."""

    def __init__(self, r32: np.ndarray, block_rows: int, block_cols: int, device: str, scan: bool = False):
        import torch

        self.torch, self.device, self.m = torch, device, len(r32)
        cpu = device == "cpu"
        # On CPU, tiles of _CPU_TILE_ROWS × _CPU_TILE_COLS (1 MiB): the distance tile stays in the
        # core's cache between the matmul that writes it and the pass that reads it back — twice
        # as fast per pair as large tiles, measured. block_rows / block_cols only cap them.
        cols = min(block_cols, _CPU_TILE_COLS) if cpu else block_cols
        self.tile_cols = max(_GROUPS, cols - cols % _GROUPS)  # a multiple of _GROUPS
        self.tile_rows = min(block_rows, _CPU_TILE_ROWS) if cpu else block_rows
        r = torch.from_numpy(r32).to(device)
        self.width = -(-(r32.shape[1] + 1) // 8) * 8
        self.r = torch.zeros((self.m, self.width), device=device)
        self.r[:, : r.shape[1]] = r
        self.r[:, r.shape[1]] = (r * r).sum(dim=1)
        self.offsets = torch.arange(_GROUPS, device=device)
        self.dim = r32.shape[1]
        self.scan = None
        if cpu and scan:
            from synth_pipeline.tile_scan import scan_tile

            self.scan, self.r_sq = scan_tile, self.r[:, self.dim].contiguous().numpy()
        self.stop = threading.Event()  # set: every tile loop ends at its next tile (_run_threaded)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise SearchStopped("nearest-neighbour search stopped")

    def _augment(self, q32: np.ndarray):
        torch = self.torch
        q = torch.from_numpy(q32).to(self.device)
        qa = torch.zeros((len(q), self.width), device=self.device)
        qa[:, : q.shape[1]] = q * -2.0
        qa[:, q.shape[1]] = 1.0
        return qa, (q * q).sum(dim=1)

    def _tiles(self, qa):
        """(r0, ||r||² - 2q·r for reference rows r0 … r0 + tile_cols) — the tile buffer is reused."""
        torch = self.torch
        buf = torch.empty((len(qa), min(self.tile_cols, self.m)), device=self.device)
        for r0 in range(0, self.m, self.tile_cols):
            self._check_stop()
            r1 = min(self.m, r0 + self.tile_cols)
            out = buf if r1 - r0 == buf.shape[1] else buf.new_empty((len(qa), r1 - r0))
            yield r0, torch.mm(qa, self.r[r0:r1].T, out=out)

    def candidates(self, q32: np.ndarray, n_cand: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            qa, q_sq = self._augment(q32)
            block = self._scan_candidates if self.scan else self._candidates
            parts = [block(qa[i : i + self.tile_rows], n_cand) for i in range(0, len(qa), self.tile_rows)]
            approx, idx, floor = (torch.cat(x) for x in zip(*parts))
            approx += q_sq[:, None]
            floor += q_sq
            return approx.cpu().numpy(), idx.cpu().numpy(), floor.cpu().numpy()

    def _scan_candidates(self, qa, n_cand: int):
        """(approx, idx, floor) without the ||q||² term, on CPU: -2q·r tiles from torch.mm (the norm
        column of the augmented rows left out: 64 instead of 72 products per entry), each folded into
        the rows' running n_cand smallest by tile_scan.scan_tile while it is in the cache. Every
        reference row left out is >= the largest kept candidate, which is the floor."""
        torch = self.torch
        rows, q = len(qa), qa[:, : self.dim]
        best_d = np.full((rows, n_cand), np.inf, dtype=np.float32)
        best_i = np.zeros((rows, n_cand), dtype=np.int64)
        tau = np.full(rows, np.inf, dtype=np.float32)
        buf = torch.empty((rows, min(self.tile_cols, self.m)))
        for r0 in range(0, self.m, self.tile_cols):
            self._check_stop()
            r1 = min(self.m, r0 + self.tile_cols)
            out = buf if r1 - r0 == buf.shape[1] else buf.new_empty((rows, r1 - r0))
            torch.mm(q, self.r[r0:r1, : self.dim].T, out=out)
            self.scan(out.numpy(), self.r_sq[r0:r1], r0, best_d, best_i, tau)
        return torch.from_numpy(best_d), torch.from_numpy(best_i), torch.from_numpy(tau)

    def _candidates(self, qa, n_cand: int):
        """(approx, idx, floor) without the ||q||² term: n_cand candidates per row and a lower bound on
        the float32 distance of every reference row left out.

        A top-k over every distance tile would cost more than its matmul, so it runs on 1/16 of
        the entries: a full tile of width 16·w is cut into 16 column slices, and their elementwise
        minimum (one cheap pass) is the minimum of each group {j, j + w, ..., j + 15w}. The group
        minima of up to _SUPER tiles are ranked together: the n_cand groups with the smallest
        minima hold the n_cand smallest entries (a group left out has a minimum >= every kept
        group's minimum, and the kept groups supply n_cand entries that small), so only their
        members are top-k'd — gathered from the kept tiles when the whole reference fits in
        _KEEP_COLS columns, else recomputed (a gathered matrix-vector product: keeping many tiles
        would evict the one being written from the cache, measured 1.6x slower). The group minima are themselves
        ranked the same way when there are enough of them (minima of 16 strided slices, then the
        members of the n_cand smallest). Every row left out is therefore >= the largest kept
        candidate, group minimum or minimum of group minima: `floor` is the smallest of the three."""
        torch = self.torch
        g, R, tile = _GROUPS, len(qa), self.tile_cols
        w = tile // g
        n_full = self.m // tile if w >= 4 * n_cand else 0
        keep = n_full * tile <= _KEEP_COLS
        per_flush = max(1, min(_SUPER, _SUPER_MINS // w, n_full))
        store = torch.empty((per_flush if keep else 1, R, tile), device=self.device) if n_full else None
        gmin = torch.empty((R, per_flush * w), device=self.device)
        best = [None, None]
        floor = torch.full((R,), float("inf"), device=self.device)
        pending: list[int] = []
        row_base = (torch.arange(R, device=self.device) * tile)[:, None]

        def merge(d, i):
            if best[0] is not None:
                d, i = torch.cat([best[0], d], dim=1), torch.cat([best[1], i], dim=1)
                if d.shape[1] > n_cand:
                    d, keep = d.topk(n_cand, dim=1, largest=False, sorted=False)
                    i = i.gather(1, keep)
            best[0], best[1] = d, i

        def flush():
            nonlocal floor
            if not pending:
                return
            mins = gmin[:, : len(pending) * w]
            sw = mins.shape[1] // g
            if mins.shape[1] % g == 0 and sw >= 4 * n_cand:  # the same trick on the group minima
                sv, si = mins.view(R, g, sw).amin(dim=1).topk(n_cand, dim=1, largest=False, sorted=False)
                floor = torch.minimum(floor, sv.amax(dim=1))
                groups = (si[:, None, :] + self.offsets[:, None] * sw).reshape(R, g * n_cand)
                gv, pick = mins.gather(1, groups).topk(n_cand, dim=1, largest=False, sorted=False)
                gi = groups.gather(1, pick)
            else:
                gv, gi = mins.topk(n_cand, dim=1, largest=False, sorted=False)
            floor = torch.minimum(floor, gv.amax(dim=1))
            slot, j = gi // w, gi % w
            col = (j[:, None, :] + self.offsets[:, None] * w).reshape(R, g * n_cand)  # within its tile
            slot = slot[:, None, :].expand(R, g, n_cand).reshape(R, g * n_cand)
            members = torch.tensor(pending, device=self.device)[slot] + col
            if keep:
                vals = torch.take(store, slot * (R * tile) + row_base + col)
            else:
                rows = self.r.index_select(0, members.reshape(-1)).view(R, g * n_cand, self.width)
                vals = torch.bmm(rows, qa[:, :, None]).squeeze(2)
            d, pick = vals.topk(n_cand, dim=1, largest=False, sorted=False)
            merge(d, members.gather(1, pick))
            pending.clear()

        for r0 in range(0, self.m, tile):
            self._check_stop()
            r1 = min(self.m, r0 + tile)
            if store is not None and r1 - r0 == tile:
                k_slot = len(pending)
                d2 = torch.mm(qa, self.r[r0:r1].T, out=store[k_slot if keep else 0])
                torch.amin(d2.view(R, g, w), dim=1, out=gmin[:, k_slot * w : (k_slot + 1) * w])
                pending.append(r0)
                if len(pending) == per_flush:
                    flush()
            else:  # a short last tile, or tiles too narrow for grouping: a plain top-k
                d2 = torch.mm(qa, self.r[r0:r1].T)
                d, i = d2.topk(min(n_cand, r1 - r0), dim=1, largest=False, sorted=False)
                merge(d, i + r0)
        flush()
        return best[0], best[1], torch.minimum(floor, best[0].amax(dim=1))

    def within(self, q32: np.ndarray, bound: np.ndarray):
        torch = self.torch
        with torch.inference_mode():
            qa, q_sq = self._augment(q32)
            limit = torch.from_numpy(bound).to(self.device) - q_sq.double()
            for r0, d2 in self._tiles(qa):
                rows, cols = torch.nonzero(d2.double() <= limit[:, None], as_tuple=True)
                yield rows.cpu().numpy(), cols.cpu().numpy() + r0


class _FaissBlocks:
    """Candidates from faiss's exact float32 `IndexFlatL2` (the peer the engine is measured against);
    the rare exhaustive pass runs on numpy blocks over the same float32 reference."""

    def __init__(self, r32: np.ndarray, block_cols: int):
        import faiss

        self.index = faiss.IndexFlatL2(r32.shape[1])
        self.index.add(r32)
        self.fallback = _NumpyBlocks(r32, block_cols)

    def candidates(self, q32: np.ndarray, n_cand: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sq, idx = self.index.search(q32, n_cand)
        return sq, idx.astype(np.int64), sq.max(axis=1)  # every row left out is >= the largest kept

    def within(self, q32: np.ndarray, bound: np.ndarray):
        return self.fallback.within(q32, bound)


def _resolve_backend(backend: str) -> str:
    if backend not in ("auto", "torch", "numpy", "faiss"):
        raise ValueError(f"backend={backend!r}: expected 'auto', 'torch', 'numpy' or 'faiss'")
    if backend == "auto":
        try:
            import torch  # noqa: F401
        except ImportError:
            return "numpy"
        return "torch"
    return backend


def _float32_tolerance(dim: int, backend: str, device: str) -> float:
    """A bound on |float32 ||a-b||² - exact ||a-b||²| / (||a||² + ||b||²) on the centred data: the
    float32 rounding of the inputs (4u), of the norms and the dot product (γ_d each, accumulated in any
    order) and of the final sums — (3d + 10)·u, with u = 2^-24. TF32 matmuls on a GPU (enabled by
    torch.set_float32_matmul_precision("high"/"medium")) round the inputs to 10 mantissa bits: add
    2·2^-10 for them."""
    tol = (3 * dim + 10) * _F32_EPS
    if backend == "torch" and device != "cpu":
        import torch

        if torch.get_float32_matmul_precision() != "highest" or torch.backends.cuda.matmul.allow_tf32:
            tol += 2 * 2.0**-10 + 2.0**-8  # generous: bfloat16 ("medium") rounds to 8 bits
    return tol


def _exact_sq(query: np.ndarray, reference: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """float64 squared distances by direct differences (a copy gives exactly 0.0)."""
    diff = query[rows] - reference[cols]
    return np.einsum("...j,...j->...", diff, diff)


def _rank(sq: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k smallest distances, ties to the lower index: (dist, idx)."""
    dist = np.sqrt(sq)
    order = np.lexsort((idx, dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)


def _exhaustive(
    engine, query: np.ndarray, reference: np.ndarray, q32: np.ndarray, bound: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k for rows whose float32 candidates could not be certified (near-ties beyond the
    spare candidates, e.g. many duplicated reference rows): every reference row whose float32
    distance is within `bound` (which covers every row that can be in the true top k) is re-ranked
    in float64, chunk by chunk, merged into a running top k."""
    n = len(query)
    best_sq = np.full((n, k), np.inf)
    best_i = np.full((n, k), len(reference), dtype=np.int64)
    for rows, cols in engine.within(q32, bound):
        for p0 in range(0, len(rows), _PAIR_CHUNK):
            r, c = rows[p0 : p0 + _PAIR_CHUNK], cols[p0 : p0 + _PAIR_CHUNK]
            sq = _exact_sq(query, reference, r, c)
            all_r = np.concatenate([np.repeat(np.arange(n), k), r])
            all_c = np.concatenate([best_i.ravel(), c])
            all_sq = np.concatenate([best_sq.ravel(), sq])
            order = np.lexsort((all_c, np.sqrt(all_sq), all_r))
            all_r, all_c, all_sq = all_r[order], all_c[order], all_sq[order]
            start = np.searchsorted(all_r, np.arange(n))
            rank = np.arange(len(all_r)) - start[all_r]
            keep = rank < k
            best_sq[all_r[keep], rank[keep]] = all_sq[keep]
            best_i[all_r[keep], rank[keep]] = all_c[keep]
    return np.sqrt(best_sq), best_i


def nearest(
    query: np.ndarray,
    reference: np.ndarray,
    k: int = 2,
    block_rows: int = 1024,
    block_cols: int = 16384,
    backend: str = "auto",
    scheduler: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest reference rows (Euclidean) for every query row: (dist, idx), each (n, k),
    ascending, ties broken by the lower reference index.

    Where: in this process, or — when `scheduler` (else synth_pipeline.cluster.scheduler_address())
    names a dask.distributed scheduler — sharded over its workers (`sharded_nearest`), with the same answer.

    Search: float32 ||a||² + ||b||² - 2ab on data centred at the reference mean, block by block,
    keeping k + 8 candidates per query row merged across reference blocks. backend="torch" (what
    "auto" takes when torch imports) runs on the device synth_pipeline.device.pick_device() names:
    on a GPU, block_rows × block_cols tiles whose top-k is taken on group minima, not on every
    distance (_TorchBlocks._candidates); on CPU, cache-sized 256 × 1024 tiles (capped by the block
    sizes), query blocks spread over one worker thread per torch intra-op thread (all physical
    cores by default), and from _SCAN_MIN_PAIRS query × reference pairs on each tile is folded into
    the rows' running candidates by the numba kernel tile_scan.scan_tile while it is in the cache
    (below, the group minima as on a GPU). backend="numpy" is the plain BLAS + argpartition
    fallback; backend="faiss" takes its candidates from faiss's IndexFlatL2.
    Re-ranking: the candidates' distances are recomputed in float64 by direct differences (an
    exact copy reports exactly 0.0) and ordered by (distance, index). Certificate: a row is final
    when its k-th float64 squared distance plus the float32 error bound (_float32_tolerance) is
    still below the float32 floor of every discarded reference row — none of them can then reach
    the top k. Rows that fail (near-ties beyond the spare candidates, such as many duplicated
    reference rows) are re-searched exhaustively within that bound (_exhaustive). Both backends
    therefore return the same exact answer: sklearn's brute force up to its own rounding.

    Peak memory beyond the float64 inputs (B = block_rows, C = block_cols, c = k + 8,
    d' = d + 1 rounded up to a multiple of 8), whatever n and m:
      * the float32 centred reference: 4·m·d' (torch; on the device) or 4·m·d (numpy);
      * per query block (per worker thread on CPU): the float64 re-ranking, 3·8·B·c·d, and for
        torch on CPU a 256 × 1024 distance tile (1 MiB) and, with the scan, the running candidates
        (12·256·c), else the group minima (4·256·8192 = 8 MiB) and the gathered candidate groups
        (4·256·16c·d'); torch on a GPU: a B × C tile, 4·B·8192 and 4·B·16c·d'; numpy: the B × C
        block and its argpartition, about 3·4·B·C;
      * the fallback, for uncertified rows only: at most 8·65536·d for its re-ranked pairs plus
        the pairs within its bound per block.
    At n = m = 100k, d = 64, k = 2 and the defaults on a 2-core CPU (the scan): 29 MB + 2 × (16 + 1)
    MB ≈ 65 MB."""
    address = scheduler if scheduler is not None else cluster.scheduler_address()
    if address:
        return sharded_nearest(query, reference, k, client=cluster.client(address), block_rows=block_rows,
                               block_cols=block_cols, backend=backend)
    query, reference = _check_inputs(query, reference, k)
    n, m = len(query), len(reference)
    dim = query.shape[1]
    dist, idx = np.empty((n, k)), np.empty((n, k), dtype=np.int64)
    if n == 0:
        return dist, idx
    backend = _resolve_backend(backend)
    mean = reference.mean(axis=0)
    r32 = np.empty(reference.shape, dtype=np.float32)
    r_sq_max = 0.0  # the largest squared norm of a centred reference row, for the error bound
    for r0 in range(0, m, block_cols):
        centred = reference[r0 : r0 + block_cols] - mean
        r32[r0 : r0 + block_cols] = centred
        r_sq_max = max(r_sq_max, float(np.einsum("ij,ij->i", centred, centred).max()))
    if backend == "torch":
        from synth_pipeline.device import pick_device

        device = pick_device()
        engine = _TorchBlocks(r32, block_rows, block_cols, device, scan=n * m >= _SCAN_MIN_PAIRS)
        del r32  # the engine holds its own (augmented) copy
    elif backend == "faiss":
        device = "cpu"
        engine = _FaissBlocks(r32, block_cols)
        del r32
    else:
        device = "cpu"
        engine = _NumpyBlocks(r32, block_cols)
    n_cand = min(m, k + 8)
    tol = _float32_tolerance(dim, backend, device)
    rel = 4 * (dim + 4) * _F64_EPS  # float64 direct-difference error, relative

    def search(q0: int) -> None:
        q1 = min(n, q0 + block_rows)
        qc = query[q0:q1] - mean
        q32 = qc.astype(np.float32)
        _, cand, floor = engine.candidates(q32, n_cand)
        rows = np.arange(q0, q1)[:, None]
        sq = _exact_sq(query, reference, np.broadcast_to(rows, cand.shape), cand)
        d, i = _rank(sq, cand, k)
        if n_cand < m:
            slack = tol * (np.einsum("ij,ij->i", qc, qc) + r_sq_max)
            bound = d[:, -1] ** 2 * (1 + rel) + slack
            open_rows = np.nonzero(~(bound < floor.astype(np.float64)))[0]
            if len(open_rows):
                d[open_rows], i[open_rows] = _exhaustive(
                    engine, query[q0 + open_rows], reference, q32[open_rows], bound[open_rows], k
                )
        dist[q0:q1], idx[q0:q1] = d, i

    workers = _cpu_workers(backend, device, n)
    if workers > 1:  # at least 4 tasks per worker thread, so that they finish together
        block_rows = max(1, min(block_rows, max(_CPU_TILE_ROWS, -(-n // (4 * workers)))))
    starts = range(0, n, block_rows)
    if workers == 1 or len(starts) == 1:
        for q0 in starts:
            search(q0)
    else:
        _run_threaded(search, starts, workers, engine.stop)
    return dist, idx


def _cpu_workers(backend: str, device: str, n: int) -> int:
    """Worker threads for torch on CPU: torch's intra-op thread count (all physical cores by default)."""
    if backend != "torch" or device != "cpu" or n <= _CPU_TILE_ROWS:
        return 1
    import torch

    return max(1, torch.get_num_threads())


def _run_threaded(search, starts, workers: int, stop: threading.Event) -> None:
    """Query blocks spread over `workers` threads, each running torch single-threaded (torch releases
    the GIL inside its kernels). One coarse task per block instead of a fork/join of the intra-op
    pool in every matmul, top-k and gather: on a busy machine each of those joins waits for the
    slowest, descheduled thread (measured: 2-core CPU shared with other jobs, 4-10x slower).

    Stopping: the calling thread waits in slices of _WAIT_S, so a signal handler that raises (SIGTERM
    or SIGINT, as Dagster and the CLI turn them into exceptions) runs within one slice; on any
    exception, its own or a worker's, `stop` ends every running block at its next distance tile and
    the blocks not yet started are dropped, so the exception leaves at once instead of after the
    whole search."""
    import torch
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    outer = torch.get_num_threads()

    def run(q0: int) -> None:
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)  # per thread under OpenMP; restored for the caller below
        search(q0)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nearest")
    try:
        pending = {pool.submit(run, q0) for q0 in starts}
        while pending:
            done, pending = wait(pending, timeout=_WAIT_S, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()  # a worker's exception is raised here
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(outer)


def _shard_search(query: np.ndarray, shard: np.ndarray, k: int, offset: int, options: dict) -> tuple[np.ndarray, np.ndarray]:
    dist, idx = nearest(query, shard, min(k, len(shard)), scheduler="", **options)
    return dist, idx + offset


def sharded_nearest(
    query: np.ndarray, reference: np.ndarray, k: int = 2, *, client, shards: int | None = None, **options
) -> tuple[np.ndarray, np.ndarray]:
    """`nearest` with the reference split into contiguous row ranges, one task per shard on a
    dask.distributed cluster, and the per-shard top-k merged by (distance, global index). Equal to
    the single-process search bit for bit: every pair's distance is the same float64 direct
    difference and the merge breaks ties as `nearest` does. `shards` defaults to the cluster's
    worker threads."""
    query, reference = _check_inputs(query, reference, k)
    shards = max(1, min(len(reference), shards or sum(client.nthreads().values()) or 1))
    bounds = np.linspace(0, len(reference), shards + 1).astype(int)
    q = client.scatter(query, broadcast=True)
    futures = [client.submit(_shard_search, q, reference[a:b], k, int(a), options, pure=False)
               for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    parts = client.gather(futures)
    dist = np.hstack([d for d, _ in parts])
    idx = np.hstack([i for _, i in parts])
    order = np.lexsort((idx, dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)

