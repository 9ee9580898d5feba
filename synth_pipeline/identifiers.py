"""Direct-identifier detection for user tables: names, e-mails, phone numbers, national ids, record
numbers / codes, exact dates (of birth), free text and row indices.

Heuristics from column-name hints and value patterns, deliberately conservative on numbers (a clinical
measurement is never flagged by its values alone) and eager on text (an identifier that reaches a
release cannot be taken back). Every finding says which column, what kind, why, and the share of
non-missing values that matched, so the schema notes and the manifest can record it.
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
_SAMPLE = 5000


@dataclass(frozen=True)
class IdentifierFinding:
    column: str
    kind: str
    reason: str
    share_matching: float

    def note(self) -> str:
        return f"{self.kind}: {self.reason}"


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


def _share(values: pd.Series, pattern: re.Pattern) -> float:
    return float(values.str.match(pattern).mean()) if len(values) else 0.0


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
    nonnull = s.dropna()
    if len(nonnull) > _SAMPLE:
        nonnull = nonnull.sample(_SAMPLE, random_state=0)
    if pd.api.types.is_datetime64_any_dtype(s):
        return _date_finding(name, hinted, 1.0, "values are timestamps")
    if s.dtype == bool or pd.api.types.is_bool_dtype(s):
        return None
    if pd.api.types.is_numeric_dtype(s):
        return _numeric(nonnull, name, hinted)
    values = nonnull.astype(str).str.strip()
    values = values[values != ""]
    if len(values) == 0:
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().mean() >= 0.9:
        # numbers stored as text (or a numeric column with a few text values: the loader refuses
        # those as mixed types): judged as numbers, never as high-cardinality text
        return _numeric(numbers.dropna(), name, hinted)
    return _text(values, name, hinted)


def _date_finding(name: str, hinted: set[str], share: float, why: str) -> IdentifierFinding:
    if "date_of_birth" in hinted:
        return IdentifierFinding(name, "date_of_birth", f"{share:.0%} of values are dates ({why}) and the name "
                                 "says date of birth", share)
    return IdentifierFinding(name, "date", f"{share:.0%} of values are exact calendar dates ({why}); exact "
                             "dates are identifying (HIPAA Safe Harbor): derive an interval or a year instead", share)


def _numeric(values: pd.Series, name: str, hinted: set[str]) -> IdentifierFinding | None:
    """Numbers are only flagged as record numbers: mostly-unique whole numbers with an id-like name,
    or a running row index (0..n-1 / 1..n). Measurements are never flagged by value alone."""
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
    return None


def _text(values: pd.Series, name: str, hinted: set[str]) -> IdentifierFinding | None:
    n = len(values)
    distinct = values.nunique()
    unique = distinct / n
    enough = n >= MIN_VALUES

    share = _share(values, _EMAIL)
    if share >= MATCH_SHARE and (enough or "email" in hinted):
        return IdentifierFinding(name, "email", f"{share:.0%} of values match an e-mail pattern", share)

    share = _share(values, _DATE)
    if share >= MATCH_SHARE and (enough or hinted & {"date_of_birth"}):
        parsed = pd.to_datetime(values, errors="coerce", format="mixed", dayfirst=False)
        share = float(parsed.notna().mean()) if share else share
        if share >= MATCH_SHARE:
            return _date_finding(name, hinted, share, "date pattern")

    digits = _digits(values)
    ssn = _share(values, _SSN_LIKE)
    phone = float((values.str.match(_PHONE) & (digits >= 7) & (digits <= 15)).mean())
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

    name_share = _share(values, _NAME)
    word_share = _share(values, _WORD)
    if "person_name" in hinted:  # "JOHN SMITH" / "john smith" exports: judged as title case
        name_share = max(name_share, _share(values.str.title(), _NAME))
        word_share = max(word_share, _share(values.str.title(), _WORD))
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

    code = _share(values, _CODE)
    if ("record_number" in hinted and unique >= 0.5 and n >= 2) or (code >= MATCH_SHARE and unique >= UNIQUE_SHARE and enough):
        return IdentifierFinding(name, "record_number", f"{unique:.0%} of values are distinct codes"
                                 + (" and the name says identifier" if "record_number" in hinted else
                                    f" ({code:.0%} record-number-like, e.g. MRN0001234)"), max(code, unique))
    if unique >= UNIQUE_SHARE and distinct >= 20:
        kind = "free_text" if (words >= 2).mean() >= 0.5 else "record_number"
        return IdentifierFinding(name, kind, f"very high-cardinality text: {distinct} distinct values in {n} "
                                 f"({unique:.0%}); not a category", unique)
    return None
