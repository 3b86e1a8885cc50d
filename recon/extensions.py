"""Extensions, unbound: ``create_app`` initialises them on each app.

Flask-Limiter is the exception: it keeps its storage and key prefix from the
first app it meets, so each app gets its own ``Limiter`` (see ``recon.ratelimit``).
"""

from typing import TYPE_CHECKING

from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

# mypy can't see through db.Model's dynamic class; at run time it is db.Model.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
api = Api()
