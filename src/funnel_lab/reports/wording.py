"""The steps' own English notes (audit details, quarantine reasons, exclusion rules, model terms, stage rules) in the
report language.

The cleaning steps write their notes in English into the data files (``cleaning_audit.csv``, ``quarantine.csv``),
which BI tools and outside checks read as they are. A report in Chinese shows the same notes in Chinese: each note is
read back by the pattern of the sentence that wrote it and filled into the catalogue's ``note.*`` message. A note no
pattern reads stays as written (the reader check in the tests fails on it).
"""

from __future__ import annotations

import io
import re
import tokenize

from ..i18n import t

#: The pieces of the cleaning steps' notes (joined with "; "), and the catalogue message of each.
NOTE_PATTERNS = [
    (r"(?P<n>[\d,]+) columns from (?P<source>.+)", "note.columns_from"),
    (r"(?P<n>[\d,]+) rows could not be split into columns", "note.unsplit_rows"),
    (r"opportunity_id generated from row numbers", "note.ids_generated"),
    (r"none found", "note.none_found"),
    (r"(?P<n>[\d,]+) columns typed \((?P<kinds>.*)\)", "note.typed"),
    (r"(?P<n>[\d,]+) cells did not parse and are now missing", "note.unparsed"),
    (r"(?P<n>[\d,]+) cells trimmed or case-merged in (?P<m>[\d,]+) columns", "note.standardised"),
    (r"rows without an activity type", "note.no_activity_type"),
    (r"rows without (?P<col>\w+)", "note.rows_without"),
    (r"status must be open, won or lost", "note.status_values"),
    (r"`won` added", "note.won_added"),
    (r"on (?P<keys>[\w, ]+): (?P<n>[\d,]+) groups", "note.exact_groups"),
    (r"(?P<cols>[\w, ]+) at score >= (?P<score>[\d.]+) within equal rows: (?P<n>[\d,]+) groups",
     "note.fuzzy_groups_all"),
    (r"(?P<cols>[\w, ]+) at score >= (?P<score>[\d.]+) within equal (?P<block>[\w, ]+): (?P<n>[\d,]+) groups",
     "note.fuzzy_groups"),
    (r"identical rows", "note.identical_rows"),
    (r"rows_in = rows_out \+ rows_removed", "note.balance"),
    (r"(?P<n>[\d,]+) rows moved to the record kept for a duplicate", "note.rows_merged"),
    (r"rows whose occurred_at is missing or not a date", "note.bad_occurred_at"),
    (r"rows whose (?P<col>\w+) is missing or not among the opportunities", "note.unknown_deal"),
    (r"(?P<n>[\d,]+) amounts in (?P<codes>.+) converted to (?P<home>[A-Z]{3}) by (?P<how>.+)", "note.converted"),
    (r"(?P<n>[\d,]+) amounts without a currency taken as (?P<code>[A-Z]{3}) \(exchange_rate 1\)",
     "note.currency_filled_rate"),
    (r"(?P<n>[\d,]+) amounts without a currency taken as (?P<code>[A-Z]{3}), the only currency named",
     "note.currency_filled_only"),
    (r"every amount already in (?P<home>[A-Z]{3})", "note.one_currency"),
    # quarantine reasons, as the data-quality report groups them
    (r"near duplicate of (?P<rest>.+)", "note.near_duplicate_of"),
    (r"duplicate of (?P<rest>.+)", "note.duplicate_of"),
    (r"identical to an earlier row", "note.identical_to_earlier"),
    (r"missing (?P<col>\w+)", "note.missing_id"),
    (r"unknown (?P<col>\w+): (?P<rest>.+)", "note.unknown_value"),
    (r"(?P<col>\w+) is not a date: (?P<rest>.+)", "note.not_a_date"),
    (r"(?P<col>\w+) is missing", "note.is_missing"),
    (r"status (?P<value>.+) is not open/won/lost", "note.bad_status"),
    (r"deleted in the CRM \(status 'Deleted'\)", "note.deleted"),
    (r"line (?P<rest>.+)", "note.bad_line"),
    (r"format (?P<fmt>.+)", "note.date_format"),
    # how duplicates were matched
    (r"exact: (?P<cols>.+)", "note.match_exact"),
    (r"fuzzy: (?P<cols>.+)", "note.match_fuzzy"),
    # the A/B test's exclusion rules
    (r"first_row: (?P<row>\d+)", "note.first_row"),
    (r"variants: (?P<variants>.+)", "note.variants"),
]
_COMPILED = [(re.compile(f"^{p}$"), key) for p, key in NOTE_PATTERNS]
#: The kinds in "N columns typed (created_at: date, ...)".
_KINDS = {"date": "kind.date", "number": "kind.number", "boolean": "kind.boolean", "0/1": "kind.0/1",
          "text": "kind.text"}


def note(text: str, lang: str) -> str:
    """A step's English note in ``lang``: each "; " piece by its pattern, unknown pieces as written."""
    if lang == "en" or not isinstance(text, str) or not text:
        return text
    return "；".join(_piece(p, lang) for p in text.split("; "))


def reason_kinds(reasons):
    """Quarantine reasons by kind, the row's own value left out: "duplicate of …", "unknown opportunity_id: …"."""
    return reasons.str.replace(r"(of|line) .*", r"\1 …", regex=True).str.replace(r": .*", ": …", regex=True)


def _piece(piece: str, lang: str) -> str:
    for pattern, key in _COMPILED:
        m = pattern.match(piece)
        if m:
            values = m.groupdict()
            if "kinds" in values:
                values["kinds"] = "、".join(_kind(k, lang) for k in values["kinds"].split(", "))
            return t(key, lang, **values)
    return piece


def _kind(pair: str, lang: str) -> str:
    col, _, kind = pair.rpartition(": ")
    return f"{col}：{t(_KINDS[kind], lang)}" if kind in _KINDS and col else pair


def term(name: str, lang: str) -> str:
    """A model term as a reader says it: ``C(source)[T.Referral]`` -> ``source = Referral``, ``demo[T.True]`` ->
    ``demo``, ``Intercept`` -> the baseline."""
    if name == "Intercept":
        return t("rg.intercept", lang)
    m = re.fullmatch(r"C\((?P<col>\w+)(?:, .*)?\)\[T\.(?P<level>.+)\]", name)
    if m:
        return f"{m['col']} = {m['level']}"
    m = re.fullmatch(r"(?P<col>\w+)\[T\.True\]", name)
    return m["col"] if m else name


#: The words of the stage-rule language that a reader sees in a rule (the catalogue's rule words, the tree's too).
_RULE_WORDS = {"and": "tg.rule.and", "or": "tg.rule.or", "not": "tg.rule.not", "True": "tg.rule.yes",
               "False": "tg.rule.no", "in": "tg.rule.in"}


def rule(expression: str, lang: str) -> str:
    """A stage rule as written in the params (``demo or trial``), its keywords in ``lang`` (``demo 或 trial``); a
    rule that is just ``True`` reads "every deal"."""
    if lang == "en" or not isinstance(expression, str):
        return expression
    if expression.strip() == "True":
        return t("sd.every_deal", lang)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(expression).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return expression
    out, last = [], (1, 0)
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.NL):
            continue
        if tok.start[0] != last[0]:
            out.append(" ")  # a rule written over several lines reads as one
        elif tok.start[1] > last[1]:
            out.append(" " * (tok.start[1] - last[1]))
        word = tok.string
        out.append(t(_RULE_WORDS[word], lang) if tok.type == tokenize.NAME and word in _RULE_WORDS else word)
        last = tok.end
    return "".join(out)
