"""Direct-identifier detection for user tables: names, e-mails, phone numbers, national ids, record
numbers / codes, exact dates (of birth), free text and row indices.

Heuristics from column-name hints, value patterns and what the values hold, deliberately conservative
on numbers (a clinical measurement is never flagged by its values alone: only whole numbers of a fixed,
long digit count that are near-unique or repeated per patient, i.e. codes) and eager on text (an
identifier that reaches a release cannot be taken back). Patterns are matched among the values that are
not placeholders ("unknown", "n/a", "-", ... or a few very frequent non-matching values), so an e-mail
column a quarter "unknown" is still an e-mail column. Cardinality rules catch codes under innocent
names: near-unique values, or values each held by 1-3 rows (a patient code repeated per visit). Every
finding says which column, what kind, why, and its evidence (distinct values, share of rows in cells
smaller than k, placeholder share), so the schema notes and the manifest can record it.
"""

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

KINDS = (
    "email", "phone", "national_id", "record_number", "date_of_birth", "date", "person_name", "free_text",
)
MATCH_SHARE = 0.8  # share of non-missing values a pattern must match
UNIQUE_SHARE = 0.9  # "mostly unique": distinct / non-missing
MIN_VALUES = 5  # fewer non-missing values than this: too little evidence from values alone
SMALL_CELL_K = 5  # a value held by fewer rows than this is a small cell
SMALL_CELL_SHARE = 0.8  # "repeated code": this share of rows hold a value held by < SMALL_CELL_K rows ...
REPEATED_MAX_MEDIAN = 3  # ... the typical row's value is held by at most this many rows ...
MIN_DISTINCT = 20  # ... and there are at least this many distinct values (cardinality rules need them)
CODE_DIGITS = 6  # whole numbers of a fixed digit count this long or longer are codes, not measurements
FIXED_LENGTH_SHARE = 0.85  # share of values with the modal digit count (leading zeros lost when parsed)
PLACEHOLDERS = frozenset({
    "", "unknown", "unk", "n/a", "na", "n.a.", "n.a", "nan", "none", "null", "nil", "missing", "-", "--", "---",
    "?", "??", ".", "0", "not known", "not available", "not applicable", "not recorded", "no data", "tbd", "x",
    "xx", "xxx", "blank", "empty", "declined", "refused", "no email", "no e-mail", "no phone", "noemail",
})
PLACEHOLDER_TOP = 3  # at most this many frequent values ...
PLACEHOLDER_SHARE = 0.05  # ... each held by at least this share of rows may be placeholders
MAX_PLACEHOLDER_SHARE = 0.5  # the rest must be at least half the column to be judged without them
_SAMPLE = 5000


@dataclass(frozen=True)
class IdentifierFinding:
    column: str
    kind: str
    reason: str
    share_matching: float
    evidence: str = ""  # counts the rule saw (distinct values, small-cell share, placeholders); no value

    def note(self) -> str:
        return f"{self.kind}: {self.reason}" + (f" [{self.evidence}]" if self.evidence else "")


def _hint(*words: str) -> re.Pattern:
    return re.compile(r"(?:^|[^a-z])(?:" + "|".join(words) + r")(?:[^a-z]|$)")


_HINTS = {
    "email": _hint("e?-?mail", "email_?address", "mail_?address"),
    "phone": _hint("phone", "tel", "telephone", "mobile", "fax", "phone_?number"),
    "national_id": _hint("ssn", "sin", "nhs", "nhs_?number", "national", "national_?id", "passport", "insurance",
                         "social_?security", "tax_?id", "bsn", "ahv", "svnr", "personnummer"),
    "record_number": re.compile(
        r"(?:^|[^a-z])(?:id|ids|mrn|pid|pidnum|patid|patientid|patient_?id|subject_?id|subjid|recno|record|chart|"
        r"case_?id|encounter|visit_?id|accession|uuid|guid)(?:[^a-z]|$)|(?:_id|_no|_nr|_num|_number|num)$"
    ),
    "date_of_birth": _hint("dob", "d\\.o\\.b", "birth", "birthday", "birth_?date", "date_?of_?birth", "born",
                           "geburtsdatum", "geb"),
    "person_name": re.compile(
        r"(?:^|[^a-z])(?:name|names|full_?name|first_?name|last_?name|surname|forename|given_?name|family_?name|"
        r"firstname|lastname|patient_?name|vorname|nachname|nom|prenom|initials)(?:[^a-z]|$)"
    ),
    "free_text": _hint("note", "notes", "comment", "comments", "remark", "remarks", "text", "free_?text",
                       "description", "narrative", "memo", "summary", "history", "report"),
}

_EMAIL = re.compile(r"^[\w.+'-]+@[\w-]+(?:\.[\w-]+)+$")
_SSN_LIKE = re.compile(r"^\d{3}[- ]\d{2}[- ]\d{4}$|^\d{3}[- ]\d{3}[- ]\d{3,4}$|^\d{6}[-+ ]?\d{4}$|^\d{2}[- ]?\d{2}[- ]?\d{2}[- ]?\d{3}[- ]?\d{3}[- ]?\d{2}$")
_PHONE = re.compile(r"^(?:\+|00)?[\d\s().\-/]{7,20}$")
_DATE = re.compile(
    r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|\d{1,2}[ -][A-Za-z]{3,9}[ -]\d{2,4}"
    r"|[A-Za-z]{3,9} \d{1,2},? \d{4})$"
)
_CODE = re.compile(r"^[A-Za-z]{0,6}[-_/#]?\d{3,}[A-Za-z]?$|^[A-Za-z0-9]{2,}(?:[-_][A-Za-z0-9]+)+$")
_UP, _LO = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ'’\\-"
_W = rf"[{_UP}](?:[{_LO}{_UP}]*[{_LO}])?"  # a capitalised word: Anna, O'Brien, McDonald, Jean-Luc, J
_NAME = re.compile(rf"^{_W}\.?(?:\s+{_W}\.?){{1,3}}$|^{_W},\s*{_W}\.?$")
_WORD = re.compile(rf"^[{_UP}](?:[{_LO}{_UP}]*[{_LO}])$")


def _normalise_name(name: str) -> str:
    """'PatientName' / 'Patient-Name' / 'patient name' -> 'patient_name' for the hint patterns."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name))
    return re.sub(r"[^a-z0-9.]+", "_", s.lower()).strip("_")


@dataclass(frozen=True)
class _Profile:
    """What a column's values hold, on every non-missing non-placeholder value (not a sample)."""

    n: int
    distinct: int
    singletons: float  # share of rows whose value occurs once
    small_cells: float  # share of rows whose value is held by fewer than SMALL_CELL_K rows
    median_count: float  # how many rows hold the typical row's value
    placeholders: float  # share of non-missing values set aside as placeholders

    @property
    def unique(self) -> float:
        return self.distinct / self.n if self.n else 0.0

    @property
    def repeated_code(self) -> bool:
        """Many distinct values, each held by a few rows: a code repeated per patient, not a category."""
        return (self.distinct >= MIN_DISTINCT and self.small_cells >= SMALL_CELL_SHARE
                and self.median_count <= REPEATED_MAX_MEDIAN)

    def evidence(self) -> str:
        out = (f"{self.distinct} distinct in {self.n} values ({self.unique:.0%}); {self.singletons:.0%} of rows hold "
               f"a value seen once, {self.small_cells:.0%} a value held by fewer than {SMALL_CELL_K} rows")
        return out + (f"; {self.placeholders:.0%} placeholder values set aside" if self.placeholders else "")


def _profile(values: pd.Series, placeholders: float = 0.0) -> _Profile:
    counts = values.map(values.value_counts()).to_numpy(dtype=float)
    if not len(counts):
        return _Profile(0, 0, 0.0, 0.0, 0.0, placeholders)
    return _Profile(len(values), int(values.nunique()), float((counts == 1).mean()),
                    float((counts < SMALL_CELL_K).mean()), float(np.median(counts)), placeholders)


def _placeholder_words(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower().isin(PLACEHOLDERS)


def _frequent(values: pd.Series) -> pd.Series:
    """Values among the PLACEHOLDER_TOP most frequent that each hold >= PLACEHOLDER_SHARE of rows."""
    top = values.value_counts().head(PLACEHOLDER_TOP)
    return values.isin(top[top >= max(2, PLACEHOLDER_SHARE * len(values))].index)


def _judged(placeholder: pd.Series) -> bool:
    """Set placeholders aside only when there are some and the rest is most of the column."""
    rest = int((~placeholder).sum())
    return bool(placeholder.any()) and rest >= MIN_VALUES and rest >= (1 - MAX_PLACEHOLDER_SHARE) * len(placeholder)


class _Matcher:
    """Pattern shares among the non-placeholder values: placeholder words, and frequent values that do
    not match the pattern being tested (an e-mail column whose missing e-mails read "unknown" or
    "no.email@x" is still an e-mail column); among all values when the placeholders are most of it."""

    def __init__(self, values: pd.Series) -> None:
        self.values = values
        self.words = _placeholder_words(values)
        self.frequent = _frequent(values)
        self.set_aside = 0.0  # placeholder share behind the last share() that used it

    def share(self, matched: pd.Series | re.Pattern) -> float:
        if isinstance(matched, re.Pattern):
            matched = self.values.str.match(matched)
        if not len(matched):
            return 0.0
        overall = float(matched.mean())
        placeholder = self.words | (self.frequent & ~matched)
        self.set_aside = 0.0
        if _judged(placeholder):
            rest = float(matched[~placeholder].mean())
            if rest > overall:
                self.set_aside = float(placeholder.mean())
                return rest
        return overall

    def reason(self, share: float, what: str) -> str:
        aside = f" ({self.set_aside:.0%} placeholder values set aside)" if self.set_aside else ""
        return f"{share:.0%} of values {what}{aside}"


def _digits(values: pd.Series) -> pd.Series:
    return values.str.count(r"\d")


def detect_identifiers(df: pd.DataFrame, *, target: str | None = None) -> list[IdentifierFinding]:
    """One finding per column that looks like a direct identifier (the target is never flagged)."""
    found = []
    for col in df.columns:
        if col == target:
            continue
        finding = _detect_column(df[col], str(col))
        if finding is not None:
            found.append(finding)
    return found


def _detect_column(s: pd.Series, name: str) -> IdentifierFinding | None:
    hint = _normalise_name(name)
    hinted = {kind for kind, rx in _HINTS.items() if rx.search(hint)}
    full = s.dropna()
    nonnull = full.sample(_SAMPLE, random_state=0) if len(full) > _SAMPLE else full
    if pd.api.types.is_datetime64_any_dtype(s):
        return _date_finding(name, hinted, 1.0, "values are timestamps")
    if s.dtype == bool or pd.api.types.is_bool_dtype(s):
        return None
    if pd.api.types.is_numeric_dtype(s):
        return _numeric(nonnull, full, name, hinted)
    values = nonnull.astype(str).str.strip()
    values = values[values != ""]
    if len(values) == 0:
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().mean() >= 0.9:
        # numbers stored as text (or a numeric column with a few text values: the loader refuses
        # those as mixed types): judged as numbers, never as high-cardinality text
        text = full.astype(str).str.strip()
        return _numeric(numbers.dropna(), text[pd.to_numeric(text, errors="coerce").notna()], name, hinted)
    text = full.astype(str).str.strip()
    text = text[text != ""]
    return _text(values, text, name, hinted)


def _date_finding(name: str, hinted: set[str], share: float, why: str) -> IdentifierFinding:
    if "date_of_birth" in hinted:
        return IdentifierFinding(name, "date_of_birth", f"{share:.0%} of values are dates ({why}) and the name "
                                 "says date of birth", share)
    return IdentifierFinding(name, "date", f"{share:.0%} of values are exact calendar dates ({why}); exact "
                             "dates are identifying (HIPAA Safe Harbor): derive an interval or a year instead", share)


def _digit_lengths(full: pd.Series) -> pd.Series:
    """Digits per value: from the text when the numbers were text (leading zeros kept), else of the
    whole number."""
    if pd.api.types.is_numeric_dtype(full):
        v = pd.to_numeric(full, errors="coerce").dropna().abs()
        v = v[np.isfinite(v) & (v < 1e18)]
        return v.astype("int64").astype(str).str.len()
    return full.astype(str).str.replace(r"\.0+$", "", regex=True).str.count(r"\d")


def _numeric(values: pd.Series, full: pd.Series, name: str, hinted: set[str]) -> IdentifierFinding | None:
    """Numbers are only flagged as record numbers: mostly-unique whole numbers with an id-like name, a
    running row index (0..n-1 / 1..n), or codes: whole numbers of one fixed, long digit count
    (>= CODE_DIGITS) that are near-unique or repeated per patient. Measurements are never flagged by
    value alone (their digit counts vary, or they repeat across patients)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    v = v[np.isfinite(v)]
    if len(v) < MIN_VALUES or not (v == v.round()).all():
        return None
    unique = v.nunique() / len(v)
    if unique >= UNIQUE_SHARE and len(v) >= 20:
        if "record_number" in hinted or "national_id" in hinted or "phone" in hinted:
            kind = next(k for k in ("national_id", "phone", "record_number") if k in hinted)
            return IdentifierFinding(name, kind, f"{unique:.0%} of values are distinct whole numbers and the "
                                     "name says identifier", unique)
        srt = np.sort(v.to_numpy())
        if unique == 1.0 and srt[0] in (0, 1) and (np.diff(srt) == 1).all():
            return IdentifierFinding(name, "record_number", "values are a running row index "
                                     f"({srt[0]:g}..{srt[-1]:g}, all distinct)", 1.0)
    lengths = _digit_lengths(full)
    if not len(lengths):
        return None
    modal = int(lengths.mode().iloc[0])
    fixed = float((lengths == modal).mean())
    if modal < CODE_DIGITS or fixed < FIXED_LENGTH_SHARE:
        return None
    p = _profile(full.astype(str))
    if p.distinct >= MIN_DISTINCT and (p.unique >= UNIQUE_SHARE or p.repeated_code):
        how = "near-unique" if p.unique >= UNIQUE_SHARE else "each held by a few rows (repeated per patient)"
        return IdentifierFinding(name, "record_number", f"whole numbers of a fixed {modal}-digit length ({fixed:.0%} "
                                 f"of values), {how}: a code, not a measurement", max(fixed, p.unique), p.evidence())
    return None


def _text(values: pd.Series, full: pd.Series, name: str, hinted: set[str]) -> IdentifierFinding | None:
    """`values`: a sample for the patterns; `full`: every non-missing value, for the cardinality rules."""
    n = len(values)
    enough = n >= MIN_VALUES
    m = _Matcher(values)
    placeholder = _placeholder_words(full) | _frequent(full)
    judged = _judged(placeholder)
    p = _profile(full[~placeholder], float(placeholder.mean())) if judged else _profile(full)
    distinct = p.distinct
    unique = p.unique

    share = m.share(_EMAIL)
    if share >= MATCH_SHARE and (enough or "email" in hinted):
        return IdentifierFinding(name, "email", m.reason(share, "match an e-mail pattern"), share)

    share = m.share(_DATE)
    if share >= MATCH_SHARE and (enough or hinted & {"date_of_birth"}):
        parsed = pd.to_datetime(values, errors="coerce", format="mixed", dayfirst=False)
        share = m.share(parsed.notna())
        if share >= MATCH_SHARE:
            return _date_finding(name, hinted, share, "date pattern")

    digits = _digits(values)
    ssn = m.share(_SSN_LIKE)
    phone = m.share(values.str.match(_PHONE) & (digits >= 7) & (digits <= 15))
    if "national_id" in hinted and (ssn >= MATCH_SHARE or phone >= MATCH_SHARE):
        return IdentifierFinding(name, "national_id", f"{max(ssn, phone):.0%} of values are national-id-like digit "
                                 "groups and the name says so", max(ssn, phone))
    if "phone" in hinted and phone >= MATCH_SHARE:
        return IdentifierFinding(name, "phone", f"{phone:.0%} of values match a phone-number pattern and the "
                                 "name says phone", phone)
    if ssn >= MATCH_SHARE and enough:
        return IdentifierFinding(name, "national_id", f"{ssn:.0%} of values match a national-id pattern "
                                 "(e.g. 123-45-6789)", ssn)
    if phone >= MATCH_SHARE and enough and (values.str.contains(r"[\s().\-/+]").mean() >= MATCH_SHARE or unique >= 0.5):
        return IdentifierFinding(name, "phone", f"{phone:.0%} of values match a phone-number pattern", phone)

    name_share = m.share(_NAME)
    word_share = m.share(_WORD)
    if "person_name" in hinted:  # "JOHN SMITH" / "john smith" exports: judged as title case
        name_share = max(name_share, m.share(values.str.title().str.match(_NAME)))
        word_share = max(word_share, m.share(values.str.title().str.match(_WORD)))
    if "person_name" in hinted and max(name_share, word_share) >= MATCH_SHARE and distinct >= 5:
        share = max(name_share, word_share)
        return IdentifierFinding(name, "person_name", f"{share:.0%} of values are capitalised names and the "
                                 "column name says name", share)
    if name_share >= MATCH_SHARE and enough and unique >= 0.5 and distinct >= 5:
        return IdentifierFinding(name, "person_name", f"{name_share:.0%} of values are capitalised word pairs "
                                 f"(person names), {unique:.0%} distinct", name_share)

    words = values.str.split().str.len()
    long_text = float(((values.str.len() >= 20) & (words >= 3)).mean())
    if long_text >= 0.5 and (unique >= 0.5 or "free_text" in hinted) and enough:
        return IdentifierFinding(name, "free_text", f"{long_text:.0%} of values are sentences (>= 3 words, >= 20 "
                                 f"characters), {unique:.0%} distinct", long_text)
    if "free_text" in hinted and (words >= 2).mean() >= 0.5 and unique >= 0.3:
        return IdentifierFinding(name, "free_text", "the name says free text and most values are several words",
                                 float((words >= 2).mean()))

    code = m.share(_CODE)
    if ("record_number" in hinted and unique >= 0.5 and n >= 2) or (code >= MATCH_SHARE and unique >= UNIQUE_SHARE and enough):
        return IdentifierFinding(name, "record_number", f"{unique:.0%} of values are distinct codes"
                                 + (" and the name says identifier" if "record_number" in hinted else
                                    f" ({code:.0%} record-number-like, e.g. MRN0001234)"), max(code, unique),
                                 p.evidence() if judged else "")
    kind = "free_text" if (words >= 2).mean() >= 0.5 else "record_number"
    if unique >= UNIQUE_SHARE and distinct >= MIN_DISTINCT:
        return IdentifierFinding(name, kind, f"very high-cardinality text: {distinct} distinct values in {p.n} "
                                 f"({unique:.0%}); not a category", unique, p.evidence() if judged else "")
    if p.repeated_code:
        return IdentifierFinding(name, kind, f"values repeated per patient: {distinct} distinct values, "
                                 f"{p.small_cells:.0%} of rows hold one held by fewer than {SMALL_CELL_K} rows "
                                 f"(typically {p.median_count:g}); a code, not a category", p.small_cells, p.evidence())
    return None
