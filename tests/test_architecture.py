"""The package's rooms import one way (docs/architecture.md): from the ground up, no cycle,
no private name across modules, no code loaded by file path."""

from __future__ import annotations

import ast
from pathlib import Path

SIM = Path(__file__).resolve().parents[1] / "sim"
# bottom to top: a room may import rooms at or below its own rank
RANK = {"config": 0, "engine": 1, "policies": 2, "accountability": 3, "district": 4,
        "analysis": 5, "experiments": 6, "validation": 7, "presentation": 8, "cli": 9,
        "cli_grammar": 9, "__main__": 9, "__init__": -1}


def _imports(path: Path):
    """(module imported, name imported) for every sim import in a file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sim"):
            for a in node.names:
                yield node.module, a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("sim"):
                    yield a.name, None


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_sits_in_a_known_room():
    rooms = {p.name for p in SIM.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms <= set(RANK), rooms - set(RANK)
    loose = {p.stem for p in SIM.glob("*.py")}
    assert loose <= {"__init__", "__main__", "cli", "cli_grammar"}, loose


def test_imports_run_one_way_and_name_no_private():
    bad = []
    for f in SIM.rglob("*.py"):
        rel = f.relative_to(SIM.parent).with_suffix("")
        here = rel.parts[1] if len(rel.parts) > 1 else rel.parts[0]
        for module, name in _imports(f):
            room = _room(module) if module != "sim" else None
            if room is None and name and module == "sim":
                room = name if name in RANK else None
            if room in RANK and RANK[room] > RANK.get(here, 99):
                bad.append(f"{rel} ({here}) imports {module} ({room})")
            if name and name.startswith("_") and not name.startswith("__"):
                bad.append(f"{rel} imports private {module}.{name}")
        assert "spec_from_file_location" not in f.read_text(), f
    assert not bad, "\n".join(bad)


# --- policies and accountability never reach into the district --------------------------
# The district hands the regimes a ``DayContext`` and the year's end a ``YearEnd`` (and
# ``Accountability`` what it keeps when built); nothing in these rooms may hold the
# district, or climb to it through an agent's ``model``.
HANDED = ("policies", "accountability")
MODEL_NAMES = {"model", "district"}


def _reaches_for_the_model(path: Path) -> list[str]:
    """Where a file names the district: a ``.model`` attribute (Mesa agents' way back to
    their model), a parameter or variable called ``model``/``district``, or a name
    ``District``/``Model``."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        where = f"{path.relative_to(path.parents[2])}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr == "model":  # (params.district: config)
            bad.append(f"{where} reads .{node.attr}")
        elif isinstance(node, ast.arg) and node.arg in MODEL_NAMES:
            bad.append(f"{where} takes a parameter {node.arg}")
        elif isinstance(node, ast.Name) and (node.id in MODEL_NAMES
                                             or node.id in {"District", "Model"}):
            bad.append(f"{where} names {node.id}")
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names = [getattr(node, "module", None) or ""] + [a.name for a in node.names]
            if any(n.split(".")[0] == "mesa" for n in names):
                bad.append(f"{where} imports mesa")
    return bad


def test_policies_and_accountability_name_no_district():
    bad = [b for room in HANDED for f in (SIM / room).rglob("*.py")
           for b in _reaches_for_the_model(f)]
    assert not bad, "\n".join(bad)


def test_the_rule_catches_a_policy_that_takes_the_model(tmp_path):
    sample = tmp_path / "sim" / "policies" / "x.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("def assign(model, slots):\n    return model.record.bits[slots]\n\n"
                      "def rows(school):\n    return school.model.students\n")
    got = _reaches_for_the_model(sample)
    assert len(got) == 3, got  # the parameter, the name read, the agent's .model
    assert "sim/policies/x.py:1 takes a parameter model" in got
    assert "sim/policies/x.py:5 reads .model" in got


def test_no_district_reaches_policy_or_accountability_code_at_run_time():
    """A year of every pacing rule, drift, pace limits, tutoring, advisory, leaders and the
    review, with a trace of every Python call: no frame of code in ``sim/policies`` or
    ``sim/accountability`` is ever given the district (whatever its name there)."""
    import sys

    from mesa import Model

    from sim.config.scenario import validate_scenario
    from sim.district.reference import district_for

    rooms = tuple(str(SIM / room) for room in HANDED)
    calls, seen = [0], []

    def held(v) -> bool:  # the district itself, or in the arguments' *args / **kwargs
        if isinstance(v, tuple | list):
            return any(isinstance(x, Model) for x in v)
        if isinstance(v, dict):
            return any(isinstance(x, Model) for x in v.values())
        return isinstance(v, Model)

    def trace(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(rooms):
            calls[0] += 1
            seen.extend(f"{frame.f_code.co_qualname}({k})" for k, v in frame.f_locals.items()
                        if held(v))
        return None

    arms = [{"label": "tr", "pacing": "traditional", "advisory_hours_per_week": 2},
            {"label": "pl", "pacing": "personalized", "floor": 2, "limit_paces": True,
             "test_prep_weeks": 2, "tutoring": {"hours_per_week": 2},
             "leaders": {"responses": ["raise_floor", "test_prep"], "responsiveness": 100},
             "review": {"after_years": 1, "min_improvement": 0.5, "timing_spread": 0}},
            {"label": "gl", "pacing": "grade_level_first"},
            {"label": "xt", "pacing": "extra_time", "sections": 2}]
    sc = validate_scenario({
        "name": "t", "seed": 2, "years": 2,
        "district": {"schools": 1, "classes_per_grade": 2, "class_size": 10,
                     "grades": [5, 6], "program_grades": [6]},
        "calendar": {"days": 24, "state_test_day": 18, "spring_test_day": 22,
                     "fall_test_day": 1, "benchmark_every_days": 10, "burn_in_years": 1},
        "assessment": {"reference_students_per_grade": 100},
        "sensemaking": {"target_proficiency": 0.95},
        "arms": arms})
    for arm in sc.arms:
        district = district_for(sc, arm)
        sys.settrace(trace)
        try:
            district.run()
        finally:
            sys.settrace(None)
    assert calls[0] > 1000  # the rooms' code ran, traced
    assert not seen, sorted(set(seen))
