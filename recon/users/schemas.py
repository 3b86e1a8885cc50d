import marshmallow as ma

from recon.pagination import page_schema
from recon.users.models import Role

USERNAME = ma.validate.Regexp(r"^[A-Za-z0-9_.@-]{2,80}$", error="2-80 letters, digits or _ . @ -")
PASSWORD = ma.validate.Length(min=12, max=256, error="Between 12 and 256 characters.")


class UserSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    username = ma.fields.String(dump_only=True)
    email = ma.fields.Email(dump_only=True, allow_none=True)
    role = ma.fields.Enum(Role, by_value=True, dump_only=True)
    active = ma.fields.Boolean(dump_only=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)


class UserCreateSchema(ma.Schema):
    username = ma.fields.String(required=True, validate=USERNAME)
    password = ma.fields.String(required=True, load_only=True, validate=PASSWORD)
    role = ma.fields.Enum(Role, by_value=True, load_default=Role.analyst)
    email = ma.fields.Email(load_default=None, allow_none=True)


class UserUpdateSchema(ma.Schema):
    password = ma.fields.String(load_only=True, validate=PASSWORD)
    role = ma.fields.Enum(Role, by_value=True)
    active = ma.fields.Boolean()
    email = ma.fields.Email(allow_none=True)


UserPageSchema = page_schema(UserSchema, "UserPage")
