"""The refresh summary (core/summary.py): one typed model, written and read as the JSON that
refreshes have always written, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synth_assets.core.artifacts import write_checks_summary
from synth_assets.core.pack import pack_summary
from synth_assets.core.store import RefreshStore, write_json_atomic
from synth_assets.core.summary import (
    UNSET,
    AnnualBudget,
    CheckResult,
    PackSpend,
    RefreshSummary,
    SummaryError,
    SummaryWriter,
    read_summary,
    write_summary,
)

RID = "r20260101T030000Z-a1b2c3"
BUDGET = {
    "source": "postgresql://postgres:@/bank_src#public",
    "annual_cap": 1000.0,
    "spent_365d": 0.999999999999947,
    "remaining": 999.0,
}
STAGES = {"source_schema": 0.31, "metrics_pack": 1.12, "synthetic_shards": 2.4}
PACK_CHECK = {
    "passed": True,
    "asset": "metrics_pack",
    "epsilon_spent": 0.999999999999947,
    "epsilon_cap": 1.0,
    "measurements": 69,
    "failures": [],
}
SHARDS_CHECK = {
    "passed": True,
    "asset": "synthetic_shards",
    "refresh_id": RID,
    "rows": {"customers": 1464, "accounts": 1921},
    "failures": [],
}
GATE_CHECK = {
    "passed": False,
    "asset": "privacy_report",
    "refresh_id": RID,
    "value": 0.5425,
    "threshold": 0.548,
    "op": ">=",
    "config_key": "gates.hour_of_week_corr_min",
    "gated": True,
    "worst": "transactions.ts",
    "items": {"transactions.ts": 0.5425, "customers.created_at": 0.71},
    "failures": ["transactions.ts: hour_of_week_corr = 0.5425, threshold >= 0.548"],
}
PACK_FACTS = {
    "epsilon_spent": 0.999999999999947,
    "delta": 1e-06,
    "reference_epsilon_spent": 3.9999999999966644,
    "privacy_unit": "customers",
}
SPEC_FACTS = {"spec_hash": "ab12", "not_modelled": ["shift.net (inet)"], "seed_commitment": "cd34"}

# Summaries as the code before the typed model built them (orchestrate.py's dict, key by key,
# and write_checks_summary's), one per way a refresh ends.
OLD_SUMMARIES = {
    "passed": {
        "refresh_id": RID,
        "checks": {"budget_within_cap": PACK_CHECK, "shards_valid": SHARDS_CHECK},
        "tables": {"customers": {"rows": 1464}, "accounts": {"rows": 1921}},
        "artifacts": f"/w/runs/{RID}",
        "stages": STAGES,
        **PACK_FACTS,
        "budget": BUDGET,
        **SPEC_FACTS,
        "passed": True,
        "seconds": 9.5,
    },
    "run-1-stopped-by-a-gate": {
        "refresh_id": RID,
        "checks": {"budget_within_cap": {**PACK_CHECK, "passed": False}},
        "tables": {},
        "artifacts": f"/w/runs/{RID}",
        "stages": STAGES,
        "error": None,
        "epsilon_spent": 2.0,
        "delta": 1e-06,
        "privacy_unit": None,
        "budget": BUDGET,
        "passed": False,
        "seconds": 3.2,
    },
    "run-1-failed-before-measuring": {
        "refresh_id": RID,
        "checks": {},
        "tables": {},
        "artifacts": f"/w/runs/{RID}",
        "stages": {},
        "error": "metrics_pack: customers.email has no role",
        "budget_released": True,
        "budget": BUDGET,
        "passed": False,
        "seconds": 1.0,
    },
    "regenerated-run-2-failed": {
        "refresh_id": RID,
        "checks": {"shards_valid": SHARDS_CHECK, "fidelity_hour_of_week": GATE_CHECK},
        "tables": {"customers": {"rows": 1464}, "accounts": {"rows": 1921}},
        "artifacts": f"/w/runs/{RID}",
        "regenerated_from": "r20251231T030000Z-000000",
        "stages": STAGES,
        "error": "release_gates: refresh failed",
        **PACK_FACTS,
        "budget": BUDGET,
        **{**SPEC_FACTS, "not_modelled": []},
        "passed": False,
        "seconds": 12.3,
    },
    "dagster-only": {
        "refresh_id": RID,
        "checks": {"shards_valid[00001]": {"passed": True, "asset": "synthetic_shards"}},
        "passed": True,
        "tables": {"customers": {"rows": 1464}},
        "written_by": "published_refresh",
    },
}


@pytest.mark.parametrize("name", list(OLD_SUMMARIES))
def test_a_summary_the_old_code_wrote_reads_and_rewrites_to_the_same_bytes(tmp_path, name):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old_sha = write_json_atomic(old, OLD_SUMMARIES[name])
    assert write_summary(new, read_summary(old)) == old_sha
    assert new.read_bytes() == old.read_bytes()


@pytest.mark.parametrize("name", list(OLD_SUMMARIES))
def test_a_summary_keeps_every_key_and_value_in_memory_too(name):
    """What `run_refresh` hands scripts is the same JSON object (key order aside)."""
    raw = json.loads(json.dumps(OLD_SUMMARIES[name]))
    assert RefreshSummary.from_json(raw).to_json() == raw


def test_the_model_round_trips_through_json():
    summary = RefreshSummary(
        refresh_id=RID,
        checks={
            "budget_within_cap": CheckResult(True, "metrics_pack", {"epsilon_cap": 1.0}),
            "fidelity_hour_of_week": CheckResult(False, "privacy_report", {"items": {"a": 0.5}}),
        },
        rows={"customers": 1464},
        passed=False,
        artifacts=Path(f"/w/runs/{RID}"),
        regenerated_from="r20251231T030000Z-000000",
        stages=STAGES,
        error=None,
        budget_released=True,
        pack=PackSpend(1.0, 1e-6, None, reference_epsilon_spent=0.0),
        budget=AnnualBudget(**BUDGET),
        spec_hash="ab12",
        not_modelled=("shift.net (inet)",),
        seed_commitment="cd34",
        seconds=9.5,
        written_by=SummaryWriter.PUBLISHED_REFRESH,
    )
    raw = json.loads(json.dumps(summary.to_json()))
    assert RefreshSummary.from_json(raw) == summary


def test_an_error_key_set_to_null_is_kept_apart_from_no_error_key():
    """Run 1 stopped by its gates alone records ``"error": null``; a refresh no run stopped
    records no error at all."""
    stopped = RefreshSummary.from_json({"refresh_id": RID, "error": None})
    clean = RefreshSummary.from_json({"refresh_id": RID})
    assert stopped.error is None and stopped.to_json()["error"] is None
    assert clean.error is UNSET and "error" not in clean.to_json()
    assert stopped.failure is None and clean.failure is None


def test_the_checks_summary_of_a_dagster_only_refresh_is_written_as_before(tmp_path):
    store = RefreshStore(tmp_path / "runs")
    write_json_atomic(store.paths(RID).load, {"rows": {"customers": 1464}})
    checks = {"shards_valid[00001]": CheckResult(True, "synthetic_shards")}
    write_checks_summary(tmp_path, store, RID, checks)
    old = tmp_path / "old.json"
    write_json_atomic(old, OLD_SUMMARIES["dagster-only"])
    assert store.paths(RID).summary.read_bytes() == old.read_bytes()


@pytest.mark.parametrize(
    "reference_ledger, facts",
    [
        ({"epsilon_spent": 3.9999999999966644}, PACK_FACTS),
        (None, {k: v for k, v in PACK_FACTS.items() if k != "reference_epsilon_spent"}),
    ],
    ids=["reference-tables-spent", "no-reference-tables"],
)
def test_pack_summary_states_the_exact_ledger_and_the_unit(reference_ledger, facts):
    pack = {
        "ledger": {"epsilon_spent": 0.999999999999947, "delta": 1e-06},
        "privacy": {"unit_table": "customers"},
        **({"reference_ledger": reference_ledger} if reference_ledger else {}),
    }
    assert pack_summary(pack).to_json() == facts


@pytest.mark.parametrize("raw", [True, False, None, {"passed": "yes"}, {"asset": "x"}])
def test_a_check_passes_only_when_it_says_passed_true(raw):
    """A release reads its gates from here: anything short of ``true`` is a failed check."""
    assert CheckResult.from_json(raw).passed is (raw is True)


@pytest.mark.parametrize(
    "raw",
    [[], {"refresh_id": RID, "tables": {"customers": 5}}, {"refresh_id": RID, "budget": {}}],
    ids=["not-an-object", "rows-not-an-object", "budget-incomplete"],
)
def test_a_malformed_summary_is_refused_naming_its_file(tmp_path, raw):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SummaryError, match=str(path)):
        read_summary(path)
