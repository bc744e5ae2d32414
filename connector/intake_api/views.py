"""Intake API views: upsert an RMA, add a refund, read an RMA back with its credit.

Every write goes through `returns.intake.upsert_rma`. An approved, unflagged RMA (or a refund
on a credited one) asks for a small sync of the connection after commit, so the credit and the
payment follow within seconds instead of waiting for the schedule; a burst of POSTs shares one
pending sync task (at most one per connection, see connector/services/pending.py).
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView
from rest_framework import status as http
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from returns import lifecycle
from returns.intake import upsert_rma
from returns.models import Rma
from returns.platforms.parsing import UntrustedJsonError, load_untrusted_json

from ..models import BindingState, Connection, SyncRun
from ..tasks import request_sync_soon
from .authentication import ConnectionMayUseIntake, IntakeTokenAuthentication
from .serializers import (
    PLATFORM,
    ErrorSerializer,
    RefundInSerializer,
    RmaInSerializer,
    RmaOutSerializer,
    to_neutral,
)

COMMON_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="No token, or a wrong one."),
    403: OpenApiResponse(
        ErrorSerializer, description="The connection is disabled or not a generic connection."
    ),
}
BAD_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="The request cannot be used (not JSON, no external_id, wrong types): field "
    'errors, e.g. {"external_id": ["This field is required."]}.',
)
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such RMA on this connection.")


class UntrustedJSONParser(JSONParser):
    """DRF's JSON parser, but a body nested deeper than any RMA, or carrying a NUL character
    (which PostgreSQL cannot store), is a JSON 400 — never a RecursionError 500 or a
    half-written row."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            # `\u0000` inside a value is left to the serializer (DRF's CharField refuses it
            # and names the field); raw NUL bytes and deep nesting stop here.
            return load_untrusted_json(raw, allow_escaped_nul=True)
        except UntrustedJsonError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class IntakeView(APIView):
    authentication_classes = [IntakeTokenAuthentication]
    permission_classes = [ConnectionMayUseIntake]
    parser_classes = [UntrustedJSONParser]
    renderer_classes = [JSONRenderer]

    @property
    def connection(self) -> Connection:
        return self.request.auth

    def rma_or_404(self, external_id: str, *, lock: bool = False) -> Rma:
        if "\x00" in external_id:  # no RMA can have it (and PostgreSQL cannot compare it)
            raise NotFound(f"No RMA {external_id!r} on this connection.")
        rmas = Rma.objects.filter(
            connection=self.connection, platform=PLATFORM, external_id=external_id
        )
        if lock:
            rmas = rmas.select_for_update()
        rma = rmas.first()
        if rma is None:
            raise NotFound(f"No RMA {external_id!r} on this connection.")
        return rma

    def represent(self, rma: Rma, status: int) -> Response:
        rma = (
            Rma.objects.select_related("sales_credit")
            .prefetch_related("lines", "refunds__payment")
            .get(pk=rma.pk)
        )
        return Response(RmaOutSerializer(rma).data, status=status)

    def follow_up(self, rma: Rma) -> None:
        """Let the credit (or payment) follow now: one sync of this connection after commit."""
        due = rma.status == lifecycle.APPROVED and not rma.flagged
        credited = (
            not due  # already known to be due: no need to look further
            and rma.refunds.exists()
            and Rma.objects.filter(pk=rma.pk, sales_credit__state=BindingState.CREATED).exists()
        )
        if not (due or credited):
            return
        # Coalesced: a burst of POSTs queues one task, not one each (services/pending.py).
        request_sync_soon(self.connection.pk, SyncRun.Trigger.INTAKE)


class RmaUpsertView(IntakeView):
    @extend_schema(
        operation_id="intake_rma_upsert",
        summary="Create or update an RMA (idempotent on external_id)",
        request=RmaInSerializer,
        responses={
            201: OpenApiResponse(RmaOutSerializer, description="Created."),
            200: OpenApiResponse(RmaOutSerializer, description="Updated (or unchanged)."),
            400: BAD_REQUEST,
            **COMMON_ERRORS,
        },
    )
    def post(self, request):
        serializer = RmaInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rma, created = upsert_rma(self.connection, to_neutral(serializer.validated_data))
        self.follow_up(rma)
        return self.represent(rma, http.HTTP_201_CREATED if created else http.HTTP_200_OK)


class RmaDetailView(IntakeView):
    @extend_schema(
        operation_id="intake_rma_read",
        summary="Read an RMA with its credit ID and per-line received/restocked quantities",
        responses={200: RmaOutSerializer, 404: NOT_FOUND, **COMMON_ERRORS},
    )
    def get(self, request, external_id: str):
        return self.represent(self.rma_or_404(external_id), http.HTTP_200_OK)


class RefundCreateView(IntakeView):
    @extend_schema(
        operation_id="intake_refund_add",
        summary="Add (or update) a refund of an RMA (idempotent on the refund's external_id)",
        request=RefundInSerializer,
        responses={
            201: OpenApiResponse(RmaOutSerializer, description="Refund added; the RMA."),
            200: OpenApiResponse(RmaOutSerializer, description="Refund updated; the RMA."),
            400: BAD_REQUEST,
            404: NOT_FOUND,
            409: OpenApiResponse(ErrorSerializer, description="Send the whole RMA again."),
            **COMMON_ERRORS,
        },
    )
    def post(self, request, external_id: str):
        serializer = RefundInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refund = serializer.validated_data
        with transaction.atomic():
            rma = self.rma_or_404(external_id, lock=True)
            # The stored payload is the last accepted request: add the refund to it and upsert
            # again, so the refund is judged and stored exactly like one sent with the RMA.
            stored = RmaInSerializer(data=rma.raw or {})
            if not stored.is_valid():
                return Response(
                    {"detail": "The stored RMA cannot be extended; send the whole RMA again."},
                    status=http.HTTP_409_CONFLICT,
                )
            data = dict(stored.validated_data)
            others = [r for r in data["refunds"] if r["external_id"] != refund["external_id"]]
            created = len(others) == len(data["refunds"])
            data["refunds"] = [*others, refund]
            rma, _ = upsert_rma(self.connection, to_neutral(data))
            self.follow_up(rma)
        return self.represent(rma, http.HTTP_201_CREATED if created else http.HTTP_200_OK)


@extend_schema_view(get=extend_schema(exclude=True))
class SchemaView(SpectacularAPIView):
    """The OpenAPI schema of this API, public (it holds no secrets), not listing itself."""

    authentication_classes = []
