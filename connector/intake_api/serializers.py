"""Request and response shapes of the intake API, and the mapping to the neutral records.

Requests are checked only for *shape* here (an object, an external ID, strings where strings
belong). Whether the data makes sense — lines present, amounts numeric and not negative, a known
currency, an order reference — is judged by `returns.intake.upsert_rma`, which stores the return
anyway and flags it with the reasons: the same rule as for every other platform.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from returns import outcomes
from returns.models import Refund, Rma, RmaLine
from returns.platforms.base import NeutralLine, NeutralRefund, NeutralRma

PLATFORM = "generic"
MAX_LINES = 1000
MAX_REFUNDS = 200
LOOSE_MAX_CHARS = 64


def _text_is_safe(value: str) -> bool:
    """No NUL and no lone surrogates: databases refuse them (PostgreSQL answers 500)."""
    return "\x00" not in value and not any("\ud800" <= ch <= "\udfff" for ch in value)


@extend_schema_field(
    {
        "anyOf": [{"type": "number"}, {"type": "string", "maxLength": LOOSE_MAX_CHARS}],
        "description": "A decimal number, as a JSON number or string. Unusable values "
        "(non-numeric, negative) are stored and the return is flagged.",
    }
)
class LooseNumberField(serializers.Field):
    """A number or a string, passed on as sent: the intake service judges it."""

    default_error_messages = {
        "invalid": "Send a number or a string.",
        "too_long": f"At most {LOOSE_MAX_CHARS} characters.",
        "unsafe": "Contains characters that cannot be stored.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            self.fail("invalid")
        if isinstance(data, str):
            if len(data) > LOOSE_MAX_CHARS:
                self.fail("too_long")
            if not _text_is_safe(data):
                self.fail("unsafe")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def _text(max_length: int, **kwargs) -> serializers.CharField:
    kwargs.setdefault("required", False)
    kwargs.setdefault("default", "")
    return serializers.CharField(max_length=max_length, allow_blank=True, **kwargs)


class LineInSerializer(serializers.Serializer):
    line_id = _text(64, help_text="Your ID for the line (optional).")
    sku = _text(128, help_text="Must be on the original order in Brightpearl.")
    quantity = LooseNumberField(required=False, default=1, help_text="Whole units (default 1).")
    title = _text(255)
    order_line_id = _text(64, help_text="The original order's line ID, if known.")
    unit_price = LooseNumberField(required=False, allow_null=True, help_text="Per unit.")
    discount = LooseNumberField(required=False, allow_null=True, help_text="For the line.")
    tax = LooseNumberField(required=False, allow_null=True, help_text="For the line.")
    tax_included = serializers.BooleanField(required=False, default=False)
    restocking_fee = LooseNumberField(required=False, allow_null=True)
    return_fee = LooseNumberField(required=False, allow_null=True)
    shipment_fee = LooseNumberField(required=False, allow_null=True)
    reason = _text(1000)
    outcome = _text(64, help_text="e.g. refund, exchange, store_credit")
    keep_item = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The customer keeps the item (returnless): it is credited and the return "
        "processed without waiting for a receipt.",
    )


class RefundInSerializer(serializers.Serializer):
    external_id = serializers.CharField(
        max_length=128, help_text="Your refund ID; posting it again updates that refund."
    )
    amount = LooseNumberField(help_text="Positive, in the RMA's currency unless `currency`.")
    currency = _text(8, help_text="ISO 4217; empty: the RMA's currency.")
    method = _text(64)
    status = _text(
        32, help_text="Empty or success/paid/completed: money was paid; pending: not yet."
    )
    refunded_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    outcome = _text(
        32,
        help_text="What the customer got: refund (default: to the original payment method), "
        "store_credit, gift_card or exchange. Each is booked as the connection maps it.",
    )
    shop_amount = LooseNumberField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The same refund in the shop's currency, if `currency` is the customer's.",
    )
    shop_currency = _text(8, help_text="ISO 4217 currency of `shop_amount`.")
    reference = _text(128, help_text="The exchange order or gift card it became.")

    def validate_outcome(self, value: str) -> str:
        neutral = outcomes.from_generic(value)
        if neutral == outcomes.UNKNOWN:
            raise serializers.ValidationError(
                "Use refund, store_credit, gift_card or exchange (or leave it empty)."
            )
        return neutral


class RmaInSerializer(serializers.Serializer):
    external_id = serializers.CharField(
        max_length=64, help_text="Your return ID: the key of the idempotent upsert. No '/'."
    )
    rma_number = _text(64, help_text="Shown to staff and put in the credit's reference.")
    status = _text(
        32,
        default="approved",
        help_text="requested/pending, approved/open, flagged/review, rejected/declined, "
        "cancelled, closed. Only approved returns get a sales credit.",
    )
    order_id = _text(64, help_text="The shop's order ID (Brightpearl order externalRef).")
    order_name = _text(64, help_text="The order name/number, e.g. #1001.")
    destination_id = _text(64, help_text="Maps to a Brightpearl warehouse (admin).")
    currency = _text(8, help_text="ISO 4217, e.g. GBP.")
    customer_email = _text(254)
    created_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    updated_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When your data last changed: an upsert older than the stored one is ignored.",
    )
    totals = serializers.DictField(
        child=LooseNumberField(allow_null=True), required=False, default=dict
    )
    lines = LineInSerializer(many=True, required=False, default=list, max_length=MAX_LINES)
    refunds = RefundInSerializer(many=True, required=False, default=list, max_length=MAX_REFUNDS)

    def validate_external_id(self, value: str) -> str:
        if "/" in value:
            raise serializers.ValidationError("Must not contain '/'.")
        return value

    def validate_totals(self, value: dict) -> dict:
        for key in value:
            if len(key) > 64 or not _text_is_safe(key):
                raise serializers.ValidationError(f"Invalid total name {key[:64]!r}.")
        return value


def as_payload(validated: dict) -> dict:
    """What we keep as the RMA's raw payload: JSON-safe, and valid input to re-validate."""
    return json.loads(json.dumps(validated, cls=DjangoJSONEncoder))


def to_neutral(validated: dict) -> NeutralRma:
    return NeutralRma(
        platform=PLATFORM,
        external_id=validated["external_id"],
        platform_status=validated["status"],
        rma_number=validated["rma_number"] or validated["external_id"],
        order_id=validated["order_id"],
        order_name=validated["order_name"],
        destination_id=validated["destination_id"],
        currency=validated["currency"].upper(),
        customer_email=validated["customer_email"],
        created_at=validated["created_at"],
        updated_at=validated["updated_at"],
        totals=dict(validated["totals"]),
        lines=[
            NeutralLine(
                platform_line_id=line["line_id"] or str(position),
                sku=line["sku"],
                quantity=line["quantity"],
                title=line["title"],
                order_line_id=line["order_line_id"],
                unit_price=line.get("unit_price"),
                discount=line.get("discount"),
                tax=line.get("tax"),
                tax_included=line["tax_included"],
                restocking_fee=line.get("restocking_fee"),
                return_fee=line.get("return_fee"),
                shipment_fee=line.get("shipment_fee"),
                reason=line["reason"],
                outcome=line["outcome"],
                keep_item=line["keep_item"],
                raw=as_payload(line),
            )
            for position, line in enumerate(validated["lines"], start=1)
        ],
        refunds=[
            NeutralRefund(
                external_id=refund["external_id"],
                amount=refund["amount"],
                currency=refund["currency"].upper(),
                method=refund["method"],
                status=refund["status"],
                refunded_at=refund["refunded_at"],
                outcome=refund["outcome"] or outcomes.ORIGINAL_PAYMENT,
                shop_amount=refund["shop_amount"],
                shop_currency=refund["shop_currency"].upper(),
                reference=refund["reference"],
                raw=as_payload(refund),
            )
            for refund in validated["refunds"]
        ],
        raw=as_payload(validated),
    )


# --- responses ------------------------------------------------------------------------------
class LineOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = RmaLine
        fields = (
            "sku",
            "title",
            "order_line_id",
            "quantity",
            "quantity_received",
            "quantity_restocked",
            "unit_price",
            "discount",
            "tax",
            "tax_included",
            "restocking_fee",
            "return_fee",
            "shipment_fee",
            "reason",
            "outcome",
            "keep_item",
            "platform_line_ids",
        )
        read_only_fields = fields

    platform_line_ids = serializers.ListField(child=serializers.CharField(), read_only=True)


class RefundOutSerializer(serializers.ModelSerializer):
    payment_id = serializers.SerializerMethodField(help_text="Brightpearl customer payment ID.")
    payment_state = serializers.SerializerMethodField(
        help_text="pending, attempting, created, failed; null before the first attempt."
    )
    payment_error = serializers.SerializerMethodField(
        help_text="Why the payment could not be recorded (empty when it was)."
    )

    class Meta:
        model = Refund
        fields = (
            "external_id",
            "amount",
            "currency",
            "method",
            "outcome",
            "status",
            "refunded_at",
            "payment_id",
            "payment_state",
            "payment_error",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_payment_id(self, refund: Refund) -> int | None:
        payment = getattr(refund, "payment", None)
        return payment.payment_id if payment else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_payment_state(self, refund: Refund) -> str | None:
        payment = getattr(refund, "payment", None)
        return payment.state if payment else None

    @extend_schema_field(serializers.CharField())
    def get_payment_error(self, refund: Refund) -> str:
        payment = getattr(refund, "payment", None)
        return payment.last_error if payment else ""


class RmaOutSerializer(serializers.ModelSerializer):
    problems = serializers.SerializerMethodField(help_text="Why the data was flagged.")
    credit_id = serializers.SerializerMethodField(
        help_text="The Brightpearl sales credit made for this return (null until made)."
    )
    credit_state = serializers.SerializerMethodField(
        help_text="pending, attempting, created, failed, blocked; null before the first attempt."
    )
    lines = LineOutSerializer(many=True, read_only=True)
    refunds = RefundOutSerializer(many=True, read_only=True)

    class Meta:
        model = Rma
        fields = (
            "external_id",
            "rma_number",
            "status",
            "platform_status",
            "order_id",
            "order_name",
            "destination_id",
            "currency",
            "customer_email",
            "flagged",
            "flag_reason",
            "problems",
            "credit_id",
            "credit_state",
            "lines",
            "refunds",
            "platform_updated_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_problems(self, rma: Rma) -> list[str]:
        return [p for p in rma.problems.splitlines() if p.strip()]

    def _binding(self, rma: Rma):
        try:
            return rma.sales_credit
        except ObjectDoesNotExist:
            return None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_credit_id(self, rma: Rma) -> int | None:
        binding = self._binding(rma)
        return binding.credit_id if binding else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_credit_state(self, rma: Rma) -> str | None:
        binding = self._binding(rma)
        return binding.state if binding else None


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
