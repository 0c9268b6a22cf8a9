"""Deployments against a real `prefect server start`: `nst deploy` + a process worker, `nst serve`,
and deployments/prefect.yaml through `prefect deploy`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from tests.flows.test_stylize_manifest import write_manifest
from tests.ui.conftest import (GPU_LIMIT, REPO_ROOT, WORK_POOL, DeployedRun, Server, api_client, client_env,
                               run_deployment_on, start_process, stop_process, tail, wait_for,
                               wait_for_last_log)


def _filters(flow_run_id: Any) -> dict[str, Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return {"flow_run_filter": FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))}


def _artifacts(client: Any, flow_run_id: Any) -> dict[str, Any]:
    return {a.key: a for a in client.read_artifacts(**_filters(flow_run_id))}


def test_nst_deploy_registers_a_scheduled_deployment_on_a_process_pool(deployed_run: DeployedRun,
                                                                        prefect_ui_server: Server) -> None:
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterId, FlowRunFilter,
                                                FlowRunFilterState, FlowRunFilterStateType)

    with api_client(prefect_ui_server) as client:
        pool = client.read_work_pool(WORK_POOL)
        deployment = client.read_deployment_by_name(deployed_run.deployment_name)
        limit = client.read_global_concurrency_limit_by_name(GPU_LIMIT)
        assert pool.type == "process"  # created by `nst deploy`, with the process job template
        assert "command" in pool.base_job_template["variables"]["properties"]
        assert deployment.work_pool_name == WORK_POOL
        assert deployment.entrypoint == "flows/stylize_manifest.py:stylize_manifest"
        assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory":
                                          {"directory": str(REPO_ROOT)}}]
        assert deployment.parameters == {"manifest_uri": str(deployed_run.manifest),
                                         "options": {"gpu_limit": GPU_LIMIT, "batch_size": 1}}
        assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
        assert limit.limit == 1 and limit.active_slots == 0  # every slot the run held was released

        # The server's scheduler turns the cron into runs at 03:00, which the UI lists as upcoming.
        def upcoming() -> list[Any]:
            return client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=["SCHEDULED"]))))

        scheduled = wait_for(upcoming, 120, "scheduled runs of the cron deployment")
        times = sorted(run.expected_start_time for run in scheduled)
        assert all(t > datetime.now(timezone.utc) and (t.hour, t.minute, t.second) == (3, 0, 0) for t in times)


def test_a_worker_runs_the_deployment_and_its_artifacts_are_in_the_api(deployed_run: DeployedRun,
                                                                       prefect_ui_server: Server) -> None:
    flow_run = deployed_run.flow_run
    assert flow_run.name == "ui-gallery"  # named after the manifest, not a random pair of words
    assert flow_run.state.is_failed(), tail(deployed_run.worker_log)
    assert "2 of 6 pairs failed" in flow_run.state.message
    assert (deployed_run.output / "results" / "photo0--art1.png").is_file()  # the worker wrote the results

    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with api_client(prefect_ui_server) as client:
        names = sorted(t.name for t in client.read_task_runs(**_filters(flow_run.id)))
        artifacts = _artifacts(client, flow_run.id)

        messages = [log.message for log in client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])), limit=200)]

    # batch size 1: a task run per pair, named after it, and one per style target
    assert {"style art0 @32px", "style art1 @32px", "stylize photo0 x art0", "stylize photo2 x art1"} <= set(names)
    assert set(artifacts) == {"nst-ui-gallery-progress", "nst-ui-gallery-results", "nst-ui-gallery-gallery"}
    progress = artifacts["nst-ui-gallery-progress"]
    assert progress.type == "progress" and float(progress.data) == 100.0
    rows = artifacts["nst-ui-gallery-results"].data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    assert {(r["pair"], r["status"]) for r in rows} == {
        ("photo0--art0", "done"), ("photo0--art1", "done"), ("photo2--art0", "done"), ("photo2--art1", "done"),
        ("photo1--art0", "failed"), ("photo1--art1", "failed")}
    assert all("photo1.png" in r["reason"] for r in rows if r["status"] == "failed")
    assert all(r["total loss"] and r["seconds"] != "" for r in rows if r["status"] == "done")
    gallery = artifacts["nst-ui-gallery-gallery"].data
    assert gallery.count("data:image/jpeg;base64,") == 4  # thumbnails inline: the UI cannot show file:// images
    assert "## Failed" in gallery and "photo1 x art0: " in gallery
    # Iteration progress is logged at intervals (every 50 steps and the last), not every step.
    steps = [m for m in messages if re.search(r"step \d+/\d+", m)]
    assert len(steps) == 4 and all("step 3/3" in m for m in steps)  # one line per pair of 3 steps
    assert any(m.startswith("4 done, 0 skipped, 2 failed; gallery: file://") for m in messages)


def test_a_partial_failure_is_reported_without_a_traceback(deployed_run: DeployedRun,
                                                           prefect_ui_server: Server) -> None:
    """The run is Failed with the right counts, each failed pair has one log line with
    its reason and a task run in the list, and nothing logs a traceback (UI or worker)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    flow_run = deployed_run.flow_run
    assert flow_run.state.message == "2 of 6 pairs failed (4 done, 0 skipped, 2 failed)"
    with api_client(prefect_ui_server) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])), limit=200)
        task_runs = {t.name: t for t in client.read_task_runs(**_filters(flow_run.id))}
        progress = _artifacts(client, flow_run.id)["nst-ui-gallery-progress"]
    worker_log = deployed_run.worker_log.read_text(errors="replace")
    for text in [entry.message for entry in logs] + [worker_log]:
        assert "Traceback" not in text and "Unexpected result" not in text, text
    for style in ("art0", "art1"):
        lines = [e for e in logs if e.message.startswith(f"failed photo1 x {style}: ")]
        assert len(lines) == 1 and "photo1.png" in lines[0].message  # one line per pair, with its reason
    marker = task_runs["failed photo1 x art0, photo1 x art1"]  # one task run per unreadable input
    assert marker.state.is_failed() and "photo1.png" in marker.state.message
    assert progress.description.startswith("6 of 6 pairs finished: 4 done, 2 failed, 0 skipped")


def test_the_failure_alert_reaches_a_webhook(deployed_run: DeployedRun, prefect_ui_server: Server) -> None:
    """`nst deploy --notify-webhook URL`: the server's automation POSTs to our receiver when the
    run ends Failed, naming the run, its state and message, and linking to it."""
    from deployments.alerts import automation_name

    with api_client(prefect_ui_server) as client:
        (automation,) = client.read_automations_by_name(automation_name(deployed_run.deployment_name))
    assert automation.enabled and automation.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    received = wait_for(lambda: deployed_run.webhook.received, 120, "the failure notification at the webhook")
    (alert,) = received
    assert alert["path"] == "/nst-alert" and "ui-gallery" in alert["subject"] and "Failed" in alert["subject"]
    assert "2 of 6 pairs failed" in alert["body"]
    assert f"{prefect_ui_server.url}/runs/flow-run/{deployed_run.flow_run.id}" in alert["body"]  # a link to the run


def test_nst_serve_runs_triggered_runs_and_pauses_its_schedule_on_stop(prefect_ui_server: Server,
                                                                        tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "served-one", contents=1, styles=1)
    log = tmp_path / "serve.log"
    serve = start_process([sys.executable, "-m", "nst_cli", "serve", str(manifest), "--cron", "30 4 * * *"],
                          log, client_env(prefect_ui_server))
    try:
        with api_client(prefect_ui_server) as client:
            def served() -> Any:
                from prefect.exceptions import ObjectNotFound

                if serve.poll() is not None:
                    raise AssertionError(f"nst serve exited with {serve.returncode}:\n{tail(log)}")
                try:
                    return client.read_deployment_by_name("stylize-manifest/served-one")
                except ObjectNotFound:
                    return None

            deployment = wait_for(served, 120, "nst serve: deployment registered", log=log)
            assert [s.schedule.cron for s in deployment.schedules] == ["30 4 * * *"] and not deployment.paused
            assert deployment.work_pool_name is None  # served: no pool, no worker
        flow_run = run_deployment_on(prefect_ui_server, "stylize-manifest/served-one", log)
        wait_for_last_log(prefect_ui_server, flow_run.id, log)
        assert flow_run.state.is_completed(), tail(log)
        assert flow_run.name == "served-one" and flow_run.state.message == "1 done, 0 skipped, 0 failed"
        assert (tmp_path / "served-one" / "out" / "results" / "photo0--art0.png").is_file()
        with api_client(prefect_ui_server) as client:
            assert set(_artifacts(client, flow_run.id)) == {
                "nst-served-one-progress", "nst-served-one-results", "nst-served-one-gallery"}
    finally:
        stop_process(serve)
    with api_client(prefect_ui_server) as client:
        # Stopping the service pauses the schedule, so runs do not pile up while no one serves.
        assert client.read_deployment_by_name("stylize-manifest/served-one").paused


def test_nst_deploy_and_serve_refuse_without_a_server_and_report_a_bad_manifest(tmp_path: Path,
                                                                               prefect_ui_server: Server) -> None:
    env = client_env(prefect_ui_server)
    env.pop("PREFECT_API_URL")
    env["PREFECT_PROFILES_PATH"] = str(tmp_path / "profiles.toml")  # no profile that names a server
    no_server = subprocess.run([sys.executable, "-m", "nst_cli", "deploy", "any.yaml"], cwd=REPO_ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
    assert no_server.returncode == 1 and "prefect server start" in no_server.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\ncontents: []\nstyles: []\n")
    result = subprocess.run([sys.executable, "-m", "nst_cli", "serve", str(bad), "--cron", "0 3 * * *"],
                            cwd=REPO_ROOT, env=client_env(prefect_ui_server), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "contents" in result.stderr
    with api_client(prefect_ui_server) as client:
        from prefect.exceptions import ObjectNotFound

        try:
            client.read_deployment_by_name("stylize-manifest/bad")
            raise AssertionError("a deployment was registered for an invalid manifest")
        except ObjectNotFound:
            pass


def test_prefect_yaml_registers_the_nightly_demo_deployment(prefect_ui_server: Server) -> None:
    from deployments import manifest_deployment as definitions

    config = yaml.safe_load((REPO_ROOT / "deployments" / "prefect.yaml").read_text())
    (entry,) = config["deployments"]
    # The yaml and the Python definitions name the same pool, limit, schedule and entrypoint.
    assert entry["work_pool"]["name"] == definitions.WORK_POOL
    assert entry["parameters"]["options"]["gpu_limit"] == definitions.GPU_LIMIT
    assert entry["schedules"][0]["cron"] == definitions.EXAMPLE_CRON
    assert entry["entrypoint"] == definitions.ENTRYPOINT

    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_ui_server.api_url}):
        definitions.ensure_work_pool()  # `prefect deploy` needs the pool to exist
        assert definitions.ensure_work_pool() is False  # created once, then left as it is
    env = client_env(prefect_ui_server) | {"PWD": str(REPO_ROOT)}  # what a shell in the repo root sets
    result = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--prefect-file",
                             "deployments/prefect.yaml", "--all"], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    with api_client(prefect_ui_server) as client:
        deployment = client.read_deployment_by_name("stylize-manifest/demo-nightly")
    assert deployment.work_pool_name == definitions.WORK_POOL
    assert deployment.parameters["manifest_uri"] == str(REPO_ROOT / "examples" / "demo" / "manifest.yaml")
    assert Path(deployment.parameters["manifest_uri"]).is_file()
    assert [(s.schedule.cron, s.active) for s in deployment.schedules] == [(definitions.EXAMPLE_CRON, True)]
    assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory":
                                      {"directory": str(REPO_ROOT)}}]

    # the documented way to alert on this deployment (prefect.yaml has no key for automations)
    from deployments.alerts import automation_name

    notify = subprocess.run([sys.executable, "-m", "nst_cli", "notify", "stylize-manifest/demo-nightly", "--webhook",
                             "http://127.0.0.1:9/nst-alert"], cwd=REPO_ROOT, env=client_env(prefect_ui_server),
                            capture_output=True, text=True, timeout=180)
    assert notify.returncode == 0, notify.stdout + notify.stderr
    with api_client(prefect_ui_server) as client:
        (automation,) = client.read_automations_by_name(automation_name("stylize-manifest/demo-nightly"))
    assert f"prefect.deployment.{deployment.id}" in str(automation.trigger.match_related)  # this deployment only
