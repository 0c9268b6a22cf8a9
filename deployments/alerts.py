"""Alerting: a Prefect automation that notifies when a run of a deployment fails or crashes.

The server runs it (no worker or `nst` process needs to be up): a flow-run event of the
deployment whose state is Failed or Crashed triggers a SendNotification action through a
notification block. The block is one the user made (Slack, e-mail, ... in the UI:
"BLOCK_TYPE/NAME", e.g. slack-webhook/ops-alerts), or, given a URL, a Custom Webhook block
this module saves, POSTing JSON {"subject", "body"}.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from prefect.automations import Automation, EventTrigger, Posture, SendNotification
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client

FAILED_EVENTS = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
DEFAULT_BLOCK_TYPE = "custom-webhook"
SUBJECT = "nst: {{ flow_run.name }} ended {{ flow_run.state.name }}"
# Jinja, filled by the server from the triggering flow run (the fields Prefect's own default uses).
BODY = ("Flow run {{ flow.name }}/{{ flow_run.name }} of deployment {{ deployment.name }} ended "
        "{{ flow_run.state.name }}: {{ flow_run.state.message }}\n"
        "Flow run {{ flow_run.id }}: {{ flow_run|ui_url }}")  # the URL needs PREFECT_UI_URL on the server


class AlertError(ValueError):
    """The notification target cannot be used; the message says which and why."""


def automation_name(deployment_name: str) -> str:
    """One automation per deployment, found again by this name when it is deployed again."""
    return f"nst: {deployment_name} failed or crashed"


def webhook_block_name(deployment_name: str) -> str:
    """Block document names allow lowercase letters, digits and dashes."""
    return "nst-alert-" + (re.sub(r"[^a-z0-9-]+", "-", deployment_name.lower()).strip("-") or "run")


def notification_block_id(target: str, deployment_name: str) -> UUID:
    """The block to notify through: saved here for a URL, looked up for "TYPE/NAME" (or NAME, a
    Custom Webhook block)."""
    if re.match(r"https?://", target):
        block = CustomWebhookNotificationBlock(name=f"nst {deployment_name}", url=target,
                                               json_data={"subject": "{{subject}}", "body": "{{body}}"})
        return block.save(webhook_block_name(deployment_name), overwrite=True)
    block_type, _, name = target.rpartition("/")
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name, block_type or DEFAULT_BLOCK_TYPE)
        except ObjectNotFound:
            raise AlertError(f"--notify-webhook {target}: no notification block '{name}' of type "
                             f"'{block_type or DEFAULT_BLOCK_TYPE}' on this server (give a URL, or create the "
                             "block in the UI under Blocks, e.g. a Slack Webhook, and name it TYPE/NAME)") from None
    if document.id is None:  # pragma: no cover - the server always returns one
        raise AlertError(f"--notify-webhook {target}: the block has no id")
    return document.id


def attach_failure_alert(deployment_id: UUID, deployment_name: str, target: str) -> UUID:
    """Create (or replace) the automation that notifies `target` when a run of the deployment
    ends Failed or Crashed; returns the automation's id."""
    block_id = notification_block_id(target, deployment_name)
    name = automation_name(deployment_name)
    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(name):  # deploying again replaces it
            client.delete_automation(old.id)
    automation = Automation(
        name=name, description=f"Notify through {target} when a run of {deployment_name} fails or crashes.",
        trigger=EventTrigger(
            expect=FAILED_EVENTS, posture=Posture.Reactive, threshold=1, within=0,
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": f"prefect.deployment.{deployment_id}"}),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)])
    created: Any = automation.create()
    return created.id
