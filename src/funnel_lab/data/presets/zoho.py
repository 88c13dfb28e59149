"""Zoho CRM: the Deals module export (display names, or the API names such as ``Closing_Date``).

Orgs rename the Deals module ("Opportunities"; before 2016 it was "Potentials"), and the export's columns follow:
``Deal Owner``, ``Opportunity Owner`` and ``Potential Owner`` are the same field. Mapping (first candidate present
wins):

==================  ===========================================================================
canonical / helper  source columns
==================  ===========================================================================
opportunity_id      Record Id, Deal Id, Opportunity Id, Potential Id, Id (``zcrm_...`` kept as is)
account             Account Name
crm_stage           Stage (kept as written, ``Sales Qualified (20)`` included)
amount              Amount (in the record's currency)
currency            Currency (multi-currency orgs)
exchange_rate       Exchange Rate: units of the record's currency per one unit of the home currency
_close_date         Closing Date -> closed_at (won/lost) or expected_close_at (open)
created_at          Created Time
owner               Deal Owner, Opportunity Owner, Potential Owner, Owner (the API name)
source              Lead Source
segment             Type
crm_probability     Probability (%), Probability (already 0-100); without one, the stage label's suffix
==================  ===========================================================================

Deal Name, Contact Name, Next Step, Expected Revenue and the rest stay as features.

Status (:func:`derive_deals`) from Stage: "Closed Won" -> won; "Closed Lost", "Closed-Lost to Competition",
"Closed Lost to Competition" (any "Closed ... Lost" spelling) -> lost; any other stage open; missing for a blank
stage. A probability suffix (``Closed Won (100)``) does not change the rule.
"""

from __future__ import annotations

import pandas as pd

from ._common import Preset, derive_from_stage, text

#: "Sales Qualified (20)": a stage label that carries its probability, as Zoho's stage picklist may.
PROBABILITY_SUFFIX = r"\((\d{1,3}(?:\.\d+)?)\s*%?\)\s*$"


def stage_probability(stage: pd.Series) -> pd.Series:
    """The probability (0-100, as text) a stage label carries in a ``(20)`` suffix; missing where it has none.

    Examples
    --------
    >>> stage_probability(pd.Series(["Sales Qualified (20)", "Closed Won (100)", "Negotiation", ""])).tolist()
    ['20', '100', nan, nan]
    """
    return text(stage).str.extract(PROBABILITY_SUFFIX, expand=False)


def derive_deals(df: pd.DataFrame) -> pd.DataFrame:
    """Status from the stage, close-date split, and ``crm_probability`` from the stage suffix when absent."""
    out = derive_from_stage(df)
    if "crm_probability" not in out.columns and "crm_stage" in out.columns:
        suffix = stage_probability(out["crm_stage"])
        if suffix.notna().any():
            out["crm_probability"] = suffix
    return out


_MODULES = ("Deal", "Opportunity", "Potential")

PRESET = Preset(
    name="zoho",
    table="opportunities",
    columns={
        "opportunity_id": ("Record Id", *(f"{m} Id" for m in _MODULES), "Id"),
        "account": ("Account Name",),
        "crm_stage": ("Stage",),
        "amount": ("Amount",),
        "currency": ("Currency",),
        "exchange_rate": ("Exchange Rate",),
        "_close_date": ("Closing Date",),
        "created_at": ("Created Time",),
        "owner": (*(f"{m} Owner" for m in _MODULES), "Owner"),
        "source": ("Lead Source",),
        "segment": ("Type",),
        "crm_probability": ("Probability (%)", "Probability"),
    },
    derive_fn=derive_deals,
    guesses={"crm_probability": "no probability column: read from the stage label's suffix "
                                "(e.g. 'Sales Qualified (20)' -> 20)"},
)
