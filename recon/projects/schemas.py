import marshmallow as ma

from recon.fields import Id, Money, Name, Text
from recon.pagination import SearchArgsSchema, page_schema
from recon.projects.models import ProjectRole
from recon.projects.settings import RequireApproval

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


class SettingsSchema(ma.Schema):
    reason_codes = ma.fields.List(ma.fields.String())
    write_off_limit = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "currency ('' for none) -> largest write-off without approval"},
    )
    require_approval = ma.fields.String(metadata={"description": "never, over_limit or always"})


class SettingsUpdateSchema(ma.Schema):
    reason_codes = ma.fields.List(
        Text(validate=ma.validate.Regexp(r"^[a-z0-9_]{1,64}$", error="a-z, 0-9 and _, 1-64")),
        validate=ma.validate.Length(min=1, max=100),
    )
    write_off_limit = ma.fields.Dict(
        keys=Text(validate=ma.validate.Regexp(r"^([A-Za-z]{3})?$", error="an ISO 4217 code or ''")),
        values=Money(),
        validate=ma.validate.Length(max=300),
    )
    require_approval = ma.fields.Enum(RequireApproval, by_value=True)


ProjectPageSchema = page_schema(ProjectSchema, "ProjectPage")
