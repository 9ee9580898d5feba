"""Bundled research tables, read straight from files shipped inside installed packages (the packages'
own loaders need numpy 2), each with a declared schema: kinds, plausible ranges, allowed categories and
missing bounds. Declared, not inferred, because inference misreads codes and ordinals and because the
bounds are what the validation suite checks every input and every synthetic table against."""

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from synth_pipeline.errors import BadInput
from synth_pipeline.schema import ColumnSpec, Schema

BINARY = ("0", "1")


@dataclass(frozen=True)
class BundledDataset:
    """Where a bundled table lives (package + path inside it) and what it is declared to be."""

    package: str
    resource: str
    schema: Schema

    def path(self) -> Path:
        """Found via the import system without importing the package (sksurv's import is slow)."""
        spec = find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise BadInput(f"{self.schema.dataset}: package '{self.package}' providing the data is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / self.resource


def _cat(name: str, categories: tuple[str, ...], max_missing: float = 0.0) -> ColumnSpec:
    return ColumnSpec(name, "categorical", categories=categories, max_missing=max_missing)


def _int(name: str, lo: float, hi: float, max_missing: float = 0.0) -> ColumnSpec:
    return ColumnSpec(name, "integer", min=lo, max=hi, max_missing=max_missing)


def _num(name: str, lo: float, hi: float, max_missing: float = 0.0) -> ColumnSpec:
    return ColumnSpec(name, "numeric", min=lo, max=hi, max_missing=max_missing)


FLCHAIN = Schema(
    dataset="flchain",
    target="death",
    positive="dead",
    drop=("futime", "chapter"),
    sensitive=("mgus", "creatinine"),  # a diagnosis and a kidney-function lab value
    columns=(
        _int("age", 0, 120),
        _cat("sex", ("F", "M")),
        _cat("sample.yr", tuple(str(y) for y in range(1995, 2004))),
        _num("kappa", 0, 100),
        _num("lambda", 0, 100),
        _cat("flc.grp", tuple(str(g) for g in range(1, 11))),
        _num("creatinine", 0, 25, max_missing=0.25),
        _cat("mgus", ("no", "yes")),
        _cat("death", ("alive", "dead")),
    ),
    source=(
        "scikit-survival sksurv/datasets/data/flchain.arff (same data as R survival::flchain); "
        "Dispenzieri et al., Mayo Clin Proc 87:512-523 (2012), doi:10.1016/j.mayocp.2012.03.009"
    ),
    licence=(
        "file shipped in scikit-survival (package licence GPL-3.0-or-later per its metadata); "
        "no separate data licence is stated in the package; public research data"
    ),
    notes={
        "futime": "dropped: follow-up time, known only once the outcome is (leaks death)",
        "chapter": "dropped: cause of death, present only for the dead (leaks death)",
        "sample.yr": "categorical: the ARFF header declares it nominal (enrolment cohort 1995-2003)",
        "creatinine": "17.1% missing in the source; bound 0.25",
        "ranges": "plausible clinical bounds (kappa/lambda mg/L, creatinine mg/dL), not observed extremes",
    },
)

ACTG175 = Schema(
    dataset="actg175",
    target="cens",
    positive="1",
    drop=("days",),
    identifiers=("Unnamed: 0", "pidnum"),
    sensitive=("hemo", "homo", "drugs", "race"),  # haemophilia, sexual behaviour, IV drug use, race
    columns=(
        _int("age", 0, 120),
        _num("wtkg", 20, 250),
        _cat("hemo", BINARY),
        _cat("homo", BINARY),
        _cat("drugs", BINARY),
        _int("karnof", 0, 100),
        _cat("oprior", BINARY),
        _cat("z30", BINARY),
        _cat("zprior", BINARY),
        _int("preanti", 0, 10000),
        _cat("race", BINARY),
        _cat("gender", BINARY),
        _cat("str2", BINARY),
        _cat("strat", ("1", "2", "3")),
        _cat("symptom", BINARY),
        _cat("treat", BINARY),
        _cat("offtrt", BINARY),
        _int("cd40", 0, 5000),
        _int("cd420", 0, 5000),
        _int("cd496", 0, 5000, max_missing=0.45),
        _cat("r", BINARY),
        _int("cd80", 0, 10000),
        _int("cd820", 0, 10000),
        _cat("cens", BINARY),
        _cat("arms", ("0", "1", "2", "3")),
    ),
    source=(
        "lifelines lifelines/datasets/ACTG175.csv (AIDS Clinical Trials Group study 175; the table also "
        "distributed as ACTG175 in R speff2trial); Hammer et al., N Engl J Med 335:1081-1090 (1996)"
    ),
    licence=(
        "file shipped in lifelines (package licence MIT per its metadata); no separate data licence "
        "or provenance note ships with the file; public research data"
    ),
    notes={
        "days": "dropped: follow-up time to event or censoring (leaks cens)",
        "identifiers": "'Unnamed: 0' is the CSV's unnamed row-index column; pidnum is the patient id",
        "cd496": "37.3% missing (not measured at week 96); r is its missingness indicator; bound 0.45",
        "zprior": "constant '1' in the source (all had prior zidovudine); kept as declared binary code",
    },
)

GBSG2 = Schema(
    dataset="gbsg2",
    target="cens",
    positive="1",
    drop=("time",),
    sensitive=("tgrade", "pnodes"),  # tumour grade and positive lymph nodes
    columns=(
        _cat("horTh", ("no", "yes")),
        _int("age", 0, 120),
        _cat("menostat", ("Pre", "Post")),
        _int("tsize", 0, 300),
        _cat("tgrade", ("I", "II", "III")),
        _int("pnodes", 0, 100),
        _int("progrec", 0, 10000),
        _int("estrec", 0, 10000),
        _cat("cens", BINARY),
    ),
    source=(
        "scikit-survival sksurv/datasets/data/GBSG2.arff (German Breast Cancer Study Group 2); "
        "Schumacher et al., J Clin Oncol 12:2086-2093 (1994)"
    ),
    licence=(
        "file shipped in scikit-survival (package licence GPL-3.0-or-later per its metadata); "
        "no separate data licence is stated in the package; public research data"
    ),
    notes={
        "time": "dropped: recurrence-free follow-up time (leaks cens)",
        "ranges": "plausible bounds (tsize mm, receptors fmol/mg), not observed extremes",
    },
)

BUNDLED: dict[str, BundledDataset] = {
    "flchain": BundledDataset("sksurv", "datasets/data/flchain.arff", FLCHAIN),
    "actg175": BundledDataset("lifelines", "datasets/ACTG175.csv", ACTG175),
    "gbsg2": BundledDataset("sksurv", "datasets/data/GBSG2.arff", GBSG2),
}
