"""ConnectX: a WhatsApp Business customer-engagement platform."""

__version__ = "0.1.0"
