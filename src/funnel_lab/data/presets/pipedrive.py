"""Pipedrive: the deals export ("Export data" -> Deals, CSV or Excel), whose headers are ``Entity - Field``.

==================  ==============================================================================
canonical / helper  source columns
==================  ==============================================================================
opportunity_id      Deal - ID
crm_stage           Deal - Stage
status              Deal - Status: Open / Won / Lost -> open / won / lost; Deleted -> quarantined
amount              Deal - Value
currency            Deal - Currency
created_at          Deal - Deal created
_won_time           Deal - Won time  -> closed_at of a won deal
_lost_time          Deal - Lost time -> closed_at of a lost deal
_expected_close     Deal - Expected close date -> expected_close_at (open deals)
owner               Deal - Owner
account             Deal - Organization, Organization - Name
source              Deal - Source, Deal - Source channel
crm_probability     Deal - Probability
==================  ==============================================================================

Every other ``Entity - Field`` column (``Deal - Lost reason``, ``Deal - Pipeline``, ``Person - Name``, ...) stays a
feature under its snake_case name (``deal_lost_reason``). A deal Pipedrive marks deleted is set aside in the
quarantine with the reason "deleted in the CRM". The status column decides: a Lost time on a deal that is Open again
(re-opened) stays a feature.
"""

from __future__ import annotations

import pandas as pd

from ._common import Preset, split_close_date, text


def derive_deals(df: pd.DataFrame) -> pd.DataFrame:
    """``closed_at`` from the won or the lost time, as the status says; ``expected_close_at`` for open deals.

    Parameters
    ----------
    df : DataFrame
        A deals export renamed with :meth:`Preset.match` (``status`` already mapped by the preset's values only
        after this step, so the status is read here ignoring case).

    Returns
    -------
    DataFrame
        A new frame with ``closed_at`` and ``expected_close_at``; the won/lost time helpers are dropped when every
        filled cell went into ``closed_at``.
    """
    out = df.copy()
    if "status" not in out.columns:
        return out
    status = text(out["status"]).str.lower()
    if "closed_at" not in out.columns and {"_won_time", "_lost_time"} & set(out.columns):
        empty = pd.Series(pd.NA, index=out.index, dtype="str")
        won_time, lost_time = out.get("_won_time", empty), out.get("_lost_time", empty)
        out["_close_time"] = won_time.where(status == "won", lost_time.where(status == "lost"))
        for helper, rows in (("_won_time", status == "won"), ("_lost_time", status == "lost")):
            if helper in out.columns and not (text(out[helper]).notna() & ~rows.fillna(False)).any():
                out = out.drop(columns=helper)
    return split_close_date(out, closed_source="_close_time", open_source="_expected_close")


PRESET = Preset(
    name="pipedrive",
    table="opportunities",
    columns={
        "opportunity_id": ("Deal - ID",),
        "crm_stage": ("Deal - Stage",),
        "status": ("Deal - Status",),
        "amount": ("Deal - Value",),
        "currency": ("Deal - Currency", "Deal - Currency of value"),
        "created_at": ("Deal - Deal created",),
        "_won_time": ("Deal - Won time",),
        "_lost_time": ("Deal - Lost time",),
        "_expected_close": ("Deal - Expected close date",),
        "owner": ("Deal - Owner",),
        "account": ("Deal - Organization", "Organization - Name"),
        "source": ("Deal - Source", "Deal - Source channel"),
        "crm_probability": ("Deal - Probability",),
    },
    values={"status": {"Open": "open", "Won": "won", "Lost": "lost", "Deleted": "deleted"}},
    derive_fn=derive_deals,
)
