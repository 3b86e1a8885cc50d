"""Authentication: login, opaque bearer tokens, lockout, the current user."""
