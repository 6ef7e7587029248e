from enum import StrEnum


class InventoryError(StrEnum):
    INSUFFICIENT_STOCK = "insufficient_stock"
    INVALID_QUANTITY = "invalid_quantity"
    UNKNOWN_LOCATION = "unknown_location"
    UNKNOWN_SKU = "unknown_sku"
    NOTHING_TO_RELEASE = "nothing_to_release"
    NOTHING_TO_SHIP = "nothing_to_ship"
    INVALID_CATALOG_FILE = "invalid_catalog_file"


QUANTITY_MUST_BE_POSITIVE = "Quantity must be a whole number above zero."
ADJUSTMENT_MUST_NOT_BE_ZERO = "An adjustment must change the quantity."
