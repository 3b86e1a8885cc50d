import marshmallow as ma

from recon.fields import Id, Money, RowNumber, Text
from recon.pagination import KeysetArgsSchema, PageArgsSchema, page_schema
from recon.review.export import FORMATS
from recon.review.listing import SORTS
from recon.review.models import (
    ApprovalStatus,
    ExceptionKind,
    ExceptionStatus,
    ManualMatchStatus,
)

AGE = 100_000  # days: far beyond any exception's age, small enough for date arithmetic
ACTIONS = ("assign", "resolve", "close", "reopen", "accept", "reject")
PATCH_STATUSES = ("assigned", "resolved", "closed", "reopened")


class ExceptionFilterSchema(ma.Schema):
    status = ma.fields.Enum(ExceptionStatus, by_value=True, load_default=None)
    unresolved = ma.fields.Boolean(
        load_default=None,
        metadata={"description": "true: only open, assigned and reopened exceptions"},
    )
    kind = ma.fields.Enum(ExceptionKind, by_value=True, load_default=None)
    side = ma.fields.String(load_default=None, validate=ma.validate.OneOf(("left", "right")))
    job = Id(load_default=None, metadata={"description": "job id"})
    assignee = Id(load_default=None, metadata={"description": "user id"})
    min_age_days = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=0, max=AGE))
    max_age_days = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=0, max=AGE))
    q = Text(
        load_default=None,
        validate=ma.validate.Length(max=200),
        metadata={"description": "text in key, description or note"},
    )
    min_amount = Money(
        load_default=None,
        metadata={"description": "smallest amount by size (the sign is ignored)"},
    )
    max_amount = Money(
        load_default=None,
        metadata={"description": "largest amount by size (the sign is ignored)"},
    )
    ids = ma.fields.List(
        Id(),
        load_default=None,
        validate=ma.validate.Length(min=1, max=1000),
        metadata={"description": "only these exceptions (e.g. a selection)"},
    )
    sort = ma.fields.String(
        load_default=None,
        validate=ma.validate.OneOf(SORTS),
        metadata={"description": "oldest (default), newest, largest or smallest amount"},
    )


class ExceptionArgsSchema(ExceptionFilterSchema, KeysetArgsSchema):
    pass


class ExceptionSchema(ma.Schema):
    id = ma.fields.Integer()
    project_id = ma.fields.Integer()
    job_id = ma.fields.Integer()
    pair_key = ma.fields.String(metadata={"description": "left_source_id:right_source_id"})
    kind = ma.fields.Enum(ExceptionKind, by_value=True)
    side = ma.fields.String()
    row = ma.fields.Integer()
    match_id = ma.fields.Integer(allow_none=True)
    pass_name = ma.fields.String(allow_none=True)
    confidence = ma.fields.String(allow_none=True)
    key = ma.fields.String(allow_none=True)
    amount = ma.fields.String(metadata={"description": "exact decimal as text"})
    currency = ma.fields.String(allow_none=True)
    date = ma.fields.Date(allow_none=True)
    description = ma.fields.String(allow_none=True)
    counterpart = ma.fields.List(ma.fields.Dict(), allow_none=True)
    diff = ma.fields.Dict(allow_none=True)
    status = ma.fields.Enum(ExceptionStatus, by_value=True)
    assignee_id = ma.fields.Integer(allow_none=True)
    reason_code = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    manual_match_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "the manual match the record belongs to"}
    )
    rejected_pass = ma.fields.String(
        allow_none=True, metadata={"description": "the pass whose suggestion a person rejected"}
    )
    opened_at = ma.fields.AwareDateTime()
    resolved_at = ma.fields.AwareDateTime(allow_none=True)
    updated_at = ma.fields.AwareDateTime()


class ExceptionUpdateSchema(ma.Schema):
    status = ma.fields.String(validate=ma.validate.OneOf(PATCH_STATUSES))
    assignee_id = Id(allow_none=True)
    note = Text(allow_none=True, validate=ma.validate.Length(max=10_000))
    reason_code = Text(
        validate=ma.validate.Length(min=1, max=64),
        metadata={"description": "one of the project's reason codes (its settings)"},
    )


class BulkSchema(ma.Schema):
    filter = ma.fields.Nested(ExceptionFilterSchema, load_default=dict)
    action = ma.fields.String(required=True, validate=ma.validate.OneOf(ACTIONS))
    assignee_id = Id(load_default=None)
    reason_code = Text(load_default=None, validate=ma.validate.Length(min=1, max=64))
    note = Text(load_default=None, validate=ma.validate.Length(max=10_000))


class BulkResultSchema(ma.Schema):
    updated = ma.fields.Integer()
    skipped = ma.fields.Integer(
        metadata={"description": "exceptions matching the filter whose status forbids the action"}
    )


class CommentCreateSchema(ma.Schema):
    body = Text(required=True, validate=ma.validate.Length(min=1, max=10_000))


class CommentSchema(ma.Schema):
    id = ma.fields.Integer()
    exception_id = ma.fields.Integer()
    author_id = ma.fields.Integer(allow_none=True)
    author = ma.fields.String(allow_none=True)
    body = ma.fields.String()
    created_at = ma.fields.AwareDateTime()


class ManualMatchCreateSchema(ma.Schema):
    left_rows = ma.fields.List(
        RowNumber(),
        required=True,
        validate=ma.validate.Length(min=1, max=10_000),
    )
    right_rows = ma.fields.List(
        RowNumber(),
        required=True,
        validate=ma.validate.Length(min=1, max=10_000),
    )
    tolerance = Money(
        load_default=None,
        metadata={"description": 'largest |sum(left) - sum(right)| accepted, e.g. "0.01"'},
    )
    write_off_reason = Text(load_default=None, validate=ma.validate.Length(min=1, max=200))
    note = Text(load_default=None, validate=ma.validate.Length(max=10_000))


class ManualMatchSchema(ma.Schema):
    id = ma.fields.Integer()
    project_id = ma.fields.Integer()
    job_id = ma.fields.Integer()
    left_rows = ma.fields.List(ma.fields.Integer())
    right_rows = ma.fields.List(ma.fields.Integer())
    difference = ma.fields.String(metadata={"description": "sum(left) - sum(right), exact"})
    currency = ma.fields.String(allow_none=True)
    write_off_reason = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    status = ma.fields.Enum(ManualMatchStatus, by_value=True)
    created_by_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    undone_by_id = ma.fields.Integer(allow_none=True)
    undone_at = ma.fields.AwareDateTime(allow_none=True)


class ManualMatchArgsSchema(PageArgsSchema):
    status = ma.fields.Enum(ManualMatchStatus, by_value=True, load_default=None)


class ApprovalArgsSchema(PageArgsSchema):
    status = ma.fields.Enum(ApprovalStatus, by_value=True, load_default=None)


class ApprovalSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "manual_match or resolution"})
    status = ma.fields.String(metadata={"description": "pending, approved or rejected"})
    job_id = ma.fields.Integer()
    manual_match_id = ma.fields.Integer(allow_none=True)
    exception_id = ma.fields.Integer(allow_none=True)
    maker_id = ma.fields.Integer(allow_none=True)
    checker_id = ma.fields.Integer(allow_none=True)
    amount = ma.fields.String(metadata={"description": "the amount written off, exact"})
    write_off = ma.fields.String()
    currency = ma.fields.String()
    reason_code = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    decision_note = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    decided_at = ma.fields.AwareDateTime(allow_none=True)


class ApprovalDecisionSchema(ma.Schema):
    note = Text(load_default=None, validate=ma.validate.Length(max=10_000))


ExceptionPageSchema = page_schema(ExceptionSchema, "ExceptionPage", capped=True)
CommentPageSchema = page_schema(CommentSchema, "CommentPage")
ManualMatchPageSchema = page_schema(ManualMatchSchema, "ManualMatchPage")
ApprovalPageSchema = page_schema(ApprovalSchema, "ApprovalPage")


class ExceptionExportArgsSchema(ExceptionFilterSchema):
    format = ma.fields.String(load_default="csv", validate=ma.validate.OneOf(FORMATS))


class ApprovalExportArgsSchema(ma.Schema):
    status = ma.fields.Enum(ApprovalStatus, by_value=True, load_default=None)
    format = ma.fields.String(load_default="csv", validate=ma.validate.OneOf(FORMATS))
