import marshmallow as ma


class PassRateSchema(ma.Schema):
    name = ma.fields.String()
    action = ma.fields.String(allow_none=True)
    matches = ma.fields.Integer(allow_none=True)
    left_rows = ma.fields.Integer(allow_none=True)
    right_rows = ma.fields.Integer(allow_none=True)
    match_rate = ma.fields.Float(allow_none=True)


class JobPointSchema(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.String()
    dry_run = ma.fields.Boolean()
    pair = ma.fields.String(metadata={"description": "left_source_id:right_source_id"})
    started_at = ma.fields.String(allow_none=True)
    finished_at = ma.fields.String(allow_none=True)
    duration_seconds = ma.fields.Float(allow_none=True)
    left_rows = ma.fields.Integer()
    right_rows = ma.fields.Integer()
    matched_rows = ma.fields.Integer()
    match_rate = ma.fields.Float(allow_none=True)
    passes = ma.fields.List(ma.fields.Nested(PassRateSchema))


class VolumesSchema(ma.Schema):
    jobs = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    rows = ma.fields.Integer()
    mean_duration_seconds = ma.fields.Float(allow_none=True)
    max_duration_seconds = ma.fields.Float(allow_none=True)


class AutoManualSchema(ma.Schema):
    auto = ma.fields.Integer(metadata={"description": "records matched by the engine"})
    manual = ma.fields.Integer(metadata={"description": "exceptions resolved or closed by people"})
    manual_matches = ma.fields.Integer()
    auto_share = ma.fields.Float(allow_none=True)
    manual_share = ma.fields.Float(allow_none=True)


class OpenExceptionsSchema(ma.Schema):
    total = ma.fields.Integer()
    by_age = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"description": "days since opened: 0-1, 2-7, 8-30, >30"},
    )
    by_kind = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())


class UnreconciledSchema(ma.Schema):
    currency = ma.fields.String(metadata={"description": "'' for records without one"})
    amount = ma.fields.String(metadata={"description": "both sides, exact decimal"})
    left = ma.fields.String()
    right = ma.fields.String()
    records = ma.fields.Integer()


class AnalyticsSchema(ma.Schema):
    generated_at = ma.fields.String()
    jobs = ma.fields.List(ma.fields.Nested(JobPointSchema))
    volumes = ma.fields.Nested(VolumesSchema)
    auto_vs_manual = ma.fields.Nested(AutoManualSchema)
    open_exceptions = ma.fields.Nested(OpenExceptionsSchema)
    exceptions_by_status = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    unreconciled = ma.fields.List(ma.fields.Nested(UnreconciledSchema))
