"""A quiet poll whose time does not grow with history (issue #11):

* refunds that already have a payment binding are `bound` (returns 0007), so the refund step
  no longer reads them every sync (connector/services/refunds.refund_candidates);
* the duplicate check's "written since my last look?" reads recent rows by (connection,
  updated_at) instead of every credit and payment;
* the receipt step's candidates come from a partial index of the credits not processed yet.
"""

from django.db import migrations, models


def mark_bound(apps, schema_editor):
    Refund = apps.get_model("returns", "Refund")
    RefundPayment = apps.get_model("connector", "RefundPayment")
    Refund.objects.filter(
        pk__in=RefundPayment.objects.values("refund_id"), bound=False
    ).update(bound=True)


class Migration(migrations.Migration):
    dependencies = [
        ("connector", "0018_mark_shipments_received"),
        ("returns", "0007_refund_bound"),
    ]

    operations = [
        migrations.RunPython(mark_bound, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="refundpayment",
            index=models.Index(
                fields=["connection", "updated_at"], name="payment_connection_updated"
            ),
        ),
        migrations.AddIndex(
            model_name="salescredit",
            index=models.Index(
                fields=["connection", "updated_at"], name="credit_connection_updated"
            ),
        ),
        migrations.AddIndex(
            model_name="salescredit",
            index=models.Index(
                condition=models.Q(("processed_at__isnull", True), ("state", "created")),
                fields=["connection"],
                name="credit_awaiting_receipt",
            ),
        ),
    ]
