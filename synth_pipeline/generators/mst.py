"""MST (McKenna, Sheldon & Miklau 2021, "Winning the NIST Contest: A scalable and general approach to
differentially private synthetic data"), our own implementation: no maintained package installs here
(smartnoise-synth, private-pgm/mbi and dpmm were tried and are unusable).

Algorithm, as the paper's `mst.py` (checked against it step by step):
1. ρ = cdp_rho(ε, δ) (zCDP; the paper's cdp2adp conversion, see dp_budget), split in three.
2. ρ/3: every column's 1-way marginal with Gaussian noise σ₁ = sqrt(3d / 2ρ) per cell (d columns;
   the paper's σ = sqrt(3 / 2ρ) with weights 1/sqrt(d)).
3. Domain compression from the noisy 1-way counts: values whose noisy count is below 3σ₁ are merged.
4. ρ/3: a maximum spanning tree of 2-way marginals, grown Kruskal-style with d - 1 rounds of the
   exponential mechanism (ε_EM = sqrt(8 (ρ/3) / (d - 1)) each, score coefficient 1/2, sensitivity 1)
   on the L1 distance between each pair's true 2-way counts and the current model's (the product of
   the noisy 1-way marginals).
5. ρ/3: the tree's d - 1 2-way marginals with σ₂ = sqrt(3 (d - 1) / 2ρ) per cell.
6. Synthetic rows from a model consistent with the noisy measurements.

Where this differs from the paper, and why:
- Step 6: the paper fits Private-PGM to all measurements. For a tree we estimate consistent marginals
  directly: node marginals = the noisy 1-way counts clipped at 0; each edge's noisy 2-way table
  clipped at 0 (plus 1e-3 per cell) and fitted by iterative proportional fitting to its two node
  marginals; rows are drawn ancestrally from the target column (the root) down the tree. This is
  post-processing (no privacy cost) but ignores the information the 2-way tables carry about the
  1-way marginals, which PGM would pool.
- Numeric columns (the NIST data were all categorical): binned on a grid fixed by the declared
  bounds only — `bins` (256) bins equal-width in log(1 + x - min) (integers: one bin per value when
  the range holds at most `bins` values) so that skewed lab values keep resolution where patients
  are. Compression (3) keeps each supported bin and merges each run of adjacent unsupported bins
  into one interval (the paper merges all rare values of a column into one). For the tree (steps 4,
  5) the compressed intervals are grouped further into `pair_bins` (8) ordered groups of about equal
  noisy 1-way mass, so that a 2-way table is not swamped by noise; within a group a row's interval
  follows the noisy 1-way counts and its value is uniform within the bin. Categorical columns are
  used as the paper does (rare values -> one "other" value, decoded uniformly among its members).
- A merged group's noisy count is set to 0 when it is below 3 sigma of its own noise (sigma_1 times
  the square root of its size): otherwise a run of empty bins up to a wide declared bound (kappa's
  100 mg/L) spreads pure noise mass over it. PGM would instead fit all measurements jointly.
- Missing values are one more value of a column when its schema allows them (`max_missing` > 0).

What reads the private rows: only steps 2, 4 and 5, all inside the budget. Bounds and category
lists come from the declared schema (the bundled tables declare them) or the `bounds` / `categories`
parameters; a schema inferred from a file has observed category lists and no bounds, so MST refuses
(BadInput, exit 2) until they are declared — it spends no budget on finding them. The pipeline's
own preprocessing before any generator (the small-cell pooling of rare categories, the train /
holdout split) reads the data outside the budget; see README "Differential privacy".

The noisy measurements (and everything derived from them) are the model state: saving it releases
nothing beyond the DP output. A requested ε that leaves the 1-way noise above `max_noise_share` of
the (noisy) row count is refused (GeneratorError: the release records a refusal, exit 3).
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from synth_pipeline.data.infer import INFERRED_NOTE
from synth_pipeline.errors import BadInput, GeneratorError
from synth_pipeline.generators.base import BaseGenerator, register
from synth_pipeline.generators.dp_budget import (DEFAULT_DELTA, DEFAULT_EPSILON, PrivacySpent, cdp_eps,
                                                 cdp_rho, check_budget)
from synth_pipeline.schema import ColumnSpec, conform

SUPPORT_SIGMAS = 3.0  # the paper's compression threshold: noisy count >= 3 sigma
CELL_FLOOR = 1e-3  # added to every clipped 2-way cell so IPF can reach both node marginals
IPF_ITERS = 50


# ---- the public domain: from the schema / parameters, never from the rows ---------------------
@dataclass(frozen=True)
class Domain:
    """One column's values before compression: categories, or bin edges for a number; `nan` adds a
    last value for missing."""

    name: str
    kind: str
    categories: tuple[str, ...] = ()
    edges: tuple[float, ...] = ()
    nan: bool = False

    @property
    def size(self) -> int:
        return (len(self.categories) if self.kind == "categorical" else len(self.edges) - 1) + int(self.nan)

    @property
    def ordered(self) -> int:
        """How many leading values are ordered bins (0 for a categorical)."""
        return 0 if self.kind == "categorical" else len(self.edges) - 1

    def index(self, s: pd.Series) -> np.ndarray:
        """Each value's index in this domain; a value outside a declared category list is bad input."""
        missing = s.isna().to_numpy()
        if missing.any() and not self.nan:
            raise BadInput(f"mst: column '{self.name}' has missing values but its schema allows none (max_missing 0)")
        out = np.full(len(s), self.size - 1, dtype=np.int64)
        if self.kind == "categorical":
            pos = {c: i for i, c in enumerate(self.categories)}
            vals = s.to_numpy(dtype=object)
            unknown = [i for i in np.flatnonzero(~missing) if vals[i] not in pos]
            if unknown:
                raise BadInput(f"mst: column '{self.name}' holds {len(unknown)} value(s) outside its declared categories")
            out[~missing] = [pos[v] for v in vals[~missing]]
            return out
        x = np.clip(s.to_numpy(dtype=float)[~missing], self.edges[0], self.edges[-1])
        out[~missing] = np.clip(np.searchsorted(self.edges, x, side="right") - 1, 0, len(self.edges) - 2)
        return out

    def values(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A value for each index: the category, or uniform within the bin (NaN for the missing value)."""
        if self.kind == "categorical":
            cats = np.array(list(self.categories) + ([np.nan] if self.nan else []), dtype=object)
            return cats[idx]
        edges = np.asarray(self.edges)
        inside = idx < len(edges) - 1
        j = np.minimum(idx, len(edges) - 2)
        x = edges[j] + rng.random(len(idx)) * (edges[j + 1] - edges[j])
        return np.where(inside, x, np.nan)


def bin_edges(spec: ColumnSpec, lo: float, hi: float, bins: int) -> tuple[float, ...]:
    """Edges fixed by the declared bounds alone: one bin per integer when the range holds at most
    `bins` integers, else `bins` bins equal-width in log(1 + x - lo) (integers: edges on k + 0.5)."""
    if spec.kind == "integer" and hi - lo + 1 <= bins:
        return tuple(np.arange(math.floor(lo), math.floor(hi) + 1) - 0.5) + (math.floor(hi) + 0.5,)
    edges = lo + np.expm1(np.linspace(0.0, math.log1p(hi - lo), bins + 1))
    if spec.kind == "integer":
        edges = np.unique(np.concatenate([[lo - 0.5], np.round(edges[1:-1]) + 0.5, [hi + 0.5]]))
    else:
        edges[0], edges[-1] = lo, hi
    return tuple(float(e) for e in edges)


def public_domain(spec: ColumnSpec, *, inferred: bool, bounds: dict[str, Any], categories: dict[str, Any],
                  bins: int) -> Domain:
    """The column's domain from declared facts only; BadInput saying how to declare what is missing."""
    nan = spec.max_missing > 0
    if spec.kind == "categorical":
        cats = categories.get(spec.name)
        if cats is None and not inferred and spec.categories:
            cats = spec.categories
        if not cats:
            raise BadInput(
                f"mst: categorical column '{spec.name}' has no declared category list (a schema inferred from a file "
                f"lists the observed values, which are private); declare them: generator_params "
                f'{{"categories": {{"{spec.name}": ["a", "b", ...]}}}}')
        return Domain(spec.name, "categorical", categories=tuple(str(c) for c in cats), nan=nan)
    b = bounds.get(spec.name)
    lo, hi = (b[0], b[1]) if b is not None else (spec.min, spec.max)
    if lo is None or hi is None:
        raise BadInput(
            f"mst: numeric column '{spec.name}' has no declared bounds and MST reads none from the private rows; "
            f'declare them: generator_params {{"bounds": {{"{spec.name}": [min, max]}}}}')
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise BadInput(f"mst: bounds of '{spec.name}' must be finite with min < max (got {lo}, {hi})")
    return Domain(spec.name, spec.kind, edges=bin_edges(spec, float(lo), float(hi), bins), nan=nan)


# ---- compression: post-processing of the noisy 1-way counts -----------------------------------
def compress(domain: Domain, y: np.ndarray, threshold: float) -> list[list[int]]:
    """Groups of domain values: each value with noisy count >= threshold alone; the rest merged as in
    the paper (categorical: one group) or, for bins, one group per run of adjacent rare bins. The
    missing value, if any, is always its own group."""
    keep = y >= threshold
    n_ord = domain.ordered
    groups: list[list[int]] = []
    if domain.kind == "categorical":
        real = range(len(domain.categories))
        groups = [[i] for i in real if keep[i]]
        rare = [i for i in real if not keep[i]]
        if rare:
            groups.append(rare)
    else:
        run: list[int] = []
        for i in range(n_ord):
            if keep[i]:
                if run:
                    groups.append(run)
                    run = []
                groups.append([i])
            else:
                run.append(i)
        if run:
            groups.append(run)
    if domain.nan:
        groups.append([domain.size - 1])
    return groups


def denoised_mass(domain: Domain, y: np.ndarray, sigma: float) -> np.ndarray:
    """Per-value mass from noisy counts `y` (noise sigma): compressed as `compress`, each group's count
    zeroed below 3 sigma of its own noise, and spread evenly over its members (post-processing)."""
    groups = compress(domain, y, SUPPORT_SIGMAS * sigma)
    mass = MSTGenerator._group_mass(y, groups, sigma)
    out = np.zeros(domain.size)
    for g, m in zip(groups, mass):
        out[g] = m / len(g)
    return out


def coarsen(domain: Domain, groups: list[list[int]], mass: np.ndarray, pair_bins: int) -> list[int]:
    """For each group its index in the coarse domain the tree works on: categorical groups stay as
    they are; ordered bin groups are cut into <= pair_bins runs of about equal (noisy) mass; the
    missing group is the last coarse value."""
    if domain.kind == "categorical":
        return list(range(len(groups)))
    ordered = [g for g in groups if g[0] < domain.ordered]
    m = np.clip(mass[: len(ordered)], 0, None)
    total = m.sum()
    mid = (np.cumsum(m) - m / 2) / total if total > 0 else (np.arange(len(ordered)) + 0.5) / max(1, len(ordered))
    coarse = np.minimum((mid * pair_bins).astype(int), pair_bins - 1)
    _, coarse = np.unique(coarse, return_inverse=True)  # drop empty coarse values
    out = [int(c) for c in coarse]
    if len(groups) > len(ordered):
        out.append(max(out, default=-1) + 1)
    return out


def gaussian_noise(rng: np.random.Generator, sigma: float, shape) -> np.ndarray:
    """The Gaussian mechanism's noise: N(0, sigma^2) per cell (every noisy count goes through here)."""
    return rng.normal(0.0, sigma, shape)


def exponential_mechanism(scores: np.ndarray, eps: float, sensitivity: float, rng: np.random.Generator) -> int:
    """Index drawn with probability ∝ exp(eps * score / (2 * sensitivity)) (the paper's, non-monotonic)."""
    s = 0.5 * eps / sensitivity * scores
    return int(rng.choice(len(scores), p=np.exp(s - logsumexp(s))))


def ipf(table: np.ndarray, rows: np.ndarray, cols: np.ndarray, iters: int = IPF_ITERS) -> np.ndarray:
    """Scale a positive table so its row / column sums approach `rows` / `cols` (equal totals)."""
    t = table.copy()
    for _ in range(iters):
        t *= (rows / np.maximum(t.sum(1), 1e-300))[:, None]
        t *= (cols / np.maximum(t.sum(0), 1e-300))[None, :]
    return t


def _draw(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of the (n, k) probability matrix `p`."""
    cdf = np.cumsum(p, axis=1)
    u = rng.random((len(p), 1)) * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(1), p.shape[1] - 1)


# ---- the generator ------------------------------------------------------------------------------
@register
class MSTGenerator(BaseGenerator):
    name = "mst"
    summary = "MST (McKenna et al. 2021): (ε, δ)-DP marginals on a maximum spanning tree; public bounds only"
    STATE_FILE = "mst.json"

    def __init__(self, epsilon: float = DEFAULT_EPSILON, delta: float = DEFAULT_DELTA, bins: int = 256,
                 pair_bins: int = 8, max_noise_share: float = 0.1, bounds: dict[str, list[float]] | None = None,
                 categories: dict[str, list[str]] | None = None) -> None:
        check_budget(self.name, epsilon, delta)
        if not (isinstance(bins, int) and bins >= 2 and isinstance(pair_bins, int) and pair_bins >= 2):
            raise BadInput(f"generator 'mst': bins and pair_bins must be integers >= 2 (got {bins}, {pair_bins})")
        super().__init__(epsilon=epsilon, delta=delta, bins=bins, pair_bins=pair_bins,
                         max_noise_share=max_noise_share, bounds=bounds or {}, categories=categories or {})

    def _fit(self, table: pd.DataFrame, seed: int) -> None:
        p = self.params
        eps, delta = check_budget(self.name, p["epsilon"], p["delta"])
        inferred = self.schema.notes.get("schema") == INFERRED_NOTE
        unknown = sorted((set(p["bounds"]) | set(p["categories"])) - set(self.schema.names))
        if unknown:
            raise BadInput(f"mst: bounds / categories name unknown column(s) {unknown}")
        domains = [public_domain(s, inferred=inferred, bounds=p["bounds"], categories=p["categories"], bins=p["bins"])
                   for s in self.schema.columns]
        order = [self.target] + [c for c in self.schema.names if c != self.target]
        domains = sorted(domains, key=lambda d: order.index(d.name))
        rng = np.random.default_rng(seed)
        d = len(domains)
        rho = cdp_rho(eps, delta)
        sigma1 = math.sqrt(3 * d / (2 * rho))
        sigma2 = math.sqrt(3 * max(1, d - 1) / (2 * rho))
        em_eps = math.sqrt(8 * (rho / 3) / max(1, d - 1))
        fine = np.stack([dom.index(table[dom.name]) for dom in domains], 1)

        # step 2: noisy 1-way marginals; the refusal rule reads only them
        y1 = [np.bincount(fine[:, j], minlength=dom.size) + gaussian_noise(rng, sigma1, dom.size)
              for j, dom in enumerate(domains)]
        n_hat = float(np.median([y.sum() for y in y1]))
        if n_hat <= 0 or sigma1 > p["max_noise_share"] * n_hat:
            raise GeneratorError(
                f"mst: cannot meet epsilon={eps:g} (delta={delta:g}) on this table: the noise on each 1-way count "
                f"(sigma {sigma1:.1f}) exceeds {p['max_noise_share']:g} of the noisy row count ({n_hat:.0f}); "
                f"raise epsilon or use more rows")
        # step 3: compression, then the coarse domains the tree works on (post-processing)
        groups = [compress(dom, y, SUPPORT_SIGMAS * sigma1) for dom, y in zip(domains, y1)]
        gmass = [self._group_mass(y, gs, sigma1) for y, gs in zip(y1, groups)]
        coarse = [coarsen(dom, gs, m, p["pair_bins"]) for dom, gs, m in zip(domains, groups, gmass)]
        to_group = [self._lookup(dom.size, gs) for dom, gs in zip(domains, groups)]
        cidx = np.stack([np.asarray(coarse[j])[to_group[j][fine[:, j]]] for j in range(d)], 1)
        csize = [max(c) + 1 for c in coarse]
        cmarg = [np.bincount(coarse[j], weights=gmass[j], minlength=csize[j]) for j in range(d)]
        cprob = [m / m.sum() if m.sum() > 0 else np.full(len(m), 1 / len(m)) for m in cmarg]

        # step 4: the spanning tree by the exponential mechanism on L1(true 2-way - independence model)
        def counts(a: int, b: int) -> np.ndarray:
            return np.bincount(cidx[:, a] * csize[b] + cidx[:, b], minlength=csize[a] * csize[b]).reshape(csize[a], csize[b])

        pairs = [(a, b) for a in range(d) for b in range(a + 1, d)]
        score = {(a, b): float(np.abs(counts(a, b) - n_hat * np.outer(cprob[a], cprob[b])).sum()) for a, b in pairs}
        comp = list(range(d))

        def root(i: int) -> int:
            while comp[i] != i:
                i = comp[i]
            return i

        edges: list[tuple[int, int]] = []
        for _ in range(d - 1):
            cand = [e for e in pairs if root(e[0]) != root(e[1])]
            a, b = cand[exponential_mechanism(np.array([score[e] for e in cand]), em_eps, 1.0, rng)]
            comp[root(a)] = root(b)
            edges.append((a, b))

        # step 5: noisy 2-way marginals of the tree; step 6: consistent tables by IPF
        tables = {}
        for a, b in edges:
            y2 = counts(a, b) + gaussian_noise(rng, sigma2, (csize[a], csize[b]))
            tables[(a, b)] = ipf(np.clip(y2, 0, None) + CELL_FLOOR, cprob[a], cprob[b])
        self.domains, self.groups, self.coarse = domains, groups, coarse
        self.group_mass = [m.tolist() for m in gmass]
        self.tree = self._orient(d, tables)
        self.privacy = PrivacySpent(
            mechanism="MST (McKenna, Sheldon & Miklau 2021): Gaussian mechanism on 1- and 2-way marginals, "
                      "exponential mechanism for the tree; zCDP converted to (epsilon, delta)",
            epsilon=eps, delta=delta, epsilon_spent=cdp_eps(rho, delta),
            covers="every read of the training rows by the generator (1-way counts, tree selection, 2-way counts)",
            outside="bounds and categories are declared (schema or generator_params), not read from the rows; "
                    "the pipeline's small-cell pooling and train/holdout split precede the generator",
            details={"rho": rho, "rho_1way": rho / 3, "rho_select": rho / 3, "rho_2way": rho / 3,
                     "sigma_1way": sigma1, "sigma_2way": sigma2, "em_epsilon_per_round": em_eps,
                     "tree": [[domains[a].name, domains[b].name] for a, b in edges]}).to_dict()

    @staticmethod
    def _group_mass(y: np.ndarray, groups: list[list[int]], sigma: float) -> np.ndarray:
        """Each group's noisy count, set to 0 when below 3 sigma of its own noise (sigma sqrt(size)):
        a merged run of empty bins otherwise spreads pure noise over the declared range."""
        mass = np.array([y[g].sum() for g in groups])
        floor = SUPPORT_SIGMAS * sigma * np.sqrt([len(g) for g in groups])
        return np.where(mass >= floor, mass, 0.0)

    @staticmethod
    def _lookup(size: int, groups: list[list[int]]) -> np.ndarray:
        out = np.empty(size, dtype=np.int64)
        for g, members in enumerate(groups):
            out[members] = g
        return out

    def _orient(self, d: int, tables: dict[tuple[int, int], np.ndarray]) -> list[dict[str, Any]]:
        """Breadth-first from column 0 (the target): each child with its parent and P(child | parent)."""
        seen, queue, out = {0}, [0], []
        while queue:
            parent = queue.pop(0)
            for (a, b), t in sorted(tables.items()):
                if parent in (a, b):
                    child = b if a == parent else a
                    if child in seen:
                        continue
                    joint = t if a == parent else t.T
                    rows = joint.sum(1, keepdims=True)  # 0 only where the parent's estimated mass is 0
                    cond = np.where(rows > 0, joint / np.where(rows > 0, rows, 1), joint.sum(0) / joint.sum())
                    out.append({"parent": parent, "child": child, "conditional": cond.tolist()})
                    seen.add(child)
                    queue.append(child)
        return out

    # ---- sampling -------------------------------------------------------------------------------
    def _draw(self, k: int, seed: int, label: str | None) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        d = len(self.domains)
        cvals = np.zeros((k, d), dtype=np.int64)
        rootm = np.zeros(max(self.coarse[0]) + 1)
        np.add.at(rootm, self.coarse[0], self.group_mass[0])
        fixed = None
        if label is not None:
            fixed = int(self.domains[0].index(pd.Series([label], dtype=object))[0])
            g = int(self._lookup(self.domains[0].size, self.groups[0])[fixed])
            cvals[:, 0] = self.coarse[0][g]
        else:
            probs = rootm / rootm.sum() if rootm.sum() > 0 else np.full(len(rootm), 1 / len(rootm))
            cvals[:, 0] = rng.choice(len(rootm), size=k, p=probs)
        for edge in self.tree:
            cond = np.asarray(edge["conditional"])
            cvals[:, edge["child"]] = _draw(cond[cvals[:, edge["parent"]]], rng)
        out = {}
        for j, dom in enumerate(self.domains):
            fine = self._fine(j, cvals[:, j], rng)
            if j == 0 and fixed is not None:
                fine[:] = fixed
            out[dom.name] = dom.values(fine, rng)
        return conform(pd.DataFrame(out), self.schema)

    def _fine(self, j: int, coarse_vals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Group within the coarse value by the noisy 1-way mass, then a member uniformly (the paper's
        decoding of a merged value)."""
        groups, coarse, mass = self.groups[j], np.asarray(self.coarse[j]), np.asarray(self.group_mass[j])
        out = np.empty(len(coarse_vals), dtype=np.int64)
        for c in np.unique(coarse_vals):
            rows = np.flatnonzero(coarse_vals == c)
            members = np.flatnonzero(coarse == c)
            w = mass[members]
            w = w / w.sum() if w.sum() > 0 else np.full(len(members), 1 / len(members))
            picked = members[rng.choice(len(members), size=len(rows), p=w)]
            out[rows] = [groups[g][rng.integers(len(groups[g]))] for g in picked]
        return out

    # ---- state --------------------------------------------------------------------------------
    def _save_state(self, path: Path) -> list[str]:
        state = {"domains": [{"name": d.name, "kind": d.kind, "categories": list(d.categories),
                              "edges": list(d.edges), "nan": d.nan} for d in self.domains],
                 "groups": self.groups, "coarse": self.coarse, "group_mass": self.group_mass, "tree": self.tree,
                 "privacy": self.privacy}
        (path / self.STATE_FILE).write_text(json.dumps(state, sort_keys=True))
        return [self.STATE_FILE]

    def _load_state(self, path: Path) -> None:
        s = json.loads((path / self.STATE_FILE).read_text())
        self.domains = [Domain(d["name"], d["kind"], tuple(d["categories"]), tuple(d["edges"]), d["nan"])
                        for d in s["domains"]]
        self.groups, self.coarse, self.group_mass = s["groups"], s["coarse"], s["group_mass"]
        self.tree, self.privacy = s["tree"], s["privacy"]
