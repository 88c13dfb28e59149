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

Status (:func:`._common.derive_from_stage`) from Stage: "Closed Won" -> won; "Closed Lost", "Closed-Lost to Competition",
"Closed Lost to Competition" (any "Closed ... Lost" spelling) -> lost; any other stage open; missing for a blank
stage.
"""

from __future__ import annotations

from ._common import Preset, derive_from_stage

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
    derive_fn=derive_from_stage,
)
