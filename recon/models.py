"""Every model module, imported once so the metadata (migrations, metric table labels) is whole."""

from recon.audit.models import AuditEvent
from recon.auth.models import Token
from recon.jobs.models import IdempotencyKey, Job, RuleSet
from recon.projects.models import Membership, Project
from recon.review.models import Comment, ExceptionTally, ManualMatch, ReconException
from recon.sources.models import Source, SourceProfile
from recon.users.models import User

__all__ = [
    "AuditEvent",
    "Comment",
    "ExceptionTally",
    "IdempotencyKey",
    "Job",
    "ManualMatch",
    "Membership",
    "Project",
    "ReconException",
    "RuleSet",
    "Source",
    "SourceProfile",
    "Token",
    "User",
]
