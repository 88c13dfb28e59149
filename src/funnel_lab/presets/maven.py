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

Status (:func:`derive_pipeline`) from deal_stage: Won -> won, Lost -> lost, Engaging and Prospecting -> open
(the shared stage rule, so "Closed Won"-style labels would also be read); missing for a blank stage.
"""

from __future__ import annotations

import pandas as pd

from ._common import Preset, add_status, split_close_date, stage_status


def derive_pipeline(df: pd.DataFrame) -> pd.DataFrame:
    """Status from deal_stage, then close_date split into closed_at / expected_close_at.

    Parameters
    ----------
    df : DataFrame
        sales_pipeline.csv renamed with :meth:`Preset.match`, text cells.

    Returns
    -------
    DataFrame
        A new frame with ``status``, ``closed_at``, ``expected_close_at``.
    """
    status = stage_status(df["crm_stage"]) if "crm_stage" in df.columns else None
    return split_close_date(add_status(df, status))


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
    derive_fn=derive_pipeline,
)
