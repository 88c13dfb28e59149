"""HubSpot: the deals export, by display name (UI export) or internal property name (API, CRM exports via tools).

Mapping (first candidate present wins; display name first, then the property):

==================  =====================================================================
canonical / helper  source columns
==================  =====================================================================
opportunity_id      Record ID, Deal ID, hs_object_id
crm_stage           Deal Stage, dealstage
amount              Amount in company currency, amount_in_home_currency; without them Amount, with
                    currency from Currency / Deal currency code (the deal's own currency)
created_at          Create Date, createdate
_close_date         Close Date, closedate -> closed_at (won/lost) or expected_close_at (open)
owner               Deal owner, hubspot_owner_id (the API gives the owner's numeric id)
segment             Deal Type, dealtype
source              Original Source Type, hs_analytics_source
account             Associated Company, Associated Company (Primary), Company name
crm_probability     Deal probability, Deal Stage Probability, hs_deal_stage_probability
_is_won             Is Closed Won, hs_is_closed_won
_is_lost            Is closed lost, hs_is_closed_lost
_is_closed          Is closed, Is Deal Closed?, hs_is_closed
_closed_numeric     Is Closed (numeric), hs_is_closed_count
_open_numeric       Is Open (numeric), hs_is_open_count
==================  =====================================================================

``values`` maps the internal ids of HubSpot's default sales pipeline (``closedwon``, ``appointmentscheduled``, ...)
onto its display labels, so ``crm_stage`` reads the same from both kinds of export. Custom pipelines use numeric
stage ids, which are left as they are.

Status (:func:`derive_deals`): from every flag the export has (:func:`._common.status_from_flags`: won and lost
flags first, then the closed flag, then the numeric closed/open flags; a blank or unreadable flag falls back to the
stage), else from the stage: "Closed Won"/"closedwon" -> won, "Closed Lost"/"closedlost" -> lost, anything else
open; missing for a blank stage. A deal in a pipeline's own closed stage ("Dead Deals" flagged closed lost) is lost,
and the data-quality report lists such stages (:func:`._common.status_disagreements`).
HubSpot writes the deal probability as 0-1: it becomes 0-100 when every filled value is at most 1.

``hubspot_history`` reads the stage history from the same deals export when it holds HubSpot's
``Date entered "<stage> (<pipeline>)"`` columns (or the API's ``hs_v2_date_entered_<stage id>``): one entry per
filled cell, ``stage`` being the label in the header (map it onto the funnel's stages with ``values: {stage:
...}``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ...errors import ParamsError
from ._common import Preset, add_status, probability_to_percent, split_close_date, status_from_flags

#: Internal stage ids of HubSpot's default sales pipeline -> their labels.
DEFAULT_PIPELINE = {
    "appointmentscheduled": "Appointment Scheduled",
    "qualifiedtobuy": "Qualified To Buy",
    "presentationscheduled": "Presentation Scheduled",
    "decisionmakerboughtin": "Decision Maker Bought-In",
    "contractsent": "Contract Sent",
    "closedwon": "Closed Won",
    "closedlost": "Closed Lost",
}


def derive_deals(df: pd.DataFrame) -> pd.DataFrame:
    """Status from the closed/won flags (else the stage), probability to 0-100, close-date split.

    Parameters
    ----------
    df : DataFrame
        A deals export renamed with :meth:`Preset.match`, text cells.

    Returns
    -------
    DataFrame
        A new frame with ``status``, ``closed_at``, ``expected_close_at``; ``crm_probability`` in 0-100.
    """
    status = status_from_flags(df, blank_is_false=False)
    out = add_status(df, status)
    if "amount" not in out.columns and "_deal_amount" in out.columns:
        # no company-currency amount: the deal's own amount, in the deal's own currency
        out = out.rename(columns={"_deal_amount": "amount", "_deal_currency": "currency"})
    if "crm_probability" in out.columns:
        out["crm_probability"] = probability_to_percent(out["crm_probability"])
    return split_close_date(out)


PRESET = Preset(
    name="hubspot",
    table="opportunities",
    columns={
        "opportunity_id": ("Record ID", "Deal ID", "hs_object_id"),
        "crm_stage": ("Deal Stage", "dealstage"),
        "amount": ("Amount in company currency", "amount_in_home_currency"),
        "_deal_amount": ("Amount",),
        "_deal_currency": ("Currency", "Deal currency code", "deal_currency_code"),
        "created_at": ("Create Date", "createdate"),
        "_close_date": ("Close Date", "closedate"),
        "owner": ("Deal owner", "hubspot_owner_id"),
        "segment": ("Deal Type", "dealtype"),
        "source": ("Original Source Type", "hs_analytics_source"),
        "account": ("Associated Company", "Associated Company (Primary)", "Company name"),
        "crm_probability": ("Deal probability", "Deal Stage Probability", "hs_deal_stage_probability"),
        "_is_won": ("Is Closed Won", "hs_is_closed_won"),
        "_is_lost": ("Is closed lost", "hs_is_closed_lost"),
        "_is_closed": ("Is closed", "Is Deal Closed?", "hs_is_closed"),
        "_closed_numeric": ("Is Closed (numeric)", "hs_is_closed_count"),
        "_open_numeric": ("Is Open (numeric)", "hs_is_open_count"),
    },
    values={"crm_stage": DEFAULT_PIPELINE},
    derive_fn=derive_deals,
)


#: ``Date entered "Appointment Scheduled (Sales Pipeline)"`` (the UI export) or ``hs_v2_date_entered_<stage id>`` /
#: ``hs_date_entered_<stage id>`` (API names): when each deal entered each stage.
_DATE_ENTERED = re.compile(r'^\s*date entered\s*["“]?(?P<label>.+?)["”]?\s*$|^hs_(?:v2_)?date_entered_(?P<id>.+)$',
                           re.IGNORECASE)


def date_entered_rows(raw: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One row per deal and ``Date entered`` cell: ``Record ID``, ``Stage`` (the label in the header), ``Entered At``.

    Examples
    --------
    >>> raw = pd.DataFrame({"Record ID": ["1", "2"], 'Date entered "Demo (Sales Pipeline)"': ["2024-05-01 10:00", ""],
    ...                     'Date entered "Closed Won (Sales Pipeline)"': ["2024-06-01 09:00", None]})
    >>> rows, note = date_entered_rows(raw)
    >>> rows.values.tolist()
    [['1', 'Demo (Sales Pipeline)', '2024-05-01 10:00'], ['1', 'Closed Won (Sales Pipeline)', '2024-06-01 09:00']]
    """
    matched = {c: m for c in raw.columns if (m := _DATE_ENTERED.match(str(c)))}
    # "current stage" is a property of its own, not a stage; the API's v2 column replaces the older one of a stage
    v2 = {m["id"] for c, m in matched.items() if m["id"] and str(c).lower().startswith("hs_v2_")}
    stages = {c: m["label"] or m["id"] for c, m in matched.items()
              if (m["label"] or m["id"]).strip().lower().replace("_", " ") != "current stage"
              and not (m["id"] in v2 and not str(c).lower().startswith("hs_v2_"))}
    if not stages:
        raise ParamsError('preset hubspot_history: the export has no `Date entered "<stage>"` columns (add them '
                          'to the deals view before exporting, or give an exported stage history)')
    ids = [c for c, name in PRESET.match([str(c) for c in raw.columns]).items() if name == "opportunity_id"]
    if not ids:
        raise ParamsError("preset hubspot_history: the export has no Record ID column to tie the stage entries to")
    long = raw[ids + list(stages)].melt(id_vars=ids, var_name="Stage", value_name="Entered At")
    long = long.assign(Stage=long["Stage"].map(stages)).rename(columns={ids[0]: "Record ID"})
    filled = long["Entered At"].notna() & (long["Entered At"].astype("str").str.strip() != "")
    # melt lists the cells column by column: deal by deal instead, each deal's entries in the column order
    deal = np.tile(np.arange(len(raw)), len(stages))
    out = long[filled].assign(_deal=deal[filled.to_numpy()]).sort_values("_deal", kind="stable")
    out = out.drop(columns="_deal").reset_index(drop=True)
    note = (f"{len(raw):,} deals x {len(stages)} `Date entered` columns: {len(out):,} stage entries (a blank cell is "
            f"a stage the deal never entered)")
    return out, note


HISTORY_PRESET = Preset(
    name="hubspot_history",
    table="stage_history",
    columns={"opportunity_id": ("Record ID",), "stage": ("Stage",), "entered_at": ("Entered At",)},
    reshape_fn=date_entered_rows,
)
