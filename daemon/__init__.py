"""twofad: the pam-twofa daemon that holds TOTP secrets and decides every login."""

from .service import Service, ServiceError, Settings

__all__ = ["Service", "ServiceError", "Settings"]
