"""rollcall: CallPower calls become member activity (users, signups, phone-call posts)."""

__version__ = "0.1.0"
