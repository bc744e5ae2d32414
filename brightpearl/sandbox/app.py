"""The sandbox WSGI application: `/public-api/{account}/…`, `/oauth/token/…` and `/_sandbox/…`.

A public-API request goes: URL length → account → auth → throttle → faults → handler (under the
state lock) → request log → webhooks (after the lock, in the background) → answer or drop.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import traceback
import uuid
from urllib.parse import unquote, urlencode

from sandboxes.http import DropConnection, read_body, request_headers, status_line

from . import accounting, control_api, integration, order_rows, orders, products, warehouse
from .common import ApiError, Request, iso, parse_query
from .routing import Ctx, Reply, Router
from .state import Account, SandboxState
from .webhooks import WebhookDispatcher

# Real Brightpearl answers 414 for long URIs [CODE: medusa chunks IDs]; its exact limit is
# UNCONFIRMED. 8 KB is a common front-end proxy limit.
DEFAULT_MAX_URL_LENGTH = 8192
PUBLIC_PATH = re.compile(r"^/public-api/(?P<account>[^/]+)(?P<rest>/.*)?$")
EXPIRED_BODY = {"response": "Authorization token expired"}


def _strip_nulls(value):
    """Brightpearl leaves out keys whose value is null (nulls inside lists are kept)."""
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) if isinstance(v, dict | list) else v for v in value]
    return value


class SandboxApp:
    """WSGI callable holding the whole sandbox state."""

    def __init__(
        self, state: SandboxState | None = None, *, max_url_length: int = DEFAULT_MAX_URL_LENGTH
    ) -> None:
        self.state = state or SandboxState()
        self.max_url_length = max_url_length
        self.webhooks = WebhookDispatcher(self.state)
        self.public = Router()
        for module in (orders, order_rows, warehouse, accounting, products, integration):
            self.public.routes.extend(module.router.routes)
        self.control = control_api.build_router(self)

    # ------------------------------------------------------------------ WSGI entry
    def __call__(self, environ, start_response):
        status, headers, body = self.dispatch(environ)
        start_response(status_line(status), list(headers.items()))
        return [body]

    def dispatch(self, environ) -> tuple[int, dict[str, str], bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        query = environ.get("QUERY_STRING", "")
        if len(path) + len(query) + 1 > self.max_url_length:
            return self._json(
                414, {"errors": [{"code": "CMNC-414", "message": "Request-URI Too Long"}]}
            )
        method = environ.get("REQUEST_METHOD", "GET").upper()
        body = read_body(environ)
        headers = request_headers(environ)
        host = (
            environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
        )
        if path.startswith("/public-api/"):
            return self._public(method, path, query, body, headers)
        if path.startswith("/oauth/token"):
            return self._token(path, body, headers, host)
        if path.startswith("/oauth/authorize"):
            return self._authorize(path, query)
        if path.startswith("/_sandbox/") or path == "/_sandbox":
            return self._control(method, path[len("/_sandbox") :], query, body, headers)
        return self._json(
            404, {"errors": [{"code": "CMNC-404", "message": f"No resource at {path}"}]}
        )

    # ------------------------------------------------------------------ public API
    def _public(self, method, path, query, body, headers):
        found = PUBLIC_PATH.match(path)
        ruid = uuid.uuid4().hex
        code = unquote(found.group("account")) if found else ""
        rest = (found.group("rest") or "/") if found else "/"
        with self.state.lock:
            account = self.state.get(code)
        base_headers = {"ruid": ruid}
        if account is None:
            # What Brightpearl answers for an unknown account code is UNCONFIRMED.
            base_headers.update(
                {
                    "brightpearl-requests-remaining": "199",
                    "brightpearl-next-throttle-period": "60000",
                }
            )
            return self._json(
                401,
                _errors("CMNC-001", f"Account {code} not found or not authorised"),
                base_headers,
            )
        req = Request(method, rest, parse_query(query), body, headers, ruid)
        refusal, auth, fault, latency = self._admit(account, req, base_headers)
        if refusal is not None:
            return refusal
        if latency > 0:
            time.sleep(latency)
        if fault is not None and fault.kind in ("error", "throttle"):
            return self._injected_failure(account, req, auth, fault, base_headers)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        reply, deliveries = self._handle(account, req, auth, fault)
        self.webhooks.send(deliveries)
        if fault is not None and fault.kind == "drop":
            raise DropConnection()
        if fault is not None and fault.kind == "late":
            # Committed already: the answer arrives after the caller's timeout.
            time.sleep(fault.seconds)
        base_headers.update(reply.headers)
        return self._json(reply.status, reply.body, base_headers)

    def _admit(self, account: Account, req: Request, base_headers: dict[str, str]):
        """Authenticate, spend one request of the budget and pick a fault to inject, under the
        lock: `(refusal or None, auth, fault, latency)`; the budget headers go into
        `base_headers`."""
        with self.state.lock:
            auth = self._authenticate(account, req.headers)
            if isinstance(auth, Reply):
                base_headers.update(self._throttle_headers(account))
                self._log(account, req, auth.status, "none")
                return self._json(auth.status, auth.body, base_headers), auth, None, 0
            allowed, remaining, next_ms = account.throttle.take()
            base_headers["brightpearl-requests-remaining"] = str(remaining)
            base_headers["brightpearl-next-throttle-period"] = str(next_ms)
            if auth == "oauth" and account.installed_integration_instance_id:
                base_headers["brightpearl-installed-integration-instance-id"] = str(
                    account.installed_integration_instance_id
                )
            if not allowed:
                self._log(account, req, 503, auth)
                headers = base_headers
                if not account.throttle.headers:
                    headers = _without_budget_headers(base_headers)
                refusal = self._json(
                    503, _errors("CMNC-503", "Too many requests: request limit reached"), headers
                )
                return refusal, auth, None, 0
            return None, auth, self._take_fault(account, req.method, req.path), account.latency

    def _injected_failure(self, account, req, auth, fault, base_headers):
        """An injected 5xx or throttle answer: nothing is executed."""
        status = 503 if fault.kind == "throttle" else fault.status
        with self.state.lock:
            self._log(account, req, status, auth, fault=fault.kind)
        headers = base_headers if fault.headers else _without_budget_headers(base_headers)
        if fault.kind == "throttle":
            body = _errors("CMNC-503", "Too many requests: request limit reached")
        else:
            body = _errors("SBX-500", "Injected sandbox fault")
        return self._json(status, body, headers)

    def _handle(self, account: Account, req: Request, auth: str, fault):
        """Run the handler under the lock and log it: `(reply, webhook deliveries to send)`.
        A failed call changes nothing and emits nothing."""
        ctx = None
        with self.state.lock:
            try:
                handler, params = self.public.match(req.method, req.path)
                ctx = Ctx(self.state, account, req)
                reply = handler(ctx, **params)
                if not isinstance(reply, Reply):
                    reply = Reply(200, {"response": reply})
            except Exception as exc:  # an ApiError, or a sandbox bug answered as a 500
                if isinstance(exc, ApiError):
                    reply = Reply(exc.status, {"errors": exc.errors})
                else:
                    traceback.print_exc()
                    reply = Reply(500, _errors("CMNC-500", f"Sandbox internal error: {exc!r}"))
                if ctx is not None:
                    ctx.events.clear()
                    ctx.simulations.clear()
            self._log(
                account,
                req,
                reply.status,
                auth,
                fault=fault.kind if fault else None,
                dropped=fault is not None and fault.kind == "drop",
            )
            deliveries = self.webhooks.prepare(account, ctx.events) if ctx else []
            for webhook_id, event, ids, overrides in ctx.simulations if ctx else []:
                deliveries += self.webhooks.prepare(account, [(event, ids)], webhook_id, overrides)
        return reply, deliveries

    def _authenticate(self, account: Account, headers: dict[str, str]):
        app_ref = headers.get("brightpearl-app-ref")
        bearer = headers.get("authorization")
        unauthorised = Reply(
            401, _errors("CMNC-001", "You are not authorised to access this account")
        )
        if bearer:
            oauth = account.oauth
            scheme, _, token = bearer.partition(" ")
            if oauth is None or scheme.lower() != "bearer":
                return unauthorised
            if not (
                _same(headers.get("brightpearl-dev-ref"), oauth.dev_ref)
                and _same(app_ref, account.app_ref)
            ):
                return unauthorised
            token = token.strip()
            if _same(token, oauth.access_token):
                if time.time() >= oauth.expires_at:
                    return Reply(401, EXPIRED_BODY)
                return "oauth"
            if token in oauth.retired_access_tokens:
                return Reply(401, EXPIRED_BODY)
            return unauthorised
        if not _same(app_ref, account.app_ref):
            return unauthorised
        account_token = headers.get("brightpearl-account-token")
        if account_token is not None:
            return "private" if _same(account_token, account.account_token) else unauthorised
        staff_token = headers.get("brightpearl-staff-token")
        if staff_token is not None and any(_same(staff_token, t) for t in account.staff_tokens):
            return "staff"
        return unauthorised

    def _throttle_headers(self, account: Account) -> dict[str, str]:
        """Current budget headers without counting a request (for answers to unauthorised calls)."""
        throttle = account.throttle
        elapsed = time.monotonic() - throttle.period_start
        if elapsed >= throttle.window:
            return {
                "brightpearl-requests-remaining": str(throttle.budget),
                "brightpearl-next-throttle-period": str(int(throttle.window * 1000)),
            }
        return {
            "brightpearl-requests-remaining": str(max(throttle.budget - throttle.used, 0)),
            "brightpearl-next-throttle-period": str(int((throttle.window - elapsed) * 1000)),
        }

    def _take_fault(self, account: Account, method: str, path: str):
        for fault in list(account.faults):
            if fault.method and fault.method.upper() != method:
                continue
            if not re.search(fault.path, path):
                continue
            if not fault.fires():
                continue
            fault.fired += 1
            account.stats[f"fault:{fault.kind}"] += 1
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    account.faults.remove(fault)
            return fault
        return None

    def _log(
        self,
        account: Account,
        req: Request,
        status: int,
        auth: str,
        fault: str | None = None,
        dropped: bool = False,
    ) -> None:
        text = req.body_bytes.decode("utf-8", "replace")
        account.stats[f"status:{status}"] += 1
        account.stats["requests"] += 1
        account.requests.append(
            {
                "ruid": req.ruid,
                "at": iso(),
                "method": req.method,
                "path": req.path,
                "query": {k: v[-1] for k, v in req.query.items()},
                "body": text[:20000],
                "status": status,
                "auth": auth,
                "fault": fault,
                "dropped": dropped,
            }
        )

    # ------------------------------------------------------------------ OAuth endpoints
    def _authorize(self, path: str, query: str):
        """Authorization Code Grant: the merchant approves at once; redirect with a code.

        Path `/oauth/authorize/{account}` follows medusa's usage [CODE]; UNCONFIRMED in the docs.
        """
        code = path[len("/oauth/authorize") :].strip("/")
        params = {k: v[-1] for k, v in parse_query(query).items()}
        redirect_uri = params.get("redirect_uri")
        with self.state.lock:
            account = self.state.get(code)
            if account is None or account.oauth is None or not redirect_uri:
                return self._json(400, {"error": "invalid_request"})
            if not _same(params.get("client_id"), account.app_ref):
                return self._json(400, {"error": "unauthorized_client"})
            grant = secrets.token_urlsafe(16)
            account.oauth.codes[grant] = redirect_uri
        separator = "&" if "?" in redirect_uri else "?"
        answer = urlencode({"code": grant, "state": params.get("state", "")})
        target = f"{redirect_uri}{separator}{answer}"
        return 302, {"Location": target, "Content-Length": "0"}, b""

    def _token(self, path, body, headers, host):
        req = Request("POST", path, {}, body, headers)
        form = req.form()
        code = path[len("/oauth/token") :].strip("/") or form.get("account_code", "")
        with self.state.lock:
            account = self.state.get(code)
            oauth = account.oauth if account else None
            if oauth is None:
                return self._json(
                    400,
                    {"error": "invalid_request", "error_description": f"Unknown account {code}"},
                )
            grant_type = form.get("grant_type")
            if grant_type not in ("refresh_token", "authorization_code"):
                return self._json(
                    400,
                    {
                        "error": "unsupported_grant_type",
                        "error_description": "Use refresh_token or authorization_code",
                    },
                )
            if not _same(form.get("client_id"), account.app_ref) or (
                oauth.client_secret and not _same(form.get("client_secret"), oauth.client_secret)
            ):
                return self._json(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "Client authentication failed",
                    },
                )
            if grant_type == "refresh_token":
                if not _same(form.get("refresh_token"), oauth.refresh_token):
                    return self._json(
                        400,
                        {"error": "invalid_grant", "error_description": "Invalid refresh token"},
                    )
            else:
                redirect_uri = oauth.codes.pop(form.get("code", ""), None)
                if redirect_uri is None or redirect_uri != form.get("redirect_uri"):
                    return self._json(
                        400,
                        {
                            "error": "invalid_grant",
                            "error_description": "Invalid code or redirect_uri",
                        },
                    )
            oauth.retired_access_tokens.add(oauth.access_token)
            oauth.access_token = secrets.token_urlsafe(24)
            oauth.refresh_token = secrets.token_urlsafe(24)
            oauth.expires_at = time.time() + oauth.expires_in
            answer = {
                "access_token": oauth.access_token,
                "refresh_token": oauth.refresh_token,
                "api_domain": host,
                "token_type": "Bearer",
                "expires_in": oauth.expires_in,
                "installation_instance_id": account.installed_integration_instance_id,
            }
        return self._json(200, _strip_nulls(answer))

    # ------------------------------------------------------------------ control API
    def _control(self, method, path, query, body, headers):
        req = Request(method, path, parse_query(query), body, headers)
        try:
            handler, params = self.control.match(method, path)
            status, answer = handler(req, **params)
        except ApiError as exc:
            status, answer = exc.status, {"errors": exc.errors}
        except (KeyError, TypeError, ValueError) as exc:  # malformed control input
            status, answer = 400, _errors("SBX-400", f"Bad control request: {exc!r}")
        return self._json(status, answer, strip=False)

    # ------------------------------------------------------------------ helpers
    def _json(self, status: int, body, headers: dict | None = None, strip: bool = True):
        payload = json.dumps(_strip_nulls(body) if strip else body, default=str).encode("utf-8")
        out = {
            "Content-Type": "application/json;charset=UTF-8",
            "Content-Length": str(len(payload)),
        }
        out.update(headers or {})
        return status, out, payload


def _without_budget_headers(headers: dict[str, str]) -> dict[str, str]:
    """A 503 as a proxy in front of Brightpearl might send it: no budget headers, no ruid."""
    return {
        k: v for k, v in headers.items() if not k.startswith("brightpearl-") and k.lower() != "ruid"
    }


def _errors(code: str, message: str) -> dict:
    return {"errors": [{"code": code, "message": message}]}


def _same(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return secrets.compare_digest(given.encode(), expected.encode())


def create_app(**options) -> SandboxApp:
    """A fresh sandbox WSGI app with its own state."""
    return SandboxApp(**options)
