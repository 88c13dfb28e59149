"""Activity logs: Salesforce Task/Event exports (``salesforce_activity``) and web-analytics event exports
(``web_analytics``).

Salesforce Task and Event records (Data Loader, Workbench, reports by API name), first candidate present wins:

==================  ================================================================================
canonical           source columns
==================  ================================================================================
opportunity_id      WhatId (the related opportunity), Opportunity ID, OpportunityId
account             AccountId, Account.Name, Account Name
activity_type       TaskSubtype, EventSubtype, Type, Subject (Call, Email, Meeting, ...)
occurred_at         ActivityDateTime, StartDateTime, ActivityDate, CompletedDateTime, CreatedDate
value               DurationInMinutes, CallDurationInSeconds
==================  ================================================================================

Web analytics event exports (GA4 BigQuery-style flattening, Matomo, Plausible, Segment/Mixpanel CSVs):

==================  ================================================================================
canonical           source columns
==================  ================================================================================
opportunity_id      opportunity_id, crm_opportunity_id, deal_id
account             account, company, company_domain, domain, account_id, user_id
activity_type       event_name, event, event_type, action, Event Action
occurred_at         event_timestamp, timestamp, event_time, time, datetime, date
value               engagement_time_msec, time_on_page, duration, engagement_seconds, value
==================  ================================================================================

Salesforce's null id ``000000000000000AAA`` (and its 15-character form) reads as missing.
"""

from __future__ import annotations

from ._common import Preset
from .salesforce import NULL_IDS

SALESFORCE_PRESET = Preset(
    name="salesforce_activity",
    table="activities",
    columns={
        "opportunity_id": ("WhatId", "Opportunity ID", "OpportunityId"),
        "account": ("AccountId", "Account.Name", "Account Name"),
        "activity_type": ("TaskSubtype", "EventSubtype", "Type", "Subject"),
        "occurred_at": ("ActivityDateTime", "StartDateTime", "ActivityDate", "CompletedDateTime", "CreatedDate"),
        "value": ("DurationInMinutes", "CallDurationInSeconds"),
    },
    placeholders=NULL_IDS,
)

WEB_PRESET = Preset(
    name="web_analytics",
    table="activities",
    columns={
        "opportunity_id": ("opportunity_id", "crm_opportunity_id", "deal_id"),
        "account": ("account", "company", "company_domain", "domain", "account_id", "user_id"),
        "activity_type": ("event_name", "event", "event_type", "action", "Event Action"),
        "occurred_at": ("event_timestamp", "timestamp", "event_time", "time", "datetime", "date"),
        "value": ("engagement_time_msec", "time_on_page", "duration", "engagement_seconds", "value"),
    },
)
