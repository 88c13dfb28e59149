"""Zoho CRM: the Deals module export (display names, or the API names such as ``Closing_Date``).

Mapping (first candidate present wins):

==================  ===================================================
canonical / helper  source columns
==================  ===================================================
opportunity_id      Record Id, Deal Id, Id
account             Account Name
crm_stage           Stage
amount              Amount
_close_date         Closing Date -> closed_at (won/lost) or expected_close_at (open)
created_at          Created Time
owner               Deal Owner, Owner (the API name)
source              Lead Source
segment             Type
crm_probability     Probability (%), Probability (already 0-100)
==================  ===================================================

Deal Name, Contact Name, Next Step, Expected Revenue and the rest stay as features.

Status (:func:`derive_deals`) from Stage: "Closed Won" -> won; "Closed Lost", "Closed-Lost to Competition",
"Closed Lost to Competition" (any "Closed ... Lost" spelling) -> lost; any other stage open; missing for a blank
stage.
"""

from __future__ import annotations

import pandas as pd

from ._common import Preset, add_status, split_close_date, stage_status


def derive_deals(df: pd.DataFrame) -> pd.DataFrame:
    """Status from Stage, then the Closing Date split.

    Parameters
    ----------
    df : DataFrame
        A Deals export renamed with :meth:`Preset.match`, text cells.

    Returns
    -------
    DataFrame
        A new frame with ``status``, ``closed_at``, ``expected_close_at``.
    """
    status = stage_status(df["crm_stage"]) if "crm_stage" in df.columns else None
    return split_close_date(add_status(df, status))


PRESET = Preset(
    name="zoho",
    table="opportunities",
    columns={
        "opportunity_id": ("Record Id", "Deal Id", "Id"),
        "account": ("Account Name",),
        "crm_stage": ("Stage",),
        "amount": ("Amount",),
        "_close_date": ("Closing Date",),
        "created_at": ("Created Time",),
        "owner": ("Deal Owner", "Owner"),
        "source": ("Lead Source",),
        "segment": ("Type",),
        "crm_probability": ("Probability (%)", "Probability"),
    },
    derive_fn=derive_deals,
)
