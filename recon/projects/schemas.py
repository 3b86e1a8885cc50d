import marshmallow as ma

from recon.fields import Id, Name, Text
from recon.pagination import SearchArgsSchema, page_schema
from recon.projects.models import ProjectRole

DESCRIPTION = ma.validate.Length(max=5000)


class ProjectSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    archived = ma.fields.Boolean(dump_only=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class ProjectCreateSchema(ma.Schema):
    name = Name(required=True)
    description = Text(load_default="", validate=DESCRIPTION)


class ProjectUpdateSchema(ma.Schema):
    name = Name()
    description = Text(validate=DESCRIPTION)
    archived = ma.fields.Boolean()


class ProjectSearchArgsSchema(SearchArgsSchema):
    archived = ma.fields.Boolean(load_default=None, allow_none=True)


class MemberSchema(ma.Schema):
    user_id = ma.fields.Integer(dump_only=True)
    username = ma.fields.Function(lambda m: m.user.username, dump_only=True)
    role = ma.fields.Enum(ProjectRole, by_value=True, dump_only=True)


class MemberAddSchema(ma.Schema):
    user_id = Id(required=True)
    role = ma.fields.Enum(ProjectRole, by_value=True, required=True)


ProjectPageSchema = page_schema(ProjectSchema, "ProjectPage")
