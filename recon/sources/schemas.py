import json
from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload

from recon.fields import Name
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


class SourceFormSchema(ma.Schema):
    name = Name(required=True, max_length=200)
    mapping = JSONObject(
        load_default=None,
        metadata={"description": 'Canonical field -> column header, e.g. {"key": "Ref"}'},
    )
    options = JSONObject(
        load_default=None,
        metadata={
            "description": "delimiter, encoding, decimal, thousands, date_format, debit_column, "
            "credit_column, skip_rows, sheet"
        },
    )


class SourceFileSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "CSV or XLSX"})


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
    created_at = ma.fields.AwareDateTime()


class RowSchema(ma.Schema):
    row = ma.fields.Integer()
    key = ma.fields.String(allow_none=True)
    amount = ma.fields.String(metadata={"description": "exact decimal as text"})
    date = ma.fields.String(allow_none=True)
    currency = ma.fields.String(allow_none=True)
    description = ma.fields.String(allow_none=True)


SourcePageSchema = page_schema(SourceSchema, "SourcePage")
RowPageSchema = page_schema(RowSchema, "RowPage")
