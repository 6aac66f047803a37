"""Every table, imported in one place so migrations and tests see the whole schema."""

from rollcall.activity.models import Action, Campaign, Post, Signup, User
from rollcall.callpower.models import CallPowerCampaign
from rollcall.calls.models import Call
from rollcall.credentials import StoredSecret
from rollcall.events import Event
from rollcall.members.audit import AuditEntry
from rollcall.members.ledger import Erasure
from rollcall.reports.models import (
    ReportCall,
    ReportDay,
    ReportHour,
    ReportMember,
    ReportQuarter,
    ReportTarget,
    ReportTargetDay,
)
from rollcall.sessions import ConsoleSessionRow
from rollcall.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery

__all__ = [
    "Action",
    "AuditEntry",
    "Call",
    "CallPowerCampaign",
    "Campaign",
    "ConsoleSessionRow",
    "Erasure",
    "Event",
    "Post",
    "ReportCall",
    "ReportDay",
    "ReportHour",
    "ReportMember",
    "ReportQuarter",
    "ReportTarget",
    "ReportTargetDay",
    "Signup",
    "StoredSecret",
    "User",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]
