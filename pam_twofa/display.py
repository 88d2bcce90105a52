"""What people are shown at enrollment, the same at a login prompt and in a terminal."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def enrollment_intro() -> list[str]:
    return [
        "Two-step verification: set up an authenticator app for this account.",
        "Scan the QR code with Google Authenticator, Microsoft Authenticator, Aegis or "
        "FreeOTP, or type in the key.",
    ]


def enrollment_in_a_form(data: dict[str, Any]) -> str:
    """The set-up for a web login form, which shows no QR code and joins lines: the key
    to type and the otpauth:// link to open, as sentences."""
    return (
        "Two-step verification: set up an authenticator app for this account. In Google "
        "Authenticator, Microsoft Authenticator, Aegis or FreeOTP, enter a setup key. "
        f"Key: {data['secret_grouped']} ({data['algorithm']}, {data['digits']} digits, "
        f"every {data['period']} s). Or open this link on the phone: {data['uri']}"
    )


def recovery_codes_in_a_form(codes: list[str]) -> str:
    return (
        "Two-step verification is on. Recovery codes, each usable once when your phone "
        f"is not at hand: {', '.join(codes)}. Store them somewhere safe now (a password "
        "manager, or on paper): they will not be shown again."
    )


def enrollment_details(data: dict[str, Any]) -> list[str]:
    """The QR code, the key in groups of four, and the otpauth:// URI to paste."""
    return [
        data["qr"].rstrip("\n"),
        f"Key: {data['secret_grouped']}",
        f"     ({data['algorithm']}, {data['digits']} digits, every {data['period']} s)",
        f"URI: {data['uri']}",
    ]


def recovery_codes(codes: list[str]) -> list[str]:
    return [
        "Recovery codes, each usable once when your phone is not at hand:",
        *(f"    {code}" for code in codes),
        "Store them somewhere safe now (a password manager, or on paper): "
        "they will not be shown again.",
    ]
