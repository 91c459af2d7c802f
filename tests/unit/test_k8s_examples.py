"""The Kubernetes manifests in ``examples/k8s`` are ones the processor accepts as they are.

Every document parses; every ``otel-impact serve`` container names only flags ``serve`` knows,
and the config its ``--config`` points at (a key of a ConfigMap in the same file, through the
container's volume mounts) loads with the processor's own loader, in the container's
environment, without a warning; the ports its config opens beyond the pod are the container's
ports, its probes and the Services' target ports name ports that exist, and every Secret key the
manifests read is one that docs/shared-state.md tells the reader to create.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from support.paths import ROOT

from otel_impact.processors.cli import serve
from otel_impact.processors.cli._processor import load
from otel_impact.processors.serve_config import PROCESSOR_VARIABLES, ServeConfig

EXAMPLES = ROOT / "examples" / "k8s"
MANIFESTS = sorted(EXAMPLES.glob("*.yaml"))
SHARED_STATE_DOC = ROOT / "docs" / "shared-state.md"

# The shared-state flag and variable are part of the shared-state feature; until `serve` knows
# them, they are the only flag and variable the manifests may name that it does not know yet.
SHARED_STATE_FLAG = "--shared-state"
SHARED_STATE_VARIABLE = "OTEL_IMPACT_SHARED_STATE"

SECRET_VALUES = {
    "shared-state-url": "redis://:secret@otel-impact-redis:6379/0",
    "hash-key": "ab" * 32,
}
"""What a Secret key stands for in the test (any other key: a token)."""
TOKEN = "t" * 32
VARIABLE_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

Doc = dict[str, Any]


def _documents(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _pod_spec(doc: Doc) -> Doc | None:
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
        spec: Doc = doc["spec"]["template"]["spec"]
        return spec
    return None


def _containers(pod: Doc) -> list[Doc]:
    """The pod's containers, native sidecars (init containers) included."""
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


@dataclass(frozen=True)
class Processor:
    """One ``otel-impact serve`` container of a manifest."""

    manifest: Path
    documents: list[Doc]
    pod: Doc
    container: Doc

    @property
    def id(self) -> str:
        return f"{self.manifest.name}:{self.container['name']}"

    def argv(self) -> list[str]:
        """The command line after ``otel-impact``, with Kubernetes' ``$(NAME)`` references expanded."""
        words = [*self.container.get("command", []), *self.container.get("args", [])]
        assert words[:2] == ["otel-impact", "serve"], f"{self.id}: runs {words[:2]}"
        env = self.environment()
        return [_expand(word, env, self.id) for word in words[1:]]

    def environment(self) -> dict[str, str]:
        """The container's variables, each Secret key replaced by a value of its kind."""
        env: dict[str, str] = {}
        for item in self.container.get("env", []):
            if "value" in item:
                env[item["name"]] = _expand(str(item["value"]), env, self.id)
            else:
                key = item["valueFrom"]["secretKeyRef"]["key"]
                env[item["name"]] = SECRET_VALUES.get(key, TOKEN)
        return env

    def config_text(self, config_path: str) -> str:
        """The file at ``config_path`` in the container: a key of a ConfigMap of this manifest."""
        path = PurePosixPath(config_path)
        for mount in self.container.get("volumeMounts", []):
            if not path.is_relative_to(mount["mountPath"]):
                continue
            volume = next(v for v in self.pod.get("volumes", []) if v["name"] == mount["name"])
            assert "configMap" in volume, f"{self.id}: {config_path} is on volume {volume['name']}, not a ConfigMap"
            relative = str(path.relative_to(mount["mountPath"]))
            items = {item["path"]: item["key"] for item in volume["configMap"].get("items", [])}
            key = items.get(relative, relative)
            name = volume["configMap"]["name"]
            maps = [d for d in self.documents if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == name]
            assert maps, f"{self.id}: no ConfigMap {name!r} in {self.manifest.name}"
            data: Mapping[str, str] = maps[0].get("data", {})
            assert key in data, f"{self.id}: ConfigMap {name!r} has no key {key!r}"
            return data[key]
        raise AssertionError(f"{self.id}: nothing is mounted at {config_path}")


def _expand(text: str, env: Mapping[str, str], where: str) -> str:
    """Kubernetes' ``$(NAME)`` expansion; it leaves an undefined reference as it is, silently."""
    undefined = [name for name in VARIABLE_REFERENCE.findall(text) if name not in env]
    assert not undefined, f"{where}: {text!r} refers to variables the container does not define: {undefined}"
    return VARIABLE_REFERENCE.sub(lambda match: env[match.group(1)], text)


def _processors() -> Iterator[Processor]:
    for manifest in MANIFESTS:
        documents = _documents(manifest)
        for doc in documents:
            pod = _pod_spec(doc)
            for container in _containers(pod) if pod is not None else []:
                if "otel-impact" in container.get("command", []):
                    yield Processor(manifest, documents, pod, container)


PROCESSORS = list(_processors())


def _serve_parser() -> argparse.ArgumentParser:
    """The parser of ``otel-impact serve``, as the command line builds it."""
    subparsers = argparse.ArgumentParser(prog="otel-impact").add_subparsers()
    serve.register(subparsers)
    parser: argparse.ArgumentParser = subparsers.choices["serve"]
    return parser


def _knows(parser: argparse.ArgumentParser, flag: str) -> bool:
    return not parser.parse_known_args([flag, "value"])[1]


def _without_flag(argv: list[str], flag: str) -> list[str]:
    """``argv`` without ``flag`` and its value (``--flag VALUE`` or ``--flag=VALUE``)."""
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word == flag:
            next(words, None)
        elif not word.startswith(flag + "="):
            out.append(word)
    return out


def _parse_args(processor: Processor) -> argparse.Namespace:
    parser = _serve_parser()
    argv = processor.argv()[1:]
    if not _knows(parser, SHARED_STATE_FLAG):
        argv = _without_flag(argv, SHARED_STATE_FLAG)
    args, unknown = parser.parse_known_args(argv)
    assert not unknown, f"{processor.id}: flags otel-impact serve does not know: {unknown}"
    return args


def _load(
    processor: Processor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> ServeConfig:
    args = _parse_args(processor)
    assert args.config, f"{processor.id}: no --config"
    config_file = tmp_path / "config.yaml"
    config_file.write_text(processor.config_text(args.config))
    args.config = str(config_file)
    for name in [name for name in os.environ if name.startswith("OTEL_IMPACT_")]:
        monkeypatch.delenv(name)
    for name, value in processor.environment().items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    config = load(args)
    stderr = capsys.readouterr().err
    assert config is not None, f"{processor.id}: the config does not load:\n{stderr}"
    warnings = [line for line in stderr.splitlines() if "warning" in line]
    if SHARED_STATE_VARIABLE not in PROCESSOR_VARIABLES:
        warnings = [line for line in warnings if f"warning: {SHARED_STATE_VARIABLE} " not in line]
    assert not warnings, f"{processor.id}: " + "; ".join(warnings)
    return config


def _ports(container: Doc) -> dict[str | int, int]:
    """Container port by name and by number."""
    ports: dict[str | int, int] = {}
    for port in container.get("ports", []):
        ports[port["containerPort"]] = port["containerPort"]
        if "name" in port:
            ports[port["name"]] = port["containerPort"]
    return ports


def test_the_manifests_exist() -> None:
    assert {"sidecar.yaml", "gateway.yaml"} <= {path.name for path in MANIFESTS}
    assert {processor.manifest.name for processor in PROCESSORS} >= {"sidecar.yaml", "gateway.yaml"}


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_every_document_parses(manifest: Path) -> None:
    documents = _documents(manifest)
    assert documents
    for doc in documents:
        assert isinstance(doc, dict), f"{manifest.name}: a document is not a mapping"
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), f"{manifest.name}: {sorted(doc)}"
        assert doc["metadata"].get("name"), f"{manifest.name}: a {doc['kind']} without a name"


@pytest.mark.parametrize("processor", PROCESSORS, ids=lambda processor: processor.id)
def test_serve_knows_every_flag(processor: Processor) -> None:
    _parse_args(processor)


def test_the_flag_check_can_fail() -> None:
    parser = _serve_parser()
    assert _knows(parser, "--config")
    assert not _knows(parser, "--no-such-flag")
    assert _without_flag(["--a", "--shared-state", "x", "--shared-state=y", "--b"], "--shared-state") == ["--a", "--b"]


@pytest.mark.parametrize("processor", PROCESSORS, ids=lambda processor: processor.id)
def test_the_config_loads_in_the_containers_environment(
    processor: Processor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _load(processor, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize("processor", PROCESSORS, ids=lambda processor: processor.id)
def test_ports_and_probes_match_the_config(
    processor: Processor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _load(processor, tmp_path, monkeypatch, capsys)
    listeners = {"admin": config.admin, "OTLP/gRPC": config.receivers.grpc, "OTLP/HTTP": config.receivers.http}
    reachable = {
        listener.endpoint.port
        for listener in listeners.values()
        if listener.endpoint is not None and listener.endpoint.host not in LOCAL_HOSTS
    }
    ports = _ports(processor.container)
    assert set(ports.values()) == reachable, f"{processor.id}: container ports {ports}, config listens on {reachable}"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe not in processor.container:
            continue
        target = processor.container[probe]["httpGet"]
        assert ports.get(target["port"]) in reachable, f"{processor.id}: {probe} on {target['port']}"
        assert target["path"] in ("/healthz", "/readyz"), f"{processor.id}: {probe} on {target['path']}"
    assert processor.container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert processor.container["livenessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_services_select_pods_and_name_their_ports(manifest: Path) -> None:
    documents = _documents(manifest)
    for service in (doc for doc in documents if doc["kind"] == "Service"):
        selector = service["spec"]["selector"].items()
        pods = [
            pod
            for doc in documents
            if (pod := _pod_spec(doc)) is not None and selector <= doc["spec"]["template"]["metadata"]["labels"].items()
        ]
        name = service["metadata"]["name"]
        assert pods, f"{manifest.name}: Service {name} selects no pod of this file"
        ports: dict[str | int, int] = {}
        for pod in pods:
            for container in _containers(pod):
                ports |= _ports(container)
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in ports, f"{manifest.name}: Service {name} targets {target!r}, not a container port"


def test_every_secret_key_is_one_the_docs_create() -> None:
    created = set(re.findall(r"--from-literal=([\w.-]+)=", SHARED_STATE_DOC.read_text()))
    assert created
    used = set()
    for manifest in MANIFESTS:
        for doc in _documents(manifest):
            pod = _pod_spec(doc)
            for container in _containers(pod) if pod is not None else []:
                used |= {
                    item["valueFrom"]["secretKeyRef"]["key"]
                    for item in container.get("env", [])
                    if "secretKeyRef" in item.get("valueFrom", {})
                }
    assert used
    assert used <= created, f"keys the manifests read but docs/shared-state.md does not create: {used - created}"
