"""Loop Returns: client, adapter, status map, sandbox — and its registry entry."""

from ..registry import PlatformSpec
from .client import LOOP_API_URL
from .statuses import STATUSES

PLATFORM = PlatformSpec(
    kind="loop",
    label="Loop Returns",
    statuses=STATUSES,
    adapter="returns.platforms.loop.adapter:LoopPlatform",
    public_api_url=LOOP_API_URL,
    webhook_signature_header="X-Loop-Signature",
    rate_limit=(300, 60.0),  # per API key; 429 without headers (docs/returns-platforms.md)
    required_settings={"platform_api_key": "This platform needs an API key."},
    sandbox="returns.platforms.loop.sandbox",
)
