"""The rule set editor: one card per pass, the engine's validation beside each field, the
JSON beside the form, presets, a dry run, saving, and running a job with a saved set."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import current_app, request
from werkzeug.datastructures import MultiDict

from recon.auth.guard import current_actor, current_project
from recon.engine import RulesError, validate_rules
from recon.engine.rules import ACTIONS, CARDINALITIES, FIELDS
from recon.errors import APIError, ValidationError
from recon.fields import Id
from recon.jobs.rulesets import get_ruleset, get_rulesets, save_ruleset
from recon.jobs.schemas import JobCreateSchema, RuleSetSaveSchema
from recon.jobs.service import create_job, get_job
from recon.sources.service import get_sources
from recon.workspace.blueprint import bp
from recon.workspace.forms import field_errors, load
from recon.workspace.presets import presets
from recon.workspace.render import STANDALONE, go, page
from recon.workspace.views.common import session

EMPTY_PASS: dict[str, Any] = {"name": "", "match_on": ["key"], "cardinality": "one_to_one"}
MAX_PASSES = 20


class EditorArgsSchema(ma.Schema):
    ruleset = Id(load_default=None)
    preset = ma.fields.String(load_default=None, validate=ma.validate.Length(max=200))


def _number(text: str) -> Any:
    """A number as typed: int or float when it reads as one, else the text (the engine then
    says what is wrong with it, next to the field)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def rules_from_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """Return the rules the form describes, values as typed, after its add/remove/move button."""
    count = min(
        int(form.get("passes", "0") or 0) if form.get("passes", "").isdigit() else 0, MAX_PASSES
    )
    passes: list[dict[str, Any]] = []
    for i in range(count):
        get = lambda name, i=i: form.get(f"p{i}.{name}", "").strip()  # noqa: E731
        item: dict[str, Any] = {
            "name": get("name"),
            "match_on": form.getlist(f"p{i}.match_on"),
            "cardinality": get("cardinality") or "one_to_one",
            "action": get("action") or "match",
        }
        tolerance = {part: get(part) for part in ("absolute", "relative") if get(part)}
        if tolerance:
            item["amount_tolerance"] = tolerance
        if get("date_window_days"):
            item["date_window_days"] = _number(get("date_window_days"))
        if get("similarity"):
            item["description_min_similarity"] = _number(get("similarity"))
        passes.append(item)
    op = form.get("op", "")
    verb, _, index = op.partition("-")
    if verb == "add" and len(passes) < MAX_PASSES:
        passes.append({**EMPTY_PASS, "name": f"pass_{len(passes) + 1}"})
    elif index.isdigit() and int(index) < len(passes):
        i = int(index)
        if verb == "remove":
            passes.pop(i)
        elif verb == "up" and i > 0:
            passes[i - 1], passes[i] = passes[i], passes[i - 1]
    return {"passes": passes, "break_on": form.getlist("break_on")}


def _check(rules: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Return the normalised rules or None, and the engine's problems by field."""
    try:
        return validate_rules(rules), {}
    except RulesError as error:
        return None, field_errors(error)


def _editor(rules: dict[str, Any], status: int = 200, **extra: Any) -> Any:
    project = current_project()
    normalised, problems = _check(rules)
    return page(
        "workspace/rules.html",
        "workspace/_rules_editor.html",
        status=status,
        rules=rules,
        normalised=normalised,
        problems=problems,
        rules_json=json.dumps(normalised or rules, indent=2),
        fields=FIELDS,
        cardinalities=CARDINALITIES,
        actions=ACTIONS,
        presets=presets(),
        rulesets=get_rulesets(session=session(), project=project),
        sources=get_sources(session=session(), project=project, per_page=100).items,
        form=request.form,
        **extra,
    )


@bp.route("/projects/<id:pid>/rules", endpoint="rules")
def editor(pid: int) -> Any:
    """The editor, empty, with a preset, or with a saved rule set (``?ruleset=<id>``)."""
    args = load(EditorArgsSchema(), request.args)
    saved = None
    if args["ruleset"] is not None:
        saved = get_ruleset(
            session=session(), project=current_project(), ruleset_id=args["ruleset"]
        )
        rules = saved.rules
    elif args["preset"] in presets():
        rules = presets()[args["preset"]]
    else:
        rules = {"passes": [{**EMPTY_PASS, "name": "exact"}], "break_on": ["key"]}
    return _editor(rules, saved=saved)


@bp.route("/projects/<id:pid>/rules/check", methods=["POST"], endpoint="rules_check")
def check(pid: int) -> Any:
    """The editor again with the engine's verdict on what the form now says."""
    return _editor(rules_from_form(request.form))


@bp.route("/projects/<id:pid>/rules/dry-run", methods=["POST"], endpoint="rules_dry_run")
def dry_run(pid: int) -> Any:
    """Start a dry run of the form's rules on two sources; its counts appear when done."""
    rules = rules_from_form(request.form)
    try:
        data = load(JobCreateSchema(), request.form)
        job = create_job(
            session=session(),
            project=current_project(),
            left_source_id=data["left_source_id"],
            right_source_id=data["right_source_id"],
            rules=rules,
            dry_run=True,
            enqueue=current_app.extensions["recon_enqueue"],
            actor=current_actor(),
        )
    except APIError as error:
        return page(STANDALONE, "workspace/_dry_run.html", status=error.status, error=error)
    return page(STANDALONE, "workspace/_dry_run.html", job=job)


@bp.route("/projects/<id:pid>/rules/dry-run/<id:jid>", endpoint="dry_run_result")
def dry_run_result(pid: int, jid: int) -> Any:
    """A dry run's counts per pass (polled until it has finished)."""
    job = get_job(session=session(), project=current_project(), job_id=jid)
    return page(STANDALONE, "workspace/_dry_run.html", job=job)


@bp.route("/projects/<id:pid>/rules", methods=["POST"], endpoint="rules_save")
def save(pid: int) -> Any:
    """Save the form's rules under a name (a new version when the name exists)."""
    rules = rules_from_form(request.form)
    try:
        data = load(RuleSetSaveSchema(only=("name", "description")), request.form)
        saved = save_ruleset(
            session=session(),
            project=current_project(),
            actor=current_actor(),
            name=data["name"],
            description=data["description"],
            rules=rules,
        )
    except ValidationError as error:
        return _editor(
            rules, status=error.status, save_error=error, save_errors=field_errors(error)
        )
    return go("workspace.rules", pid=pid, ruleset=saved.id, saved=1)


@bp.route("/projects/<id:pid>/jobs", methods=["POST"], endpoint="run_job")
def run(pid: int) -> Any:
    """Run a job on two sources with a saved rule set, and watch it."""
    data = load(JobCreateSchema(), request.form)
    job = create_job(
        session=session(),
        project=current_project(),
        enqueue=current_app.extensions["recon_enqueue"],
        actor=current_actor(),
        **data,
    )
    return go("workspace.job", pid=pid, jid=job.id)
