"""AI Mass: trained models behind one pay-per-request API."""

__version__ = "0.1.0"
