"""Client and CLI for the OncoServe API. Research software, not a medical device."""

from .client import DEFAULT_URL, TASKS, Client
from .errors import ApiError

__all__ = ["DEFAULT_URL", "TASKS", "ApiError", "Client"]
