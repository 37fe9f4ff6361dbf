"""The annual budget: enforced before any query reaches the source; regeneration spends nothing."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from synth_assets.core import budget
from synth_assets.core.errors import BudgetError
from synth_assets.orchestrate import run_refresh
from synth_assets_tests.conftest import SESSION, make_config


def _spend(key_url, schema, n, when=None):
    for i in range(n):
        budget.reserve(
            SESSION["target"],
            f"r20260101T00000{i}Z-{key_url[-6:]}{i}",
            key_url,
            schema,
            1.0,
            1e-6,
            100.0,
            now=when,
        )


def test_the_fifth_refresh_in_a_year_is_refused_before_the_source_is_contacted(workdir, meta_url):
    # A source that does not exist: any attempt to contact it would fail with a connection error.
    ghost = "postgresql://reader@127.0.0.1:1/prod_ghost"
    _spend(ghost, "public", 4, datetime.now(UTC) - timedelta(days=30))
    cfg = make_config(ghost, privacy={"annual_epsilon_cap": 4.0})
    with pytest.raises(BudgetError, match=r"cap is epsilon=4 .* 4 is already spent.*frees up on"):
        run_refresh(None, workdir, cfg_override=cfg, log=lambda m: None)
    assert not (workdir / "runs").exists()


def test_spends_older_than_a_year_free_up_budget(meta_url):
    url = "postgresql://reader@127.0.0.1:1/prod_old"
    _spend(url, "public", 4, datetime.now(UTC) - timedelta(days=400))
    key, _ = budget.source_key(url, "public")
    assert budget.standing(SESSION["target"], key, 4.0).spent == 0


def test_reserve_refuses_over_the_cap_and_names_the_date(meta_url):
    url = "postgresql://reader@127.0.0.1:1/prod_cap"
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    _spend(url, "s", 3, t0)
    with pytest.raises(BudgetError, match="2027-03-01"):
        budget.reserve(
            SESSION["target"],
            "r20260401T000000Z-aaaaaa",
            url,
            "s",
            2.0,
            1e-6,
            4.0,
            now=t0 + timedelta(days=31),
        )


def test_regenerate_from_spec_leaves_the_ledger_unchanged(workdir, demo_url):
    from synth_assets.definitions import build_definitions

    cfg = make_config(demo_url)
    with dg.DagsterInstance.ephemeral() as inst:
        summary = run_refresh(None, workdir, cfg_override=cfg, instance=inst, log=lambda m: None)
        key, _ = budget.source_key(demo_url, "public")
        before = budget.standing(SESSION["target"], key, 1000.0)
        defs = build_definitions(
            config_file=str(workdir / "effective-synth.yaml"), workdir=str(workdir)
        )
        res = dg.materialize(
            [*defs.assets, *defs.asset_checks],
            selection=["calibrated_spec"],
            instance=inst,
            resources=defs.resources,
            raise_on_error=False,
        )
        assert res.success
        after = budget.standing(SESSION["target"], key, 1000.0)
    assert after.spent == before.spent and len(after.entries) == len(before.entries)
    new_rid = res.asset_materializations_for_node("calibrated_spec")[0].metadata["refresh_id"].value
    assert new_rid != summary["refresh_id"]
