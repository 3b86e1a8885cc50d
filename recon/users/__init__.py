"""Users: accounts, global roles, passwords."""
