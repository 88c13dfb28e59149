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
"""

from __future__ import annotations

import pandas as pd

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
