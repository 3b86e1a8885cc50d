from collections.abc import Callable
from decimal import Decimal
from typing import Any

import marshmallow as ma

from recon.engine.results import STATUSES
from recon.fields import Id, Text
from recon.jobs.models import JobStatus
from recon.jobs.results import SIDES
from recon.pagination import PageArgsSchema, page_schema


class JobCreateSchema(ma.Schema):
    left_source_id = ma.fields.Integer(required=True)
    right_source_id = ma.fields.Integer(required=True)
    rules = ma.fields.Dict(
        load_default=None,
        metadata={
            "description": "the passes and break_on (DESIGN.md section 6); or give ruleset_id"
        },
    )
    ruleset_id = ma.fields.Integer(
        load_default=None,
        metadata={"description": "a saved rule set version to run instead of inline rules"},
    )
    dry_run = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "compute the summary without publishing exceptions"},
    )


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


def _amount_bound(value: Decimal) -> None:
    # DuckDB compares it as DECIMAL(38, 10): more digits would fail the query, not the request.
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent < -10 or len(digits) + exponent > 24:
        raise ma.ValidationError("An amount of at most 24 digits and 10 decimals.")


AMOUNT_BOUND: list[Callable[[Any], Any]] = [ma.validate.Range(min=0), _amount_bound]


class ResultFilterSchema(ma.Schema):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))
    side = ma.fields.String(load_default=None, validate=ma.validate.OneOf(SIDES))
    pass_name = ma.fields.String(
        data_key="pass",
        load_default=None,
        validate=ma.validate.Length(min=1, max=64),
        metadata={"description": "the pass that matched the record ('break' for breaks)"},
    )
    min_amount = ma.fields.Decimal(
        load_default=None,
        places=None,
        validate=AMOUNT_BOUND,
        metadata={"description": "smallest amount by size (the sign is ignored)"},
    )
    max_amount = ma.fields.Decimal(
        load_default=None,
        places=None,
        validate=AMOUNT_BOUND,
        metadata={"description": "largest amount by size (the sign is ignored)"},
    )
    q = Text(
        load_default=None,
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "text in the key or the description, any case"},
    )
    match_id = Id(load_default=None, metadata={"description": "the records of one match or break"})


class ResultArgsSchema(ResultFilterSchema, PageArgsSchema):
    pass


class ExportArgsSchema(ResultFilterSchema):
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
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    rules = ma.fields.Dict(required=True)
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=5000))


JobPageSchema = page_schema(JobSchema, "JobPage")
ResultPageSchema = page_schema(ResultSchema, "ResultPage")
