"""Brightpearl ERP API client (framework-free: no Django imports here).

``BrightpearlClient`` is the entry point; the sandbox server for tests lives in
``brightpearl.sandbox`` and is not imported from here.
"""

from .auth import Auth, OAuthAuth, PrivateAppAuth, StaffAuth
from .client import (
    DEFAULT_BASE_URL_TEMPLATE,
    ORDER_TYPE_SALES_CREDIT,
    ORDER_TYPE_SALES_ORDER,
    BrightpearlClient,
    format_template,
    pick_payment_method_code,
)
from .errors import (
    AuthError,
    BrightpearlError,
    MalformedResponseError,
    NotFoundError,
    PaymentMethodNotFoundError,
    ServerError,
    ThrottledError,
    TokenRefreshError,
    TransportError,
    ValidationError,
)
from .http import ApiResponse, parse_envelope
from .idset import MAX_IDS_PER_CALL, IdSetTooLarge, chunk_ids, format_id_set, parse_id_set
from .search import iter_search, zip_rows
from .throttle import (
    BudgetSpent,
    Lane,
    MemoryThrottleStore,
    RedisThrottleStore,
    Throttle,
    ThrottleStore,
    TurnOver,
    finishing,
    one_turn,
)

__all__ = [
    "DEFAULT_BASE_URL_TEMPLATE",
    "MAX_IDS_PER_CALL",
    "ORDER_TYPE_SALES_CREDIT",
    "ORDER_TYPE_SALES_ORDER",
    "ApiResponse",
    "Auth",
    "AuthError",
    "BrightpearlClient",
    "BudgetSpent",
    "TurnOver",
    "finishing",
    "one_turn",
    "BrightpearlError",
    "MalformedResponseError",
    "Lane",
    "MemoryThrottleStore",
    "NotFoundError",
    "OAuthAuth",
    "PaymentMethodNotFoundError",
    "PrivateAppAuth",
    "RedisThrottleStore",
    "ServerError",
    "StaffAuth",
    "ThrottleStore",
    "Throttle",
    "ThrottledError",
    "TokenRefreshError",
    "TransportError",
    "ValidationError",
    "chunk_ids",
    "format_id_set",
    "format_template",
    "iter_search",
    "parse_envelope",
    "parse_id_set",
    "IdSetTooLarge",
    "pick_payment_method_code",
    "zip_rows",
]
