"""The workspace's pages, one module per area; each registers its routes on ``bp``."""

from recon.workspace.views import (  # noqa: F401  (importing registers the routes)
    approvals,
    auth,
    exceptions,
    insight,
    jobs,
    manual,
    projects,
    rules,
    sources,
)
