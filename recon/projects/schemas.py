import marshmallow as ma

from recon.pagination import SearchArgsSchema, page_schema
from recon.projects.models import ProjectRole

NAME = ma.validate.Length(min=1, max=200)


class ProjectSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    archived = ma.fields.Boolean(dump_only=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class ProjectCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=NAME)
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=5000))


class ProjectUpdateSchema(ma.Schema):
    name = ma.fields.String(validate=NAME)
    description = ma.fields.String(validate=ma.validate.Length(max=5000))
    archived = ma.fields.Boolean()


class ProjectSearchArgsSchema(SearchArgsSchema):
    archived = ma.fields.Boolean(load_default=None, allow_none=True)


class MemberSchema(ma.Schema):
    user_id = ma.fields.Integer(dump_only=True)
    username = ma.fields.Function(lambda m: m.user.username, dump_only=True)
    role = ma.fields.Enum(ProjectRole, by_value=True, dump_only=True)


class MemberAddSchema(ma.Schema):
    user_id = ma.fields.Integer(required=True)
    role = ma.fields.Enum(ProjectRole, by_value=True, required=True)


ProjectPageSchema = page_schema(ProjectSchema, "ProjectPage")
