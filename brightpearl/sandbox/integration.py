"""Integration service: account configuration, own instance, webhook subscriptions and simulate."""

from __future__ import annotations

from .common import ApiError
from .routing import Ctx, Reply, Router, id_set, positive_int
from .webhooks import is_subscribable

router = Router()
SIMULATE_MAX_IDS = 10


@router.route("GET", r"/integration-service/account-configuration/?")
def account_configuration(ctx: Ctx):
    return {"configuration": dict(ctx.account.configuration)}


@router.route("GET", r"/integration-service/integration/instance/?")
def own_instance(ctx: Ctx):
    instance_id = ctx.account.installed_integration_instance_id
    if not instance_id:
        raise ApiError(404, "CMNC-404", "No installed integration instance for these credentials")
    return {
        "installedIntegrationInstanceId": instance_id,
        "installedIntegrationId": 1,
        "instanceName": "Returns connector",
    }


@router.route("POST", r"/integration-service/webhook/?")
def create_webhook(ctx: Ctx):
    body = ctx.req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "CMNC-400", "The body must be a JSON object")
    event = body.get("subscribeTo")
    if not isinstance(event, str) or not is_subscribable(event):
        raise ApiError(
            400,
            "INTC-064",
            f"The event '{event}' either does not exist or cannot be subscribed too",
        )
    method = str(body.get("httpMethod") or "").upper()
    if method not in ("GET", "POST", "PUT", "DELETE"):
        raise ApiError(400, "INTC-065", "httpMethod must be one of GET, POST, PUT, DELETE")
    uri = body.get("uriTemplate")
    if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
        raise ApiError(400, "INTC-066", "uriTemplate must be an absolute http(s) URI")
    if method in ("POST", "PUT") and (
        body.get("bodyTemplate") is None or not body.get("contentType")
    ):
        raise ApiError(
            400, "INTC-067", "bodyTemplate and contentType are required for POST and PUT"
        )
    qos = body.get("qualityOfService", 0)
    if qos not in (0, 1, "0", "1"):
        raise ApiError(400, "INTC-068", "qualityOfService must be 0 or 1")
    webhook_id = ctx.account.next_id("webhook")
    ctx.account.webhooks[webhook_id] = {
        "id": webhook_id,
        "subscribeTo": event,
        "httpMethod": method,
        "uriTemplate": uri,
        "bodyTemplate": body.get("bodyTemplate") if method in ("POST", "PUT") else None,
        "contentType": body.get("contentType") if method in ("POST", "PUT") else None,
        "idSetAccepted": bool(body.get("idSetAccepted", False)),
        "qualityOfService": int(qos),
    }
    return webhook_id


@router.route("GET", r"/integration-service/webhook(?:/(?P<ids>[^/]*))?/?")
def list_webhooks(ctx: Ctx, ids: str | None = None):
    wanted = id_set(ids, required=False)
    hooks = sorted(ctx.account.webhooks.values(), key=lambda w: w["id"])
    return [dict(w) for w in hooks if wanted is None or w["id"] in wanted]


@router.route("DELETE", r"/integration-service/webhook/(?P<webhook_id>[^/]+)/?")
def delete_webhook(ctx: Ctx, webhook_id: str):
    number = positive_int(webhook_id, "webhook id")
    if ctx.account.webhooks.pop(number, None) is None:
        raise ApiError(404, "CMNC-404", f"Webhook {number} not found")
    return Reply(200, {})


@router.route("POST", r"/integration-service/webhook/(?P<webhook_id>\d+)/simulate/?")
def simulate_webhook(ctx: Ctx, webhook_id: str):
    """Fire one test delivery; `testData` overrides template variables (keys written `${name}`)."""
    webhook = ctx.account.webhooks.get(int(webhook_id))
    if webhook is None:
        raise ApiError(404, "CMNC-404", f"Webhook {webhook_id} not found")
    body = ctx.req.json(required=False) or {}
    test_data = body.get("testData") or {}
    if not isinstance(test_data, dict):
        raise ApiError(400, "INTC-069", "testData must be an object")
    overrides = {str(k).removeprefix("${").removesuffix("}"): str(v) for k, v in test_data.items()}
    raw_ids = overrides.get("resource-id", "1")
    ids = id_set(raw_ids)
    if len(ids) > SIMULATE_MAX_IDS:
        raise ApiError(400, "INTC-070", f"At most {SIMULATE_MAX_IDS} resource ids can be simulated")
    overrides.pop("resource-id", None)
    ctx.simulations.append((webhook["id"], webhook["subscribeTo"], ids, overrides))
    return Reply(200, {})
