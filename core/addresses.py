"""What every app compares addresses by."""


def normalized_postal_code(code: str | None) -> str:
    """A postal code as routing rules, sites and checks compare it: no spaces, upper case ("m5v 3l9" -> "M5V3L9")."""
    return (code or "").replace(" ", "").upper()
