import marshmallow as ma

from recon.engine.results import STATUSES
from recon.fields import Id, Name, Text
from recon.jobs.models import JobStatus
from recon.jobs.results import SIDES
from recon.pagination import PageArgsSchema, page_schema


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


class JobListArgsSchema(PageArgsSchema):
    status = ma.fields.String(
        load_default=None, validate=ma.validate.OneOf([s.value for s in JobStatus])
    )


class ResultArgsSchema(PageArgsSchema):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))
    side = ma.fields.String(load_default=None, validate=ma.validate.OneOf(SIDES))


class ExportArgsSchema(ma.Schema):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))
    format = ma.fields.String(load_default="csv", validate=ma.validate.OneOf(["csv"]))


class ResultSchema(ma.Schema):
    side = ma.fields.String()
    row = ma.fields.Integer()
    status = ma.fields.String()
    pass_ = ma.fields.String(data_key="pass", attribute="pass", allow_none=True)
    match_id = ma.fields.Integer(allow_none=True)
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
