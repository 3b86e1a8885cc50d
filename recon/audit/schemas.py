import marshmallow as ma

from recon.pagination import PageArgsSchema, page_schema
from recon.review.export import FORMATS


class AuditEventSchema(ma.Schema):
    id = ma.fields.Integer()
    project_id = ma.fields.Integer(allow_none=True)
    actor_id = ma.fields.Integer(allow_none=True)
    actor = ma.fields.String(allow_none=True)
    action = ma.fields.String()
    object_type = ma.fields.String()
    object_id = ma.fields.String(allow_none=True)
    before = ma.fields.Dict(allow_none=True)
    after = ma.fields.Dict(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()


class AuditFilterSchema(ma.Schema):
    object_type = ma.fields.String(load_default=None)
    object_id = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=64),
        metadata={"description": "one object's events, e.g. an exception id with object_type"},
    )
    action = ma.fields.String(load_default=None)


class AuditArgsSchema(AuditFilterSchema, PageArgsSchema):
    pass


AuditPageSchema = page_schema(AuditEventSchema, "AuditPage")


class AuditExportArgsSchema(AuditFilterSchema):
    format = ma.fields.String(load_default="csv", validate=ma.validate.OneOf(FORMATS))
