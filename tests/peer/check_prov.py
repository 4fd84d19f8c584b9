"""Peer test: wisecut's provenance export reads back with the W3C `prov` package.

Usage: check_prov.py JSON_FILE PROVN_FILE

Both files are what wisecut wrote for the same lineage walk
(`vo::prov::to_prov_json` and `vo::prov::to_prov_n`).

The reference is the `prov` package (ProvPy, prov>=3.2), whose readers
follow the W3C PROV-JSON submission and the PROV-N Recommendation grammar:

* the JSON is validated against the PROV-JSON submission's JSON schema that
  `prov` ships, when `jsonschema` is installed (skipped, and said so, if not);
* it is read with `ProvDocument.deserialize(format="json")`, and the PROV-N
  with `ProvDocument.deserialize(format="provn", profile="strict")` (the
  Recommendation grammar only), with every `prov` warning — an unresolved
  prefix, a value it would reject in future — turned into a failure;
* the two documents must be equal record for record (prov's own equality:
  same identifiers, formal and extra attributes, typed values), and `prov`'s
  own PROV-N of the JSON document must read back to the same document;
* the graph must have wisecut's shape: every relation points at a declared
  entity or activity; every activity generates exactly one entity, which no
  other activity generates, and used at least one (so a raw frame has no
  activity); every derivation agrees with the generation and usage it
  names, one per usage; every usage has a `prov:role`; activity and usage
  `voprov:type`s come from ProvenanceDM's lists; entities are
  `voprov:DatasetEntity`.

Prints one line, `prov: N entities, M activities, U used, G wasGeneratedBy,
D wasDerivedFrom; PROV-JSON and PROV-N agree (...)`, and exits 1 with the
first disagreement otherwise.
"""

import json
import sys
import warnings
from collections import Counter
from pathlib import Path

import prov
from prov.constants import (
    PROV_ATTR_ACTIVITY,
    PROV_ATTR_ENTITY,
    PROV_ATTR_GENERATED_ENTITY,
    PROV_ATTR_GENERATION,
    PROV_ATTR_USAGE,
    PROV_ATTR_USED_ENTITY,
    PROV_ROLE,
    PROV_TYPE,
)
from prov.model import (
    ProvActivity,
    ProvDerivation,
    ProvDocument,
    ProvEntity,
    ProvGeneration,
    ProvUsage,
)

VOPROV = "http://www.ivoa.net/documents/ProvenanceDM/ns/voprov/"
# ProvenanceDM 1.0, "Terms applicable as activity types".
ACTIVITY_TYPES = {
    "Observation",
    "Simulation",
    "Reduction",
    "Calibration",
    "Reconstruction",
    "Selection",
    "Analysis",
}
# ProvenanceDM 1.0, "Terms applicable as usage or generation type".
USAGE_TYPES = {"Main", "Calibration", "Preview", "Setup", "Quality", "Log", "Context"}
SECTIONS = {"prefix", "entity", "activity", "used", "wasGeneratedBy", "wasDerivedFrom"}


def fail(message):
    sys.exit(f"prov: {message}")


def read(path, fmt, **options):
    """Reads one document with every prov warning raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return ProvDocument.deserialize(source=path, format=fmt, **options)
        except Exception as e:  # a warning, a syntax error, a model error
            fail(f"{path}: {fmt} does not read: {type(e).__name__}: {e}")


def check_schema(container):
    """Validates against the PROV-JSON submission's schema shipped with prov."""
    try:
        import jsonschema
    except ImportError:
        return "schema not checked: no jsonschema"
    schema_path = Path(prov.__file__).parent / "tests/schemas/prov-json.schema.json"
    if not schema_path.exists():
        return "schema not checked: prov ships no schema"
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(container), key=str)
    if errors:
        fail(f"PROV-JSON schema: {errors[0].message} at {list(errors[0].absolute_path)}")
    return "schema-valid"


def one(record, attr):
    values = record.get_attribute(attr)
    if len(values) != 1:
        fail(f"{record.identifier}: {attr} has {len(values)} values, not one")
    return next(iter(values))


def check_shape(doc):
    """wisecut's structure, on the document prov read. Returns the counts."""
    entities = {r.identifier: r for r in doc.get_records(ProvEntity)}
    activities = {r.identifier: r for r in doc.get_records(ProvActivity)}
    usages = list(doc.get_records(ProvUsage))
    generations = list(doc.get_records(ProvGeneration))
    derivations = list(doc.get_records(ProvDerivation))
    if not entities:
        fail("no entities")

    def declared(rel, attr, table, kind):
        target = one(rel, attr)
        if target not in table:
            fail(f"{rel.identifier}: {attr.localpart} {target} is not a declared {kind}")
        return target

    for e in entities.values():
        types = {str(t) for t in e.get_attribute(PROV_TYPE)}
        if "voprov:DatasetEntity" not in types:
            fail(f"{e.identifier}: prov:type is {types}, not voprov:DatasetEntity")
    used_by = {}
    for u in usages:
        act = declared(u, PROV_ATTR_ACTIVITY, activities, "activity")
        declared(u, PROV_ATTR_ENTITY, entities, "entity")
        if not u.get_attribute(PROV_ROLE):
            fail(f"{u.identifier}: no prov:role")
        kinds = set(u.get_attribute("voprov:type"))
        if not kinds <= USAGE_TYPES:
            fail(f"{u.identifier}: voprov:type {kinds} is not a ProvenanceDM usage type")
        used_by.setdefault(act, []).append(u)
    generated = Counter()
    generates = Counter()
    for g in generations:
        generated[declared(g, PROV_ATTR_ENTITY, entities, "entity")] += 1
        generates[declared(g, PROV_ATTR_ACTIVITY, activities, "activity")] += 1
    for ident, a in activities.items():
        if generates[ident] != 1:
            fail(f"{ident} generates {generates[ident]} entities, not one")
        if not used_by.get(ident):
            fail(f"{ident} used nothing: a raw frame must have no activity")
        kinds = set(a.get_attribute("voprov:type"))
        if not kinds <= ACTIVITY_TYPES:
            fail(f"{ident}: voprov:type {kinds} is not a ProvenanceDM activity type")
    for ident, n in generated.items():
        if n != 1:
            fail(f"{ident} is generated {n} times")
    by_id = {r.identifier: r for r in usages + generations}
    for d in derivations:
        child = declared(d, PROV_ATTR_GENERATED_ENTITY, entities, "entity")
        parent = declared(d, PROV_ATTR_USED_ENTITY, entities, "entity")
        act = declared(d, PROV_ATTR_ACTIVITY, activities, "activity")
        g = by_id.get(one(d, PROV_ATTR_GENERATION))
        u = by_id.get(one(d, PROV_ATTR_USAGE))
        if not isinstance(g, ProvGeneration) or not isinstance(u, ProvUsage):
            fail(f"{d.identifier}: its generation or usage is not declared")
        if (one(g, PROV_ATTR_ENTITY), one(g, PROV_ATTR_ACTIVITY)) != (child, act):
            fail(f"{d.identifier}: disagrees with {g.identifier}")
        if (one(u, PROV_ATTR_ENTITY), one(u, PROV_ATTR_ACTIVITY)) != (parent, act):
            fail(f"{d.identifier}: disagrees with {u.identifier}")
    if len(derivations) != len(usages):
        fail(f"{len(derivations)} wasDerivedFrom for {len(usages)} used")
    return len(entities), len(activities), len(usages), len(generations), len(derivations)


def describe(record):
    """A record as text with its attributes sorted, for a readable diff."""
    formal = ", ".join(f"{k}={v}" for k, v in record.formal_attributes)
    extra = ", ".join(sorted(f"{k}={v!r}" for k, v in record.extra_attributes))
    return f"{record.get_type()}({record.identifier}; {formal}; [{extra}])"


def check_same(a, b, what):
    if a == b:
        return
    left = {describe(r) for r in a.get_records()}
    right = {describe(r) for r in b.get_records()}
    only = sorted(left - right)[:1] or sorted(right - left)[:1] or ["namespaces"]
    fail(f"{what} differ, first at: {only[0]}")


def main(json_path, provn_path):
    if int(prov.__version__.split(".")[0]) < 3:
        fail(f"prov {prov.__version__} has no PROV-N reader; install prov>=3.2")
    try:
        container = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except ValueError as e:
        fail(f"{json_path}: not JSON: {e}")
    if not isinstance(container, dict) or not set(container) <= SECTIONS:
        fail(f"{json_path}: top level is not wisecut's PROV-JSON sections")
    if container.get("prefix", {}).get("voprov") != VOPROV:
        fail(f"{json_path}: voprov is not bound to {VOPROV}")
    schema = check_schema(container)

    from_json = read(json_path, "json")
    from_provn = read(provn_path, "provn", profile="strict")
    check_same(from_json, from_provn, "PROV-JSON and PROV-N")
    # prov's own PROV-N of what it read must come back the same too.
    from io import StringIO

    roundtrip = read(StringIO(from_json.get_provn()), "provn", profile="strict")
    check_same(from_json, roundtrip, "PROV-JSON and prov's PROV-N of it")

    n_ent, n_act, n_used, n_gen, n_der = check_shape(from_json)
    print(
        f"prov: {n_ent} entities, {n_act} activities, {n_used} used, "
        f"{n_gen} wasGeneratedBy, {n_der} wasDerivedFrom; PROV-JSON and PROV-N "
        f"agree (prov {prov.__version__}, strict PROV-N, {schema})"
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
