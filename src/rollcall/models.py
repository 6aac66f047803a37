"""Every table, imported in one place so migrations and tests see the whole schema."""

from rollcall.activity.models import Action, Campaign, Post, Signup, User
from rollcall.audit import AuditEntry
from rollcall.callpower.models import Call, CallPowerCampaign
from rollcall.console.session import ConsoleSessionRow
from rollcall.credentials import StoredSecret
from rollcall.events import Event
from rollcall.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery

__all__ = [
    "Action",
    "AuditEntry",
    "Call",
    "CallPowerCampaign",
    "Campaign",
    "ConsoleSessionRow",
    "Event",
    "Post",
    "Signup",
    "StoredSecret",
    "User",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]
