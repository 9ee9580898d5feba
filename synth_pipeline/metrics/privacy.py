"""Privacy metrics: distance to closest record (DCR), NNDR and anonymeter linkability.

Every distance is Euclidean on one mixed-type embedding fitted on the training table only, so
synthetic->train and holdout->train distances are on the same scale and a fresh real sample is
the reference a release is judged against (DESIGN.md, Metrics and Gate).
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synth_pipeline.config import Thresholds
from synth_pipeline.metrics.base import MetricResult, missing
from synth_pipeline.metrics.evidence import attacks_to_bound, zero_risk_upper
from synth_pipeline.schema import Schema

MIN_HOLDOUT_ROWS = 10
DCR_NAMES = ("memorisation_rate", "dcr_share", "exact_copies", "nndr")
DCR_COMPARED = "synthetic->train vs holdout->train"
LINK_COMPARED = "synthetic links train (ori) vs holdout (control)"
MISSING_LEVEL = "\x00missing"
UNSEEN_LEVEL = "\x00unseen"
HISTOGRAM_BINS = 30
_IQR_TO_SD = 1.349  # IQR of a standard normal: (x - median) / (IQR / 1.349) is ~N(0, 1) for normal data


@dataclass(frozen=True)
class MixedEmbedding:
    """Numeric columns -> (x - median) / (IQR / 1.349), with the train std and then 1 as fallbacks
    when the IQR is zero (robust to the heavy tails of lab values, comparable to a z-score), NaN ->
    0 (the scaled median) plus a 0/1 missing indicator. Categorical columns -> one-hot / sqrt(2), so
    any mismatch adds exactly 1 to the squared distance, like a flipped missing indicator. NaN is its
    own level; values seen neither in train nor in the schema's declared categories share one
    "unseen" level, which is still a mismatch against every train value."""

    numeric: tuple[str, ...]
    centre: np.ndarray
    scale: np.ndarray
    categorical: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]

    @property
    def dim(self) -> int:
        return 2 * len(self.numeric) + sum(len(lv) for lv in self.levels)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        parts = []
        if self.numeric:
            x = df[list(self.numeric)].to_numpy(dtype=np.float64)
            nan = np.isnan(x)
            parts += [np.where(nan, 0.0, (x - self.centre) / self.scale), nan.astype(np.float64)]
        for col, levels in zip(self.categorical, self.levels):
            index = {v: i for i, v in enumerate(levels)}
            codes = np.fromiter(
                (index.get(MISSING_LEVEL if pd.isna(v) else str(v), index[UNSEEN_LEVEL]) for v in df[col]),
                dtype=np.int64,
                count=len(df),
            )
            onehot = np.zeros((len(df), len(levels)))
            onehot[np.arange(len(df)), codes] = 1.0 / math.sqrt(2.0)
            parts.append(onehot)
        return np.hstack(parts) if parts else np.zeros((len(df), 0))


def fit_embedding(train: pd.DataFrame, schema: Schema) -> MixedEmbedding:
    """Fit the scaling and the category vocabulary on the training table only (target included)."""
    numeric = tuple(schema.numeric)
    x = train[list(numeric)].to_numpy(dtype=np.float64) if numeric else np.zeros((len(train), 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: handled by the fallbacks
        centre = np.nanmedian(x, axis=0)
        q75, q25 = np.nanpercentile(x, [75, 25], axis=0)
        std = np.nanstd(x, axis=0)
    scale = (q75 - q25) / _IQR_TO_SD
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, std)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    centre = np.where(np.isfinite(centre), centre, 0.0)
    levels = []
    for col in schema.categorical:
        declared = schema.column(col).categories or ()
        seen = sorted(set(train[col].dropna().astype(str)) | set(declared))
        levels.append((*seen, MISSING_LEVEL, UNSEEN_LEVEL))
    return MixedEmbedding(numeric, centre, scale, tuple(schema.categorical), tuple(levels))


_F32_EPS = 2.0**-24  # unit round-off of float32
_F64_EPS = 2.0**-53
_PAIR_CHUNK = 1 << 16  # pairs re-ranked at once in the fallback pass (× dims × 8 bytes)
_CPU_TILE_ROWS, _CPU_TILE_COLS = 256, 1024  # torch on CPU: the distance tile (cache-sized)
_GROUPS = 16  # torch: a tile's columns fall into groups of 16 whose minimum pre-selects the top-k
_SUPER = 128  # torch: tiles whose group minima are ranked together (at most _SUPER_MINS minima)
_SUPER_MINS = 8192
_KEEP_COLS = 16384  # torch: a reference this small (in full tiles) keeps its tiles instead of recomputing


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
    thread by nearest(), see _run_threaded). Each tile is one matmul of augmented rows,
    [-2q, 1, 0…] · [r, ||r||², 0…] = ||r||² - 2q·r (padded to a multiple of 8 columns), so no
    separate pass adds the norms."""

    def __init__(self, r32: np.ndarray, block_rows: int, block_cols: int, device: str):
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
            r1 = min(self.m, r0 + self.tile_cols)
            out = buf if r1 - r0 == buf.shape[1] else buf.new_empty((len(qa), r1 - r0))
            yield r0, torch.mm(qa, self.r[r0:r1].T, out=out)

    def candidates(self, q32: np.ndarray, n_cand: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            qa, q_sq = self._augment(q32)
            parts = [self._candidates(qa[i : i + self.tile_rows], n_cand) for i in range(0, len(qa), self.tile_rows)]
            approx, idx, floor = (torch.cat(x) for x in zip(*parts))
            approx += q_sq[:, None]
            floor += q_sq
            return approx.cpu().numpy(), idx.cpu().numpy(), floor.cpu().numpy()

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


def _resolve_backend(backend: str) -> str:
    if backend not in ("auto", "torch", "numpy"):
        raise ValueError(f"backend={backend!r}: expected 'auto', 'torch' or 'numpy'")
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
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest reference rows (Euclidean) for every query row: (dist, idx), each (n, k),
    ascending, ties broken by the lower reference index.

    Search: float32 ||a||² + ||b||² - 2ab on data centred at the reference mean, block by block,
    keeping k + 8 candidates per query row merged across reference blocks. backend="torch" (what
    "auto" takes when torch imports) runs on the device synth_pipeline.device.pick_device() names:
    on a GPU, block_rows × block_cols tiles; on CPU, cache-sized 256 × 1024 tiles (capped by the
    block sizes), query blocks spread over one worker thread per torch intra-op thread (all
    physical cores by default). The top-k is taken on group minima, not on every distance
    (_TorchBlocks._candidates). backend="numpy" is the plain BLAS + argpartition fallback.
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
        torch on CPU a 256 × 1024 distance tile (1 MiB), its group minima (4·256·8192 = 8 MiB)
        and the gathered candidate groups (4·256·16c·d'); torch on a GPU: a B × C tile, 4·B·8192
        and 4·B·16c·d'; numpy: the B × C block and its argpartition, about 3·4·B·C;
      * the fallback, for uncertified rows only: at most 8·65536·d for its re-ranked pairs plus
        the pairs within its bound per block.
    At m = 100k, d = 64, k = 2 and the defaults on a 2-core CPU: 29 MB + 2 × (16 + 1 + 8 + 12) MB
    ≈ 100 MB."""
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
        engine = _TorchBlocks(r32, block_rows, block_cols, device)
        del r32  # the engine holds its own (augmented) copy
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
        _run_threaded(search, starts, workers)
    return dist, idx


def _cpu_workers(backend: str, device: str, n: int) -> int:
    """Worker threads for torch on CPU: torch's intra-op thread count (all physical cores by default)."""
    if backend != "torch" or device != "cpu" or n <= _CPU_TILE_ROWS:
        return 1
    import torch

    return max(1, torch.get_num_threads())


def _run_threaded(search, starts, workers: int) -> None:
    """Query blocks spread over `workers` threads, each running torch single-threaded (torch releases
    the GIL inside its kernels). One coarse task per block instead of a fork/join of the intra-op
    pool in every matmul, top-k and gather: on a busy machine each of those joins waits for the
    slowest, descheduled thread (measured: 2-core CPU shared with other jobs, 4-10x slower)."""
    import torch
    from concurrent.futures import ThreadPoolExecutor

    outer = torch.get_num_threads()

    def run(q0: int) -> None:
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)  # per thread under OpenMP; restored for the caller below
        search(q0)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nearest") as pool:
            for future in [pool.submit(run, q0) for q0 in starts]:
                future.result()
    finally:
        torch.set_num_threads(outer)


def wilson_interval(successes: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (stays inside [0, 1] and sane near 0 and 1)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _dcr_quantiles(d: np.ndarray) -> dict[str, float]:
    p5, p50 = np.percentile(d[:, 0], [5, 50])
    return {"p5": float(p5), "p50": float(p50)}


def dcr_histogram(syn: np.ndarray, hold: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict:
    """Counts of synthetic->train and holdout->train DCR on shared bin edges: `bins` equal bins from 0
    to the 99th percentile of both samples pooled (the far tail would squash the informative part);
    distances beyond the last edge are counted in `above_last_edge`, so counts + above = n."""
    pooled = np.concatenate([syn, hold])
    top = float(np.percentile(pooled, 99)) if len(pooled) else 0.0
    if not top > 0:
        top = float(pooled.max()) if len(pooled) and pooled.max() > 0 else 1.0
    edges = np.linspace(0.0, top, bins + 1)
    out: dict = {"edges": edges.tolist(), "range_quantile": 0.99}
    for name, d in (("synthetic_to_train", syn), ("holdout_to_train", hold)):
        out[name] = np.histogram(d, bins=edges)[0].astype(int).tolist()
    out["above_last_edge"] = {"synthetic_to_train": int((syn > top).sum()), "holdout_to_train": int((hold > top).sum())}
    return out


def _nndr(d: np.ndarray) -> np.ndarray:
    """Nearest / second-nearest distance; 0 when both are 0 (a duplicated row copied exactly)."""
    return np.divide(d[:, 0], d[:, 1], out=np.zeros(len(d)), where=d[:, 1] > 0)


def _table_problem(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> str | None:
    for label, df in (("train", train), ("holdout", holdout), ("synthetic", synthetic)):
        absent = [c for c in schema.names if c not in df.columns]
        if absent:
            return f"{label} table lacks column(s) {absent}"
    if len(synthetic) == 0:
        return "synthetic table is empty"
    if len(holdout) < MIN_HOLDOUT_ROWS:
        return f"holdout has {len(holdout)} rows; at least {MIN_HOLDOUT_ROWS} are needed"
    if len(train) < 2:
        return f"train has {len(train)} rows; at least 2 are needed"
    return None


def dcr_metrics(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *, seed: int
) -> list[MetricResult]:
    """memorisation_rate, dcr_share, exact_copies and nndr (DESIGN.md), in that order.

    Every number is paired with the same quantity for the holdout, a real sample the generator never
    saw: that is what "as close to train as fresh data would be" means."""
    problem = _table_problem(train, holdout, synthetic, schema)
    if problem:
        return [missing(name, problem, DCR_COMPARED) for name in DCR_NAMES]
    emb = fit_embedding(train, schema)
    e_train, e_hold, e_syn = emb.transform(train), emb.transform(holdout), emb.transform(synthetic)
    d_syn, _ = nearest(e_syn, e_train, k=2)
    d_hold, _ = nearest(e_hold, e_train, k=2)
    n_syn, n_hold = len(d_syn), len(d_hold)

    quantiles = {"synthetic_to_train": _dcr_quantiles(d_syn), "holdout_to_train": _dcr_quantiles(d_hold)}
    p5 = quantiles["holdout_to_train"]["p5"]
    memorised = int((d_syn[:, 0] < p5).sum())
    memorisation = MetricResult(
        name="memorisation_rate",
        value=memorised / n_syn,
        ci=wilson_interval(memorised, n_syn),
        compared=DCR_COMPARED,
        detail={
            "holdout_p5_dcr": p5,
            "holdout_rate": float((d_hold[:, 0] < p5).mean()),
            "n_synthetic": n_syn,
            "n_memorised": memorised,
            "dcr_quantiles": quantiles,
            "embedding_dim": emb.dim,
            "histogram": dcr_histogram(d_syn[:, 0], d_hold[:, 0]),
        },
    )

    rng = np.random.default_rng(seed)
    subset = np.sort(rng.choice(len(train), size=min(n_hold, len(train)), replace=False))
    d_to_train, _ = nearest(e_syn, e_train[subset], k=1)
    d_to_hold, _ = nearest(e_syn, e_hold, k=1)
    closer = float((d_to_train[:, 0] < d_to_hold[:, 0]).sum())
    ties = float((d_to_train[:, 0] == d_to_hold[:, 0]).sum())
    share_count = closer + 0.5 * ties
    share = MetricResult(
        name="dcr_share",
        value=share_count / n_syn,
        ci=wilson_interval(share_count, n_syn),
        compared="synthetic->train subset vs synthetic->holdout (equal sizes)",
        detail={"n_closer_to_train": int(closer), "n_ties": int(ties), "train_subset_size": int(len(subset)),
                "holdout_size": n_hold, "seed": seed},
    )

    syn_copies = int((d_syn[:, 0] == 0).sum())
    hold_matches = int((d_hold[:, 0] == 0).sum())
    exact = MetricResult(
        name="exact_copies",
        value=syn_copies / n_syn,
        compared=DCR_COMPARED,
        detail={"synthetic_count": syn_copies, "synthetic_rate": syn_copies / n_syn,
                "holdout_count": hold_matches, "holdout_rate": hold_matches / n_hold},
    )

    nndr = MetricResult(
        name="nndr",
        value=float(np.median(_nndr(d_syn))),
        compared=DCR_COMPARED,
        detail={"holdout_median": float(np.median(_nndr(d_hold)))},
    )
    return [memorisation, share, exact, nndr]


def split_aux_columns(train: pd.DataFrame, schema: Schema) -> tuple[list[str], list[str]]:
    """The attacker's two auxiliary column sets: features ranked by their number of distinct train
    values (most identifying first, ties in schema order), dealt alternately to the two halves. Both
    halves then carry a comparable share of the identifying power, which is the attacker's best shot
    at a link (a half of binary flags links nothing). On FLCHAIN this split sees a 0.05×std perturbed
    copy (risk ≈ 0.11) where the plain alternate-by-schema-order split did not (≈ 0.04)."""
    ranked = sorted(schema.features, key=lambda c: (-train[c].nunique(), schema.features.index(c)))
    return ranked[0::2], ranked[1::2]


def _for_anonymeter(
    frames: tuple[pd.DataFrame, ...], schema: Schema, aux: tuple[list[str], list[str]]
) -> tuple[tuple[pd.DataFrame, ...], tuple[list[str], list[str]]]:
    """Make the tables safe for anonymeter (`frames[0]`, the training table, supplies the medians).
    Its Gower distance is NaN for a numeric NaN against a value (the neighbour search then returns
    arbitrary rows) and its LabelEncoder chokes on mixed str/float categories, so: numeric NaN ->
    train median plus a 0/1 "<col>__missing" column in the same half (a mismatch costs 1, as a
    categorical one does); categorical NaN -> its own level."""
    train = frames[0]
    flagged = [c for c in schema.numeric if c in aux[0] + aux[1] and any(f[c].isna().any() for f in frames)]
    medians = {c: float(train[c].median()) if train[c].notna().any() else 0.0 for c in flagged}
    out = []
    for f in frames:
        g = f[aux[0] + aux[1]].copy()
        for c in schema.categorical:
            if c in g:
                g[c] = g[c].astype(object).where(g[c].notna(), MISSING_LEVEL)
        for c in flagged:
            g[f"{c}__missing"] = g[c].isna().astype(np.float64)
            g[c] = g[c].fillna(medians[c])
        out.append(g.reset_index(drop=True))
    first, second = ([*h, *(f"{c}__missing" for c in h if c in flagged)] for h in aux)
    return tuple(out), (first, second)


def linkability(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: Schema,
    *,
    n_attacks: int = 1000,
    n_neighbors: int = 5,
    seed: int = 0,
    threshold: float = Thresholds.linkability_ci_high_max,
) -> MetricResult:
    """anonymeter linkability (ori=train, syn=synthetic, control=holdout): the excess success, over
    the control set, of re-joining the two auxiliary halves of a record through a shared synthetic
    row among each half's k nearest; value and 95% CI are anonymeter's baseline-corrected risk.

    The attacker: one anonymeter evaluation with `n_neighbors` (5), then the largest k <= 5 whose
    control attack leaves room for evidence, i.e. with which a generator that leaks nothing could
    show an upper bound below `threshold` (`evidence.zero_risk_upper`); k = 1 (anonymeter's default)
    when none does. Five neighbours see lightly perturbed copies that one misses (FLCHAIN), but
    where many correlated numeric columns let each half of a *fresh* record find the same
    neighbours (breast cancer: control success 0.71-0.79 with five), the interval can never be
    narrow and the gate could never pass; one neighbour still links a copy there at 0.99.
    benchmarks/PRIVACY_GATES.md has the measurements. `detail` keeps every k's rates and risk."""
    from anonymeter.evaluators import LinkabilityEvaluator  # here: importing it loads numba (~1 s)

    name = "linkability"
    problem = _table_problem(train, holdout, synthetic, schema)
    if problem:
        return missing(name, problem, LINK_COMPARED)
    if len(schema.features) < 2:
        return missing(name, f"{len(schema.features)} feature column(s); linkability needs 2 to split", LINK_COMPARED)
    n = min(n_attacks, len(holdout), len(train))
    (ori, syn, control), aux = _for_anonymeter((train, synthetic, holdout), schema, split_aux_columns(train, schema))
    evaluator = LinkabilityEvaluator(ori=ori, syn=syn, aux_cols=aux, n_attacks=n, control=control,
                                     n_neighbors=n_neighbors)
    np.random.seed(seed)
    with warnings.catch_warnings():
        # anonymeter compares against an unseeded random-guess baseline and warns when it wins; the
        # risk we report is corrected by the (seeded) control attack instead, so the warning is noise.
        warnings.filterwarnings("ignore", message="Attack is as good or worse as baseline")
        evaluator.evaluate(n_jobs=-1)
        per_k = {k: evaluator.results(n_neighbors=k) for k in range(1, n_neighbors + 1)}
    usable = [k for k, r in per_k.items() if zero_risk_upper(n, int(r.n_control)) < threshold]
    k = max(usable, default=1)
    results = per_k[k]
    risk = results.risk()
    lo, hi = float(risk.ci[0]), float(risk.ci[1])
    max_attacks = (len(train) + len(holdout)) // 2  # a holdout of half the table (holdout_fraction 0.5)
    return MetricResult(
        name=name,
        value=float(risk.value),
        ci=(lo, hi),
        compared=LINK_COMPARED,
        detail={
            "attack_rate": float(results.attack_rate.value),
            "control_rate": float(results.control_rate.value),
            "n_success": int(results.n_success),
            "n_control_success": int(results.n_control),
            "n_attacks": n,
            "n_neighbors": k,
            "n_neighbors_max": n_neighbors,
            "per_neighbors": {
                str(j): {"risk": float(r.risk().value), "ci": [float(x) for x in r.risk().ci],
                         "attack_rate": float(r.attack_rate.value), "control_rate": float(r.control_rate.value),
                         "zero_risk_upper": zero_risk_upper(n, int(r.n_control))}
                for j, r in per_k.items()
            },
            "aux_cols": [list(a) for a in aux],
            "seed": seed,
            "holdout_rows": len(holdout),
            "table_rows": len(train) + len(holdout),
            "max_attacks": max_attacks,
            "threshold_for_rows_needed": threshold,
            "rows_needed": attacks_to_bound(n, int(results.n_success), int(results.n_control), threshold, max_attacks)
            if float(risk.value) < threshold <= hi else None,
        },
    )
