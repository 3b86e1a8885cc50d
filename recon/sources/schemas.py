import json
from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload

from recon.fields import Id, Name, Text
from recon.pagination import page_schema


class JSONObject(ma.fields.Field):
    """A form field holding a JSON object as text (multipart can't nest)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict:
        try:
            parsed = json.loads(value) if isinstance(value, str | bytes) else value
        except json.JSONDecodeError as exc:
            raise ma.ValidationError(f"Not valid JSON: {exc.msg}.") from None
        if not isinstance(parsed, dict):
            raise ma.ValidationError("Must be a JSON object.")
        return parsed


MAPPING_HELP = (
    'Canonical field -> column header (or "#3" for the third column), e.g. {"key": "Ref", '
    '"amount": "Bedrag", "date": "Datum"}; "fields" names more columns usable in rules, e.g. '
    '{"fields": {"batch": "Payout Batch"}}. See docs/sources.md.'
)
OPTIONS_HELP = (
    "delimiter, encoding, decimal, thousands, date_format, debit_column, credit_column, "
    "sign_column, debit_values, credit_values, header, columns, skip_rows, skip_footer, "
    "currency, key_pattern, key_from, ragged, quotes, empty_amount, sheet. See docs/sources.md."
)


class SourceFormSchema(ma.Schema):
    name = Name(required=True, max_length=200)
    mapping = JSONObject(load_default=None, metadata={"description": MAPPING_HELP})
    options = JSONObject(load_default=None, metadata={"description": OPTIONS_HELP})
    profile_id = Id(
        load_default=None,
        metadata={
            "description": "a saved profile's mapping and options; mapping and options given "
            "here override its keys"
        },
    )


class SourceFileSchema(ma.Schema):
    file = Upload(
        required=True,
        metadata={"description": "CSV, XLSX, MT940/MT942, CAMT.052/.053/.054, BAI2 or OFX/QFX"},
    )


class StatementSchema(ma.Schema):
    account = ma.fields.String(allow_none=True)
    id = ma.fields.String(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    opening = ma.fields.String(allow_none=True, metadata={"description": "exact decimal"})
    closing = ma.fields.String(allow_none=True, metadata={"description": "exact decimal"})
    records_sum = ma.fields.String(metadata={"description": "sum of the statement's records"})
    balanced = ma.fields.Boolean(
        allow_none=True,
        metadata={
            "description": "opening + records_sum == closing; false is a warning (the records "
            "are still what the bank sent), null when the file gives no opening balance"
        },
    )


class SkippedLineSchema(ma.Schema):
    line = ma.fields.Integer(metadata={"description": "line of the file (sheet row for XLSX)"})
    text = ma.fields.String()
    reason = ma.fields.String(metadata={"description": "footer | empty amount"})


class SourceUploadSchema(SourceFileSchema, SourceFormSchema):
    """The whole multipart/form-data body of an upload."""


class SourceSchema(ma.Schema):
    id = ma.fields.Integer()
    project_id = ma.fields.Integer()
    name = ma.fields.String()
    filename = ma.fields.String()
    format = ma.fields.String()
    sha256 = ma.fields.String()
    size_bytes = ma.fields.Integer()
    row_count = ma.fields.Integer()
    options = ma.fields.Dict(metadata={"description": "the options used, detected ones included"})
    mapping = ma.fields.Dict(metadata={"description": "canonical field -> source column"})
    schema = ma.fields.List(ma.fields.Dict(), metadata={"description": "canonical Parquet schema"})
    columns = ma.fields.List(ma.fields.String(), metadata={"description": "other columns kept"})
    amount_scale = ma.fields.Integer()
    sums = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "sum of amount per currency, exact"},
    )
    min_date = ma.fields.Date(allow_none=True)
    max_date = ma.fields.Date(allow_none=True)
    statements = ma.fields.List(
        ma.fields.Nested(StatementSchema),
        metadata={"description": "statement files: each statement's account, id and balances"},
    )
    skipped_lines = ma.fields.List(
        ma.fields.Nested(SkippedLineSchema),
        metadata={"description": "lines left out of the table (footers, skipped empty amounts)"},
    )
    # "fields" is a Schema attribute of marshmallow's own: declared under another name.
    extra_fields = ma.fields.List(
        ma.fields.String(),
        data_key="fields",
        attribute="fields",
        metadata={"description": "extra fields (mapping.fields) usable in rules"},
    )
    has_key = ma.fields.Boolean(
        metadata={"description": "false when the source has no key: passes on key are refused"}
    )
    profile_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.AwareDateTime()


class ProfileSchema(ma.Schema):
    id = ma.fields.Integer()
    project_id = ma.fields.Integer()
    name = ma.fields.String()
    description = ma.fields.String()
    mapping = ma.fields.Dict()
    options = ma.fields.Dict()
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class ProfileCreateSchema(ma.Schema):
    name = Name(required=True, max_length=200)
    description = Text(load_default="", validate=ma.validate.Length(max=2000))
    mapping = ma.fields.Dict(load_default=dict, metadata={"description": MAPPING_HELP})
    options = ma.fields.Dict(load_default=dict, metadata={"description": OPTIONS_HELP})


class ProfileUpdateSchema(ma.Schema):
    name = Name(max_length=200)
    description = Text(validate=ma.validate.Length(max=2000))
    mapping = ma.fields.Dict(metadata={"description": MAPPING_HELP})
    options = ma.fields.Dict(metadata={"description": OPTIONS_HELP})


class RowSchema(ma.Schema):
    row = ma.fields.Integer()
    key = ma.fields.String(allow_none=True)
    amount = ma.fields.String(metadata={"description": "exact decimal as text"})
    date = ma.fields.String(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    description = ma.fields.String(allow_none=True)


SourcePageSchema = page_schema(SourceSchema, "SourcePage")
ProfilePageSchema = page_schema(ProfileSchema, "ProfilePage")
RowPageSchema = page_schema(RowSchema, "RowPage")
