"""SDK clients: one per account (its session) and one for admin calls."""

import base64

from atproto_client import Client
from django.conf import settings

from .limits import Meter
from .errors import PdsError
from .transport import Transport


class PdsClient(Client):
    """The SDK's client, held to the address it was given.

    After a login the SDK would move to the endpoint the account's DID
    document names (the PDS's public URL). The console talks to PDS_URL,
    the address the operator configured (an internal address, a proxy),
    whatever the DID document says; every account it migrates lives there.
    """

    def _update_pds_endpoint(self, pds_endpoint: str) -> None:
        pass


def sdk_client(meter: Meter | None = None, *, base_url: str = "", timeout: float | None = None) -> Client:
    """An SDK client for settings.PDS_URL, with the operator's bypass header
    when one is configured. Every response's rate-limit headers teach
    ``meter``'s budgets. ``timeout``: seconds for each step of a request
    (settings.PDS_TIMEOUT when None)."""
    request = Transport(timeout=timeout or settings.PDS_TIMEOUT, on_response=meter.observe if meter else None)
    if settings.PDS_RATE_LIMIT_BYPASS_KEY:
        request.add_additional_header("x-ratelimit-bypass", settings.PDS_RATE_LIMIT_BYPASS_KEY)
    return PdsClient(base_url=base_url or settings.PDS_URL, request=request)


def admin_client() -> Client:
    """A client that authenticates as the PDS operator (HTTP Basic admin:<password>)."""
    if not settings.PDS_ADMIN_PASSWORD:
        raise PdsError("PDS_ADMIN_PASSWORD is not set; admin calls need it", "permanent")
    client = sdk_client(Meter())
    token = base64.b64encode(f"admin:{settings.PDS_ADMIN_PASSWORD}".encode()).decode()
    client.request.add_additional_header("Authorization", f"Basic {token}")
    return client

