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
    match_rate = ma.fields.Float(allow_none=True, metadata={"description": "the engine's"})
    current_match_rate = ma.fields.Float(
        allow_none=True,
        metadata={"description": "people's decisions applied; null for jobs that don't count"},
    )
    explained_rate = ma.fields.Float(allow_none=True)
    passes = ma.fields.List(ma.fields.Nested(PassRateSchema))


class VolumesSchema(ma.Schema):
    jobs = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    rows = ma.fields.Integer()
    mean_duration_seconds = ma.fields.Float(allow_none=True)
    max_duration_seconds = ma.fields.Float(allow_none=True)


class AutoManualSchema(ma.Schema):
    records = ma.fields.Integer(metadata={"description": "records counted (each once)"})
    auto = ma.fields.Integer(metadata={"description": "records matched by the engine"})
    manual = ma.fields.Integer(
        metadata={"description": "records matched by people (manual matches, accepted suggestions)"}
    )
    explained = ma.fields.Integer(metadata={"description": "matched or resolved with a reason"})
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
    net = ma.fields.String(metadata={"description": "left minus right, exact decimal"})
    gross = ma.fields.String(metadata={"description": "sum of the absolute amounts, exact"})
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
