from enum import StrEnum


class OrderError(StrEnum):
    ILLEGAL_TRANSITION = "illegal_transition"
    CONCURRENT_UPDATE = "concurrent_update"
    INVALID_ORDER = "invalid_order"
    UNKNOWN_PARTNER = "unknown_partner"
    INVALID_PLAN = "invalid_plan"
    DUPLICATE_ORDER = "duplicate_order"
    INVALID_ADDRESS = "invalid_address"
    PRICE_BEYOND_LIMIT = "price_beyond_limit"
