"""A small realistic data set for demos (`seed-demo`, `--seed-demo` on the command line)."""

from __future__ import annotations

DEMO_DATA: dict = {
    "contacts": [
        {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"},
        {"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com"},
        {"firstName": "Alan", "lastName": "Turing", "email": "alan@example.com"},
    ],
    "products": [
        {"sku": "TSHIRT-BLK-M", "name": "T-shirt black M", "price": "16.67", "cost": "6.00"},
        {"sku": "TSHIRT-BLK-L", "name": "T-shirt black L", "price": "16.67", "cost": "6.00"},
        {"sku": "HOODIE-GRY-M", "name": "Hoodie grey M", "price": "41.67", "cost": "15.00"},
        {"sku": "JEANS-IND-32", "name": "Jeans indigo 32", "price": "58.33", "cost": "20.00"},
        {"sku": "SOCKS-3PK", "name": "Socks 3-pack", "price": "8.33", "cost": "2.50"},
        {
            "sku": "GIFT-WRAP",
            "name": "Gift wrap",
            "price": "2.50",
            "cost": "0.50",
            "stockTracked": False,
        },
    ],
    "orders": [
        {
            "reference": "#1001",
            "externalRef": "shop-1001",
            "contactId": 200,
            "currencyCode": "GBP",
            "rows": [
                {"sku": "TSHIRT-BLK-M", "quantity": 2},
                {"sku": "HOODIE-GRY-M", "quantity": 1},
                {
                    "name": "Shipping",
                    "quantity": 1,
                    "net": "4.17",
                    "tax": "0.83",
                    "nominalCode": "4040",
                },
            ],
        },
        {
            "reference": "#1002",
            "externalRef": "shop-1002",
            "contactId": 201,
            "currencyCode": "GBP",
            "rows": [
                {"sku": "JEANS-IND-32", "quantity": 1},
                {"sku": "SOCKS-3PK", "quantity": 3},
                {"sku": "GIFT-WRAP", "quantity": 1},
            ],
        },
        {
            "reference": "#1003",
            "externalRef": "shop-1003",
            "contactId": 202,
            "currencyCode": "GBP",
            "rows": [{"sku": "TSHIRT-BLK-L", "quantity": 1}],
        },
    ],
}
