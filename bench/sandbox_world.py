"""What the per-return benchmarks start from: a Brightpearl sandbox account (budget out of the
way, app ref `<code>_app`, account token `t`) with one customer, product SKU-A and N shipped
sales orders `#i` / externalRef `shop-i` of one SKU-A each. Import after `django.setup()`."""

from django.conf import settings

from brightpearl.sandbox import SandboxControl, SandboxServer


def brightpearl_with_orders(
    code: str, n: int, *, net: str, tax: str
) -> tuple[SandboxServer, SandboxControl]:
    bp = SandboxServer(port=0).start()
    settings.BRIGHTPEARL_API_URL = bp.api_url_template
    settings.PLATFORM_URL_ALLOWLIST = ["http://127.0.0.1:*"]  # the platform sandboxes
    control = SandboxControl(bp.url).create_account(code, app_ref=f"{code}_app", account_token="t")
    control.set_throttle(budget=100000, window_seconds=60)
    contact = control.seed(contacts=[{"firstName": "B", "lastName": "E", "email": "b@x.com"}])
    control.seed(products=[{"sku": "SKU-A", "name": "A", "price": "10.00"}])
    control.seed(
        orders=[
            {
                "contactId": contact["contacts"][0],
                "reference": f"#{i}",
                "externalRef": f"shop-{i}",
                "warehouseId": 2,
                "rows": [{"sku": "SKU-A", "quantity": 1, "net": net, "tax": tax}],
            }
            for i in range(n)
        ]
    )
    return bp, control
