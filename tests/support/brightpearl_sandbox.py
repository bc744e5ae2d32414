"""A fresh Brightpearl sandbox account per test, and a seeded sale: what the `sandbox_account`
and `seeded_sale` fixtures return (keep names and fields stable: docs/contract-brightpearl.md)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import requests

from brightpearl.sandbox import SandboxControl, SandboxServer


@dataclass
class SandboxAccount:
    """One sandbox account and everything a test needs to call it."""

    code: str
    app_ref: str
    account_token: str
    staff_token: str
    installed_integration_instance_id: int
    oauth: dict
    api_url_template: str
    control: SandboxControl
    url: str
    server_url: str = ""

    def private_headers(self) -> dict[str, str]:
        """Headers of a private (system) app."""
        return {
            "brightpearl-app-ref": self.app_ref,
            "brightpearl-account-token": self.account_token,
        }

    def staff_headers(self) -> dict[str, str]:
        return {"brightpearl-app-ref": self.app_ref, "brightpearl-staff-token": self.staff_token}

    def oauth_headers(self, access_token: str | None = None) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {access_token or self.oauth['accessToken']}",
            "brightpearl-dev-ref": self.oauth["devRef"],
            "brightpearl-app-ref": self.app_ref,
        }

    # Plain `requests` calls with private-app headers (sandbox tests; not the client).
    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**self.private_headers(), **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 10)
        return requests.request(method, self.url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body=None, **kwargs) -> requests.Response:
        return self.call("POST", path, json=body, **kwargs)

    def put(self, path: str, body=None, **kwargs) -> requests.Response:
        return self.call("PUT", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.call("DELETE", path, **kwargs)


def make_sandbox_account(server: SandboxServer, **overrides) -> SandboxAccount:
    """Create a fresh account with random credentials on a running sandbox."""
    code = overrides.pop("code", None) or "acct" + secrets.token_hex(4)
    app_ref = f"{code}_app"
    account_token = secrets.token_urlsafe(16)
    staff_token = secrets.token_urlsafe(16)
    instance_id = overrides.pop("installed_integration_instance_id", 34)
    oauth = {
        "devRef": "devref" + secrets.token_hex(3),
        "clientSecret": secrets.token_urlsafe(12),
        "accessToken": secrets.token_urlsafe(24),
        "refreshToken": secrets.token_urlsafe(24),
        "expiresIn": overrides.pop("expires_in", 3600),
    }
    control = SandboxControl(server.url)
    control.create_account(
        code,
        app_ref=app_ref,
        account_token=account_token,
        staff_tokens=[staff_token],
        installed_integration_instance_id=instance_id,
        oauth=oauth,
    )
    oauth = dict(oauth, clientId=app_ref, tokenUrl=f"{server.url}/oauth/token/{code}")
    return SandboxAccount(
        code=code,
        app_ref=app_ref,
        account_token=account_token,
        staff_token=staff_token,
        installed_integration_instance_id=instance_id,
        oauth=oauth,
        api_url_template=server.api_url_template,
        control=control.for_account(code),
        url=server.api_url_template.format(account=code),
        server_url=server.url,
    )


@dataclass
class SeededSale:
    """A sale seeded through the control API: customer, products and a shipped sales order."""

    contact_id: int
    product_ids: list[int]
    order_id: int
    row_ids: list[int]
    skus: list[str]


def seed_sale(account: SandboxAccount) -> SeededSale:
    skus = [f"SKU-{secrets.token_hex(3)}" for _ in range(2)]
    created = account.control.seed(
        contacts=[{"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}],
        products=[
            {"sku": skus[0], "name": "Shirt", "price": "10.00"},
            {"sku": skus[1], "name": "Socks", "price": "5.00"},
        ],
    )
    contact_id = created["contacts"][0]
    order_id = account.control.seed(
        orders=[
            {
                "contactId": contact_id,
                "reference": "#1001",
                "rows": [
                    {"sku": skus[0], "quantity": 2, "net": "20.00", "tax": "4.00"},
                    {"sku": skus[1], "quantity": 3, "net": "15.00", "tax": "3.00"},
                ],
            }
        ]
    )["orders"][0]
    order = account.get(f"/order-service/order/{order_id}").json()["response"][0]
    return SeededSale(
        contact_id=contact_id,
        product_ids=created["products"],
        order_id=order_id,
        row_ids=[int(row_id) for row_id in order["orderRows"]],
        skus=skus,
    )
