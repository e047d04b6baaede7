"""Deployment artefacts: Dockerfile, compose quickstart, Kubernetes base, systemd, config."""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import ACCOUNT_KEYS
from tests.ops_helpers import (
    REPO,
    RULES_FILE,
    alerting_rule,
    binary,
    load_yaml,
    module,
    rule_groups,
    run,
)

pytestmark = pytest.mark.slow

DEPLOY = REPO / "deploy"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
KUBERNETES = DEPLOY / "kubernetes"
UNIT = DEPLOY / "systemd" / "rackconnect-exporter.service"
CONFIG_EXAMPLE = DEPLOY / "config.example.yml"
K8S_VERSION = "1.30.0"


def kubernetes_validate() -> Any:
    """The kubernetes_validate module (pip install kubernetes-validate)."""
    return module("kubernetes_validate", "kubernetes-validate")


EXIT_CONFIG_ERROR = 3


# --- Dockerfile ---------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), " ".join(args.split())))
    return stages


def instructions(stage: list[tuple[str, str]], name: str) -> list[str]:
    """The arguments of every ``name`` instruction of a stage."""
    return [args for instruction, args in stage if instruction == name]


def test_hadolint_finds_nothing() -> None:
    """hadolint reports no finding at any level."""
    result = run([binary("hadolint"), "--failure-threshold", "style", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_dockerfile_builds_a_wheel_then_installs_it_as_non_root() -> None:
    """Two python:3.11-slim stages: wheel in the first, venv install and non-root in the last."""
    build, final = dockerfile_stages()
    assert instructions(build, "FROM") == ["python:3.11-slim AS build"]
    assert instructions(build, "RUN") == [
        'RACKCONNECT_EXPORTER_REVISION="${REVISION}" '
        "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ."
    ]
    assert instructions(final, "FROM") == ["python:3.11-slim"]
    # The wheel is bind-mounted for the one RUN that installs it: no layer keeps it.
    assert not [c for c in instructions(final, "COPY") if "--from=build" in c]
    (install,) = instructions(final, "RUN")
    assert install.startswith("--mount=type=bind,from=build,source=/wheels,target=/wheels ")
    assert "python -m venv /opt/venv" in install
    assert "/opt/venv/bin/pip install --no-cache-dir /wheels/*.whl" in install
    (user,) = instructions(final, "USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert f"--uid {user.split(':')[0]}" in install, "USER must be the user the RUN creates"
    assert instructions(final, "EXPOSE") == ["10054"]
    assert [json.loads(e) for e in instructions(final, "ENTRYPOINT")] == [["rackconnect-exporter"]]
    (health,) = instructions(final, "HEALTHCHECK")
    assert health.endswith('CMD ["rackconnect-exporter", "healthcheck"]'), health
    labels = " ".join(instructions(final, "LABEL"))
    for key in ("title", "description", "version", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels


def shell_options(command: str, run: str) -> dict[str, str]:
    """The ``--option value`` pairs and the last word of ``command`` within a RUN line."""
    words = run.split(f"{command} ", 1)[1].split("&&", maxsplit=1)[0].split()
    options = {k: v for k, v in zip(words, [*words[1:], ""], strict=True) if k.startswith("--")}
    return options | {"name": words[-1]}


def test_the_image_user_and_group_are_both_10054() -> None:
    """/etc/group gets rackconnect:10054, /etc/passwd names it as the user's group, and
    USER and the Kubernetes securityContext run with the same ids."""
    _build, final = dockerfile_stages()
    (install,) = instructions(final, "RUN")
    group = shell_options("groupadd", install)
    user = shell_options("useradd", install)
    assert group == {"--gid": "10054", "name": "rackconnect"}  # not --system: that is < 1000
    assert (user["--uid"], user["--gid"], user["name"]) == ("10054", "10054", "rackconnect")
    assert "--no-log-init" in user  # a high uid would otherwise grow /var/log/lastlog
    assert install.index("groupadd ") < install.index("useradd ")
    assert instructions(final, "USER") == ["10054:10054"]
    deployment = load_yaml(KUBERNETES / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    for context in (pod["securityContext"], pod["containers"][0]["securityContext"]):
        assert (context["runAsUser"], context["runAsGroup"]) == (10054, 10054)


def build_context_sources() -> list[str]:
    """What the build stage copies from the build context."""
    sources: list[str] = []
    for args in instructions(dockerfile_stages()[0], "COPY"):
        sources += [s.rstrip("/") for s in args.split()[:-1] if not s.startswith("--")]
    return sources


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (last match wins)."""
    ignored = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/").removeprefix("**/")
        parts = Path(path).parts
        if any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
            ignored = not negate
        elif any(fnmatch.fnmatch(part, pattern) for part in parts) and not negate:
            ignored = True
    return ignored


def test_dockerignore_sends_only_the_sources() -> None:
    """Everything the build copies is in the context; tests, VCS and artefacts are not."""
    for source in build_context_sources():
        assert not dockerignored(source), f"{source} is copied but excluded by .dockerignore"
    assert not dockerignored("exporter/cli.py")
    for path in ("tests/test_rules.py", ".git/HEAD", "artifacts/landing.png", "deploy/x.yml"):
        assert dockerignored(path), f"{path} should not be sent to the build"
    assert dockerignored("exporter/__pycache__/cli.cpython-311.pyc")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Replay the Dockerfile's install steps on this machine, offline; the venv's bin directory.

    The wheel is built from what the build stage copies, without build isolation (the
    setuptools of the test environment builds it), and installed without the package index
    into a fresh venv that sees the test environment's packages for its dependencies.
    """
    tmp = tmp_path_factory.mktemp("image")
    src = tmp / "src"
    src.mkdir()
    for source in build_context_sources():  # COPY, as the build stage does
        origin = REPO / source
        if origin.is_dir():
            shutil.copytree(origin, src / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, src / source)
    wheels = tmp / "wheels"
    offline = ["--no-index", "--no-cache-dir", "--disable-pip-version-check"]
    step = run(
        [sys.executable, "-m", "pip", "wheel", *offline, "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), "."],
        cwd=src,
    )  # fmt: skip
    assert step.returncode == 0, step.stdout + step.stderr
    (wheel,) = wheels.glob("rackconnect_exporter-*.whl")
    venv = tmp / "venv"
    step = run([sys.executable, "-m", "venv", str(venv)])
    assert step.returncode == 0, step.stderr
    # The dependencies: the test environment's site-packages, as a plain path (its own .pth
    # files, such as the editable install of this clone, are not read).
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    step = run([str(venv / "bin" / "pip"), "install", *offline, "--no-deps", str(wheel)])
    assert step.returncode == 0, step.stdout + step.stderr
    where = run(
        [str(venv / "bin" / "python"), "-c", "import exporter; print(exporter.__file__)"],
        cwd="/",
        env=clean_env(),
    )
    assert where.stdout.startswith(str(site_packages)), where.stdout + where.stderr
    return venv / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any RACKSPACE_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACKSPACE_")}
    env.pop("PYTHONPATH", None)
    return env | extra


def test_installed_wheel_runs_help(installed: Path) -> None:
    """The console script from the installed wheel answers --help, outside the source tree."""
    result = run([str(installed / "rackconnect-exporter"), "--help"], cwd="/", env=clean_env())
    assert result.returncode == 0, result.stderr
    for command in ("serve", "demo", "check-config", "simulate"):
        assert command in result.stdout


def test_installed_check_config_accepts_environment_credentials(installed: Path) -> None:
    """check-config exits 0 with RACKSPACE_USERNAME and RACKSPACE_API_KEY set."""
    env = clean_env(RACKSPACE_USERNAME="u", RACKSPACE_API_KEY="k")
    result = run([str(installed / "rackconnect-exporter"), "check-config"], cwd="/", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_installed_check_config_without_credentials_exits_3(installed: Path) -> None:
    """check-config exits 3 and names the missing variable when no credentials are set."""
    result = run(
        [str(installed / "rackconnect-exporter"), "check-config"], cwd="/", env=clean_env()
    )
    assert result.returncode == EXIT_CONFIG_ERROR, result.stdout + result.stderr
    assert "RACKSPACE_USERNAME" in result.stdout + result.stderr


@pytest.mark.parametrize("config", [CONFIG_EXAMPLE, DEPLOY / "compose" / "exporter.yml"])
def test_installed_check_config_accepts_shipped_config_files(installed: Path, config: Path) -> None:
    """The example and the compose quickstart config files are valid."""
    result = run(
        [str(installed / "rackconnect-exporter"), "check-config", "--config.file", str(config)],
        cwd="/",
        env=clean_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- docker compose quickstart -------------------------------------------------------------


def compose() -> dict[str, Any]:
    """The parsed compose file."""
    return load_yaml(COMPOSE)


def test_compose_has_the_quickstart_services() -> None:
    """Simulator, exporter, Prometheus, Alertmanager and Grafana, images pinned."""
    services = compose()["services"]
    assert set(services) == {"simulator", "exporter", "prometheus", "alertmanager", "grafana"}
    assert services["simulator"]["command"] == [
        "simulate",
        "--web.listen-address",
        "0.0.0.0:10055",
    ]
    assert services["simulator"]["build"]["dockerfile"] == "Dockerfile"
    assert (COMPOSE.parent / services["simulator"]["build"]["context"] / "Dockerfile").is_file()
    assert services["exporter"]["image"] == services["simulator"]["image"]
    built = services["simulator"]["image"]
    for service in services.values():
        image = service["image"]
        assert image == built or re.search(r":v?\d", image), f"unpinned image {image}"


def test_compose_mounts_exist() -> None:
    """Every bind mount's host path exists in the repository."""
    services = compose()["services"]
    named = set(compose().get("volumes", {}))
    for name, service in services.items():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host in named:
                continue
            assert (COMPOSE.parent / host).exists(), f"{name}: {host} does not exist"


def test_compose_exporter_polls_the_simulator() -> None:
    """The exporter's config file points every account at the simulator's identity URL."""
    exporter = compose()["services"]["exporter"]
    mounts = dict(v.split(":")[:2] for v in exporter["volumes"])
    config_path = exporter["command"][exporter["command"].index("--config.file") + 1]
    host = next(h for h, container in mounts.items() if container == config_path)
    accounts = load_yaml(COMPOSE.parent / host)["accounts"]
    assert {a["name"] for a in accounts} == {"acme", "globex", "initech"}
    assert {a["identity_url"] for a in accounts} == {"http://simulator:10055/v2.0/"}


def test_compose_prometheus_config_is_valid_and_loads_the_rules() -> None:
    """promtool accepts the quickstart Prometheus config and finds the rules file in it."""
    config = DEPLOY / "prometheus" / "prometheus.yml"
    result = run([binary("promtool"), "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    parsed = load_yaml(config)
    assert [(config.parent / f).resolve() for f in parsed["rule_files"]] == [RULES_FILE]
    down = alerting_rule("RackConnectExporterDown")
    (job,) = set(re.findall(r'job="([^"]+)"', down["expr"]))
    scrape = {c["job_name"]: c for c in parsed["scrape_configs"]}
    assert scrape[job]["static_configs"] == [{"targets": ["exporter:10054"]}]
    assert scrape[job]["honor_labels"] is True
    assert parsed["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


def test_compose_alertmanager_config_is_valid() -> None:
    """amtool accepts the quickstart Alertmanager config."""
    config = DEPLOY / "alertmanager" / "alertmanager.yml"
    result = run([binary("amtool"), "check-config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_compose_grafana_gets_provisioning_and_dashboards() -> None:
    """Grafana mounts the provisioning directory and the dashboards where the provider looks."""
    volumes = compose()["services"]["grafana"]["volumes"]
    mounts = dict(v.split(":")[:2] for v in volumes if not v.startswith("grafana-data"))
    assert mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = load_yaml(REPO / "grafana/provisioning/dashboards/rackconnect.yml")["providers"][0]
    assert mounts["../grafana/dashboards"] == provider["options"]["path"]
    datasource = load_yaml(REPO / "grafana/provisioning/datasources/prometheus.yml")
    prom = next(d for d in datasource["datasources"] if d["type"] == "prometheus")
    assert prom["isDefault"] is True
    assert prom["url"] == "http://prometheus:9090"


# --- Kubernetes ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    """``kubectl kustomize deploy/kubernetes``, by kind."""
    result = run([binary("kubectl"), "kustomize", str(KUBERNETES)])
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "one object per kind expected"
    return by_kind


def test_kustomize_base_has_every_object(manifests: dict[str, dict[str, Any]]) -> None:
    """The base renders Deployment, Service, ServiceMonitor and PrometheusRule in one namespace."""
    assert set(manifests) == {"Deployment", "Service", "ServiceMonitor", "PrometheusRule"}
    assert {m["metadata"]["namespace"] for m in manifests.values()} == {"monitoring"}


def test_core_objects_pass_kubernetes_validate(manifests: dict[str, dict[str, Any]]) -> None:
    """Deployment, Service and the example Secret are valid against the API schemas (strict)."""
    secret = load_yaml(KUBERNETES / "secret.example.yaml")
    for obj in (manifests["Deployment"], manifests["Service"], secret):
        kubernetes_validate().validate(obj, K8S_VERSION, strict=True)


def test_kubernetes_validate_catches_a_typo(manifests: dict[str, dict[str, Any]]) -> None:
    """The validation above is strict enough to fail on a misspelt field."""
    broken = copy.deepcopy(manifests["Deployment"])
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate().ValidationError):
        kubernetes_validate().validate(broken, K8S_VERSION, strict=True)


def test_crds_are_not_in_the_schemas(manifests: dict[str, dict[str, Any]]) -> None:
    """ServiceMonitor and PrometheusRule need our own checks: kubernetes-validate has no schema."""
    for kind in ("ServiceMonitor", "PrometheusRule"):
        with pytest.raises(kubernetes_validate().SchemaNotFoundError):
            kubernetes_validate().validate(manifests[kind], K8S_VERSION, strict=True)


def test_deployment_is_hardened(manifests: dict[str, dict[str, Any]]) -> None:
    """Non-root, read-only root, no capabilities, RuntimeDefault seccomp, limits and probes."""
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "metrics"}
    assert container["ports"] == [{"name": "metrics", "containerPort": 10054, "protocol": "TCP"}]
    assert container["image"] == "ghcr.io/example/rackconnect-exporter:0.1.0"
    secret = load_yaml(KUBERNETES / "secret.example.yaml")
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert set(secret["stringData"]) == {"RACKSPACE_USERNAME", "RACKSPACE_API_KEY"}
    assert all(v.startswith("REPLACE_WITH_") for v in secret["stringData"].values())


def test_service_and_servicemonitor_select_the_exporter(
    manifests: dict[str, dict[str, Any]],
) -> None:
    """Service selects the pods; ServiceMonitor selects the Service and scrapes its named port."""
    pod_labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = manifests["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = manifests["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    ports = {p["name"] for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in ports
    assert endpoint["path"] == "/metrics"
    assert re.fullmatch(r"\d+[smh]", endpoint["interval"])
    # The Operator takes the job from the Service label jobLabel names: the rules' job.
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    down = alerting_rule("RackConnectExporterDown")
    assert f'job="{job}"' in down["expr"]
    assert endpoint["honorLabels"] is True
    assert endpoint["relabelings"] == [
        {"sourceLabels": ["__meta_kubernetes_service_name"], "targetLabel": "instance"}
    ]


def test_kube_prometheus_stack_selects_the_monitor_and_the_rules(
    manifests: dict[str, dict[str, Any]],
) -> None:
    """ServiceMonitor and PrometheusRule carry the release label, set once in kustomization."""
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert manifests[kind]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    sources = [p for p in KUBERNETES.glob("*.yaml") if "release:" in p.read_text()]
    assert [p.name for p in sources] == ["kustomization.yaml"]


def test_sharded_exporters_are_scraped_under_the_rules_job() -> None:
    """The sharded kustomization scrapes every shard as the rules' job and ships the rules."""
    result = run([binary("kubectl"), "kustomize", str(KUBERNETES / "sharded")])
    assert result.returncode == 0, result.stderr
    objects = {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}
    monitor, service = objects["ServiceMonitor"], objects["Service"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rule = objects["PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == rule_groups()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    assert f'job="{job}"' in alerting_rule("RackConnectExporterDown")["expr"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True
    assert endpoint["relabelings"] == [
        {"sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "instance"}
    ]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    (scrape,) = load_yaml(KUBERNETES / "sharded" / "scrape.example.yml")["scrape_configs"]
    assert f'job="{scrape["job_name"]}"' in alerting_rule("RackConnectExporterDown")["expr"]
    assert scrape["honor_labels"] is True


def test_prometheusrule_equals_the_rules_file(manifests: dict[str, dict[str, Any]]) -> None:
    """The PrometheusRule's groups are exactly the rules file's, and the file is current."""
    rule = manifests["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == rule_groups()
    result = run([sys.executable, str(REPO / "mixin" / "render.py"), "--check"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheusrule_rules_pass_promtool(
    manifests: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """promtool accepts the rules taken out of the PrometheusRule."""
    extracted = tmp_path / "prometheusrule-rules.yml"
    extracted.write_text(yaml.safe_dump({"groups": manifests["PrometheusRule"]["spec"]["groups"]}))
    result = run([binary("promtool"), "check", "rules", str(extracted)])
    assert result.returncode == 0, result.stdout + result.stderr


# --- systemd -------------------------------------------------------------------------------


def unit_settings() -> dict[str, list[str]]:
    """Every Key=value of the unit file (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_systemd_unit_is_hardened() -> None:
    """The unit runs unprivileged, read-only, with secrets from an EnvironmentFile."""
    settings = unit_settings()
    expected = {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictSUIDSGID": "yes",
        "RestartPreventExitStatus": "3",
    }
    for key, value in expected.items():
        assert settings.get(key) == [value], key
    assert settings["EnvironmentFile"] == ["/etc/rackconnect-exporter/rackconnect-exporter.env"]
    assert settings["ExecStart"][0].split()[0].endswith("/bin/rackconnect-exporter")
    env = (DEPLOY / "systemd" / "rackconnect-exporter.env.example").read_text()
    assert "RACKSPACE_USERNAME=" in env
    assert "RACKSPACE_API_KEY=" in env
    assert re.search(r"^ARGS=", env, re.M), "ExecStart expands $ARGS from the environment file"


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """systemd-analyze finds no problem, and rates the exposure OK (at most 2.0 of 10)."""
    unit = tmp_path / UNIT.name
    # verify checks that the binary exists: point ExecStart at one that does.
    text = re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", UNIT.read_text(), flags=re.M)
    unit.write_text(text)
    tool = binary("systemd-analyze")
    result = run([tool, "verify", str(unit)])
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr
    result = run([tool, "security", "--offline=yes", str(unit)])
    assert result.returncode == 0, result.stderr
    level = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)[1])
    assert level <= 2.0, result.stdout


# --- example config ------------------------------------------------------------------------


def test_config_example_documents_every_key() -> None:
    """Each account key has a comment saying whether it is required and its default."""
    text = CONFIG_EXAMPLE.read_text()
    assert re.search(r"^# accounts \(required\)", text, re.M)
    for key in ACCOUNT_KEYS:
        assert re.search(
            rf"^\s*(- )?# {key} \((required|optional, default: [^)]+)\)", text, re.M
        ), f"{key} is not documented with (optional, default: ...) or (required)"
    accounts = yaml.safe_load(text)["accounts"]
    assert accounts
    for account in accounts:
        assert set(account) <= set(ACCOUNT_KEYS)
    assert set(accounts[0]) | {"api_key_file", "password", "password_file"} == set(ACCOUNT_KEYS)
