"""The deployment files: a hardened unit, a pinned container, monitoring that reads real series."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.service.test_health import scrape_after_one_step

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# systemd-analyze's scale: 0 (locked down) to 10 (fully exposed); "OK" is 2.5 or lower.
HIGHEST_EXPOSURE = 2.5


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (Debian's systemd package has it)")
def test_the_unit_scores_ok_in_systemd_analyze_security() -> None:
    # Given the unit as shipped, when systemd scores its exposure without loading it,
    completed = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager",
         str(DEPLOY / "rrbot.service")], capture_output=True, text=True, check=False,
        timeout=60)
    # then the overall exposure is 2.5 or lower.
    found = re.search(r"Overall exposure level for rrbot\.service: (\d+\.\d+)",
                      completed.stdout)
    assert found, completed.stdout + completed.stderr
    assert float(found.group(1)) <= HIGHEST_EXPOSURE, completed.stdout


def test_the_unit_runs_under_the_watchdog_and_restarts_on_failure() -> None:
    unit = (DEPLOY / "rrbot.service").read_text(encoding="utf-8")
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "UMask=0077",
                 "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"):
        assert line in unit, line


def test_every_series_the_alerts_and_the_dashboard_read_is_exposed(tmp_path: Path) -> None:
    # Given the alert rules and the dashboard as shipped,
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rrbot-rules.yml").read_text("utf-8"))
    alerts = {rule["alert"]: rule["expr"] for group in rules["groups"]
              for rule in group["rules"]}
    dashboard = json.loads((DEPLOY / "grafana" / "rrbot-dashboard.json").read_text("utf-8"))
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    # when the series they name are looked for in what /metrics exposes,
    exposed = {sample.name for family in scrape_after_one_step(tmp_path).values()
               for sample in family.samples}
    named = set(re.findall(r"\b(?:rrbot|process)_[a-z_]+", " ".join([*alerts.values(),
                                                                     *queries])))
    # then each is there, and the alerts cover what the IT officer must hear of.
    assert named and named <= exposed, named - exposed
    assert {"RrbotEngineStale", "RrbotMailboxUnreachable", "RrbotDeadLetters",
            "RrbotStatutoryMilestoneOverdue", "RrbotSubmissionAtRisk"} <= set(alerts)
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"


def test_the_container_is_pinned_and_installs_from_the_lock_file() -> None:
    containerfile = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    base = re.search(r"^FROM (\S+)", containerfile, re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}",
                                 base.group(1))
    assert "--require-hashes" in containerfile and "requirements.lock" in containerfile
    assert " -e " not in containerfile and "--no-deps" in containerfile
