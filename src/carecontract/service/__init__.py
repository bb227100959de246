"""The web service: FastAPI app with roles by API token, and the dashboard page."""

from carecontract.service.access import ACCESS, Principal, Tokens
from carecontract.service.app import create_app

__all__ = ["ACCESS", "Principal", "Tokens", "create_app"]
