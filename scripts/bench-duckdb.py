#!/usr/bin/env python3
# The DuckDB side of `stratum bench segments`.
#
# Pinned: duckdb==1.5.6 (PyPI), the last 1.x release, and PyYAML==6.0.3, which
# reads the definitions for the drift check. Both come with
#
#     scripts/install-dependencies --with-bench-tools
#     python3 scripts/bench-duckdb.py --store /tmp/bench.sqlite [--json] [--verify]
#
# Output. Without --json, human-readable lines on stdout. With --json, stdout
# holds exactly one JSON object (one line) and the human-readable lines go to
# stderr. Its shape is stable:
#
#     {"duckdb_version": "1.5.6",       DuckDB's version string
#      "threads": 2,                    DuckDB threads used
#      "load_seconds": 4.1,             copying the store into DuckDB (not timed below)
#      "total_seconds": 1.9,            all definitions, in order, wall clock
#      "definitions": [                 in evaluation order: traits, RFM, segments
#        {"kind": "Trait",              "Trait", "RFM" or "Segment"
#         "name": "avg_order_value",    the definition's name
#         "seconds": 0.05,              CREATE TABLE AS plus counting its rows
#         "profiles": 64526}, ...]}     rows: profiles with a value, scored or member
#
# Seconds are floats (unrounded); keys appear in this order. --verify adds
# nothing to stdout; a mismatch makes the exit status 1 (after the JSON).
#
# Loads the source data of a store written by `stratum bench segments`
# (events, profiles, profile_identifiers, consents, and the stored members of
# static segments: never the derived computed_traits column, the evaluated
# segments' memberships or runs) into an in-memory DuckDB
# database, untimed, then runs DuckDB SQL equivalent to what our engine
# computes for every Trait, RFM model and Segment of the definitions, timed
# one by one, each materialised with CREATE TABLE AS. Traits first, then RFM
# models, then segments in reference order, as DefinitionEvaluator does.
#
# The SQL is written by hand for the bundled definitions (TRAITS, RFM and
# SEGMENTS below) from the YAML and from how our compiler reads it
# (Sources/StratumStore/TraitQuery.swift, SegmentQuery.swift,
# Sources/StratumEngine/Traits/RFMScoring.swift). Each translation records the
# definition it was written for; a definition that is missing here or differs
# from that record (anything but description, display_name and schedule)
# stops the script, so the two sides cannot drift apart silently.
#
# Like our side, the SQL reads event properties and profile_data as JSON text
# (DuckDB's json functions at query time: nothing is pre-parsed at load), and
# applies the same typing rules (README.md, "Operators"): JSON types never mix.
# A JSON true is not 1 and "12.5" is a string, so sum, average, min, max and
# RFM's monetary value take JSON numbers only (json_type BIGINT, UBIGINT or
# DOUBLE here, 'integer' or 'real' there) and skip everything else; numbers
# compare numerically, strings exactly and only with strings, booleans only
# with booleans; unique_count counts numbers by value (1 and 1.0 once) and
# other non-null values by their JSON text ("1", true and 1 apart); a missing
# value (absent or JSON null) matches only not_equals, not_in and not_exists;
# dates compare as instants to the millisecond, and only JSON strings are
# dates; sums are exact decimals. Trait fallbacks (0, false) hold for every
# profile of the tenant. `field: segment` reads a dynamic or computed
# segment's table (evaluated earlier as of the same instant: the set our side
# evaluates inline) and a static segment's stored members (table
# static_members, loaded with the source data).
#
# Known limits of the translation, none of which the bench data reaches: sums
# are DECIMAL(38, 10) read from the JSON text (our side reads a JSON number
# through a double, so more than 17 significant digits or 10 decimals can
# differ); unique_count compares strings by DuckDB's re-serialised JSON text
# (SQLite keeps the original escapes, so "\u0041" and "A" are two values there).
#
# --verify afterwards (untimed) compares the results with what the Swift
# bench left in the same store: run counts, every segment's members, the RFM
# scores, and every profile's trait values with their JSON types.

import argparse
import csv
import json
import math
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

try:
    import duckdb
except ImportError:
    sys.exit("bench-duckdb: needs DuckDB: scripts/install-dependencies --with-bench-tools (pip: duckdb==1.5.6)")
try:
    import yaml
except ImportError:
    sys.exit("bench-duckdb: needs PyYAML: scripts/install-dependencies --with-bench-tools (pip: PyYAML==6.0.3)")

DAY = 86_400_000
TENANT = "default"
# DuckDB's json_type of a JSON number: SQLite's `json_type(...) IN ('integer', 'real')`.
# Booleans are not numbers (SQLite's json_extract returns them as 1 and 0; our
# side tests json_type, so neither do we).
NUMERIC = "('BIGINT', 'UBIGINT', 'DOUBLE')"
# Exact decimal sums, as stratum's DecimalSum computes them (amounts as written).
DECIMAL = "DECIMAL(38, 10)"
# Keys of a definition that do not change what it computes.
IGNORED_KEYS = {"kind", "name", "description", "display_name", "schedule", "refresh_interval_hours"}


def q(name):
    """A quoted DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def trait_table(name):
    return q("trait." + name)


def rfm_table(name):
    return q("rfm." + name)


def segment_table(name):
    return q("segment." + name)


# ---------------------------------------------------------------------------
# SQL fragments shared by the translations. `c` is the context: c.asof (ms),
# c.churn_ms.


def events_of(c, name, *, since=None, until=True, sources=None, columns="e.profile_id, e.event_time, e.properties"):
    """The tenant's events named `name` with a profile, at or before as-of and,
    with `since`, at or after it (our trait and event-condition filters)."""
    filters = [f"e.tenant_id = '{TENANT}'", "e.profile_id IS NOT NULL", f"e.event_name = '{name}'"]
    if until:
        filters.append(f"e.event_time <= {c.asof}")
    if since is not None:
        filters.append(f"e.event_time >= {since}")
    if sources:
        filters.append("e.source_id IN (" + ", ".join(f"'{s}'" for s in sources) + ")")
    return f"SELECT {columns} FROM events e WHERE " + " AND ".join(filters)


def is_number(j):
    """`json_type(...) IN ('integer', 'real')` for a JSON value `j` (NULL when absent).
    DuckDB may evaluate the terms of an AND in any order, so a cast next to
    this test is a TRY_CAST (a CASE WHEN branch is safe: only its rows reach it)."""
    return f"json_type({j}) IN {NUMERIC}"


def distinct_key(j, ty):
    """What unique_count counts for a JSON value `j` of json_type `ty`: a number
    by value (SQLite's DISTINCT over json_extract: integer 1 and real 1.0 are
    equal, integers beyond int64 are reals), anything else but null by its JSON
    text (`e.properties -> path`), so "1", true and 1 are three values."""
    d = f"{j}::DOUBLE"
    return (f"CASE WHEN {ty} IN ('BIGINT', 'UBIGINT') AND TRY_CAST({j} AS BIGINT) IS NOT NULL THEN TRY_CAST({j} AS BIGINT)::VARCHAR "
            f"WHEN {ty} IN {NUMERIC} THEN (CASE WHEN {d} = trunc({d}) AND abs({d}) < 9223372036854775808 "
            f"THEN {d}::HUGEINT::VARCHAR ELSE {d}::VARCHAR END) "
            f"WHEN {ty} <> 'NULL' THEN {j}::VARCHAR END")


def lifecycle(c):
    """The lifecycle stage with churn applied at as-of (SegmentQuery.column)."""
    return f"(CASE WHEN {c.asof} - p.last_seen_at > {c.churn_ms} THEN 'churned' ELSE p.lifecycle_stage END)"


def json_text_in(doc, key, values):
    """`json_extract(doc, '$.key') IN (strings)`: only a JSON string can equal a string."""
    listed = ", ".join(f"'{v}'" for v in values)
    return f"COALESCE(json_type({doc}, '$.{key}') = 'VARCHAR' AND ({doc} ->> '$.{key}') IN ({listed}), false)"


def json_missing(doc, key):
    """`json_extract(doc, '$.key') IS NULL`: absent or JSON null."""
    return f"(({doc} ->> '$.{key}') IS NULL)"


def has_identifier(type_):
    return f"p.id IN (SELECT i.profile_id FROM profile_identifiers i WHERE i.tenant_id = '{TENANT}' AND i.identifier_type = '{type_}')"


def latest_consent(type_):
    """Per profile, `granted` of the latest consent record of `type_` or `all`
    (by recorded_at, then seq): SegmentQuery's consent subquery, set-at-a-time."""
    types = ", ".join(f"'{t}'" for t in dict.fromkeys([type_, "all"]))
    return (f"(SELECT c.profile_id, first(c.granted ORDER BY c.recorded_at DESC, c.seq DESC) AS granted FROM consents c "
            f"WHERE c.tenant_id = '{TENANT}' AND c.consent_type IN ({types}) GROUP BY c.profile_id)")


def instant(ms):
    """A millisecond instant as a DuckDB TIMESTAMP literal expression. Our side
    reads ISO-8601 text through julianday() to the millisecond, exactly the
    precision of the TIMESTAMPs first/last traits hold here."""
    return f"epoch_ms({ms}::BIGINT)"


def stored_members(name):
    """`field: segment` naming a static segment: its stored members."""
    return f"SELECT m.profile_id FROM static_members m WHERE m.segment = '{name}'"


def profiles_where(c, joins, *conditions):
    """`SELECT p.id FROM profiles p WHERE <tenant> AND <seen by as-of> AND <rules>` (SegmentQuery.select)."""
    where = [f"p.tenant_id = '{TENANT}'", f"p.first_seen_at <= {c.asof}"] + [f"({x})" for x in conditions]
    return "SELECT p.id AS profile_id FROM profiles p " + " ".join(joins) + " WHERE " + " AND ".join(where)


# ---------------------------------------------------------------------------
# Traits: SELECT profile_id, value ... GROUP BY profile_id over the matching
# events (TraitQuery.traitValues). A profile without a matching event has no
# row here; our side stores the fallback (0 for count, unique_count and sum;
# false for exists; nothing for the others) for every other profile of the
# tenant, so segments read COALESCE(value, fallback).
# `profiles` is the number of rows, like our trait_values table.

TRAITS = {
    "avg_order_value": {
        "spec": {"type": "average", "event": "Purchase", "property": "total", "window": {"last": 365, "unit": "days"}},
        "sql": lambda c: f"""
            SELECT profile_id, AVG(CASE WHEN {is_number('t')} THEN t::DOUBLE END) AS value
            FROM ({events_of(c, 'Purchase', since=c.asof - 365 * DAY, columns="e.profile_id, json_extract(e.properties, '$.total') AS t")})
            GROUP BY profile_id""",
    },
    "first_purchase_at": {
        "spec": {"type": "first", "event": "Purchase"},
        "sql": lambda c: f"""
            SELECT e.profile_id, epoch_ms(MIN(e.event_time)) AS value
            FROM ({events_of(c, 'Purchase')}) e GROUP BY e.profile_id""",
    },
    "has_abandoned_cart": {
        "spec": {"type": "exists", "event": "AddToCart", "window": {"last": 7, "unit": "days"}},
        "sql": lambda c: f"""
            SELECT e.profile_id, true AS value
            FROM ({events_of(c, 'AddToCart', since=c.asof - 7 * DAY)}) e GROUP BY e.profile_id""",
    },
    "last_purchase_at": {
        "spec": {"type": "last", "event": "Purchase"},
        "sql": lambda c: f"""
            SELECT e.profile_id, epoch_ms(MAX(e.event_time)) AS value
            FROM ({events_of(c, 'Purchase')}) e GROUP BY e.profile_id""",
    },
    "last_viewed_category": {
        # The property of the latest event that carries one (absent and JSON null
        # skipped), as TraitQuery ranks them; ties at one instant go by storage
        # order there and are not reproduced here (the bench data has none).
        "spec": {"type": "last", "event": "ProductView", "property": "category"},
        "sql": lambda c: f"""
            SELECT e.profile_id, arg_max_null(json_extract(e.properties, '$.category'), e.event_time) AS value
            FROM ({events_of(c, 'ProductView')}) e
            WHERE json_type(e.properties, '$.category') IS NOT NULL AND json_type(e.properties, '$.category') <> 'NULL'
            GROUP BY e.profile_id""",
    },
    "lifetime_value": {
        "spec": {"type": "sum", "event": "Purchase", "property": "total", "window": "all"},
        "sql": lambda c: f"""
            SELECT profile_id, COALESCE(SUM(CASE WHEN {is_number('t')} THEN TRY_CAST(t AS {DECIMAL}) END), 0) AS value
            FROM ({events_of(c, 'Purchase', columns="e.profile_id, json_extract(e.properties, '$.total') AS t")})
            GROUP BY profile_id""",
    },
    "max_order_value": {
        "spec": {"type": "max", "event": "Purchase", "property": "total"},
        "sql": lambda c: f"""
            SELECT profile_id, MAX(CASE WHEN {is_number('t')} THEN t::DOUBLE END) AS value
            FROM ({events_of(c, 'Purchase', columns="e.profile_id, json_extract(e.properties, '$.total') AS t")})
            GROUP BY profile_id""",
    },
    "order_count": {
        "spec": {"type": "count", "event": "Purchase", "where": [{"property": "total", "operator": "greater_than", "value": 0}],
                 "sources": ["website", "backend"]},
        "sql": lambda c: f"""
            SELECT profile_id, COUNT(*) AS value
            FROM ({events_of(c, 'Purchase', sources=['website', 'backend'], columns="e.profile_id, json_extract(e.properties, '$.total') AS t")})
            WHERE {is_number('t')} AND TRY_CAST(t AS DOUBLE) > 0
            GROUP BY profile_id""",
    },
    "page_views_7d": {
        "spec": {"type": "count", "event": "page", "sources": ["website"], "window": {"last": 7, "unit": "days"}},
        "sql": lambda c: f"""
            SELECT e.profile_id, COUNT(*) AS value
            FROM ({events_of(c, 'page', since=c.asof - 7 * DAY, sources=['website'])}) e GROUP BY e.profile_id""",
    },
    "total_purchases": {
        "spec": {"type": "count", "event": "Purchase", "window": "all"},
        "sql": lambda c: f"""
            SELECT e.profile_id, COUNT(*) AS value
            FROM ({events_of(c, 'Purchase')}) e GROUP BY e.profile_id""",
    },
    "viewed_products_30d": {
        # Numbers by value, other values by JSON text, JSON null not a value.
        "spec": {"type": "unique_count", "event": "ProductView", "property": "product_id", "window": {"last": 30, "unit": "days"}},
        "sql": lambda c: f"""
            SELECT profile_id, COUNT(DISTINCT {distinct_key('j', 'ty')}) AS value
            FROM (SELECT profile_id, j, json_type(j) AS ty
                  FROM ({events_of(c, 'ProductView', since=c.asof - 30 * DAY, columns="e.profile_id, json_extract(e.properties, '$.product_id') AS j")}))
            GROUP BY profile_id""",
    },
}

# ---------------------------------------------------------------------------
# RFM (TraitQuery.rfmInputs + RFMScoring.score): per profile with a Purchase
# in the lookback window, days since the latest (integer division), the count
# and the exact decimal sum of `total` where it is a JSON number (numeric
# strings and booleans are skipped); cut points are the 20/40/60/80th
# percentiles by nearest rank (value at rank ceil(p/100 * N), computed in
# doubles as Swift does); a score is 1 + the cut points a value exceeds (days:
# 6 - that); the named segment is the first listed that holds all three.

RFM_SEGMENTS = [
    ("Champions", (5, 5), (5, 5), (5, 5)),
    ("Loyal", (4, 5), (4, 5), (4, 5)),
    ("Potential Loyal", (4, 5), (2, 3), (2, 3)),
    ("New", (5, 5), (1, 1), (1, 1)),
    ("At Risk", (2, 3), (4, 5), (4, 5)),
    ("Hibernating", (1, 2), (1, 2), (1, 2)),
    ("Promising", (3, 4), (1, 1), (1, 3)),
    ("Need Attention", (3, 3), (2, 3), (2, 3)),
    ("About to Sleep", (2, 3), (1, 2), (1, 2)),
    ("Can't Lose Them", (1, 1), (4, 5), (4, 5)),
    ("Lost", (1, 1), (1, 5), (1, 5)),
]


def rfm_customer_value(c):
    lookback = 365
    rank = lambda p: f"greatest(1, least(n, ceil(({p}::DOUBLE / 100::DOUBLE) * n::DOUBLE)::BIGINT))"
    score = lambda column, cuts: "1 + " + " + ".join(f"({column} > {cuts}[{rank(p)}])::INTEGER" for p in (20, 40, 60, 80))
    named = "\n".join(
        f"                WHEN r BETWEEN {r[0]} AND {r[1]} AND f BETWEEN {f[0]} AND {f[1]} AND m BETWEEN {m[0]} AND {m[1]} THEN '{name.replace(chr(39), chr(39) * 2)}'"
        for name, r, f, m in RFM_SEGMENTS)
    return f"""
        WITH inputs AS (
            SELECT e.profile_id,
                   MAX(CASE WHEN e.event_name = 'Purchase' THEN e.event_time END) AS latest,
                   SUM(CASE WHEN e.event_name = 'Purchase' THEN 1 ELSE 0 END) AS frequency,
                   COALESCE(SUM(CASE WHEN e.event_name = 'Purchase' AND {is_number('e.t')} THEN TRY_CAST(e.t AS {DECIMAL}) END), 0) AS monetary
            FROM (SELECT e.profile_id, e.event_name, e.event_time, json_extract(e.properties, '$.total') AS t FROM events e
                  WHERE e.tenant_id = '{TENANT}' AND e.profile_id IS NOT NULL AND e.event_name IN ('Purchase')
                    AND e.event_time BETWEEN {c.asof - lookback * DAY} AND {c.asof}) e
            GROUP BY e.profile_id
        ), measured AS (
            SELECT profile_id, frequency, monetary,
                   CASE WHEN latest IS NULL THEN {lookback + 1} ELSE ({c.asof} - latest) // {DAY} END AS days
            FROM inputs
        ), cuts AS (
            SELECT count(*) AS n, list_sort(list(days)) AS ds, list_sort(list(frequency)) AS fs, list_sort(list(monetary)) AS ms
            FROM measured
        ), scored AS (
            SELECT v.profile_id,
                   6 - ({score('v.days', 'ds')}) AS r,
                   {score('v.frequency', 'fs')} AS f,
                   {score('v.monetary', 'ms')} AS m
            FROM measured v, cuts
        )
        SELECT profile_id, r, f, m,
            CASE
{named}
                ELSE 'Other'
            END AS segment
        FROM scored"""


RFM = {
    "customer-value": {
        "spec": {"recency_event": "Purchase", "frequency_event": "Purchase", "monetary_property": "total", "lookback_days": 365,
                 "quintile_scoring": True, "segments": [
                     {"name": name, "r": rr[0] if rr[0] == rr[1] else f"{rr[0]}-{rr[1]}", "f": ff[0] if ff[0] == ff[1] else f"{ff[0]}-{ff[1]}",
                      "m": mm[0] if mm[0] == mm[1] else f"{mm[0]}-{mm[1]}"} for name, rr, ff, mm in RFM_SEGMENTS]},
        "sql": rfm_customer_value,
    },
}

# ---------------------------------------------------------------------------
# Segments (SegmentQuery): the tenant's profiles first seen by as-of that
# match the rules. Traits and RFM scores come from the tables above, typed as
# our side stores them (exists a boolean, counts integers, sums and the others
# numbers, first/last instants), so a rule on them is the typed comparison;
# numbers compare as doubles, as SQLite's json_extract reads them. `field:
# segment` reads a dynamic or computed segment's table (our side expands its
# rules inline, at the same instant: the same set) or, for a static segment,
# stored_members(name).

CV = rfm_table("customer-value")

SEGMENTS = {
    "cart-abandoners": {
        "spec": {"segment_type": "dynamic", "rules": {"logic": "and", "conditions": [
            {"field": "computed_traits.has_abandoned_cart", "operator": "equals", "value": True},
            {"field": "event", "event_name": "Purchase", "operator": "not_within_last", "value": 3, "unit": "days"},
            {"field": "identifiers.email", "operator": "exists"}]}},
        "sql": lambda c: profiles_where(
            c, [f"LEFT JOIN {trait_table('has_abandoned_cart')} cart ON cart.profile_id = p.id"],
            "COALESCE(cart.value, false) = true",
            f"p.id NOT IN ({events_of(c, 'Purchase', since=c.asof - 3 * DAY, columns='e.profile_id')})",
            has_identifier("email")),
    },
    "champions-and-loyal": {
        "spec": {"segment_type": "computed", "rules": {"conditions": [
            {"field": "rfm.customer-value.segment", "operator": "in", "value": ["Champions", "Loyal"]}]}},
        "sql": lambda c: profiles_where(
            c, [f"JOIN {CV} rfm ON rfm.profile_id = p.id"],
            "rfm.segment IN ('Champions', 'Loyal')"),
    },
    "churned-high-spenders": {
        "spec": {"segment_type": "computed", "rules": {"logic": "and", "conditions": [
            {"field": "lifecycle_stage", "operator": "equals", "value": "churned"}], "groups": [{"logic": "or", "conditions": [
                {"field": "computed_traits.lifetime_value", "operator": "greater_or_equal", "value": 200},
                {"field": "computed_traits.max_order_value", "operator": "greater_or_equal", "value": 150}]}]}},
        "sql": lambda c: profiles_where(
            c, [f"LEFT JOIN {trait_table('lifetime_value')} ltv ON ltv.profile_id = p.id",
                f"LEFT JOIN {trait_table('max_order_value')} mov ON mov.profile_id = p.id"],
            f"{lifecycle(c)} = 'churned'",
            "COALESCE(ltv.value, 0)::DOUBLE >= 200 OR mov.value >= 150"),
    },
    "early-adopters": {
        "spec": {"segment_type": "computed", "rules": {"logic": "and", "conditions": [
            {"field": "computed_traits.first_purchase_at", "operator": "before", "value": "2024-01-01T00:00:00Z"},
            {"field": "last_seen_at", "operator": "after", "value": "2025-01-01T00:00:00Z"},
            {"field": "total_revenue", "operator": "greater_than", "value": 0}]}},
        "sql": lambda c: profiles_where(
            c, [f"LEFT JOIN {trait_table('first_purchase_at')} fpa ON fpa.profile_id = p.id"],
            f"fpa.value < {instant(iso_ms('2024-01-01T00:00:00Z'))}",
            f"p.last_seen_at > {iso_ms('2025-01-01T00:00:00Z')}",
            # total_revenue is decimal text: `CAST(total_revenue AS REAL) > 0`.
            "p.total_revenue IS NOT NULL AND TRY_CAST(p.total_revenue AS DOUBLE) > 0"),
    },
    "email-subscribers": {
        "spec": {"segment_type": "dynamic", "rules": {"logic": "and", "conditions": [
            {"field": "consent.email", "operator": "equals", "value": True},
            {"field": "identifiers.email", "operator": "exists"}]}},
        "sql": lambda c: profiles_where(
            c, [f"LEFT JOIN {latest_consent('email')} consent ON consent.profile_id = p.id"],
            "consent.granted = 1",
            has_identifier("email")),
    },
    "frequent-big-spenders": {
        "spec": {"segment_type": "dynamic", "rules": {"logic": "and", "conditions": [
            {"field": "event", "event_name": "Purchase", "operator": "within_last", "value": 30, "unit": "days",
             "where": [{"property": "total", "operator": "greater_than", "value": 50}],
             "count": {"operator": "greater_or_equal", "value": 3}}]}},
        "sql": lambda c: profiles_where(
            c, [],
            f"""p.id IN (SELECT profile_id FROM ({events_of(c, 'Purchase', since=c.asof - 30 * DAY, columns="e.profile_id, json_extract(e.properties, '$.total') AS t")})
                WHERE {is_number('t')} AND TRY_CAST(t AS DOUBLE) > 50 GROUP BY profile_id HAVING COUNT(*) >= 3)"""),
    },
    "gmail-customers": {
        "spec": {"status": "draft", "segment_type": "dynamic", "rules": {"logic": "and", "conditions": [
            {"field": "profile_data.email", "operator": "contains", "value": "@gmail.com"},
            {"field": "lifecycle_stage", "operator": "not_equals", "value": "anonymous"}]}},
        "sql": None,  # a draft: never evaluated
    },
    "high-value-customers": {
        "spec": {"segment_type": "dynamic", "rules": {"logic": "and", "conditions": [
            {"field": "lifecycle_stage", "operator": "equals", "value": "customer"},
            {"field": "computed_traits.total_purchases", "operator": "greater_than", "value": 3},
            {"field": "event", "event_name": "Purchase", "operator": "within_last", "value": 30, "unit": "days"}],
            "groups": [{"logic": "or", "conditions": [{"field": "profile_data.country", "operator": "in", "value": ["US", "CA", "UK"]}]}]}},
        "sql": lambda c: profiles_where(
            c, [f"LEFT JOIN {trait_table('total_purchases')} tp ON tp.profile_id = p.id"],
            f"{lifecycle(c)} = 'customer'",
            "COALESCE(tp.value, 0) > 3",
            f"p.id IN ({events_of(c, 'Purchase', since=c.asof - 30 * DAY, columns='e.profile_id')})",
            json_text_in("p.profile_data", "country", ["US", "CA", "UK"])),
    },
    "international-customers": {
        "spec": {"segment_type": "dynamic", "rules": {"logic": "and", "conditions": [
            {"field": "lifecycle_stage", "operator": "equals", "value": "customer"},
            {"field": "profile_data.country", "operator": "exists"},
            {"field": "profile_data.country", "operator": "not_in", "value": ["US", "CA", "UK"]},
            {"field": "consent.all", "operator": "not_equals", "value": False}]}},
        "sql": lambda c: profiles_where(
            c, [f"LEFT JOIN {latest_consent('all')} consent ON consent.profile_id = p.id"],
            f"{lifecycle(c)} = 'customer'",
            f"NOT {json_missing('p.profile_data', 'country')}",
            f"{json_missing('p.profile_data', 'country')} OR NOT {json_text_in('p.profile_data', 'country', ['US', 'CA', 'UK'])}",
            "consent.granted IS NULL OR NOT (consent.granted = 0)"),
    },
    "lapsed-customers": {
        "spec": {"segment_type": "computed", "rules": {"logic": "and", "conditions": [
            {"field": "lifecycle_stage", "operator": "in", "value": ["customer", "churned"]},
            {"field": "computed_traits.last_purchase_at", "operator": "not_within_last", "value": 90, "unit": "days"},
            {"field": "rfm.customer-value.f", "operator": "greater_or_equal", "value": 3},
            {"field": "rfm.customer-value.r", "operator": "less_or_equal", "value": 2}]}},
        "sql": lambda c: profiles_where(
            c, [f"LEFT JOIN {trait_table('last_purchase_at')} lpa ON lpa.profile_id = p.id",
                f"JOIN {CV} rfm ON rfm.profile_id = p.id"],
            f"{lifecycle(c)} IN ('customer', 'churned')",
            f"lpa.value < {instant(c.asof - 90 * DAY)}",
            "rfm.f >= 3",
            "rfm.r <= 2"),
    },
    "mid-value-customers": {
        "spec": {"segment_type": "dynamic", "rules": {"logic": "and", "conditions": [
            {"field": "computed_traits.lifetime_value", "operator": "between", "value": [100, 1000]},
            {"field": "rfm.customer-value.segment", "operator": "not_in", "value": ["Champions", "Loyal"]}]}},
        "sql": lambda c: profiles_where(
            c, [f"LEFT JOIN {trait_table('lifetime_value')} ltv ON ltv.profile_id = p.id",
                f"LEFT JOIN {CV} rfm ON rfm.profile_id = p.id"],
            "COALESCE(ltv.value, 0)::DOUBLE BETWEEN 100 AND 1000",
            "rfm.segment IS NULL OR NOT (rfm.segment IN ('Champions', 'Loyal'))"),
    },
    "new-visitors": {
        "spec": {"segment_type": "dynamic", "rules": {"logic": "and", "conditions": [
            {"field": "first_seen_at", "operator": "within_last", "value": 7, "unit": "days"},
            {"field": "lifecycle_stage", "operator": "in", "value": ["anonymous", "known"]},
            {"field": "total_purchases", "operator": "equals", "value": 0},
            {"field": "computed_traits.viewed_products_30d", "operator": "greater_or_equal", "value": 1}]}},
        "sql": lambda c: profiles_where(
            c, [f"LEFT JOIN {trait_table('viewed_products_30d')} vp ON vp.profile_id = p.id"],
            f"p.first_seen_at BETWEEN {c.asof - 7 * DAY} AND {c.asof}",
            f"{lifecycle(c)} IN ('anonymous', 'known')",
            "p.total_purchases = 0",
            "COALESCE(vp.value, 0) >= 1"),
    },
    "vip-email-audience": {
        "spec": {"segment_type": "dynamic", "rules": {"logic": "and", "conditions": [
            {"field": "segment", "operator": "equals", "value": "high-value-customers"},
            {"field": "segment", "operator": "equals", "value": "email-subscribers"}]}},
        "sql": lambda c: profiles_where(
            c, [],
            f"p.id IN (SELECT profile_id FROM {segment_table('high-value-customers')})",
            f"p.id IN (SELECT profile_id FROM {segment_table('email-subscribers')})"),
    },
    "vip-manual-list": {
        "spec": {"segment_type": "static"},
        "sql": None,  # static: members come from the API and imports, never evaluated
    },
}

KNOWN = {"Trait": TRAITS, "RFM": RFM, "Segment": SEGMENTS}


def iso_ms(text):
    """Milliseconds since the epoch of an ISO-8601 instant."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return round(value.timestamp() * 1000)


# ---------------------------------------------------------------------------
# Definitions: read, compare with the translations, order.


def load_definitions(directory):
    """Every definition under `directory` (*.yaml, *.yml; hidden entries skipped),
    in path order as our loader reads them: [(kind, name, body, path)]."""
    root = Path(directory)
    if not root.is_dir():
        sys.exit(f"bench-duckdb: no definitions directory {directory}")
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(folder) / n for n in names if not n.startswith(".") and n.endswith((".yaml", ".yml"))]
    found = []
    for path in sorted(files, key=lambda p: str(p.relative_to(root))):
        body = yaml.safe_load(path.read_text())
        if isinstance(body, dict) and "kind" in body:
            found.append((body["kind"], body.get("name"), body, path))
    return found


def check_known(definitions):
    """Stops unless every Trait, RFM and Segment is one the script translates, unchanged."""
    problems = []
    for kind, name, body, path in definitions:
        if kind not in KNOWN:
            continue
        known = KNOWN[kind].get(name)
        spec = {k: v for k, v in body.items() if k not in IGNORED_KEYS}
        if known is None:
            problems.append(f"{path}: {kind} {name} has no DuckDB translation in {sys.argv[0]}")
        elif spec != known["spec"]:
            keys = sorted(k for k in set(spec) | set(known["spec"]) if spec.get(k) != known["spec"].get(k))
            problems.append(f"{path}: {kind} {name} differs from what its DuckDB translation was written for (keys: {', '.join(keys)})")
    if problems:
        sys.exit("bench-duckdb: definitions and translations disagree; update the script:\n  " + "\n  ".join(problems))


def churn_period_days(definitions):
    for kind, _, body, _ in definitions:
        if kind == "Settings" and body.get("tenant", TENANT) == TENANT and "churn_period_days" in body:
            return int(body["churn_period_days"])
    return 90  # SettingsDefinition.defaultChurnPeriodDays


def segment_references(rules):
    """The segment names `field: segment` conditions name, nested groups included."""
    if not rules:
        return []
    names = []
    for condition in rules.get("conditions") or []:
        if condition.get("field") == "segment":
            value = condition.get("value")
            names += value if isinstance(value, list) else [value]
    for group in rules.get("groups") or []:
        names += segment_references(group)
    return names


def reference_order(segments):
    """DefinitionEvaluator.referenceOrder: by name, each after the segments it names."""
    remaining = sorted(segments, key=lambda s: s[0])
    names = {name for name, _ in remaining}
    placed, order = set(), []
    while remaining:
        ready = [s for s in remaining if all(r in placed or r not in names for r in segment_references(s[1].get("rules")))]
        step = ready or remaining
        placed |= {name for name, _ in step}
        order += step
        remaining = [s for s in remaining if s not in step]
    return order


def evaluated(body):
    """Static segments and drafts are never evaluated (DefinitionEvaluator.isEvaluated)."""
    return body.get("segment_type", "dynamic") != "static" and body.get("status") != "draft" and body.get("rules") is not None


# ---------------------------------------------------------------------------
# Loading (untimed).

SOURCES = {
    "events": ("SELECT tenant_id, profile_id, source_id, type, event_name, event_time, properties FROM events ORDER BY seq",
               {"tenant_id": "VARCHAR", "profile_id": "VARCHAR", "source_id": "VARCHAR", "type": "VARCHAR", "event_name": "VARCHAR",
                "event_time": "BIGINT", "properties": "VARCHAR"}),
    "profiles": ("""SELECT tenant_id, id, external_id, first_seen_at, last_seen_at, lifecycle_stage, total_events, total_sessions,
                          total_purchases, total_revenue, profile_data FROM profiles""",
                 {"tenant_id": "VARCHAR", "id": "VARCHAR", "external_id": "VARCHAR", "first_seen_at": "BIGINT", "last_seen_at": "BIGINT",
                  "lifecycle_stage": "VARCHAR", "total_events": "BIGINT", "total_sessions": "BIGINT", "total_purchases": "BIGINT",
                  "total_revenue": "VARCHAR", "profile_data": "VARCHAR"}),
    "profile_identifiers": ("SELECT tenant_id, profile_id, identifier_type, identifier_hash FROM profile_identifiers",
                            {"tenant_id": "VARCHAR", "profile_id": "VARCHAR", "identifier_type": "VARCHAR", "identifier_hash": "VARCHAR"}),
    "consents": ("SELECT seq, tenant_id, profile_id, consent_type, granted, granted_at, revoked_at, recorded_at FROM consents",
                 {"seq": "BIGINT", "tenant_id": "VARCHAR", "profile_id": "VARCHAR", "consent_type": "VARCHAR", "granted": "BIGINT",
                  "granted_at": "BIGINT", "revoked_at": "BIGINT", "recorded_at": "BIGINT"}),
}


def copy_table(source, con, table, select, columns, scratch, chunk=200_000):
    """One SQLite query into a DuckDB table through CSV files: strings quoted,
    NULL as an unquoted empty field, so '' and NULL stay apart."""
    path = Path(scratch) / f"{table}.csv"
    cursor = source.execute(select)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        while rows := cursor.fetchmany(chunk):
            writer.writerows(rows)
    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    con.execute(f"""CREATE OR REPLACE TABLE {q(table)} AS SELECT * FROM read_csv('{path}', columns = {spec}, header = false,
        delim = ',', quote = '"', escape = '"', allow_quoted_nulls = false, auto_detect = false)""")
    path.unlink()
    return con.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0]


def open_store(path):
    if not Path(path).is_file():
        sys.exit(f"bench-duckdb: no store at {path}")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def load(store, con, static_segments):
    """The source tables, and the stored members of the static segments
    (`static_segments`: names), which are source data too (API and imports)."""
    source = open_store(store)
    scratch = tempfile.mkdtemp(prefix="bench-duckdb-")
    try:
        rows = {table: copy_table(source, con, table, select, columns, scratch) for table, (select, columns) in SOURCES.items()}
        names = ", ".join("'" + n.replace("'", "''") + "'" for n in static_segments) or "NULL"
        rows["static_members"] = copy_table(
            source, con, "static_members",
            f"SELECT segment, profile_id FROM segment_memberships WHERE tenant_id = '{TENANT}' AND segment IN ({names})",
            {"segment": "VARCHAR", "profile_id": "VARCHAR"}, scratch)
        return rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        source.close()


# ---------------------------------------------------------------------------
# Cross-check with what the Swift bench left in the store (untimed).


def verify(store, con, runs, asof, say):
    """Compares every run with the store's latest evaluation run of the same
    definition, segment members one by one, RFM scores and trait values.
    Returns the number of mismatches."""
    source = open_store(store)
    scratch = tempfile.mkdtemp(prefix="bench-duckdb-verify-")
    try:
        recorded = {(k, n): (p, a) for k, n, p, a in source.execute("""
            SELECT kind, name, profiles, as_of FROM evaluation_runs r
            WHERE tenant_id = ? AND status = 'succeeded'
              AND started_at = (SELECT MAX(started_at) FROM evaluation_runs s WHERE s.tenant_id = r.tenant_id AND s.kind = r.kind AND s.name = r.name)
            """, (TENANT,))}
        copy_table(source, con, "swift.memberships", "SELECT segment, profile_id FROM segment_memberships WHERE tenant_id = 'default'",
                   {"segment": "VARCHAR", "profile_id": "VARCHAR"}, scratch)
        copy_table(source, con, "swift.traits", "SELECT id, computed_traits FROM profiles WHERE tenant_id = 'default'",
                   {"profile_id": "VARCHAR", "computed_traits": "VARCHAR"}, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        source.close()

    def scalar(sql):
        return con.execute(sql).fetchone()[0]

    bad = 0
    say("cross-check with the store's Swift runs:")
    for run in runs:
        kind, name, profiles = run["kind"], run["name"], run["profiles"]
        swift, swift_asof = recorded.get((kind, name), (None, None))
        notes = []
        if swift is None:
            notes.append("no Swift run recorded")
        elif swift_asof != asof:
            notes.append(f"Swift ran as of {swift_asof}, not {asof}")
        elif swift != profiles:
            notes.append(f"Swift {swift} profiles")
        if kind == "Segment":
            ours, theirs = segment_table(name), q("swift.memberships")
            only_ours = scalar(f"SELECT count(*) FROM {ours} WHERE profile_id NOT IN (SELECT profile_id FROM {theirs} WHERE segment = '{name}')")
            only_theirs = scalar(f"SELECT count(*) FROM {theirs} WHERE segment = '{name}' AND profile_id NOT IN (SELECT profile_id FROM {ours})")
            if only_ours or only_theirs:
                notes.append(f"{only_ours} members only here, {only_theirs} only in the store")
        elif kind == "RFM":
            stored = f"""SELECT profile_id, (computed_traits -> '$."rfm.{name}"') AS s FROM {q('swift.traits')}
                         WHERE (computed_traits -> '$."rfm.{name}"') IS NOT NULL"""
            differ = scalar(f"""SELECT count(*) FROM {rfm_table(name)} o FULL JOIN ({stored}) t USING (profile_id)
                WHERE o.profile_id IS NULL OR t.profile_id IS NULL OR o.r IS DISTINCT FROM TRY_CAST(t.s ->> 'r' AS INTEGER)
                   OR o.f IS DISTINCT FROM TRY_CAST(t.s ->> 'f' AS INTEGER) OR o.m IS DISTINCT FROM TRY_CAST(t.s ->> 'm' AS INTEGER)
                   OR o.segment IS DISTINCT FROM (t.s ->> 'segment')""")
            if differ:
                notes.append(f"{differ} profiles scored differently")
        elif kind == "Trait":
            differ = scalar(trait_difference(name))
            if differ:
                notes.append(f"{differ} profiles with a different value")
        bad += bool(notes)
        say(f"  {kind} {name}: {'same' if not notes else '; '.join(notes)}")
    return bad


def trait_difference(name):
    """Profiles of the tenant (all of them: fallbacks reach every profile) whose
    stored value differs from ours plus fallback, in value or in JSON type. A
    JSON null counts as no value, as it does in rules."""
    trait_type = TRAITS[name]["spec"]["type"]
    path = f"'$.\"{name}\"'"
    stored = f"(t.computed_traits -> {path})"
    kind = f"json_type({stored})"
    integers = "('BIGINT', 'UBIGINT')"
    if trait_type in ("count", "unique_count"):
        ours, theirs, types = "COALESCE(o.value, 0)::DOUBLE", f"TRY_CAST({stored} AS DOUBLE)", integers
    elif trait_type == "sum":
        ours, theirs, types = f"COALESCE(o.value, 0)::{DECIMAL}", f"TRY_CAST({stored} AS {DECIMAL})", NUMERIC
    elif trait_type == "exists":
        ours, theirs, types = "COALESCE(o.value, false)", f"TRY_CAST({stored} AS BOOLEAN)", "('BOOLEAN')"
    elif trait_type in ("average", "max", "min"):
        # Doubles, here and written through SQLite's text: equal to 1e-9. JSON
        # null where the events held no number.
        ours, theirs = "round(o.value::DOUBLE, 9)", f"round(TRY_CAST({stored} ->> '$' AS DOUBLE), 9)"
        types = NUMERIC[:-1] + ", 'NULL')"
    elif "property" in TRAITS[name]["spec"]:
        # The property's JSON value, compared by type and text.
        ours, theirs = "(json_type(o.value) || ':' || (o.value ->> '$'))", f"({kind} || ':' || ({stored} ->> '$'))"
        types = None
    else:
        ours, theirs, types = "strftime(o.value, '%Y-%m-%dT%H:%M:%S.%gZ')", f"({stored} ->> '$')", "('VARCHAR')"
    checks = [f"({ours}) IS DISTINCT FROM ({theirs})"]
    if types:
        checks.append(f"({stored} IS NOT NULL AND {kind} NOT IN {types})")
    return f"""SELECT count(*) FROM {q('swift.traits')} t LEFT JOIN {trait_table(name)} o ON o.profile_id = t.profile_id
               WHERE {' OR '.join(checks)}"""


# ---------------------------------------------------------------------------


class Context:
    def __init__(self, asof, churn_days):
        self.asof = asof
        self.churn_ms = churn_days * DAY


def main():
    parser = argparse.ArgumentParser(description="Time DuckDB on SQL equivalent to `stratum bench segments` over the same store.")
    parser.add_argument("--store", required=True, help="a SQLite store written by `stratum bench segments --store`")
    parser.add_argument("--as-of", default="2026-11-01T00:00:00Z", help="the evaluation instant (ISO-8601)")
    parser.add_argument("--definitions", default="definitions", help="the definitions directory")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="DuckDB threads (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    parser.add_argument("--verify", action="store_true",
                        help="afterwards, untimed: compare counts, members, RFM scores and trait values with the Swift runs in the store")
    args = parser.parse_args()

    asof = iso_ms(args.as_of)
    definitions = load_definitions(args.definitions)
    check_known(definitions)
    context = Context(asof, churn_period_days(definitions))

    plan = [("Trait", name, TRAITS[name]["sql"]) for kind, name, _, _ in definitions if kind == "Trait"]
    plan += [("RFM", name, RFM[name]["sql"]) for kind, name, _, _ in definitions if kind == "RFM"]
    segments = [(name, body) for kind, name, body, _ in definitions if kind == "Segment"]
    plan += [("Segment", name, SEGMENTS[name]["sql"]) for name, body in reference_order(segments) if evaluated(body)]
    for kind, name, sql in plan:
        if sql is None:
            sys.exit(f"bench-duckdb: {kind} {name} is evaluated but its translation has no SQL")
    tables = {"Trait": trait_table, "RFM": rfm_table, "Segment": segment_table}

    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    con = duckdb.connect(":memory:", config={"threads": args.threads})
    started = time.perf_counter()
    rows = load(args.store, con, [name for name, body in segments if body.get("segment_type", "dynamic") == "static"])
    load_seconds = time.perf_counter() - started
    say(f"duckdb {duckdb.__version__}, {args.threads} threads: loaded {rows['profiles']} profiles, {rows['events']} events, "
        f"{rows['profile_identifiers']} identifiers, {rows['consents']} consents, {rows['static_members']} static segment members "
        f"in {load_seconds:.2f} s (not timed)")

    runs = []
    total_started = time.perf_counter()
    for kind, name, sql in plan:
        table = tables[kind](name)
        started = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {sql(context)}")
        profiles = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        seconds_taken = time.perf_counter() - started
        runs.append({"kind": kind, "name": name, "seconds": seconds_taken, "profiles": profiles})
        say(f"  {kind} {name}: {seconds_taken:.2f} s, {profiles} profiles")
    total_seconds = time.perf_counter() - total_started
    say(f"duckdb full refresh of {len(runs)} definitions: {total_seconds:.2f} s")

    if args.json:
        print(json.dumps({"duckdb_version": duckdb.__version__, "threads": args.threads, "load_seconds": load_seconds,
                          "total_seconds": total_seconds, "definitions": runs}))
    if args.verify:
        if verify(args.store, con, runs, asof, say):
            sys.exit(1)


if __name__ == "__main__":
    main()
