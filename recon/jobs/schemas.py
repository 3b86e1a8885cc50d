import marshmallow as ma

from recon.engine.results import STATUSES
from recon.fields import Id, Money, Name, RowNumber, Text
from recon.jobs.models import JobStatus
from recon.jobs.results_sql import SIDES, VIEWS, Filters
from recon.pagination import PageArgsSchema, page_schema
from recon.review.export import EXPORT_VIEWS, FORMATS
from recon.review.models import ExceptionStatus

EXCEPTION_STATUSES = tuple(s.value for s in ExceptionStatus)


class JobCreateSchema(ma.Schema):
    left_source_id = Id(required=True)
    right_source_id = Id(required=True)
    rules = ma.fields.Dict(
        load_default=None,
        metadata={
            "description": "the passes and break_on (DESIGN.md section 6); or give ruleset_id"
        },
    )
    ruleset_id = Id(
        load_default=None,
        metadata={"description": "a saved rule set version to run instead of inline rules"},
    )
    dry_run = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "compute the summary without publishing exceptions"},
    )

    @ma.validates_schema
    def _one_source_of_rules(self, data: dict, **_: object) -> None:
        if data.get("rules") is not None and data.get("ruleset_id") is not None:
            raise ma.ValidationError("Give rules or ruleset_id, not both.", field_name="ruleset_id")


class JobSchema(ma.Schema):
    id = ma.fields.Integer()
    project_id = ma.fields.Integer()
    left_source_id = ma.fields.Integer()
    right_source_id = ma.fields.Integer()
    ruleset_id = ma.fields.Integer(allow_none=True)
    ruleset_version = ma.fields.Integer(allow_none=True)
    rules = ma.fields.Dict()
    dry_run = ma.fields.Boolean()
    status = ma.fields.Enum(JobStatus, by_value=True)
    progress = ma.fields.Dict(metadata={"description": "{fraction, pass}: the current pass"})
    attempt = ma.fields.Integer()
    cancel_requested = ma.fields.Boolean()
    error = ma.fields.String(allow_none=True)
    summary = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "rows and amounts per status and side, match rate overall and per pass"
        },
    )
    created_at = ma.fields.AwareDateTime()
    started_at = ma.fields.AwareDateTime(allow_none=True)
    finished_at = ma.fields.AwareDateTime(allow_none=True)
    signed_off_at = ma.fields.AwareDateTime(allow_none=True)
    signed_off_by_id = ma.fields.Integer(allow_none=True)
    state = ma.fields.Dict(
        allow_none=True,
        dump_default=None,
        metadata={
            "description": "the current state (people's decisions applied): match_rate, "
            "auto_match_rate, manual_match_rate, explained_rate, complete, pending_approvals, "
            "signed_off_at, signed_off_by, superseded_by; null until the job has results"
        },
    )


class JobListArgsSchema(PageArgsSchema):
    status = ma.fields.String(
        load_default=None, validate=ma.validate.OneOf([s.value for s in JobStatus])
    )


class ResultFilterSchema(ma.Schema):
    side = ma.fields.String(load_default=None, validate=ma.validate.OneOf(SIDES))
    pass_ = ma.fields.String(
        data_key="pass", load_default=None, validate=ma.validate.Length(min=1, max=100)
    )
    match_id = RowNumber(load_default=None, metadata={"description": "a match or break"})
    key = Text(load_default=None, validate=ma.validate.Length(min=1, max=200))
    q = Text(
        load_default=None,
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "text in the key or the description"},
    )
    min_amount = Money(
        load_default=None, metadata={"description": "smallest amount by size (sign ignored)"}
    )
    max_amount = Money(
        load_default=None, metadata={"description": "largest amount by size (sign ignored)"}
    )


def result_filters(args: dict) -> Filters:
    """The results filters of loaded query arguments (status only for result statuses)."""
    status = args.get("status")
    return Filters(
        status=status if status in STATUSES else None,
        side=args.get("side"),
        pass_name=args.get("pass_"),
        match_id=args.get("match_id"),
        key=args.get("key"),
        q=args.get("q"),
        amount_min=args.get("min_amount"),
        amount_max=args.get("max_amount"),
    )


class ResultArgsSchema(ResultFilterSchema, PageArgsSchema):
    view = ma.fields.String(
        load_default="current",
        validate=ma.validate.OneOf(VIEWS),
        metadata={"description": "current: people's decisions applied; engine: the engine's"},
    )
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))
    after = Text(
        load_default=None,
        validate=ma.validate.Length(max=100),
        metadata={"description": "the next cursor of the previous page (keyset paging)"},
    )


class ExportArgsSchema(ResultFilterSchema):
    status = ma.fields.String(
        load_default=None,
        metadata={
            "description": "records and pairs: a result status; exceptions: an exception status"
        },
    )
    format = ma.fields.String(load_default="csv", validate=ma.validate.OneOf(FORMATS))
    view = ma.fields.String(load_default="records", validate=ma.validate.OneOf(EXPORT_VIEWS))
    state = ma.fields.String(
        load_default="current",
        validate=ma.validate.OneOf(VIEWS),
        metadata={"description": "current (people's decisions applied) or engine"},
    )

    @ma.validates_schema
    def _status_of_the_view(self, data: dict, **_: object) -> None:
        allowed = EXCEPTION_STATUSES if data.get("view") == "exceptions" else STATUSES
        if data.get("status") is not None and data["status"] not in allowed:
            raise ma.ValidationError(
                "Must be one of: " + ", ".join(allowed) + ".", field_name="status"
            )


class ResultSchema(ma.Schema):
    side = ma.fields.String()
    row = ma.fields.Integer()
    status = ma.fields.String()
    pass_ = ma.fields.String(data_key="pass", attribute="pass", allow_none=True)
    match_id = ma.fields.Integer(allow_none=True)
    decided_by = ma.fields.String(metadata={"description": "engine or person"})
    explained = ma.fields.Boolean(
        metadata={"description": "matched, or resolved with a reason code and not pending"}
    )
    pending = ma.fields.Boolean(metadata={"description": "a write-off waits for approval"})
    reason_code = ma.fields.String(allow_none=True)
    engine_status = ma.fields.String(metadata={"description": "the engine's own status"})
    confidence = ma.fields.String(allow_none=True)
    amount_diff = ma.fields.String(allow_none=True)
    date_diff_days = ma.fields.Integer(allow_none=True)
    duplicate_key = ma.fields.Boolean()
    diff_fields = ma.fields.String(allow_none=True)
    key = ma.fields.String(allow_none=True)
    amount = ma.fields.String(allow_none=True)
    date = ma.fields.String(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    description = ma.fields.String(allow_none=True)


class RuleSetSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    version = ma.fields.Integer()
    rules = ma.fields.Dict()
    description = ma.fields.String()
    created_at = ma.fields.AwareDateTime()


class RuleSetSaveSchema(ma.Schema):
    name = Name(required=True)
    rules = ma.fields.Dict(required=True)
    description = Text(load_default="", validate=ma.validate.Length(max=5000))


JobPageSchema = page_schema(JobSchema, "JobPage")
ResultPageSchema = page_schema(ResultSchema, "ResultPage")
