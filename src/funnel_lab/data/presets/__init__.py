"""CRM export presets: which source columns are which canonical column, and how status and dates are derived.

One module per CRM, each defining ``PRESET`` (a :class:`Preset`) and its derive function; the shared rules (header
matching, the stage-label status rule, the close-date split) are in :mod:`funnel_lab.data.presets._common`.

Use::

    preset = get_preset("salesforce")
    renamed = raw.rename(columns=preset.match(list(raw.columns)))
    data = preset.derive(renamed)          # adds status, closed_at, expected_close_at; text cells throughout

========================  ====================  ==================================================
name                      table                 export
========================  ====================  ==================================================
``salesforce``            opportunities         Salesforce Opportunity object (API field names)
``salesforce_history``    stage_history         Salesforce OpportunityHistory
``hubspot``               opportunities         HubSpot deals (UI export or API property names)
``hubspot_history``       stage_history         HubSpot deals export with ``Date entered "<stage>"`` columns
``zoho``                  opportunities         Zoho CRM Deals (also renamed Opportunities / Potentials)
``pipedrive``             opportunities         Pipedrive deals export (``Deal - ...`` headers)
``jiandaoyun``            opportunities         简道云 商机 form, Excel export with Chinese headers
``maven``                 opportunities         Maven Analytics CRM Sales Opportunities pipeline
``salesforce_activity``   activities            Salesforce Task / Event records
``web_analytics``         activities            web-analytics event export (GA4, Matomo, Segment, ...)
``none``                  any                   no mapping: ``columns:`` in params does it all
========================  ====================  ==================================================
"""

from __future__ import annotations

from ...errors import ParamsError
from . import activity, hubspot, jiandaoyun, maven, pipedrive, salesforce, zoho
from ._common import Preset, normalise_header

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (salesforce.PRESET, salesforce.HISTORY_PRESET, hubspot.PRESET, hubspot.HISTORY_PRESET, zoho.PRESET, pipedrive.PRESET,
              jiandaoyun.PRESET, maven.PRESET, activity.SALESFORCE_PRESET, activity.WEB_PRESET)
}
#: The preset of a table without one: maps nothing, derives nothing (``table`` empty: it fits any table).
NONE = Preset(name="none", table="")


def get_preset(name: str | None) -> Preset:
    """The preset called ``name`` (case and surrounding spaces ignored); ``"none"``, ``""`` or None: :data:`NONE`.

    Raises
    ------
    ParamsError
        For an unknown name, listing the valid ones.

    Examples
    --------
    >>> get_preset("Salesforce").table, get_preset("none").columns
    ('opportunities', {})
    """
    key = (name or "none").strip().lower()
    if key == "none":
        return NONE
    if key not in PRESETS:
        raise ParamsError(f"unknown preset {name!r}; valid presets: {', '.join([*PRESETS, 'none'])}")
    return PRESETS[key]


__all__ = ["NONE", "PRESETS", "Preset", "get_preset", "normalise_header"]
