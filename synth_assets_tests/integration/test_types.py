"""Types beyond numbers, text and timestamps (issue 11 §4): times and intervals are modelled as
seconds, JSON by its shape, arrays by their whole value, bytea by its length; none loads as all
NULL or as a filler, and no raw value of JSON or bytea leaves the boundary."""

import json

from synth_assets.core import pg
from synth_assets.core.roles import infer_role
from synth_assets.core.schema import Column, Table
from synth_assets.core.store import read_json
from synth_assets_tests.integration.test_real_data_rules import _refreshed

TYPES = """
CREATE TABLE src.shift (
  id int PRIMARY KEY,
  starts time NOT NULL,
  starts_tz timetz,
  length interval NOT NULL,
  settings jsonb NOT NULL,
  extra json,
  tags text[] NOT NULL,
  scores int[],
  photo bytea,
  blob bytea NOT NULL,
  net inet
);
INSERT INTO src.shift
SELECT g,
       time '06:00' + (g % 12) * interval '1 hour',
       (time '08:00' + (g % 4) * interval '30 minutes')::timetz,
       make_interval(hours => 4 + g % 5),
       CASE WHEN g % 3 = 0 THEN jsonb_build_object('theme', 'dark')
            ELSE jsonb_build_object('theme', (ARRAY['dark', 'light'])[1 + g % 2], 'size', g % 50,
                                    'email', 'p' || g || '@example.org') END,
       CASE WHEN g % 2 = 0 THEN NULL ELSE json_build_object('k', g, 'tags', json_build_array(g)) END,
       (ARRAY['{red}', '{red,blue}', '{}'])[1 + g % 3]::text[],
       CASE WHEN g % 4 = 0 THEN NULL ELSE ARRAY[g % 3, 1] END,
       CASE WHEN g % 2 = 0 THEN NULL ELSE decode(repeat('ab', 100 + g % 50), 'hex') END,
       decode(md5(g::text), 'hex'),
       ('10.0.0.' || g % 200)::inet
  FROM generate_series(1, 2000) g;
"""


def _col(name: str, base: str, pg_type: str) -> Column:
    return Column(name, pg_type, base, True)


def test_each_type_gets_the_role_that_models_it():
    t = Table("x", [], ("id",))
    assert infer_role(t, _col("at", "time", "time without time zone"), None) == "numeric"
    assert infer_role(t, _col("d", "interval", "interval"), None) == "numeric"
    assert infer_role(t, _col("doc", "jsonb", "jsonb"), None) == "categorical"
    assert infer_role(t, _col("tags", "_text", "text[]"), None) == "categorical"
    assert infer_role(t, _col("img", "bytea", "bytea"), None) == "binary"


def test_times_intervals_json_arrays_and_bytea_are_generated_and_load(pg_workdir, tmp_path):
    cfg, summary = _refreshed(
        pg_workdir, tmp_path, "rd_types", TYPES, target={"schema": "types_copy"}
    )
    assert summary["passed"], summary.get("error")
    assert summary["not_modelled"] == ["shift.net (inet)"]  # said, not silent
    rdir = tmp_path / "runs" / summary["refresh_id"]
    released = json.dumps(read_json(rdir / "metrics_pack.json"))
    assert "example.org" not in released and "\\\\x" not in released  # no raw JSON or bytes
    with pg.connect(cfg.target.url) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'types_copy' AND table_name = 'shift'"
            ).fetchall()
        )
        assert types["starts"] == "time without time zone" and types["length"] == "interval"
        assert types["settings"] == "jsonb" and types["tags"] == "ARRAY"
        assert types["blob"] == "bytea" and types["starts_tz"] == "time with time zone"
        (rows,) = conn.execute("SELECT count(*) FROM types_copy.shift").fetchone()
        assert rows > 500
        # DP noise moves some mass into neighbouring bins: shares are asserted with room for it,
        # medians (which the body of each histogram decides) tightly.
        shares = conn.execute(
            """SELECT avg((starts BETWEEN '05:00' AND '18:00')::int),
                      count(DISTINCT date_trunc('hour', starts::interval)),
                      avg((length BETWEEN interval '3 hours' AND interval '9 hours')::int),
                      avg((starts_tz IS NOT NULL)::int),
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY octet_length(blob)),
                      avg((photo IS NULL)::int),
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY octet_length(photo)),
                      avg((extra IS NULL)::int)
                 FROM types_copy.shift"""
        ).fetchone()
        in_day, hours, in_length, tz, blob_len, photo_null, photo_len, extra_null = shares
        assert in_day >= 0.75 and hours >= 4 and in_length >= 0.75 and tz >= 0.75
        assert 15 <= blob_len <= 30 and 0.3 <= photo_null <= 0.7 and 63 <= photo_len <= 254
        assert 0.3 <= extra_null <= 0.7
        shapes = {
            r[0]
            for r in conn.execute("SELECT DISTINCT settings::text FROM types_copy.shift").fetchall()
        }
        assert shapes <= {'{"theme": ""}', '{"size": 0, "email": "", "theme": ""}'}, shapes
        assert len(shapes) == 2
        extras = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT extra::text FROM types_copy.shift WHERE extra IS NOT NULL"
            ).fetchall()
        }
        assert extras == {'{"k": 0, "tags": []}'}
        tags = {r[0] for r in conn.execute("SELECT DISTINCT tags::text FROM types_copy.shift")}
        assert tags <= {"{red}", "{red,blue}", "{}"} and len(tags) >= 2
        scores = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT scores::text FROM types_copy.shift WHERE scores IS NOT NULL"
            )
        }
        assert scores <= {"{0,1}", "{1,1}", "{2,1}"} and scores
        made = {bytes(r[0]) for r in conn.execute("SELECT blob FROM types_copy.shift")}
    with pg.connect(cfg.source.url) as conn:
        real = {bytes(r[0]) for r in conn.execute("SELECT blob FROM src.shift")}
    assert not made & real  # random bytes, never the source's
