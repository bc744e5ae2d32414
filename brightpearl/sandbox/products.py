"""Product service (product GET/search, channels, price lists) and contact search."""

from __future__ import annotations

from .common import ApiError
from .routing import Ctx, Reply, Router, id_set
from .searching import Column, run_search

router = Router()


def render_product(account, product: dict) -> dict:
    return {
        "id": product["id"],
        "brandId": product["brandId"],
        "productTypeId": product["productTypeId"],
        "identity": {
            "sku": product["sku"],
            "ean": product["ean"],
            "upc": "",
            "isbn": "",
            "mpn": "",
            "barcode": product["barcode"],
        },
        "productGroupId": product["productGroupId"],
        "stock": {"stockTracked": product["stockTracked"]},
        "financialDetails": {"taxCode": {"id": 1, "code": product["taxCode"]}},
        "salesChannels": [
            {
                "salesChannelName": account.channels[c]["name"],
                "productName": product["name"],
            }
            for c in product["channelIds"]
            if c in account.channels
        ],
        "status": product["status"],
        "createdOn": product["createdOn"],
        "updatedOn": product["updatedOn"],
        "version": 1,
    }


@router.route("GET", r"/product-service/product/(?P<ids>[^/]+)/?")
def get_products(ctx: Ctx, ids: str):
    wanted = id_set(ids)
    found = [ctx.account.products[i] for i in wanted if i in ctx.account.products]
    if not found:
        raise ApiError(404, "CMNC-404", "No products found for the requested IDs")
    return [render_product(ctx.account, p) for p in found]


def _product_record(account, product: dict) -> dict:
    channels = [account.channels[c]["name"] for c in product["channelIds"] if c in account.channels]
    return {
        "productId": product["id"],
        "productName": product["name"],
        "SKU": product["sku"],
        "barcode": product["barcode"],
        "EAN": product["ean"],
        "UPC": "",
        "ISBN": "",
        "MPN": "",
        "stockTracked": product["stockTracked"],
        "salesChannelName": channels[0] if channels else None,
        "createdOn": product["createdOn"],
        "updatedOn": product["updatedOn"],
        "brightpearlCategoryCode": None,
        "productGroupId": product["productGroupId"],
        "brandId": product["brandId"],
        "productTypeId": product["productTypeId"],
        "productStatus": product["status"],
        "primarySupplierId": None,
        "_channelIds": product["channelIds"],
    }


_PRODUCT_COLUMNS = [
    ("productId", "IDSET"),
    ("productName", "STRING"),
    ("SKU", "STRING"),
    ("barcode", "STRING"),
    ("EAN", "STRING"),
    ("UPC", "STRING"),
    ("ISBN", "STRING"),
    ("MPN", "STRING"),
    ("stockTracked", "BOOLEAN"),
    ("salesChannelName", "STRING"),
    ("createdOn", "PERIOD"),
    ("updatedOn", "PERIOD"),
    ("brightpearlCategoryCode", "STRING"),
    ("productGroupId", "IDSET"),
    ("brandId", "IDSET"),
    ("productTypeId", "IDSET"),
    ("productStatus", "STRING"),
    ("primarySupplierId", "IDSET"),
]
PRODUCT_COLUMNS = [Column(n, k, lambda r, n=n: r[n]) for n, k in _PRODUCT_COLUMNS]


@router.route("GET", r"/product-service/product-search/?")
def product_search(ctx: Ctx):
    records = [_product_record(ctx.account, p) for p in ctx.account.products.values()]
    extra = {"channelId": lambda r, raw: set(id_set(raw)) & set(r["_channelIds"]) != set()}
    return Reply(200, run_search(ctx.req, PRODUCT_COLUMNS, records, extra_filters=extra))


@router.route("GET", r"/product-service/channel(?:/(?P<ids>[^/]*))?/?")
def get_channels(ctx: Ctx, ids: str | None = None):
    wanted = id_set(ids, required=False)
    found = [
        dict(c) for i, c in sorted(ctx.account.channels.items()) if wanted is None or i in wanted
    ]
    if wanted is not None and not found:
        raise ApiError(404, "CMNC-404", "No channels found")
    return found


@router.route("GET", r"/product-service/price-list(?:/(?P<ids>[^/]*))?/?")
def get_price_lists(ctx: Ctx, ids: str | None = None):
    wanted = id_set(ids, required=False)
    found = [
        dict(p) for i, p in sorted(ctx.account.price_lists.items()) if wanted is None or i in wanted
    ]
    if wanted is not None and not found:
        raise ApiError(404, "CMNC-404", "No price lists found")
    return found


_CONTACT_COLUMNS = [
    ("contactId", "IDSET"),
    ("primaryEmail", "STRING"),
    ("firstName", "STRING"),
    ("lastName", "STRING"),
    ("companyName", "STRING"),
    ("isCustomer", "BOOLEAN"),
    ("isSupplier", "BOOLEAN"),
    ("isStaff", "BOOLEAN"),
    ("createdOn", "PERIOD"),
]
CONTACT_COLUMNS = [Column(n, k, lambda r, n=n: r.get(n)) for n, k in _CONTACT_COLUMNS]


@router.route("GET", r"/contact-service/contact-search/?")
def contact_search(ctx: Ctx):
    return Reply(200, run_search(ctx.req, CONTACT_COLUMNS, list(ctx.account.contacts.values())))
