"""One message to the relay by SMTP: STARTTLS, implicit TLS or plain, with a login.

The relay's certificate is verified (host name included) against the system's CAs or
the configured `ca_file`; a password is only ever sent over TLS.  Whatever goes
wrong comes back as one short reason, never as a traceback, and never with the body.
"""

from __future__ import annotations

import datetime
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from .config import MailerConfig


class NotDelivered(Exception):
    """The relay did not take the message; the reason is short and holds no body."""


def compose(config: MailerConfig, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(_now())
    message["Message-ID"] = make_msgid(domain=config.sender.domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    message.set_content(body, charset="utf-8")
    return message


def deliver(config: MailerConfig, message: EmailMessage) -> None:
    smtp = config.smtp
    context = ssl.create_default_context(cafile=smtp.ca_file)
    try:
        if smtp.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout, context=context
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            if smtp.security == "starttls":
                client.ehlo()
                if not client.has_extn("starttls"):
                    raise NotDelivered("the relay offers no STARTTLS (security: starttls)")
                client.starttls(context=context)
            if smtp.username is not None and smtp.password is not None:
                client.login(smtp.username, smtp.password)
            refused = client.send_message(message)
        if refused:
            raise NotDelivered(f"the relay refused {', '.join(sorted(refused))}")
    except smtplib.SMTPAuthenticationError as exc:
        raise NotDelivered(f"the relay refused the login: {exc.smtp_code}") from None
    except smtplib.SMTPNotSupportedError:
        raise NotDelivered("the relay offers no login (AUTH) here") from None
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        reason = (error.decode("utf-8", "replace") if isinstance(error, bytes) else error)[:200]
        raise NotDelivered(f"the relay answered {exc.smtp_code} {reason}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise NotDelivered(f"the relay refused {', '.join(sorted(exc.recipients))}") from None
    except ssl.SSLError as exc:
        raise NotDelivered(f"TLS with the relay failed: {exc.reason or exc}") from None
    except TimeoutError:
        raise NotDelivered(f"the relay did not answer within {smtp.timeout:g} s") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise NotDelivered(f"the relay {smtp.host}:{smtp.port} cannot be reached: {exc}") from None


def _now() -> datetime.datetime:
    return datetime.datetime.fromtimestamp(time.time(), datetime.UTC)
