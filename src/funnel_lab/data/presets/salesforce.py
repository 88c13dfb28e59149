"""Salesforce: the Opportunity object (``salesforce``) and OpportunityHistory (``salesforce_history``).

Reads exports of the objects by API field name (Data Loader, Workbench, dataloader.io, Data Export, SOQL tools), in
every form met in practice: a UTF-8 BOM on the first header, lower-case names (``stagename``, ``isclosed``),
relationship columns (``Account.Name``, ``Owner.Name``), booleans as 0/1, 1/blank, TRUE/FALSE or true/false, and the
null-id sentinel ``000000000000000AAA`` (listed in ``placeholders`` with its 15-character form).

Opportunity mapping (first candidate present wins):

========================  ==============================================================================
canonical / helper        source columns
========================  ==============================================================================
opportunity_id            Id, Opportunity ID (none: no id column; the caller numbers the rows)
account                   Account.Name, AccountName, Account Name, then AccountId (a name beats an id)
owner                     Owner.Name, OwnerName, Owner Name, Opportunity Owner, then OwnerId
source                    LeadSource
segment                   Type
crm_stage                 StageName, Stage
crm_probability           Probability, Probability (%)  (already 0-100 in Salesforce)
amount                    Amount
created_at                CreatedDate
_close_date               CloseDate -> closed_at (won/lost) or expected_close_at (open)
_is_closed / _is_won      IsClosed, Closed / IsWon, Won  (the last two are the report-export labels)
========================  ==============================================================================

Status (:func:`derive_opportunity`): with IsClosed and IsWon, closed and won -> won, closed and not won -> lost,
otherwise open; a blank flag counts as false. With IsWon alone: won if true, else lost when StageName says closed
("Closed Lost", "Closed", ...) and open when it does not. Without either flag, from StageName: "Closed Won" / "Closed
Lost" in any spelling ("Closed/Won", "closed-won", "Closed_Lost", "CLOSED WON", "Closed - Lost", "ClosedWon") or
a bare "Won"/"Lost"; any other stage is open. Status is missing only where nothing decides it (a blank StageName
with no flags, or IsWon false without a StageName column).

OpportunityHistory mapping: OpportunityId -> opportunity_id, StageName -> stage, CreatedDate -> entered_at (the
moment the row was written), CloseDate -> expected_close_at (the close date as it stood then: the pipeline waterfall
sees deals pulled in and pushed out). Salesforce writes a row on any change of stage, amount, close date or
probability, so consecutive rows may repeat a stage. Amount, Probability, ForecastCategory and the rest stay as
features.
"""

from __future__ import annotations

import pandas as pd

from ._common import Preset, add_status, split_close_date, status_from_flags

#: Salesforce's null id (18- and 15-character forms), written in empty lookup fields.
NULL_IDS = ("000000000000000AAA", "000000000000000")


def derive_opportunity(df: pd.DataFrame) -> pd.DataFrame:
    """Status from IsClosed/IsWon (else StageName), then CloseDate split into closed_at / expected_close_at.

    Parameters
    ----------
    df : DataFrame
        An Opportunity export renamed with :meth:`Preset.match`, text cells.

    Returns
    -------
    DataFrame
        A new frame with ``status`` (see the module docstring), ``closed_at`` and ``expected_close_at``; ``_is_closed``
        and ``_is_won`` are kept.
    """
    status = status_from_flags(df, blank_is_false=True)
    return split_close_date(add_status(df, status))


PRESET = Preset(
    name="salesforce",
    table="opportunities",
    columns={
        "opportunity_id": ("Id", "Opportunity ID"),
        "account": ("Account.Name", "AccountName", "Account Name", "AccountId"),
        "owner": ("Owner.Name", "OwnerName", "Owner Name", "Opportunity Owner", "OwnerId"),
        "source": ("LeadSource",),
        "segment": ("Type",),
        "crm_stage": ("StageName", "Stage"),
        "crm_probability": ("Probability", "Probability (%)"),
        "amount": ("Amount",),
        "currency": ("CurrencyIsoCode", "Opportunity Currency"),
        "created_at": ("CreatedDate",),
        "_close_date": ("CloseDate",),
        "_is_closed": ("IsClosed", "Closed"),
        "_is_won": ("IsWon", "Won"),
    },
    placeholders=NULL_IDS,
    derive_fn=derive_opportunity,
)

HISTORY_PRESET = Preset(
    name="salesforce_history",
    table="stage_history",
    columns={
        "opportunity_id": ("OpportunityId",),
        "stage": ("StageName",),
        "entered_at": ("CreatedDate",),
        "expected_close_at": ("CloseDate",),
    },
    placeholders=NULL_IDS,
)
