"""Accounting service: payment methods, nominal codes, customer payments (refunds)."""

from __future__ import annotations

from decimal import Decimal

from .common import ApiError, decimal_or_none, iso, money, parse_iso
from .routing import Ctx, Reply, Router, id_set, positive_int
from .searching import Column, run_search

router = Router()
PAYMENT_TYPES = ("AUTH", "CAPTURE", "PAYMENT", "RECEIPT", "VOID")


@router.route("GET", r"/accounting-service/payment-method(?:/(?P<ids>[^/]*))?/?")
def get_payment_methods(ctx: Ctx, ids: str | None = None):
    wanted = id_set(ids, required=False)
    methods = sorted(ctx.account.payment_methods.items())
    return [dict(m) for i, m in methods if wanted is None or i in wanted]


@router.route("GET", r"/accounting-service/nominal-code(?:/(?P<ids>[^/]*))?/?")
def get_nominal_codes(ctx: Ctx, ids: str | None = None):
    wanted = id_set(ids, required=False)
    return [
        dict(n)
        for i, n in sorted(ctx.account.nominal_codes.items())
        if wanted is None or i in wanted
    ]


# Nominal-code-search column names are UNCONFIRMED apart from the `bank` filter.
_NOMINAL_COLUMNS = [
    ("id", "IDSET"),
    ("code", "STRING"),
    ("name", "STRING"),
    ("bank", "BOOLEAN"),
    ("expense", "BOOLEAN"),
    ("discount", "BOOLEAN"),
    ("editable", "BOOLEAN"),
    ("active", "BOOLEAN"),
    ("taxCode", "INTEGER"),
    ("currencyId", "IDSET"),
]
NOMINAL_COLUMNS = [Column(n, k, lambda r, n=n: r.get(n)) for n, k in _NOMINAL_COLUMNS]

# Currency Search columns, as the docs list them.
_CURRENCY_COLUMNS = [
    ("id", "IDSET"),
    ("title", "STRING"),
    ("code", "STRING"),
    ("symbol", "STRING"),
    ("exchangeRate", "STRING"),
    ("isDefault", "BOOLEAN"),
    ("exchangeRateVarianceNominalCode", "STRING"),
]
CURRENCY_COLUMNS = [Column(n, k, lambda r, n=n: r[n]) for n, k in _CURRENCY_COLUMNS]


@router.route("GET", r"/accounting-service/currency-search/?")
def currency_search(ctx: Ctx):
    return Reply(200, run_search(ctx.req, CURRENCY_COLUMNS, list(ctx.account.currencies.values())))


@router.route("GET", r"/accounting-service/nominal-code-search/?")
def nominal_code_search(ctx: Ctx):
    return Reply(
        200, run_search(ctx.req, NOMINAL_COLUMNS, list(ctx.account.nominal_codes.values()))
    )


def _text(body: dict, name: str, limit: int, required: bool = False) -> str | None:
    value = body.get(name)
    if value in (None, ""):
        if required:
            raise ApiError(400, "ACCC-001", f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ApiError(400, "ACCC-002", f"{name} must be a string")
    if len(value) > limit:
        raise ApiError(400, "ACCC-003", f"{name} must be at most {limit} characters")
    return value


@router.route("POST", r"/accounting-service/customer-payment/?")
def post_customer_payment(ctx: Ctx):
    body = ctx.req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "CMNC-400", "The body must be a JSON object")
    account = ctx.account
    transaction_ref = _text(body, "transactionRef", 64)
    transaction_code = _text(body, "transactionCode", 64)
    method_code = _text(body, "paymentMethodCode", 36, required=True)
    if account.payment_method_by_code(method_code) is None:
        raise ApiError(400, "ACCC-010", f"Payment method {method_code} does not exist")
    payment_type = _text(body, "paymentType", 16, required=True)
    if payment_type not in PAYMENT_TYPES:
        raise ApiError(400, "ACCC-011", f"paymentType must be one of {', '.join(PAYMENT_TYPES)}")
    if body.get("orderId") in (None, ""):
        raise ApiError(400, "ACCC-001", "orderId is required")
    order_id = positive_int(body["orderId"], "orderId", "ACCC-012")
    if order_id not in account.orders:
        raise ApiError(400, "ACCC-012", f"Order {order_id} does not exist")
    currency = _text(body, "currencyIsoCode", 3, required=True)
    if len(currency) != 3 or not currency.isalpha():
        raise ApiError(400, "ACCC-013", "currencyIsoCode must be a 3-letter ISO code")
    payment_date = _text(body, "paymentDate", 64, required=True)
    try:
        payment_date = iso(parse_iso(payment_date))
    except ValueError as exc:
        raise ApiError(400, "ACCC-014", "paymentDate is not an ISO 8601 date") from exc
    amounts = _payment_amounts(body)
    if transaction_ref and any(
        p["transactionRef"] == transaction_ref and p["paymentMethodCode"] == method_code
        for p in account.customer_payments.values()
    ):
        raise ApiError(
            400,
            "ACCC-020",
            f"A payment with transactionRef {transaction_ref} and payment "
            f"method {method_code} already exists",
        )
    payment_id = account.next_id("customer-payment")
    journal_ref = body.get("journalRef")
    account.customer_payments[payment_id] = {
        "paymentId": payment_id,
        "transactionRef": transaction_ref,
        "transactionCode": transaction_code,
        "paymentMethodCode": method_code,
        "paymentType": payment_type,
        "orderId": order_id,
        "currencyCode": currency.upper(),
        "exchangeRate": money(amounts.get("exchangeRate", 1), 6),
        "amountPaid": money(amounts.get("amountPaid", Decimal(0))),
        "amountAuthorized": money(amounts.get("amountAuthorized", Decimal(0))),
        "paymentDate": payment_date,
        "createdOn": iso(),
        "journalId": body.get("journalId") or account.next_id("journal"),
        "journalRef": str(journal_ref)[:255] if journal_ref else None,
    }
    account.payments_by_order.setdefault(order_id, []).append(payment_id)
    account.touch(account.orders[order_id])
    return payment_id


def _payment_amounts(body: dict) -> dict[str, Decimal]:
    """The amounts given (paid, authorised, exchange rate): non-negative, a rate above zero."""
    amounts = {}
    for name in ("amountPaid", "amountAuthorized", "exchangeRate"):
        value = body.get(name)
        if value in (None, ""):
            continue
        number = decimal_or_none(value)
        if number is None or number < 0 or (name == "exchangeRate" and number == 0):
            raise ApiError(400, "ACCC-015", f"{name} must be a non-negative number")
        amounts[name] = number
    return amounts


@router.route("DELETE", r"/accounting-service/customer-payment/(?P<payment_id>\d+)/?")
def delete_customer_payment(ctx: Ctx, payment_id: str):
    if ctx.account.customer_payments.pop(int(payment_id), None) is None:
        raise ApiError(404, "CMNC-404", f"Customer payment {payment_id} not found")
    return Reply(200, {})


_PAYMENT_COLUMNS = [
    ("paymentId", "IDSET"),
    ("transactionRef", "STRING"),
    ("transactionCode", "STRING"),
    ("paymentMethodCode", "STRING"),
    ("paymentType", "STRING"),
    ("orderId", "IDSET"),
    ("currencyCode", "STRING"),
    ("amountPaid", "STRING"),
    ("paymentDate", "PERIOD"),
    ("createdOn", "PERIOD"),
    ("journalId", "IDSET"),
]
PAYMENT_COLUMNS = [Column(n, k, lambda r, n=n: r[n]) for n, k in _PAYMENT_COLUMNS]


@router.route("GET", r"/accounting-service/customer-payment-search/?")
def customer_payment_search(ctx: Ctx):
    records = list(ctx.account.customer_payments.values())
    return Reply(200, run_search(ctx.req, PAYMENT_COLUMNS, records))


@router.route("GET", r"/accounting-service/sale-payment-total/(?P<ids>[^/]+)/?")
def sale_payment_total(ctx: Ctx, ids: str):
    answer = []
    for order_id in id_set(ids):
        payment_ids = ctx.account.payments_by_order.get(order_id, [])
        payments = [
            ctx.account.customer_payments[i]
            for i in payment_ids
            if i in ctx.account.customer_payments
        ]
        paid = sum(
            (
                Decimal(p["amountPaid"]) * (-1 if p["paymentType"] == "PAYMENT" else 1)
                for p in payments
                if p["paymentType"] in ("PAYMENT", "RECEIPT", "CAPTURE")
            ),
            Decimal(0),
        )
        authorised = sum(
            (Decimal(p["amountAuthorized"]) for p in payments if p["paymentType"] == "AUTH"),
            Decimal(0),
        )
        captured = sum(
            (Decimal(p["amountPaid"]) for p in payments if p["paymentType"] == "CAPTURE"),
            Decimal(0),
        )
        answer.append(
            {
                "orderId": order_id,
                "paymentCurrency": payments[0]["currencyCode"] if payments else None,
                "amountPaid": money(paid),
                "amountAuthorized": money(authorised),
                "amountCaptured": money(captured),
            }
        )
    return answer
