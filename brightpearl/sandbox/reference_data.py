"""The reference data a new sandbox account starts with: order statuses, price lists,
warehouses, channels, nominal codes, payment methods and the account configuration.

Plain data; `SandboxState.install_default_reference_data` installs a copy of it.
"""

# (statusId, name, orderTypeCode, visible), in sort order.
ORDER_STATUSES = [
    (1, "Draft / Quote", "SO", True),
    (2, "New web order", "SO", True),
    (3, "New sales order", "SO", True),
    (4, "Invoiced", "SO", True),
    (5, "Cancelled", "SO", True),
    (6, "Pending purchase order", "PO", True),
    (10, "Sales credit", "SC", True),
    (11, "Awaiting return", "SC", True),
    (12, "Goods received", "SC", True),
    (13, "Refunded", "SC", True),
    (14, "Credit cancelled", "SC", True),
    (15, "Credit archive", "SC", False),
]

PRICE_LISTS = [
    {
        "id": 1,
        "code": "COST",
        "name": "Cost price",
        "priceListTypeCode": "BUY",
        "currencyCode": "GBP",
    },
    {
        "id": 2,
        "code": "RETAIL",
        "name": "Retail price",
        "priceListTypeCode": "SELL",
        "currencyCode": "GBP",
        "gross": True,
    },
]

WAREHOUSES = [{"id": 2, "name": "Main warehouse"}, {"id": 3, "name": "Returns centre"}]

CHANNELS = [
    {
        "id": 1,
        "name": "Web store",
        "defaultWarehouseId": 2,
        "defaultPriceListId": 2,
        "warehouseIds": [2, 3],
    },
    {
        "id": 2,
        "name": "Marketplace",
        "defaultWarehouseId": 2,
        "defaultPriceListId": 2,
        "warehouseIds": [2],
    },
]

# (code, name, is a bank account)
# (id, code, title, rate against the base currency)
CURRENCIES = [
    (1, "GBP", "British pound", "1.000000"),
    (2, "USD", "US dollar", "1.250000"),
    (3, "EUR", "Euro", "1.150000"),
]
# (code, name, is a bank account, currency id of a bank account)
NOMINAL_CODES = [
    ("1100", "Debtors control account", False, None),
    ("1200", "Bank current account", True, 1),
    ("1210", "PayPal account", True, 1),
    ("1220", "Card payments account", True, 1),
    ("1230", "US dollar bank account", True, 2),
    ("2110", "Gift card and store credit liability", False, None),
    ("2200", "Sales tax control account", False, None),
    ("4000", "Sales", False, None),
    ("4040", "Shipping income", False, None),
    ("5000", "Cost of sales", False, None),
]

PAYMENT_METHODS = [
    {
        "code": "BANK",
        "name": "Bank transfer",
        "bankAccounts": [{"currencyIsoCode": "GBP", "bankAccountNominalCode": "1200"}],
    },
    {
        "code": "PAYPAL",
        "name": "PayPal",
        "bankAccounts": [
            {"currencyIsoCode": "GBP", "bankAccountNominalCode": "1210"},
            {"currencyIsoCode": "USD", "bankAccountNominalCode": "1210"},
        ],
    },
    {
        "code": "CARD",
        "name": "Card payments",
        "bankAccounts": [
            {"currencyIsoCode": "GBP", "bankAccountNominalCode": "1220"},
            {"currencyIsoCode": "USD", "bankAccountNominalCode": "1220"},
        ],
    },
    {
        "code": "USBANK",
        "name": "US dollar bank transfer",
        "bankAccounts": [{"currencyIsoCode": "USD", "bankAccountNominalCode": "1230"}],
    },
    # Store credit and gift cards are a liability, not a bank: whether Brightpearl lets a
    # payment method post to a non-bank nominal is UNCONFIRMED (docs/sandbox-brightpearl.md).
    {
        "code": "GIFTCARD",
        "name": "Gift card / store credit",
        "bankAccounts": [
            {"currencyIsoCode": "GBP", "bankAccountNominalCode": "2110"},
            {"currencyIsoCode": "USD", "bankAccountNominalCode": "2110"},
        ],
    },
]

# Account configuration: Brightpearl returns every value as a string.
CONFIGURATION = {
    "baseCurrencyCode": "GBP",
    "taxSchemeCode": "VAT",
    "timeZone": "Europe/London",
    "newSalesOrderStatusId": "3",
    "newSalesCreditStatusId": "10",
    "newPurchaseOrderStatusId": "6",
    "invoicedOrderStatusId": "4",
    "cancelledOrderStatusId": "5",
    "salesNominalCode": "4000",
    "shippingNominalCode": "4040",
    "purchaseNominalCode": "5000",
    "productWeightUnit": "GRAM",
    "multipleWarehousesEnabled": "1",
    "orderRowSortingStrategy": "rowId",
    "defaultWarehouseId": "2",
}
