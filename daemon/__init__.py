"""twofad: the pam-twofa daemon that holds TOTP secrets and decides every login."""

from .policy import Policy
from .service import Service, ServiceError

__all__ = ["Policy", "Service", "ServiceError"]
