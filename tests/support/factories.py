"""factory-boy factories for the connector's settings rows: the one `ConnectionFactory` every
test package uses (the returns tests name the model by label, so nothing here imports them)."""

import factory

from connector.models import Connection, WarehouseMapping


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Shop {n}")
    brightpearl_account = factory.Sequence(lambda n: f"shop{n}")
    brightpearl_datacentre = "euw1"
    brightpearl_app_ref = "shop_connector"
    brightpearl_account_token = "acct-token-secret-value"
    platform = "loop"
    platform_api_key = "loop-api-key-secret-value"
    refund_method_code = "1200"
    sync_interval_minutes = 15


class WarehouseMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WarehouseMapping

    connection = factory.SubFactory(ConnectionFactory)
    destination_id = factory.Sequence(lambda n: f"dest-{n}")
    warehouse_id = 2
