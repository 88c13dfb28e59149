"""Maven Analytics "CRM Sales Opportunities": ``sales_pipeline.csv``.

Header: ``opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value``.

==================  ============================================================
canonical / helper  source column
==================  ============================================================
opportunity_id      opportunity_id
owner               sales_agent
account             account
crm_stage           deal_stage
created_at          engage_date (empty on Prospecting deals, which were never engaged)
_close_date         close_date -> closed_at (Won/Lost) or expected_close_at (open; empty in this dataset)
amount              close_value (0 on every Lost deal, as exported)
==================  ============================================================

``product`` stays a feature (join it with products.csv for series and price).

Status (:func:`._common.derive_from_stage`) from deal_stage: Won -> won, Lost -> lost, Engaging and Prospecting -> open
(the shared stage rule, so "Closed Won"-style labels would also be read); missing for a blank stage.
"""

from __future__ import annotations

from ._common import Preset, derive_from_stage

PRESET = Preset(
    name="maven",
    table="opportunities",
    columns={
        "opportunity_id": ("opportunity_id",),
        "owner": ("sales_agent",),
        "account": ("account",),
        "crm_stage": ("deal_stage",),
        "created_at": ("engage_date",),
        "_close_date": ("close_date",),
        "amount": ("close_value",),
    },
    derive_fn=derive_from_stage,
)
