"""Schedule, sensors and the audit of failed gates (Dagster test contexts, ephemeral instance)."""

from datetime import UTC, datetime

import dagster as dg
from dagster._utils.schedules import cron_string_iterator

from synth_assets.core.audit import AuditSigner, bind_audit_log, list_events
from synth_assets.core.config import parse_config
from synth_assets.core.secrets import LocalSecrets, init_local_secrets
from synth_assets.defs.automation.schedules import quarterly_schedule
from synth_assets.defs.automation.sensors import (
    gate_failure_sensor,
    generation_request,
    overrides_sensor,
)
from synth_assets.defs.constants import REFRESH_TAG


def test_quarterly_schedule_fires_on_quarter_boundaries():
    sched = quarterly_schedule(parse_config({}))
    ticks = cron_string_iterator(
        datetime(2026, 1, 15, tzinfo=UTC).timestamp(), sched.cron_schedule, "UTC"
    )
    got = [next(ticks).strftime("%Y-%m-%d %H:%M") for _ in range(4)]
    assert got == ["2026-04-01 03:00", "2026-07-01 03:00", "2026-10-01 03:00", "2027-01-01 03:00"]
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 4, 1, 3, 0, tzinfo=UTC))
    req = sched.evaluate_tick(ctx).run_requests
    assert len(req) == 1 and req[0].job_name in (None, "quarterly_refresh")


def test_overrides_change_requests_one_regeneration_per_distinct_content(tmp_path):
    f = tmp_path / "overrides.yaml"
    f.write_text("overrides:\n  null_rate: {customers.phone: 0.2}\n")
    sensor = overrides_sensor(parse_config({"automation": {"overrides_file": str(f)}}))
    ctx = dg.build_sensor_context()
    first = sensor.evaluate_tick(ctx)
    assert len(first.run_requests) == 1 and first.run_requests[0].run_key.startswith("overrides:")
    again = sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor))
    assert not again.run_requests
    f.write_text("overrides:\n  null_rate: {customers.phone: 0.3}\n")
    changed = sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor))
    assert (
        len(changed.run_requests) == 1
        and changed.run_requests[0].run_key != first.run_requests[0].run_key
    )


def test_generation_request_covers_every_shard_and_keys_on_the_spec_hash():
    req = generation_request("r20260101T000000Z-abcdef", "f" * 64, 3)
    assert req.tags["dagster/asset_partition_range_start"] == "00000"
    assert req.tags["dagster/asset_partition_range_end"] == "00002"
    assert "f" * 64 in req.run_key and req.tags[REFRESH_TAG] == "r20260101T000000Z-abcdef"


def test_a_failed_gate_is_recorded_in_the_audit_log(meta_url, tmp_path):
    # the sensor appends to a keyed log: this process signs with a local secrets backend's key
    init_local_secrets(tmp_path / "secrets")
    bind_audit_log(AuditSigner(LocalSecrets(tmp_path / "secrets"), tmp_path / "audit"), meta_url)

    @dg.asset
    def gated() -> None:
        return None

    @dg.asset_check(asset=gated, blocking=True)
    def must_pass() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, metadata={"dcr_share": 0.71, "threshold": 0.52})

    @dg.asset(deps=[gated])
    def downstream() -> None:
        raise AssertionError("must not run after a failed blocking gate")

    with dg.DagsterInstance.ephemeral() as inst:
        res = dg.materialize(
            [gated, must_pass, downstream],
            instance=inst,
            raise_on_error=False,
            tags={REFRESH_TAG: "r20260101T000000Z-feed01"},
        )
        assert not res.success
        assert not res.asset_materializations_for_node("downstream")
        failure = inst.all_logs(res.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[
            0
        ].dagster_event
        ctx = dg.build_run_status_sensor_context(
            sensor_name="gate_failure_audit",
            dagster_instance=inst,
            dagster_run=res.dagster_run,
            dagster_event=failure,
        ).for_run_failure()
        gate_failure_sensor(lambda: meta_url)(ctx)
    ev = [e for e in list_events(meta_url) if e.refresh_id == "r20260101T000000Z-feed01"]
    assert ev and ev[-1].kind == "gate_failed"
    assert ev[-1].payload["failed_checks"][0]["check"] == "must_pass"
    assert ev[-1].payload["failed_checks"][0]["metadata"]["dcr_share"] == "0.71"


def test_starting_the_ui_regenerates_nothing_and_every_new_spec_once():
    """spec_ready's first evaluation only records where the spec history stands (issue 12 §3)."""
    from synth_assets.defs.automation.sensors import spec_ready

    def spec_run(inst: dg.DagsterInstance, rid: str) -> None:
        @dg.asset(name="calibrated_spec")
        def fake_spec() -> dg.MaterializeResult:
            return dg.MaterializeResult(
                metadata={"refresh_id": rid, "shards": 2, "spec_hash": "h-" + rid}
            )

        assert dg.materialize([fake_spec], instance=inst).success

    with dg.DagsterInstance.ephemeral() as inst:
        spec_run(inst, "r20260101T000000Z-aaaaaa")  # materialized before the UI started
        first = dg.build_sensor_context(instance=inst)
        assert isinstance(spec_ready(first), dg.SkipReason)  # no run on start
        spec_run(inst, "r20260102T000000Z-bbbbbb")
        second = dg.build_sensor_context(instance=inst, cursor=first.cursor)
        [request] = spec_ready(second)
        assert request.tags[REFRESH_TAG] == "r20260102T000000Z-bbbbbb"
        third = dg.build_sensor_context(instance=inst, cursor=second.cursor)
        assert isinstance(spec_ready(third), dg.SkipReason)  # each spec once
