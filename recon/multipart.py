"""One schema for a multipart upload's file and form fields, documented as one request body.

flask-smorest documents one request body per operation and webargs reads ``files`` and
``form`` as separate locations, so an upload declared with both leaves a ``formData``
parameter in an OpenAPI 3 document (invalid there). An ``UploadBlueprint``'s ``files``
location reads the files and the form fields together, so a single schema describes the
whole ``multipart/form-data`` body.
"""

from __future__ import annotations

from typing import Any

import flask
import marshmallow as ma
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict


class MultipartParser(FlaskParser):
    """``location="files"`` loads the uploaded files and the other form fields."""

    def load_files(self, req: flask.Request, schema: ma.Schema) -> Any:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


class UploadBlueprint(Blueprint):
    """A blueprint whose ``files`` arguments carry a whole multipart body."""

    ARGUMENTS_PARSER = MultipartParser()
