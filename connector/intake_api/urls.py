"""Intake API routes, mounted under /api/: the OpenAPI schema and the intake endpoints.

The views authenticate with their own tokens, so they are exempt from the admin's login
requirement (`LoginRequiredMiddleware`); CSRF does not apply (no cookies are used).
"""

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from .views import RefundCreateView, RmaDetailView, RmaUpsertView, SchemaView

urlpatterns = [
    path(
        "schema/",
        login_not_required(SchemaView.as_view()),
        name="intake-schema",
    ),
    path("intake/rmas/", login_not_required(RmaUpsertView.as_view()), name="intake-rma-upsert"),
    path(
        "intake/rmas/<str:external_id>/",
        login_not_required(RmaDetailView.as_view()),
        name="intake-rma-detail",
    ),
    path(
        "intake/rmas/<str:external_id>/refunds/",
        login_not_required(RefundCreateView.as_view()),
        name="intake-rma-refunds",
    ),
]
