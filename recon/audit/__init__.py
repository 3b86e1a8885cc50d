"""The audit log: an append-only record of every change, who made it and when."""
