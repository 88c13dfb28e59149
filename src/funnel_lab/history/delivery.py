"""Alerts delivered: a run's new breaches sent by webhook (a JSON POST) and by e-mail (SMTP).

A breach is sent once per channel: the ones a channel delivered in an earlier run (as the run history records) are
not sent again, and the ones it failed to deliver are sent by the next run. Each channel has a timeout per attempt
and retries with a growing pause; a failure is returned as the channel's outcome, never raised, so that the reports
are written whatever the network does. Secrets live in the environment (``${VAR}``) and are read here only; an
error message names the channel and the host, never a password or a webhook's token.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..config import Alerts, Email, Webhook, mask_url, mask_webhook

#: A breach as the history keeps it and the webhook gets it; ``limit`` is the one crossed (``lcl`` or ``ucl``).
BREACH_FIELDS = ("period", "stage", "metric", "direction", "value", "limit", "center", "lcl", "ucl")
#: Pause before the n-th retry: 1 s, 2 s, 4 s...
BACKOFF_SECONDS = 1.0


class DeliveryError(Exception):
    """A channel could not deliver; the message is safe to log."""


def breach_id(b: dict) -> str:
    """``period|stage|metric|direction``: the same breach found by two runs has the same id."""
    return "|".join(str(b[k]) for k in ("period", "stage", "metric", "direction"))


def sent_before(records: list[dict], channel: str) -> set[str]:
    """The breaches ``channel`` delivered in the runs of ``records``."""
    return {i for r in records for i in (r.get("delivery", {}).get(channel, {}).get("sent") or [])}


def expand(value: str, key: str) -> str:
    """``${VAR}`` read from the environment; an unset variable is a :class:`DeliveryError` naming it."""
    out = os.path.expandvars(value)
    missing = re.findall(r"\$\{(\w+)\}", out)
    if missing:
        raise DeliveryError(f"{key}: environment variable {missing[0]} is not set")
    return out


def _attempts(send: Callable[[], None], channel: Webhook | Email, retryable: Callable[[Exception], bool]) -> int:
    """Call ``send`` until it succeeds, at most 1 + ``retries`` times; returns the attempts made."""
    attempt = 1
    while True:
        try:
            send()
            return attempt
        except DeliveryError as e:
            if attempt > channel.retries or not retryable(e):
                e.attempts = attempt
                raise
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            attempt += 1


def post_webhook(cfg: Webhook, payload: dict) -> int:
    """POST ``payload`` as JSON; any 2xx is delivered. Retries network errors, 429 and 5xx (not other 4xx)."""
    url = expand(cfg.url, "alerts.webhook.url")
    shown = mask_webhook(url)
    body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")

    def send() -> None:
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "User-Agent": f"funnel-lab/{__version__}"})
        try:
            with urllib.request.urlopen(req, timeout=cfg.timeout_seconds) as resp:
                resp.read()
        except urllib.error.HTTPError as e:
            err = DeliveryError(f"webhook {shown}: HTTP {e.code} {e.reason}")
            err.retry = e.code == 429 or e.code >= 500
            raise err from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise DeliveryError(f"webhook {shown}: {type(reason).__name__}: {mask_url(str(reason))}") from None

    return _attempts(send, cfg, lambda e: getattr(e, "retry", True))


def send_email(cfg: Email, subject: str, text: str) -> int:
    """Send a plain-text e-mail to ``cfg.to``: ``smtps://`` over TLS, ``smtp://`` with STARTTLS when offered; log in
    when the URL has a user. Retries network errors and temporary (4xx) SMTP replies."""
    url = expand(cfg.smtp_url, "alerts.email.smtp_url")
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise DeliveryError(f"alerts.email.smtp_url {mask_url(url)!r}: expected smtp://host[:port] or smtps://...")
    host, tls = parts.hostname, parts.scheme == "smtps"
    port = parts.port or (465 if tls else 25)
    msg = EmailMessage()
    msg["Subject"], msg["To"] = subject, ", ".join(cfg.to)
    msg["From"] = cfg.sender or f"funnel-lab@{socket.getfqdn() or 'localhost'}"
    msg.set_content(text)

    def send() -> None:
        try:
            smtp_cls = smtplib.SMTP_SSL if tls else smtplib.SMTP
            with smtp_cls(host, port, timeout=cfg.timeout_seconds) as s:
                s.ehlo()
                if not tls and s.has_extn("starttls"):
                    s.starttls(context=ssl.create_default_context())
                    s.ehlo()
                if parts.username:
                    s.login(unquote(parts.username), unquote(parts.password or ""))
                s.send_message(msg)
        except smtplib.SMTPResponseException as e:
            err = DeliveryError(f"email via {host}:{port}: SMTP {e.smtp_code} "
                                f"{e.smtp_error.decode(errors='replace') if isinstance(e.smtp_error, bytes) else e.smtp_error}")
            err.retry = 400 <= e.smtp_code < 500
            raise err from None
        except (smtplib.SMTPException, OSError) as e:
            raise DeliveryError(f"email via {host}:{port}: {type(e).__name__}: {e}") from None

    return _attempts(send, cfg, lambda e: getattr(e, "retry", True))


def deliver(alerts: Alerts, breaches: list[dict], records: list[dict], *, payload: dict,
            subject: Callable[[list[dict]], str], text: Callable[[list[dict]], str]) -> dict[str, dict]:
    """Send each channel the breaches it has not delivered before.

    Parameters
    ----------
    breaches : list of dict
        This run's breaches (``BREACH_FIELDS``).
    records : list of dict
        The run history's records (this run's earlier record included: a rerun does not send again).
    payload : dict
        The webhook's JSON without ``breaches`` (run, report link...).
    subject, text : callable
        The e-mail's subject and body for a list of breaches.

    Returns
    -------
    dict
        Channel -> ``status`` (``sent``, ``nothing new`` or ``failed``), ``sent`` (breach ids delivered now),
        ``breaches`` (how many were due), ``attempts``, ``error`` (a safe message) when failed.
    """
    out = {}
    for name, cfg in alerts.channels().items():
        done = sent_before(records, name)
        due = [b for b in breaches if breach_id(b) not in done]
        if not due:
            out[name] = {"status": "nothing new", "sent": [], "breaches": 0}
            continue
        try:
            if name == "webhook":
                attempts = post_webhook(cfg, {**payload, "breaches": due})
            else:
                attempts = send_email(cfg, subject(due), text(due))
            out[name] = {"status": "sent", "sent": [breach_id(b) for b in due], "breaches": len(due),
                         "attempts": attempts}
        except DeliveryError as e:
            out[name] = {"status": "failed", "sent": [], "breaches": len(due), "attempts": getattr(e, "attempts", 1),
                         "error": str(e)}
    return out
