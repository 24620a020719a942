"""agentrail for Python: identities, mandates, signed requests and proofs."""

from .client import AgentrailError, AsyncClient, Client
from .grants import Limits, grant
from .keys import Key, did_of_public, public_of_did
from .units import to_atomic, to_usd

__all__ = [
    "AgentrailError",
    "AsyncClient",
    "Client",
    "Key",
    "Limits",
    "did_of_public",
    "grant",
    "public_of_did",
    "to_atomic",
    "to_usd",
]
