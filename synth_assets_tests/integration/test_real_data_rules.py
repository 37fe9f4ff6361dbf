"""Rules learned from real databases, each on a small real PostgreSQL source: the unit is the
entity, not a dimension table; numerics keep their point masses; values are never invented."""

import os

import numpy as np
import polars as pl
import psycopg
import pytest
from scipy.stats import ks_2samp

from synth_assets.core import pg
from synth_assets.core.errors import DomainError, SchemaError
from synth_assets.core.generate import ShardGenerator
from synth_assets.core.plan import detect_unit_table
from synth_assets.core.profile import profile_source
from synth_assets.core.roles import infer_roles
from synth_assets.core.schema import reflect
from synth_assets.core.spec import calibrate
from synth_assets_tests.conftest import make_config

KEY = b"k" * 32


def _source(pg_workdir, name: str, ddl: str) -> str:
    url = pg.resolve_url(f"embedded:///{name}", pg_workdir)
    with pg.connect(url) as conn:
        conn.execute("DROP SCHEMA IF EXISTS src CASCADE")
        conn.execute("CREATE SCHEMA src")
        conn.execute(ddl)
        conn.commit()
    return url


def _refreshed(pg_workdir, tmp_path, name: str, ddl: str, **sections):
    """A source built from ``ddl``, refreshed and loaded end to end: (config, summary)."""
    import dagster as dg

    from synth_assets.core.secrets import init_local_secrets
    from synth_assets.orchestrate import run_refresh

    url = _source(pg_workdir, name, ddl)
    init_local_secrets(tmp_path / "secrets")
    cfg = make_config(url, source={"schema": "src"}, **sections)
    with dg.DagsterInstance.ephemeral() as inst:
        summary = run_refresh(None, tmp_path, cfg_override=cfg, instance=inst, log=lambda m: None)
    return cfg, summary


def _spec(url: str, **sections):
    cfg = make_config(url, source={"schema": "src"}, **sections)
    with pg.connect(url) as conn:
        model = reflect(conn, "src", None, [])
        roles = infer_roles(conn, model, cfg.columns)
        pack = profile_source(conn, model, roles, cfg, KEY, refresh_id="r-test", log=lambda m: None)
    return model, roles, pack, calibrate(pack, cfg)


def _generate(spec) -> dict:
    gen = ShardGenerator(spec, os.urandom(32))
    frames = {**gen.references()}
    for s in range(spec["shards"]):
        for name, fr in gen.shard(s).items():
            frames.setdefault(name, []).append(fr)
    return frames


def _column(frames, table: str, col: str) -> list:
    parts = frames[table] if isinstance(frames[table], list) else [frames[table]]
    return [v for fr in parts for v in fr.columns[col].to_list()]


DIMENSION = """
CREATE TABLE src.district (id int PRIMARY KEY, name text NOT NULL, region text NOT NULL,
                           inhabitants int NOT NULL);
INSERT INTO src.district SELECT g, 'district ' || g, 'region ' || (g % 8), 1000 * g
  FROM generate_series(1, 77) g;
CREATE TABLE src.account (id int PRIMARY KEY, district_id int NOT NULL REFERENCES src.district,
                          opened date NOT NULL, frequency text NOT NULL);
INSERT INTO src.account SELECT g, 1 + g % 77, DATE '2015-01-01' + (g % 1500),
  (ARRAY['monthly','weekly','after transaction'])[1 + g % 3] FROM generate_series(1, 3000) g;
CREATE TABLE src.client (id int PRIMARY KEY, district_id int NOT NULL REFERENCES src.district,
                         gender text NOT NULL);
INSERT INTO src.client SELECT g, 1 + g % 77, (ARRAY['F','M'])[1 + g % 2]
  FROM generate_series(1, 3500) g;
CREATE TABLE src.trans (id int PRIMARY KEY, account_id int NOT NULL REFERENCES src.account,
                        amount numeric(12,2) NOT NULL, at date NOT NULL);
INSERT INTO src.trans SELECT g, 1 + g % 3000, (g % 997) * 1.5, DATE '2016-01-01' + (g % 900)
  FROM generate_series(1, 30000) g;
"""


def test_a_77_row_dimension_referenced_by_entity_tables_is_not_the_unit(pg_workdir):
    url = _source(pg_workdir, "rd_dimension", DIMENSION)
    with pg.connect(url) as conn:
        model = reflect(conn, "src", None, [])
        roles = infer_roles(conn, model, {})
    assert detect_unit_table(model, roles) == "account"


def test_equally_plausible_units_are_refused_with_both_names(pg_workdir):
    url = _source(
        pg_workdir,
        "rd_ambiguous",
        """
        CREATE TABLE src.plane (tail text PRIMARY KEY, seats int NOT NULL);
        CREATE TABLE src.carrier (code text PRIMARY KEY, label text NOT NULL);
        CREATE TABLE src.flight (id int PRIMARY KEY, tail text NOT NULL REFERENCES src.plane,
                                 code text NOT NULL REFERENCES src.carrier, delay int);
        """,
    )
    with pg.connect(url) as conn:
        model = reflect(conn, "src", None, [])
        roles = infer_roles(conn, model, {})
    with pytest.raises(SchemaError, match="ambiguous.*(plane.*carrier|carrier.*plane)"):
        detect_unit_table(model, roles)


def test_a_numeric_column_that_is_zero_in_80_percent_of_rows_keeps_its_point_mass(pg_workdir):
    url = _source(
        pg_workdir,
        "rd_point_mass",
        """
        CREATE TABLE src.survey (id int PRIMARY KEY, hours double precision NOT NULL,
                                 region text NOT NULL);
        INSERT INTO src.survey SELECT g,
          CASE WHEN g % 5 = 0 THEN 3.7 + (g % 389) * 0.173 ELSE 0 END,
          (ARRAY['north','south','east'])[1 + g % 3] FROM generate_series(1, 5000) g;
        """,
    )
    _, _, pack, spec = _spec(url)
    assert "0" in pack["tables"]["survey"]["columns"]["hours"]["atoms"]
    synth = np.asarray(_column(_generate(spec), "survey", "hours"), dtype=float)
    real = np.where(np.arange(1, 5001) % 5 == 0, 3.7 + (np.arange(1, 5001) % 389) * 0.173, 0.0)
    assert 0.70 < np.mean(synth == 0.0) < 0.90
    assert 1 - ks_2samp(real, synth).statistic >= 0.95


def test_a_zero_inflated_column_whose_other_rows_cannot_be_ranged_is_never_invented(pg_workdir):
    # 97 % zeros; the other 60 rows spread over 2^-20 .. 2^58, a few per 2^8: no range of them
    # clears the noise, at log2 or at 2^8 per bucket. It used to come out in (0, 1]. Now the
    # refresh stops naming the column and the fix (their marginal is ~6 sigma), or, where the
    # marginal cannot tell them from none, generates its point mass alone.
    url = _source(
        pg_workdir,
        "rd_zero_inflated",
        """
        CREATE TABLE src.loan (id int PRIMARY KEY, debt double precision NOT NULL,
                               region text NOT NULL);
        INSERT INTO src.loan SELECT g,
          CASE WHEN g % 100 < 3 THEN power(2.0, -20 + 4 * (g / 100) + g % 100) ELSE 0 END,
          (ARRAY['north','south','east'])[1 + g % 3] FROM generate_series(1, 2000) g;
        """,
    )
    try:
        _, _, pack, spec = _spec(url)
    except DomainError as exc:
        assert "loan.debt (numeric): about" in str(exc)
        assert "no range of them was released" in str(exc) and "bounds:" in str(exc)
        return
    assert pack["tables"]["loan"]["columns"]["debt"]["bounds_from"] == "point_masses_only"
    assert set(_column(_generate(spec), "loan", "debt")) == {0.0}


def test_a_zero_inflated_column_never_comes_out_in_an_invented_range(pg_workdir):
    # 83 % zeros; the other rows 300 .. 20,000 (the shape of credit_data.debt). Either their
    # range is released (coarsely) or the column is refused: never a placeholder such as [0, 1].
    url = _source(
        pg_workdir,
        "rd_zero_debt",
        """
        CREATE TABLE src.loan (id int PRIMARY KEY, debt int NOT NULL, region text NOT NULL);
        INSERT INTO src.loan SELECT g,
          CASE WHEN g % 6 = 0 THEN 300 + (g * 7919) % 19700 ELSE 0 END,
          (ARRAY['north','south','east'])[1 + g % 3] FROM generate_series(1, 2400) g;
        """,
    )
    try:
        _, _, pack, spec = _spec(url)
    except DomainError as exc:  # refusing is allowed; inventing is not
        assert "loan.debt (numeric)" in str(exc)
        return
    assert pack["tables"]["loan"]["columns"]["debt"]["bounds_from"] != "point_masses_only"
    debt = np.asarray(_column(_generate(spec), "loan", "debt"), dtype=float)
    rest = debt[debt != 0]
    assert 0.70 < np.mean(debt == 0) < 0.95
    assert rest.size and rest.min() >= 1 and rest.max() <= 2**16  # inside a released range


def test_integer_years_all_released_as_point_masses_generate_nothing_else(pg_workdir):
    url = _source(
        pg_workdir,
        "rd_years",
        """
        CREATE TABLE src.wage (id int PRIMARY KEY, year int NOT NULL, region text NOT NULL);
        INSERT INTO src.wage SELECT g, 2003 + g % 7, (ARRAY['north','south','east'])[1 + g % 3]
          FROM generate_series(1, 3000) g;
        """,
    )
    _, _, pack, spec = _spec(url)
    assert sorted(pack["tables"]["wage"]["columns"]["year"]["atoms"]) == [
        str(y) for y in range(2003, 2010)
    ]
    assert set(_column(_generate(spec), "wage", "year")) <= set(range(2003, 2010))


def test_a_category_column_of_a_300_row_child_table_never_yields_a_placeholder(pg_workdir):
    url = _source(
        pg_workdir,
        "rd_small_child",
        """
        CREATE TABLE src.person (id int PRIMARY KEY, email text NOT NULL, born date NOT NULL);
        INSERT INTO src.person SELECT g, 'p' || g || '@example.org', DATE '1960-01-01' + g * 7
          FROM generate_series(1, 2000) g;
        CREATE TABLE src.loan (id int PRIMARY KEY, person_id int NOT NULL REFERENCES src.person,
                               status text NOT NULL, amount int NOT NULL);
        INSERT INTO src.loan SELECT g, 1 + (g * 7) % 2000, (ARRAY['A','B','C','D'])[1 + g % 4],
          1000 + (g % 50) * 100 FROM generate_series(1, 300) g;
        """,
    )
    try:
        _, _, _, spec = _spec(url)
    except DomainError as exc:  # refusing is allowed; inventing is not
        assert "loan." in str(exc)
        return
    assert set(_column(_generate(spec), "loan", "status")) <= {"A", "B", "C", "D"}


def test_a_column_with_no_releasable_domain_stops_before_generation_naming_it(pg_workdir):
    url = _source(
        pg_workdir,
        "rd_no_domain",
        """
        CREATE TABLE src.item (id int PRIMARY KEY, code text NOT NULL, qty int NOT NULL);
        INSERT INTO src.item SELECT g, 'code-' || g, g % 3 FROM generate_series(1, 400) g;
        """,
    )
    with pytest.raises(DomainError, match=r"(?s)item\.code \(categorical\).*public") as exc:
        _spec(url, columns={"item.code": "categorical"})
    assert "item.qty" not in str(exc.value)


def test_declared_public_values_are_the_domain_and_spend_no_threshold(pg_workdir):
    url = _source(
        pg_workdir,
        "rd_public",
        """
        CREATE TABLE src.item (id int PRIMARY KEY, code text NOT NULL);
        INSERT INTO src.item SELECT g, 'c' || (g % 40) FROM generate_series(1, 400) g;
        """,
    )
    public = [f"c{i}" for i in range(40)]
    _, _, pack, spec = _spec(
        url, columns={"item.code": "categorical"}, public={"values": {"item.code": public}}
    )
    assert not any(e["name"] == "item.code:values" for e in pack["ledger"]["entries"])
    assert set(_column(_generate(spec), "item", "code")) <= set(public)


TEAMS = """
CREATE TABLE src.team (team_key int PRIMARY KEY, team_id text NOT NULL, city text NOT NULL);
INSERT INTO src.team SELECT g, 'T' || (g % 12), 'city ' || g FROM generate_series(1, 60) g;
CREATE TABLE src.player (id int PRIMARY KEY, bats text NOT NULL);
INSERT INTO src.player SELECT g, (ARRAY['L','R'])[1 + g % 2] FROM generate_series(1, 1500) g;
CREATE TABLE src.season (id int PRIMARY KEY, player_id int NOT NULL REFERENCES src.player,
                         team_key int NOT NULL REFERENCES src.team, team_id text NOT NULL,
                         games int NOT NULL);
INSERT INTO src.season SELECT g, 1 + g % 1500, 1 + g % 60, 'T' || ((1 + g % 60) % 12), g % 160
  FROM generate_series(1, 6000) g;
"""


def test_a_child_category_copied_from_a_referenced_table_takes_that_tables_values(pg_workdir):
    """season.team_id copies team.team_id; counted in distinct players at a child table's
    threshold it would not clear, so its domain is the referenced table's (here public)."""
    url = _source(pg_workdir, "rd_inherited", TEAMS)
    codes = {f"T{i}" for i in range(12)}
    _, _, pack, spec = _spec(
        url,
        privacy={"unit_table": "player"},
        columns={"season.team_id": "categorical", "team.team_id": "categorical"},
        public={"tables": ["team"]},
    )
    entry = pack["tables"]["season"]["columns"]["team_id"]
    assert entry["values_from"] == "team.team_id"
    assert set(entry["values"]) == codes
    generated = _column(_generate(spec), "season", "team_id")
    assert generated and set(generated) <= codes


def test_the_headless_refresh_names_every_refused_column_and_generates_nothing(
    pg_workdir, tmp_path
):
    import dagster as dg

    from synth_assets.core.errors import RunFailed
    from synth_assets.core.secrets import init_local_secrets
    from synth_assets.orchestrate import run_refresh

    url = _source(
        pg_workdir,
        "rd_refused_run",
        """
        CREATE TABLE src.item (id int PRIMARY KEY, code text NOT NULL, tag text NOT NULL);
        INSERT INTO src.item SELECT g, 'code-' || g, 'tag-' || g FROM generate_series(1, 300) g;
        """,
    )
    init_local_secrets(tmp_path / "secrets")
    cfg = make_config(
        url,
        source={"schema": "src"},
        columns={"item.code": "categorical", "item.tag": "categorical"},
    )
    with dg.DagsterInstance.ephemeral() as inst, pytest.raises(RunFailed) as exc:
        run_refresh(None, tmp_path, cfg_override=cfg, instance=inst, log=lambda m: None)
    assert "item.code (categorical)" in str(exc.value)
    assert "item.tag (categorical)" in str(exc.value)
    assert not list(tmp_path.glob("runs/*/shards"))
    assert not list(tmp_path.glob("runs/*/spec.json"))


PAIRS = """
CREATE TABLE src.person (id int PRIMARY KEY, a text NOT NULL, b text NOT NULL, c text NOT NULL,
                         d int NOT NULL);
INSERT INTO src.person SELECT g, 'v' || (g % 5), 'v' || (g % 5), 'w' || ((g * 7919) % 3),
  (g * 104729) % 11 FROM generate_series(1, 3000) g;
"""


def test_pairs_follow_signal_and_the_unused_pair_budget_remeasures_the_marginals(pg_workdir):
    url = _source(pg_workdir, "rd_pairs", PAIRS)
    _, _, pack, spec = _spec(url, bounds={"person.d": [0, 10]})
    pairs = {(p["a"], p["b"]) for p in pack["tables"]["person"]["pairs"]}
    # a == b: a score of ~4,000 against a selection noise scale of ~300.
    assert ("a", "b") in pairs or ("b", "a") in pairs
    entries = pack["ledger"]["entries"]
    rho = {
        k: [e["rho"] for e in entries if e["name"].endswith(k)]
        for k in ("select_pair", ":pair", ":marginal_2", ":values_again")
    }
    assert len(pairs) <= len(rho["select_pair"]) <= len(pairs) + 1
    # Three tree edges' worth of selection and measurement is spent whether or not it stopped
    # early: what pairs did not use re-measured the four one-way marginals (a category column
    # of the unit table by a second threshold release, the numeric one as a marginal).
    spent = sum(sum(v) for v in rho.values())
    assert spent == pytest.approx(3 * (rho["select_pair"][0] + rho[":pair"][0]), rel=1e-6)
    again = len(rho[":marginal_2"]) + len(rho[":values_again"])
    assert again == (4 if len(pairs) < 3 else 0)
    cond = spec["tables"]["person"]["tree"]["cond"]
    child = "b" if "b" in cond and spec["tables"]["person"]["tree"]["parent"]["b"] == "a" else "a"
    if child in cond:
        m = np.asarray(cond[child])
        assert (m.max(axis=1)[:5] > 0.8).all()  # a value of a determines b


THIN = """
CREATE TABLE src.survey (id int PRIMARY KEY, code text NOT NULL, score int NOT NULL, {cols});
INSERT INTO src.survey SELECT g, 'c' || (g % 10), g % 101, {vals} FROM generate_series(1, 600) g;
""".format(
    cols=", ".join(f"b{i} text NOT NULL" for i in range(20)),
    vals=", ".join(f"CASE WHEN (g * {7 + 2 * i}) % 2 = 0 THEN 'x' ELSE 'y' END" for i in range(20)),
)


def test_a_thin_table_spends_its_pair_budget_on_domains_and_rescues_an_empty_column(pg_workdir):
    # 600 rows, 22 columns at epsilon 1: pairs could hold 2 codes a column. Each binary column's
    # values (300 rows) clear the first look's threshold (~160, about 1.5 noise deviations under
    # 200: at 400 rows a binary column lost both its 200-row values in 2 runs of 25); none of
    # code's ten 60-row values can (~3.7 deviations short), so code alone gets the rescue look
    # with the whole reserve.
    url = _source(pg_workdir, "rd_thin", THIN)
    cfg = make_config(url, source={"schema": "src"}, bounds={"survey.score": [0, 100]})
    with pg.connect(url) as conn:
        model = reflect(conn, "src", None, [])
        roles = infer_roles(conn, model, cfg.columns)
        pack = profile_source(conn, model, roles, cfg, KEY, refresh_id="r-test", log=lambda m: None)
    entry, ledger = pack["tables"]["survey"], pack["ledger"]
    assert entry["thin"]["pair_codes"] <= 2 and entry["pairs"] == []
    names = [e["name"] for e in ledger["entries"]]
    assert not [n for n in names if n.endswith((":select_pair", ":pair", ":values_again"))]
    rescue = [e for e in ledger["entries"] if e["name"].endswith(":values_rescue")]
    assert [e["name"] for e in rescue] == ["survey.code:values_rescue"]
    assert rescue[0]["rho"] == pytest.approx(entry["thin"]["rho_moved"] / 2, rel=1e-9)
    first = next(e for e in ledger["entries"] if e["name"] == "survey.code:values")
    assert rescue[0]["scale"] < first["scale"] / 2
    # Nothing held back is lost or spent twice: the refresh spends its whole budget.
    assert ledger["rho_spent"] == pytest.approx(ledger["rho_budget"], rel=1e-9)


CYCLE = """
CREATE TABLE src.store (id int PRIMARY KEY, manager_staff_id int NOT NULL, city text NOT NULL);
CREATE TABLE src.staff (id int PRIMARY KEY, store_id int NOT NULL REFERENCES src.store,
                        active boolean NOT NULL);
INSERT INTO src.store SELECT g, g, (ARRAY['Lethbridge','Woodridge'])[g] FROM generate_series(1, 2) g;
INSERT INTO src.staff SELECT g, g, true FROM generate_series(1, 2) g;
ALTER TABLE src.store ADD CONSTRAINT store_manager_fk FOREIGN KEY (manager_staff_id)
  REFERENCES src.staff;
CREATE TABLE src.customer (id int PRIMARY KEY, store_id int NOT NULL REFERENCES src.store,
                           active boolean NOT NULL, visits int NOT NULL);
INSERT INTO src.customer SELECT g, 1 + g % 2, g % 7 <> 0, g % 9 FROM generate_series(1, 1500) g;
"""


@pytest.mark.parametrize(
    "public",
    [
        {"values": {"store.city": ["Lethbridge", "Woodridge"]}},  # 2 rows: not releasable
        {"tables": ["store", "staff"]},  # copied verbatim, cycle included
    ],
    ids=["synthesized", "public"],
)
def test_a_not_null_fk_cycle_generates_and_loads_with_every_key_valid(pg_workdir, tmp_path, public):
    cfg, summary = _refreshed(
        pg_workdir,
        tmp_path,
        "rd_cycle",
        CYCLE,
        privacy={"unit_table": "customer"},
        target={"schema": "cycle_copy"},
        public=public,
    )
    assert summary["passed"], summary.get("error")
    with pg.connect(cfg.target.url) as conn:
        fks = conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' "
            "AND connamespace = 'cycle_copy'::regnamespace"
        ).fetchall()
        assert len(fks) == 3  # both sides of the cycle and the customer's, all validated
        orphans = conn.execute(
            "SELECT (SELECT count(*) FROM cycle_copy.store s LEFT JOIN cycle_copy.staff t "
            "ON t.id = s.manager_staff_id WHERE t.id IS NULL), "
            "(SELECT count(*) FROM cycle_copy.staff t LEFT JOIN cycle_copy.store s "
            "ON s.id = t.store_id WHERE s.id IS NULL), "
            "(SELECT count(*) FROM cycle_copy.store), (SELECT count(*) FROM cycle_copy.customer)"
        ).fetchone()
    assert orphans[:2] == (0, 0) and orphans[2] >= 1 and orphans[3] > 0
    if "tables" in public:
        with pg.connect(cfg.target.url) as conn:
            assert conn.execute(
                "SELECT array_agg((id, manager_staff_id, city)::text ORDER BY id) "
                "FROM cycle_copy.store"
            ).fetchone()[0] == ["(1,1,Lethbridge)", "(2,2,Woodridge)"]


def test_a_declared_public_table_is_copied_verbatim_and_spends_nothing(pg_workdir):
    url = _source(pg_workdir, "rd_public", DIMENSION)
    _, _, pack, spec = _spec(
        url, privacy={"unit_table": "account"}, public={"tables": ["district"]}
    )
    for ledger in (pack["ledger"], pack["reference_ledger"]):
        assert not [e for e in ledger["entries"] if e["detail"].get("table") == "district"]
    frames = _generate(spec)
    with pg.connect(url) as conn:
        real = conn.execute(
            "SELECT id, name, region, inhabitants FROM src.district ORDER BY id"
        ).fetchall()
    d = frames["district"]
    got = list(zip(*(d.columns[c].to_list() for c in ("id", "region", "inhabitants")), strict=True))
    assert got == [(r[0], r[2], r[3]) for r in real]
    # "name" has a PII role (a person's name, as far as inference can tell): still synthesized.
    assert not set(d.columns["name"].to_list()) & {r[1] for r in real}
    assert set(_column(frames, "account", "district_id")) <= {r[0] for r in real}


def test_public_tables_that_hold_units_or_point_at_synthesized_rows_are_refused(pg_workdir):
    from synth_assets.core.errors import ConfigError

    url = _source(pg_workdir, "rd_public_bad", DIMENSION)
    with pytest.raises(ConfigError, match=r"\['account'\] hold rows of privacy units"):
        _spec(url, privacy={"unit_table": "account"}, public={"tables": ["account"]})
    with pytest.raises(ConfigError, match="unknown table"):
        _spec(url, privacy={"unit_table": "account"}, public={"tables": ["nope"]})
    cycle = _source(pg_workdir, "rd_public_cycle", CYCLE)
    with pytest.raises(ConfigError, match="'staff' references 'store'.*add 'store'"):
        _spec(cycle, privacy={"unit_table": "customer"}, public={"tables": ["staff"]})


LINKS = """
CREATE TABLE src.person (id int PRIMARY KEY, kind text NOT NULL);
INSERT INTO src.person SELECT g, (ARRAY['a','b'])[1 + g % 2] FROM generate_series(1, 2000) g;
CREATE TABLE src.course (id int PRIMARY KEY, level text NOT NULL);
INSERT INTO src.course SELECT g, (ARRAY['x','y'])[1 + g % 2] FROM generate_series(1, 40) g;
CREATE TABLE src.enrolment (person_id int NOT NULL REFERENCES src.person,
                            course_id int NOT NULL REFERENCES src.course,
                            grade int NOT NULL, PRIMARY KEY (person_id, course_id));
INSERT INTO src.enrolment SELECT p, 1 + (p * 7 + k) % 40, (p + k) % 5
  FROM generate_series(1, 2000) p, generate_series(0, 2) k;
CREATE TABLE src.transfer (id int PRIMARY KEY, from_id int NOT NULL REFERENCES src.person,
                           to_id int NOT NULL REFERENCES src.person, amount int NOT NULL);
INSERT INTO src.transfer SELECT g, 1 + g % 2000, 1 + (g * 13) % 2000, g % 100
  FROM generate_series(1, 4000) g;
"""


def test_a_link_table_keeps_its_composite_key_and_a_second_fk_to_the_unit_is_another_unit(
    pg_workdir,
):

    url = _source(pg_workdir, "rd_links", LINKS)
    _, _, _, spec = _spec(url, privacy={"unit_table": "person"})
    frames = _generate(spec)
    enrol = pl.DataFrame({c: _column(frames, "enrolment", c) for c in ("person_id", "course_id")})
    assert enrol.height > 1000 and enrol.is_duplicated().sum() == 0
    people = set(_column(frames, "person", "id"))
    src, dst = _column(frames, "transfer", "from_id"), _column(frames, "transfer", "to_id")
    assert set(dst) <= people
    assert sum(a == b for a, b in zip(src, dst, strict=True)) < 0.05 * len(src)


def test_a_public_table_cannot_be_resized_and_copies_every_type(pg_workdir):
    from synth_assets.core.errors import ConfigError
    from synth_assets.core.generate import from_text

    url = _source(pg_workdir, "rd_public_rows", DIMENSION)
    with pytest.raises(ConfigError, match="declared public and copied as it is"):
        _spec(
            url,
            privacy={"unit_table": "account"},
            public={"tables": ["district"]},
            overrides={"rows": {"district": 10}},
        )
    ts = from_text(["2024-02-29T23:59:59.123456", None], {"base_type": "timestamptz"})
    assert ts.dtype == pl.Datetime("us", "UTC") and ts.null_count() == 1
    assert from_text(["2024-02-29"], {"base_type": "date"}).to_list()[0].isoformat() == "2024-02-29"
    assert from_text(["true", "false", None], {"base_type": "bool"}).to_list() == [
        True,
        False,
        None,
    ]
    assert from_text(["12.50"], {"base_type": "numeric"}).to_list() == [12.5]
    assert from_text(["7"], {"base_type": "int4"}).to_list() == [7]


ORDERED = """
CREATE TABLE src.booking (
  id int PRIMARY KEY,
  kind text NOT NULL,
  start_at timestamptz NOT NULL,
  end_at timestamptz NOT NULL,
  CONSTRAINT booking_order CHECK (end_at > start_at)
);
INSERT INTO src.booking
SELECT g, (ARRAY['day', 'week', 'month'])[1 + g % 3],
       timestamptz '2024-01-01' + g * interval '37 minutes',
       timestamptz '2024-01-01' + g * interval '37 minutes' + (1 + g % 40) * interval '1 hour'
FROM generate_series(1, 1200) g;
"""


def test_a_check_ordering_two_columns_holds_in_staging(pg_workdir, tmp_path):
    """Each column is drawn from its own distribution, so end_at > start_at broke in about half
    the rows and the CHECK stayed NOT VALID; the loader now swaps the two values where it
    breaks, and validates it."""
    from synth_assets.core.store import read_json

    cfg, summary = _refreshed(
        pg_workdir, tmp_path, "rd_ordered", ORDERED, target={"schema": "ordered_copy"}
    )
    assert summary["passed"], summary.get("error")
    with pg.connect(cfg.target.url) as conn:
        valid, bad, rows = conn.execute(
            "SELECT (SELECT convalidated FROM pg_constraint WHERE conname = 'booking_order' "
            "AND connamespace = 'ordered_copy'::regnamespace), "
            "(SELECT count(*) FROM ordered_copy.booking WHERE NOT end_at > start_at), "
            "(SELECT count(*) FROM ordered_copy.booking)"
        ).fetchone()
    assert valid and bad == 0 and rows > 0
    load = read_json(tmp_path / "runs" / summary["refresh_id"] / "load.json")
    assert load["durations"]["checks_not_validated"] == {}
    assert load["durations"]["checks_repaired"]["booking.booking_order"] > rows // 10


GENERATED = """
CREATE TABLE src.line (
  id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  qty int NOT NULL CHECK (qty > 0),
  price numeric(10,2) NOT NULL,
  total numeric(12,2) GENERATED ALWAYS AS (qty * price) STORED
);
INSERT INTO src.line (id, qty, price)
SELECT g, 1 + g % 7, round((5 + (g * 37) % 200)::numeric + 0.99, 2) FROM generate_series(1, 1200) g;
"""


def test_generated_and_identity_columns_are_what_they_were(pg_workdir, tmp_path):
    """total = qty * price held in 2 of 6,040 staging rows: the column was generated like any
    number. Now it is not measured (no budget), and staging recreates it as GENERATED."""
    from synth_assets.core.store import read_json

    cfg, summary = _refreshed(
        pg_workdir, tmp_path, "rd_generated", GENERATED, target={"schema": "generated_copy"}
    )
    assert summary["passed"], summary.get("error")
    rdir = tmp_path / "runs" / summary["refresh_id"]
    assert read_json(rdir / "schema.json")["roles"]["line"]["total"] == "ignore"
    ledger = read_json(rdir / "metrics_pack.json")["ledger"]["entries"]
    assert not any("total" in e["name"] for e in ledger)  # nothing spent on it
    with pg.connect(cfg.target.url) as conn:
        generated, wrong, rows = conn.execute(
            "SELECT (SELECT attgenerated FROM pg_attribute WHERE attname = 'total' "
            "AND attrelid = 'generated_copy.line'::regclass), "
            "(SELECT count(*) FROM generated_copy.line WHERE total IS DISTINCT FROM qty * price), "
            "(SELECT count(*) FROM generated_copy.line)"
        ).fetchone()
    assert generated == "s" and wrong == 0 and rows > 0
    # the identity key is an identity again, its sequence past the synthetic rows
    with pg.connect(cfg.target.url) as conn:
        kind, top = conn.execute(
            "SELECT (SELECT attidentity FROM pg_attribute WHERE attname = 'id' "
            "AND attrelid = 'generated_copy.line'::regclass), "
            "(SELECT max(id) FROM generated_copy.line)"
        ).fetchone()
        new_id = conn.execute(
            "INSERT INTO generated_copy.line (qty, price) VALUES (2, 3.50) RETURNING id, total"
        ).fetchone()
        conn.rollback()
    assert kind == "d" and new_id[0] > top and float(new_id[1]) == 7.0


DOMAINS = """
DROP DOMAIN IF EXISTS public.email CASCADE;
CREATE DOMAIN public.email AS text CONSTRAINT email_check CHECK (VALUE ~ '@');
CREATE DOMAIN src.year AS integer CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155);
CREATE DOMAIN src.grade AS varchar(5) CONSTRAINT grade_check CHECK (VALUE IN ('G', 'PG', 'R'));
CREATE DOMAIN src.positive AS smallint CONSTRAINT positive_check CHECK (VALUE > 0);
CREATE DOMAIN src.minutes AS src.positive NOT NULL DEFAULT 90
  CONSTRAINT minutes_check CHECK (VALUE <= 300);
CREATE TABLE src.film (id int PRIMARY KEY, release_year src.year, rating src.grade NOT NULL,
                       contact email NOT NULL, length src.minutes);
INSERT INTO src.film SELECT g, 1990 + g % 31, (ARRAY['G', 'PG', 'R'])[1 + g % 3],
  'owner' || g || '@example.org', 46 + (g * 7) % 140 FROM generate_series(1, 600) g;
"""


def test_domain_columns_keep_their_domain_and_its_checks_in_staging(pg_workdir, tmp_path):
    """A domain column was created with its base type: staging lost the domain's CHECK and NOT
    NULL. Now the domain (a nested one too, and one of schema public) is recreated in staging,
    the column uses it, and the generator keeps its bounds, list and NOT NULL."""
    cfg, summary = _refreshed(
        pg_workdir, tmp_path, "rd_domains", DOMAINS, target={"schema": "domain_copy"}
    )
    assert summary["passed"], summary.get("error")
    with pg.connect(cfg.target.url) as conn:
        typed = dict(
            conn.execute(
                "SELECT column_name, domain_schema || '.' || domain_name "
                "FROM information_schema.columns "
                "WHERE table_schema = 'domain_copy' AND table_name = 'film'"
            ).fetchall()
        )
        checks = dict(
            conn.execute(
                "SELECT k.conname, t.typname FROM pg_constraint k JOIN pg_type t "
                "ON t.oid = k.contypid WHERE t.typnamespace = 'domain_copy'::regnamespace "
                "AND k.contype = 'c' AND k.convalidated"
            ).fetchall()
        )
        minutes = conn.execute(
            "SELECT t.typnotnull, b.typname, a.attnotnull FROM pg_type t "
            "JOIN pg_type b ON b.oid = t.typbasetype JOIN pg_attribute a "
            "ON a.atttypid = t.oid AND a.attrelid = 'domain_copy.film'::regclass "
            "WHERE t.oid = 'domain_copy.minutes'::regtype"
        ).fetchone()
        broken, rows = conn.execute(
            "SELECT count(*) FILTER (WHERE NOT (release_year BETWEEN 1901 AND 2155 "
            "AND rating IN ('G', 'PG', 'R') AND contact ~ '@' AND length BETWEEN 1 AND 300) "
            "OR length IS NULL), count(*) FROM domain_copy.film"
        ).fetchone()
        with pytest.raises(psycopg.errors.CheckViolation, match="year_check"):
            conn.execute("INSERT INTO domain_copy.film VALUES (0, 1800, 'G', 'a@b', 90)")
    assert typed == {
        "id": None,
        "release_year": "domain_copy.year",
        "rating": "domain_copy.grade",
        "contact": "domain_copy.email",
        "length": "domain_copy.minutes",
    }
    assert checks == {
        "year_check": "year",
        "grade_check": "grade",
        "email_check": "email",
        "positive_check": "positive",
        "minutes_check": "minutes",
    }
    # NOT NULL as the source has it: on the domain, not on the column
    assert minutes == (True, "positive", False)
    assert rows > 0 and broken == 0


def test_a_domain_check_the_generator_cannot_keep_stops_the_load_naming_it(pg_workdir, tmp_path):
    """Staging never loads without a domain's CHECK: rows that break it stop the load with the
    table, the column and the constraint (the generator keeps bounds and lists, not this)."""
    from synth_assets.core.errors import RunFailed

    ddl = """
    CREATE DOMAIN src.serial_no AS integer CONSTRAINT serial_check CHECK (VALUE % 1000 = 7);
    CREATE TABLE src.lot (id int PRIMARY KEY, serial src.serial_no NOT NULL);
    INSERT INTO src.lot SELECT g, 7 + 1000 * (g % 300) FROM generate_series(1, 600) g;
    """
    with pytest.raises(RunFailed, match=r"(?s)lot\.serial.*serial_check.*serial_no"):
        _refreshed(pg_workdir, tmp_path, "rd_domain_broken", ddl, target={"schema": "lot_copy"})


SEASONS = """
CREATE TABLE src.player (id int PRIMARY KEY, bats text NOT NULL);
INSERT INTO src.player SELECT g, (ARRAY['L','R'])[1 + g % 2] FROM generate_series(1, 1200) g;
CREATE TABLE src.season (id int PRIMARY KEY, player_id int NOT NULL REFERENCES src.player,
                         caught int NOT NULL);
INSERT INTO src.season SELECT g, 1 + (g - 1) / 6,
  CASE WHEN ((g - 1) / 6) % 8 = 0 THEN 20 + g % 120 ELSE 0 END FROM generate_series(1, 7200) g;
CREATE TABLE src.units_all AS SELECT id AS u FROM src.player;
"""


def test_a_range_look_counts_each_units_share_of_its_rows(pg_workdir):
    # 1,200 players of 6 seasons each; every eighth player catches in all 6. A range look
    # counts each unit's rows in 6-ths of one (L2 sensitivity 6 in 6-ths, i.e. 1 unit): a
    # catcher whose seasons share a bucket adds a whole unit to it at a third of the noise of
    # counting distinct units (sqrt(6) units). A count stands for the unit's mean rows / 6.
    from types import SimpleNamespace

    from synth_assets.core.plan import build_plan
    from synth_assets.core.profile.ranges import rows_per_count, unit_shares
    from synth_assets.core.profile.sql import one_way_counts, table_sql

    url = _source(pg_workdir, "rd_seasons", SEASONS)
    # The bound is pinned: chosen with DP from a noisy histogram of rows per unit, it came out
    # 8 in 1 run of 10 here (noise in the bins above 6 passes the 5 % they may hold).
    model, roles, pack, _ = _spec(url, privacy={"max_rows_per_unit_by_table": {"season": 6}})
    assert pack["tables"]["season"]["rows_per_unit"] == 6

    with pg.connect(url) as conn:
        model = reflect(conn, "src", None, [])
        model.tables.pop("units_all")
        roles = infer_roles(conn, model, make_config(url, source={"schema": "src"}).columns)
        plans = build_plan(model, roles, None)
        ts = table_sql(model, plans, roles, "season", 6, {}, "src.units_all")
        params = {"hseed": 7}
        expr = ["(caught > 0)::int"]
        assert one_way_counts(conn, ts, params, expr) == [{(0,): 1050, (1,): 150}]
        assert one_way_counts(conn, ts, params, expr, shares=6) == [{(0,): 6300, (1,): 900}]
        # a unit split over two values adds its shares to each, never more than 6 in all
        half = ["(id %% 2)::int"]
        assert one_way_counts(conn, ts, params, half, shares=6) == [{(0,): 3600, (1,): 3600}]
        # NULLs are not a value of a range: they take no share
        some = ["CASE WHEN id %% 3 = 0 THEN NULL ELSE 1 END"]
        assert one_way_counts(conn, ts, params, some, shares=6) == [{(1,): 7200}]

    run = SimpleNamespace(src=SimpleNamespace(unit_rows={"season": 4.8}), name="season", ts=ts)
    assert unit_shares(run) == 6 and rows_per_count(run) == pytest.approx(0.8)
    # Where the first look left the catchers to the residual look, it counted shares.
    for e in pack["ledger"]["entries"]:
        if e["name"].startswith("season.") and e["name"].endswith(
            (":range_residual", ":range_rescue")
        ):
            assert e["sensitivity"] == 6


LEAGUES = """
CREATE TABLE src.team (team_key int PRIMARY KEY, year int NOT NULL, league text NOT NULL,
                       code text NOT NULL, UNIQUE (year, league, code));
INSERT INTO src.team SELECT g, 1990 + (g - 1) / 16, (ARRAY['AL','NL'])[1 + g % 2],
  'T' || ((g - 1) % 16) / 2 FROM generate_series(1, 480) g;
CREATE TABLE src.player (id int PRIMARY KEY, bats text NOT NULL);
INSERT INTO src.player SELECT g, (ARRAY['L','R'])[1 + g % 2] FROM generate_series(1, 1500) g;
CREATE TABLE src.season (id int PRIMARY KEY, player_id int NOT NULL REFERENCES src.player,
                         team_key int NOT NULL REFERENCES src.team, games int NOT NULL);
INSERT INTO src.season SELECT g, 1 + g % 1500, 1 + g % 480, g % 160 FROM generate_series(1, 6000) g;
"""


def test_a_reference_table_keeps_its_composite_unique_set_and_counts_what_it_drops(pg_workdir):
    """team is unique on (year, league, code) and its domain holds exactly as many sets as
    rows: drawn row by row, a third would repeat one. Repeats are drawn again, what still
    repeats is dropped and counted, children point at the rows that remain, and the shard
    check expects that many fewer rows."""
    from synth_assets.core.gates import _count_failures

    url = _source(pg_workdir, "rd_unique_ref", LEAGUES)
    codes = [f"T{i}" for i in range(8)]
    _, _, _, spec = _spec(
        url,
        privacy={"unit_table": "player"},
        columns={"team.year": "categorical"},
        public={"values": {"team.league": ["AL", "NL"], "team.code": codes}},
    )
    assert spec["tables"]["team"]["kind"] == "reference"
    gen = ShardGenerator(spec, os.urandom(32))
    team = gen.references()["team"]
    sets = list(zip(*(team.columns[c].to_list() for c in ("year", "league", "code")), strict=True))
    assert len(sets) == len(set(sets)) == team.n
    want = spec["expected_rows"]["team"]
    dropped = gen.dropped.get("team", 0)
    assert team.n + dropped == want and team.n >= 0.8 * want
    keys = set(team.columns["team_key"].to_list())
    assert len(keys) == team.n
    season = {k for s in range(spec["shards"]) for k in gen.shard(s)["season"].columns["team_key"]}
    assert season and season <= keys
    entry, rows = spec["tables"]["team"], {"team": team.n}
    assert _count_failures(spec, "team", entry, rows, None, dropped) == []
    assert _count_failures(spec, "team", entry, {"team": team.n - 1}, None, dropped)


def test_a_thin_datetime_measures_hours_of_the_day_and_days_of_the_week_apart(pg_workdir):
    # 1,200 bookings: ~7 rows an hour of the week against noise in the tens. Measured as 24
    # hours and 7 weekdays (half the budget each) instead of 168 cells; the spec still holds a
    # 168-hour profile, and says how it was measured so the report simulates the same.
    url = _source(pg_workdir, "rd_thin_how", ORDERED)
    _, _, pack, spec = _spec(url)
    col = pack["tables"]["booking"]["columns"]["start_at"]
    assert len(col["hour_counts"]) == 24 and len(col["weekday_counts"]) == 7
    assert "how_counts" not in col
    names = [e["name"] for e in pack["ledger"]["entries"]]
    assert "booking.start_at:hour_of_day" in names and "booking.start_at:day_of_week" in names
    assert not any(n.endswith("start_at:hour_of_week") for n in names)
    c = spec["tables"]["booking"]["columns"]["start_at"]
    assert c["how_separable"] and len(c["how_p"]) == 168
    assert sum(c["how_p"]) == pytest.approx(1.0)
    assert c["how_rows"] >= 1.0
