"""Step processes of the default executor: forked from a preloaded forkserver, isolated, with the run's environment."""

from __future__ import annotations

import os
from pathlib import Path

from _step_jobs import MARK_ENV
from dagster import build_reconstructable_job
from dagster._core.execution.api import execute_job

from maestro_dagster import step_processes, step_server
from maestro_dagster.step_processes import START_METHOD, prestart, with_start_method

HERE = Path(__file__).parent


def _outputs(instance, run_config: dict | None = None) -> dict:
    recon = build_reconstructable_job("_step_jobs", "two_steps_job", reconstructor_working_directory=str(HERE))
    with execute_job(recon, instance=instance, run_config=run_config or {}) as result:
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        return result.output_for_node("report_again")


def test_without_a_start_method_the_run_config_gets_the_forkserver_and_a_named_one_is_kept():
    assert with_start_method({"multiprocess": {"max_concurrent": 2}}) == {
        "multiprocess": {
            "max_concurrent": 2,
            "start_method": {START_METHOD: {"preload_modules": list(step_processes.PRELOAD)}},
        }
    }
    spawn = {"multiprocess": {"start_method": {"spawn": {}}}}
    assert with_start_method(spawn) is spawn
    in_process = {"in_process": {}}
    assert with_start_method(in_process) is in_process


def test_steps_are_forks_of_the_server_each_its_own_process(disk_instance, monkeypatch):
    monkeypatch.setenv(MARK_ENV, "first")
    out = _outputs(disk_instance)
    first = out["first"]
    assert "forkserver" in first["parent_cmdline"] and "forkserver" in out["parent_cmdline"]
    assert first["pid"] != out["pid"] != os.getpid()
    # isolation: a module global one step changed is not seen by the next (each is a fresh fork of the server)
    assert first["touched_by"] == [first["pid"]] and out["touched_by"] == [out["pid"]]
    assert first["mark"] == out["mark"] == "first"
    assert first["modules_file"] is None  # the server's preload list never reaches a step


def test_a_changed_environment_gets_a_new_server_and_steps_see_it(disk_instance, monkeypatch):
    monkeypatch.setenv(MARK_ENV, "before")
    prestart()
    server = step_server.forkserver._forkserver._forkserver_pid
    prestart()
    assert step_server.forkserver._forkserver._forkserver_pid == server  # same environment: the same server
    assert _outputs(disk_instance)["mark"] == "before"
    assert step_server.forkserver._forkserver._forkserver_pid == server

    monkeypatch.setenv(MARK_ENV, "after")
    out = _outputs(disk_instance)
    assert out["mark"] == out["first"]["mark"] == "after"
    assert step_server.forkserver._forkserver._forkserver_pid not in (None, server)


def test_a_named_start_method_is_used(disk_instance, monkeypatch):
    monkeypatch.setenv(MARK_ENV, "spawned")
    out = _outputs(disk_instance, {"execution": {"config": {"multiprocess": {"start_method": {"spawn": {}}}}}})
    assert "forkserver" not in out["parent_cmdline"]
    assert out["mark"] == "spawned"


def test_the_setting_brings_back_dagsters_spawn(monkeypatch):
    from maestro_dagster.settings import get_settings

    monkeypatch.setenv("MAESTRO_STEP_START_METHOD", "spawn")
    get_settings.cache_clear()
    config = {"multiprocess": {"max_concurrent": 2}}
    assert with_start_method(config) is config
    monkeypatch.setenv("MAESTRO_STEP_START_METHOD", "forkserver")
    get_settings.cache_clear()
    assert START_METHOD in with_start_method(config)["multiprocess"]["start_method"]
