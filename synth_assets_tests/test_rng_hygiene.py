"""RNG hygiene, enforced: no global RNG and no clock-derived seed in the package; independent streams.

Policy checked statically on every module of ``synth_assets``:
- no ``random.seed`` / ``numpy.random.seed`` and no draw from a module-level RNG
  (``np.random.rand``, ``np.random.choice``, ``random.random``, ``random.shuffle``…) — only the
  constructors ``default_rng``, ``Generator``, ``SeedSequence`` and the bit generators, and
  ``random.SystemRandom`` (the OS CSPRNG), are allowed;
- no seed derived from the clock (``time.time()``, ``datetime.now()``, ``perf_counter()``…,
  ``os.getpid()``), directly or through a local variable.
Runtime: generation leaves the global RNG states untouched, every shard draws from its own
stream, and two concurrent refreshes never share a seed or a stream.
"""

from __future__ import annotations

import ast
import random
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import synth_assets
from synth_assets.core import pg
from synth_assets.core.config import parse_config
from synth_assets.core.generate import ShardGenerator, generate_shard, streams
from synth_assets.core.profile import profile_source
from synth_assets.core.roles import infer_roles
from synth_assets.core.schema import reflect
from synth_assets.core.secrets import LocalSecrets, init_local_secrets, new_master_seed
from synth_assets.core.spec import calibrate
from synth_assets_tests.conftest import DEMO_BOUNDS

NUMPY_ALLOWED = {
    "Generator",
    "default_rng",
    "SeedSequence",
    "BitGenerator",
    "PCG64",
    "PCG64DXSM",
    "Philox",
    "SFC64",
    "MT19937",
}
STDLIB_ALLOWED = {"SystemRandom"}
RNG_CONSTRUCTORS = {
    *(f"numpy.random.{n}" for n in NUMPY_ALLOWED),
    "numpy.random.RandomState",
    "numpy.random.seed",
    "random.seed",
    "random.Random",
}
CLOCKS = {
    "time.time",
    "time.time_ns",
    "time.monotonic",
    "time.monotonic_ns",
    "time.perf_counter",
    "time.perf_counter_ns",
    "time.process_time",
    "time.process_time_ns",
    "time.clock_gettime",
    "time.clock_gettime_ns",
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "datetime.date.today",
    "os.getpid",
    "uuid.uuid1",
}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> fully qualified name, from every import in the module."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    out[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _qualname(node: ast.AST, aliases: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _qualname(node.value, aliases)
        return f"{base}.{node.attr}" if base else None
    return None


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _bound_names(targets: list[ast.AST]) -> list[str]:
    """Names a binding rebinds (plain names and tuple/list unpacking, not subscripts or attributes)."""
    out: list[str] = []
    for t in targets:
        if isinstance(t, ast.Name):
            out.append(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            out.extend(_bound_names(list(t.elts)))
        elif isinstance(t, ast.Starred):
            out.extend(_bound_names([t.value]))
    return out


def _clock_calls(node: ast.AST, aliases: dict[str, str], tainted: set[str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _qualname(sub.func, aliases) in CLOCKS:
            return True
        if isinstance(sub, ast.Name) and sub.id in tainted:
            return True
    return False


def scan_source(source: str, filename: str = "<string>") -> list[str]:
    """Every global-RNG use and clock-derived seed in ``source``, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    aliases = _aliases(tree)
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        for what in _global_rng_uses(node, aliases):
            report(node, what)
    _check_scope(tree, frozenset(), aliases, report)
    return found


def _global_rng_uses(node: ast.AST, aliases: dict[str, str]) -> list[str]:
    """What ``node`` does with a module-level RNG: imports one of its functions, or uses one."""
    out = []
    if (
        isinstance(node, ast.ImportFrom)
        and not node.level
        and node.module in ("numpy.random", "random")
    ):
        allowed = NUMPY_ALLOWED if node.module == "numpy.random" else STDLIB_ALLOWED
        for a in node.names:
            if a.name not in allowed:
                out.append(f"imports {node.module}.{a.name} (a module-level RNG function)")
    if isinstance(node, ast.Attribute):
        base = _qualname(node.value, aliases)
        if base == "numpy.random" and node.attr not in NUMPY_ALLOWED:
            out.append(f"uses numpy.random.{node.attr} (the global/legacy RNG)")
        elif base == "random" and node.attr not in STDLIB_ALLOWED:
            out.append(f"uses random.{node.attr} (the global stdlib RNG)")
    return out


def _own_nodes(scope: ast.AST) -> list[ast.AST]:
    """The nodes of ``scope`` itself: nested scopes are included but not entered."""
    out, todo = [], list(ast.iter_child_nodes(scope))
    while todo:
        n = todo.pop()
        out.append(n)
        if not isinstance(n, _SCOPES):
            todo.extend(ast.iter_child_nodes(n))
    return out


def _tainted(nodes: list[ast.AST], aliases: dict[str, str], inherited: frozenset[str]) -> set[str]:
    """Names bound from a clock, directly or through other tainted names (to a fixpoint)."""
    tainted = set(inherited)
    changed = True
    while changed:
        changed = False
        for node in nodes:
            if (
                isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr))
                and node.value
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if _clock_calls(node.value, aliases, tainted):
                    for name in _bound_names(targets):
                        if name not in tainted:
                            tainted.add(name)
                            changed = True
    return tainted


def _check_scope(
    scope: ast.AST,
    inherited: frozenset[str],
    aliases: dict[str, str],
    report: Callable[[ast.AST, str], None],
) -> None:
    """Clock-derived seeds, scope by scope: names bound from a clock (closures see their
    enclosing scope's), then RNG constructors or `.seed(...)` calls fed by them."""
    nodes = _own_nodes(scope)
    tainted = _tainted(nodes, aliases, inherited)
    for node in nodes:
        if isinstance(node, ast.Call):
            q = _qualname(node.func, aliases)
            is_seed_method = isinstance(node.func, ast.Attribute) and node.func.attr == "seed"
            if (q in RNG_CONSTRUCTORS or is_seed_method) and any(
                _clock_calls(arg, aliases, tainted)
                for arg in [*node.args, *(k.value for k in node.keywords)]
            ):
                report(node, f"seeds {q or node.func.attr} from the clock")
        if isinstance(node, _SCOPES):
            _check_scope(node, frozenset(tainted), aliases, report)


def package_files() -> list[Path]:
    return sorted(Path(synth_assets.__file__).parent.rglob("*.py"))


# ---- the scanner catches what it must ------------------------------------------------------


@pytest.mark.parametrize(
    "snippet",
    [
        "import random\nrandom.seed(1)",
        "import random\nx = random.random()",
        "import random as r\nr.shuffle([1, 2])",
        "from random import choice\nchoice([1, 2])",
        "import numpy as np\nnp.random.seed(0)",
        "import numpy as np\nx = np.random.rand(3)",
        "import numpy as np\nx = np.random.choice(5, 2)",
        "import numpy\nnumpy.random.normal()",
        "import numpy.random as npr\nnpr.permutation(4)",
        "from numpy import random as npr\nnpr.randint(3)",
        "from numpy.random import shuffle",
        "import numpy as np\nrs = np.random.RandomState(1)",
    ],
)
def test_scanner_flags_global_rng_use(snippet):
    assert scan_source(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        "import time\nimport numpy as np\nrng = np.random.default_rng(int(time.time()))",
        "import time\nimport numpy as np\nss = np.random.SeedSequence(time.time_ns())",
        "from datetime import datetime\nimport numpy as np\nrng = np.random.default_rng(datetime.now().microsecond)",
        "import time\nimport numpy as np\nt = time.perf_counter_ns()\ns = t ^ 0x5A\nrng = np.random.default_rng(s)",
        "import os\nimport numpy as np\nrng = np.random.default_rng(seed=os.getpid())",
        "import time\ndef f(g):\n    g.seed(int(time.time()))",
        "import time\nimport numpy as np\ndef outer():\n    s = time.time_ns()\n    def inner():\n"
        "        return np.random.default_rng(s)\n    return inner",
    ],
)
def test_scanner_flags_clock_derived_seeds(snippet):
    assert any("clock" in f for f in scan_source(snippet))


def test_scanner_accepts_explicit_generators_and_os_entropy():
    ok = textwrap.dedent("""
        import secrets
        import time
        import numpy as np
        from numpy.random import Generator, SeedSequence
        root = np.random.SeedSequence(int.from_bytes(secrets.token_bytes(32), "big"))
        children = root.spawn(4)
        rng: np.random.Generator = np.random.default_rng(children[0])
        draws = rng.random(10)
        started = time.monotonic()  # timing is fine, seeding from it is not
        elapsed = time.monotonic() - started
    """)
    assert scan_source(ok) == []


def test_scanner_keeps_clock_taint_inside_its_scope():
    ok = textwrap.dedent("""
        import time
        import numpy as np
        def timed(report):
            t0 = time.monotonic()
            report["seconds"] = time.monotonic() - t0
        def draw(seed):
            t0 = seed
            return np.random.default_rng(t0)
    """)
    assert scan_source(ok) == []


def test_package_uses_no_global_rng_and_no_clock_seed():
    findings = [f for p in package_files() for f in scan_source(p.read_text(), str(p))]
    assert findings == [], "\n".join(findings)


# ---- runtime ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec(demo_url) -> dict:
    """A small generation spec profiled from the demo source (4 shards)."""
    cfg = parse_config(
        {
            "source": {"url": demo_url},
            "generation": {"shards": 4, "scale": 0.5},
            "bounds": DEMO_BOUNDS,
        }
    )
    with pg.connect(demo_url) as conn:
        model = reflect(conn, "public")
        roles = infer_roles(conn, model)
        pack = profile_source(
            conn, model, roles, cfg, b"k" * 32, refresh_id="rng-test", log=lambda m: None
        )
    return calibrate(pack, cfg)


def _frames(out: Path, shard: int) -> dict[str, pl.DataFrame]:
    return {
        p.parent.name: pl.read_parquet(p)
        for p in sorted(out.glob(f"shards/*/part-{shard:05d}.parquet"))
    }


def test_generation_leaves_the_global_rng_states_untouched(spec, tmp_path):
    np_before, py_before = np.random.get_state(), random.getstate()
    generate_shard(spec, new_master_seed(), 1, tmp_path)
    np_after = np.random.get_state()
    assert random.getstate() == py_before
    assert (
        np_before[0] == np_after[0]
        and np.array_equal(np_before[1], np_after[1])
        and np_before[2:] == np_after[2:]
    )


def test_each_shard_has_its_own_stream():
    seqs = streams(new_master_seed(), 6)
    assert len({s.spawn_key for s in seqs}) == len(seqs) and len({s.entropy for s in seqs}) == 1
    states = [tuple(s.generate_state(8)) for s in seqs]
    assert len(set(states)) == len(states)
    draws = [np.random.default_rng(s).integers(0, 2**63, 1000) for s in seqs]
    for i in range(len(draws)):
        for j in range(i + 1, len(draws)):
            assert not np.intersect1d(draws[i], draws[j]).size


def test_a_shard_depends_only_on_the_seed_and_its_index(spec, tmp_path):
    seed = new_master_seed()
    alone = tmp_path / "alone"
    generate_shard(spec, seed, 2, alone)  # shard 2 generated by itself, first
    together = tmp_path / "together"
    for shard in range(spec["shards"]):  # ... and after every other shard, in order
        generate_shard(spec, seed, shard, together)
    a, b = _frames(alone, 2), _frames(together, 2)
    assert a.keys() == b.keys() and all(a[t].equals(b[t]) for t in a)
    other = _frames(together, 3)
    root = spec["unit_table"]
    assert not a[root].drop(a[root].columns[0]).equals(other[root].drop(other[root].columns[0]))


def test_two_concurrent_refreshes_never_share_a_seed_or_a_stream(spec, tmp_path):
    init_local_secrets(tmp_path / "secrets")
    backend = LocalSecrets(tmp_path / "secrets")
    rids = ["r20260101T030000Z-aaaaaa", "r20260101T030000Z-bbbbbb"]
    barrier = threading.Barrier(len(rids))
    results: dict[str, dict] = {}

    def refresh(rid: str) -> None:
        barrier.wait()  # both refreshes draw their seed and generate at the same time
        seed = new_master_seed()
        backend.seal_seed(rid, seed)
        gen = ShardGenerator(spec, backend.unseal_seed(rid).value)
        generate_shard(spec, seed, 0, tmp_path / rid)
        results[rid] = {"seed": seed, "states": {(s.entropy, s.spawn_key) for s in gen.seqs}}

    threads = [threading.Thread(target=refresh, args=(r,)) for r in rids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = (results[r] for r in rids)
    assert a["seed"] != b["seed"]
    assert not a["states"] & b["states"]
    fa, fb = _frames(tmp_path / rids[0], 0), _frames(tmp_path / rids[1], 0)
    root = spec["unit_table"]
    cols = [c for c in fa[root].columns if fa[root][c].dtype == pl.Utf8]
    assert cols and not fa[root].select(cols).equals(fb[root].select(cols))
    # Each refresh's shard is exactly what its own sealed seed reproduces: no cross-talk.
    for rid in rids:
        again = tmp_path / f"{rid}-again"
        generate_shard(spec, backend.unseal_seed(rid).value, 0, again)
        first, second = _frames(tmp_path / rid, 0), _frames(again, 0)
        assert all(first[t].equals(second[t]) for t in first)
