"""Offline checks of the Kubernetes manifests in statefulset/.

Schema validation (kubernetes-validate, strict: unknown fields are errors) catches typos
the API server would reject; the rest checks what no schema can: that selectors, labels,
port names, Secret and ConfigMap references, mount paths and the configs the processes
read all agree with each other and with what scripts/k8s-secrets makes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from coordinator import k8s_secrets
from coordinator.server import CoordinatorConfig, open_audit_log
from mpcnode import tls
from mpcnode.audit import AuditSigner
from mpcnode.identity import NodeIdentity, Roster
from mpcnode.server import NodeConfig
from mpcnode.storage import load_kek

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "statefulset"
K8S_VERSIONS = ("1.30.0", "1.33.0", "1.37.0")
NODES = 5
NODE_LABELS = {"app.kubernetes.io/name": "mpc-cluster", "app.kubernetes.io/component": "node"}
COORDINATOR_LABELS = {
    "app.kubernetes.io/name": "mpc-cluster",
    "app.kubernetes.io/component": "coordinator",
}

Doc = dict[str, Any]


def load_documents() -> list[Doc]:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    docs: list[Doc] = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((MANIFESTS / name).read_text()):
            if doc is not None:
                doc["__file__"] = name
                docs.append(doc)
    return docs


DOCS = load_documents()


def strip(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k != "__file__"}


def one(kind: str, name: str) -> Doc:
    found = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def workloads() -> list[Doc]:
    return [d for d in DOCS if d["kind"] in ("StatefulSet", "Deployment")]


def container(workload: Doc) -> Doc:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    c: Doc = containers[0]
    return c


def port_names(workload: Doc) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container(workload)["ports"]}


def config_json(configmap: str, key: str) -> Doc:
    doc: Doc = json.loads(one("ConfigMap", configmap)["data"][key])
    return doc


@pytest.fixture(scope="module")
def bundle() -> tuple[list[Doc], dict[str, bytes]]:
    return k8s_secrets.build_objects("mpc", NODES)


# ----------------------------------------------------------------------------- schemas


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_strictly(version: str) -> None:
    for doc in DOCS:
        kubernetes_validate.validate(strip(doc), version, strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_generated_secrets_validate_strictly(
    version: str, bundle: tuple[list[Doc], dict[str, bytes]]
) -> None:
    for doc in bundle[0]:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_rejects_a_misplaced_field() -> None:
    """The validator is really strict: a container field at pod level is an error."""
    bad = json.loads(json.dumps(strip(one("StatefulSet", "mpc"))))
    bad["spec"]["template"]["spec"]["securityContext"]["readOnlyRootFilesystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)


def test_kubernetes_validate_command_passes() -> None:
    """The same check as an operator would run it, on every file at once."""
    files = [str(MANIFESTS / d) for d in sorted({d["__file__"] for d in DOCS})]
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", *files],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ----------------------------------------------------------------------- the node StatefulSet


def test_statefulset_shape() -> None:
    sts = one("StatefulSet", "mpc")
    spec = sts["spec"]
    assert spec["replicas"] == NODES
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    headless = one("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {m["name"]: m for m in container(sts)["volumeMounts"]}
    assert claim["metadata"]["name"] in mounts
    data_dir = Path(config_json("mpc-node-config", "node.json")["data_dir"])
    assert data_dir.parent == Path(mounts[claim["metadata"]["name"]]["mountPath"]), (
        "the store must be a directory the node creates inside the volume (it sets 0700 on it)"
    )


def test_coordinator_audit_trail_is_on_its_own_claim() -> None:
    """The coordinator's audit_dir lies in a directory it creates inside a ReadWriteOnce
    volume that only the single (Recreate) coordinator pod mounts; its key is a read-only
    Secret mount."""
    deployment = one("Deployment", "mpc-coordinator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    claim = one("PersistentVolumeClaim", "mpc-coordinator-audit")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["name"]: m for m in container(deployment)["volumeMounts"]}
    (name,) = [n for n, v in volumes.items() if v.get("persistentVolumeClaim", {}).get("claimName")]
    assert volumes[name]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert not mounts[name].get("readOnly")
    config = config_json("mpc-coordinator-config", "coordinator.json")
    assert Path(config["audit_dir"]).parent == Path(mounts[name]["mountPath"])
    assert config["secret_files_group_readable"] is True
    (key_volume,) = [
        n
        for n, v in volumes.items()
        if v.get("secret", {}).get("secretName") == k8s_secrets.COORDINATOR_AUDIT_SECRET
    ]
    assert mounts[key_volume]["readOnly"] is True
    assert volumes[key_volume]["secret"]["defaultMode"] == 0o400
    assert Path(config["audit_key_file"]).parent == Path(mounts[key_volume]["mountPath"])
    sts = one("StatefulSet", "mpc")
    assert name not in {v["name"] for v in pod_spec(sts)["volumes"]}


def test_node_anti_affinity_and_spread_select_the_node_pods() -> None:
    sts = one("StatefulSet", "mpc")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    affinity = pod_spec(sts)["affinity"]["podAntiAffinity"]
    (required,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required["topologyKey"] == "kubernetes.io/hostname"
    assert matches(required["labelSelector"]["matchLabels"], labels)
    assert not matches(required["labelSelector"]["matchLabels"], COORDINATOR_LABELS)
    for spread in pod_spec(sts)["topologySpreadConstraints"]:
        assert matches(spread["labelSelector"]["matchLabels"], labels)


def test_pdb_keeps_quorum_through_a_drain() -> None:
    pdb = one("PodDisruptionBudget", "mpc-node")
    sts = one("StatefulSet", "mpc")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]
    assert matches(
        pdb["spec"]["selector"]["matchLabels"], sts["spec"]["template"]["metadata"]["labels"]
    )
    # Through a drain NODES-1 = 4 stay up: one more crash still leaves a 3-of-5 quorum.
    assert NODES - pdb["spec"]["maxUnavailable"] - 1 >= 3


def test_node_secrets_are_mounted_per_pod() -> None:
    """Each node Secret maps every node's entries to <pod name>/...; the container mounts
    only its own directory (subPathExpr), read-only; the pod name comes from the API."""
    sts = one("StatefulSet", "mpc")
    c = container(sts)
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    volumes = {v["name"]: v for v in pod_spec(sts)["volumes"]}
    secret_mounts = [m for m in c["volumeMounts"] if "secret" in volumes.get(m["name"], {})]
    assert {volumes[m["name"]]["secret"]["secretName"] for m in secret_mounts} == {
        k8s_secrets.NODE_TLS_SECRET,
        k8s_secrets.NODE_IDENTITY_SECRET,
        k8s_secrets.NODE_KEK_SECRET,
    }
    for mount in secret_mounts:
        assert mount["readOnly"] is True
        assert mount["subPathExpr"] == "$(POD_NAME)"
        secret = volumes[mount["name"]]["secret"]
        assert secret["defaultMode"] == 0o400
        dirs = {item["path"].split("/")[0] for item in secret["items"]}
        assert dirs == {f"mpc-{k}" for k in range(NODES)}
        for item in secret["items"]:
            assert item["key"].startswith(item["path"].split("/")[0] + ".")


def test_every_secret_and_configmap_reference_exists(
    bundle: tuple[list[Doc], dict[str, bytes]],
) -> None:
    """Every volume names a ConfigMap in the manifests or an object scripts/k8s-secrets
    makes, and every item key it maps exists in that object."""
    made = {(d["kind"], d["metadata"]["name"]): d for d in bundle[0]}
    made.update({(d["kind"], d["metadata"]["name"]): d for d in DOCS if d["kind"] == "ConfigMap"})
    referenced = set()
    for workload in workloads():
        for volume in pod_spec(workload)["volumes"]:
            if "secret" in volume:
                ref, kind = volume["secret"], "Secret"
                obj = made[(kind, ref["secretName"])]
            elif "configMap" in volume:
                ref, kind = volume["configMap"], "ConfigMap"
                obj = made[(kind, ref["name"])]
            else:
                continue
            referenced.add((kind, obj["metadata"]["name"]))
            for item in ref.get("items", []):
                assert item["key"] in obj["data"], (volume["name"], item["key"])
    assert referenced == set(made), "an object nobody mounts, or a mount of nothing"


def test_mounted_files_are_the_files_the_configs_name(
    bundle: tuple[list[Doc], dict[str, bytes]],
) -> None:
    secrets = {d["metadata"]["name"]: d for d in bundle[0] if d["kind"] == "Secret"}
    for workload, configmap, key in (
        (one("StatefulSet", "mpc"), "mpc-node-config", "node.json"),
        (one("Deployment", "mpc-coordinator"), "mpc-coordinator-config", "coordinator.json"),
    ):
        c = container(workload)
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        files = set()
        for mount in c["volumeMounts"]:
            volume = volumes.get(mount["name"], {})
            source = volume.get("secret") or volume.get("configMap")
            if source is None:
                continue
            if "items" in source:
                names = {item["path"].split("/", 1)[1] for item in source["items"]}
            elif "secretName" in source:
                names = set(secrets[source["secretName"]]["data"])  # the coordinator's Secrets
            else:
                obj = one("ConfigMap", source["name"]) if source["name"] != "mpc-trust" else None
                names = set(obj["data"]) if obj else {"ca.crt", "roster.json"}
            files |= {str(Path(mount["mountPath"]) / n) for n in names}
        config = config_json(configmap, key)
        command = c["command"]
        assert command[command.index("--config") + 1] in files
        named = [config["roster_file"], *config["tls"].values()]
        if "identity_file" in config:
            named += [config["identity_file"], config["kek_file"]]
        if "audit_key_file" in config:
            named.append(config["audit_key_file"])
        for path in named:
            assert path in files, f"{configmap} names {path}, which no volume provides"


def test_ports_agree_across_objects() -> None:
    node_config = config_json("mpc-node-config", "node.json")
    coordinator_config = config_json("mpc-coordinator-config", "coordinator.json")
    for workload, config in (
        (one("StatefulSet", "mpc"), node_config),
        (one("Deployment", "mpc-coordinator"), coordinator_config),
    ):
        ports = port_names(workload)
        assert set(ports) == {"grpc", "health", "metrics"}
        for name, field in (
            ("grpc", "listen"),
            ("health", "health_listen"),
            ("metrics", "metrics_listen"),
        ):
            assert config[field].rsplit(":", 1)[1] == str(ports[name]), (name, field)
        c = container(workload)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            grpc_probe = c[probe]["grpc"]
            assert grpc_probe["port"] == ports["health"], "probes use the plaintext health port"
            assert grpc_probe["service"] in ("liveness", "readiness")
        assert c["readinessProbe"]["grpc"]["service"] == "readiness"
        assert c["livenessProbe"]["grpc"]["service"] == "liveness"
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(ports["metrics"])
    for service in (d for d in DOCS if d["kind"] == "Service"):
        targets = [
            w
            for w in workloads()
            if matches(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(targets) == 1, f"Service {service['metadata']['name']} must select one workload"
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names(targets[0])
            assert port_names(targets[0])[port["targetPort"]] == port["port"]


def test_coordinator_dials_the_stable_pod_names() -> None:
    sts = one("StatefulSet", "mpc")
    grpc_port = port_names(sts)["grpc"]
    nodes = config_json("mpc-coordinator-config", "coordinator.json")["nodes"]
    assert [n["address"] for n in nodes] == [
        f"mpc-{k}.{sts['spec']['serviceName']}:{grpc_port}" for k in range(sts["spec"]["replicas"])
    ]
    assert [n["name"] for n in nodes] == [f"mpc-{k}" for k in range(NODES)]
    assert [n["party"] for n in nodes] == list(range(1, NODES + 1))


def test_selectors_match_their_pods() -> None:
    for workload in workloads():
        selector = workload["spec"]["selector"]["matchLabels"]
        assert matches(selector, workload["spec"]["template"]["metadata"]["labels"])
        others = [w for w in workloads() if w is not workload]
        assert not any(
            matches(selector, w["spec"]["template"]["metadata"]["labels"]) for w in others
        ), "two workloads' selectors overlap"
    assert matches(NODE_LABELS, one("StatefulSet", "mpc")["spec"]["template"]["metadata"]["labels"])
    assert matches(
        COORDINATOR_LABELS,
        one("Deployment", "mpc-coordinator")["spec"]["template"]["metadata"]["labels"],
    )


def test_network_policies() -> None:
    """Only the coordinator reaches the node API port; nodes open no connections; the
    coordinator may dial only the nodes' API port and DNS."""
    sts = one("StatefulSet", "mpc")
    node_labels = sts["spec"]["template"]["metadata"]["labels"]
    coordinator_labels = one("Deployment", "mpc-coordinator")["spec"]["template"]["metadata"][
        "labels"
    ]
    node_policy = one("NetworkPolicy", "mpc-node")["spec"]
    assert matches(node_policy["podSelector"]["matchLabels"], node_labels)
    assert set(node_policy["policyTypes"]) == {"Ingress", "Egress"}
    assert node_policy["egress"] == []
    api_rules = [
        rule
        for rule in node_policy["ingress"]
        if any(p["port"] in ("grpc", port_names(sts)["grpc"]) for p in rule["ports"])
    ]
    (api_rule,) = api_rules
    (source,) = api_rule["from"]
    assert matches(source["podSelector"]["matchLabels"], coordinator_labels)
    assert not matches(source["podSelector"]["matchLabels"], node_labels)
    for rule in node_policy["ingress"]:
        for port in rule["ports"]:
            assert port["port"] in port_names(sts), f"unknown port {port['port']}"
    coordinator_policy = one("NetworkPolicy", "mpc-coordinator")["spec"]
    assert matches(coordinator_policy["podSelector"]["matchLabels"], coordinator_labels)
    node_egress = [
        rule
        for rule in coordinator_policy["egress"]
        if any(
            "podSelector" in to and matches(to["podSelector"]["matchLabels"], node_labels)
            for to in rule["to"]
        )
    ]
    (egress,) = node_egress
    assert [p["port"] for p in egress["ports"]] == [port_names(sts)["grpc"]]


def test_pods_are_locked_down() -> None:
    for workload in workloads():
        spec = pod_spec(workload)
        assert spec["automountServiceAccountToken"] is False
        account = one("ServiceAccount", spec["serviceAccountName"])
        assert account["automountServiceAccountToken"] is False
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] != 0 and context["runAsGroup"] != 0
        assert context["fsGroup"] == context["runAsGroup"]
        assert context["seccompProfile"]["type"] == "RuntimeDefault"
        c = container(workload)
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert "add" not in sc["capabilities"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind])
        tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert tmp, "a read-only root needs a writable /tmp"
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[tmp[0]["name"]]
        assert all(
            m.get("readOnly") for m in c["volumeMounts"] if "secret" in volumes.get(m["name"], {})
        )
        image = c["image"]
        assert image in {
            i["name"]
            for i in yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["images"]
        }


# --------------------------------------------------------------- scripts/k8s-secrets


def test_generated_certificates_name_the_dialled_addresses(
    bundle: tuple[list[Doc], dict[str, bytes]],
) -> None:
    import base64

    from cryptography import x509

    objects = {d["metadata"]["name"]: d for d in bundle[0]}
    node_tls = objects[k8s_secrets.NODE_TLS_SECRET]["data"]
    for node in config_json("mpc-coordinator-config", "coordinator.json")["nodes"]:
        cert = x509.load_pem_x509_certificate(base64.b64decode(node_tls[f"{node['name']}.crt"]))
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        host = node["address"].rsplit(":", 1)[0]
        assert host in sans.get_values_for_type(x509.DNSName)
        assert f"{host}.mpc.svc.cluster.local" in sans.get_values_for_type(x509.DNSName)
        common_name = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        assert common_name == node["name"]
    coordinator = x509.load_pem_x509_certificate(
        base64.b64decode(objects[k8s_secrets.COORDINATOR_TLS_SECRET]["data"]["tls.crt"])
    )
    cn = coordinator.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn in config_json("mpc-node-config", "node.json")["allowed_clients"]
    service = one("Service", "mpc-coordinator")["metadata"]["name"]
    sans = coordinator.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"{service}.mpc.svc" in sans.get_values_for_type(x509.DNSName)


def render_pod_files(root: Path, pod: str, workload: Doc, objects: list[Doc]) -> dict[str, Path]:
    """Lay out what `pod` sees under each mount (items, subPathExpr, defaultMode, and the
    group-read bit kubelet adds for fsGroup) inside `root`; map container paths to files."""
    import base64

    by_name = {(d["kind"], d["metadata"]["name"]): d for d in [*objects, *DOCS]}
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    mapping: dict[str, Path] = {}
    for mount in container(workload)["volumeMounts"]:
        volume = volumes.get(mount["name"], {})
        if "secret" in volume:
            source, obj = volume["secret"], by_name[("Secret", volume["secret"]["secretName"])]
            data = {k: base64.b64decode(v) for k, v in obj["data"].items()}
            mode = source.get("defaultMode", 0o644) | 0o040  # fsGroup read
        elif "configMap" in volume:
            source, obj = volume["configMap"], by_name[("ConfigMap", volume["configMap"]["name"])]
            data = {k: v.encode() for k, v in obj["data"].items()}
            mode = 0o644
        else:
            continue
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        sub = mount.get("subPathExpr", "").replace("$(POD_NAME)", pod)
        for item in items:
            path = item["path"]
            if sub:
                if not path.startswith(sub + "/"):
                    continue  # another pod's entry: not visible in this container
                path = path[len(sub) + 1 :]
            target = root / mount["mountPath"].lstrip("/") / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[item["key"]])
            os.chmod(target, mode)
            mapping[str(Path(mount["mountPath"]) / path)] = target
    return mapping


def rebase(config: Doc, root: Path) -> Doc:
    """The config with every absolute path moved under `root`."""

    def move(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(("/etc/", "/var/")):
            return str(root / value.lstrip("/"))
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        return value

    moved: Doc = move(config)
    return moved


@pytest.mark.parametrize("ordinal", [0, 3])
def test_a_pod_loads_its_own_identity_from_the_rendered_mounts(
    tmp_path: Path, ordinal: int, bundle: tuple[list[Doc], dict[str, bytes]]
) -> None:
    """What pod mpc-<ordinal> sees: its config resolves its name from POD_NAME and its
    party from the roster; identity, KEK and roster agree (as build_service checks); it
    sees no other node's identity or KEK; the group-readable Secret files load."""
    pod = f"mpc-{ordinal}"
    sts = one("StatefulSet", "mpc")
    files = render_pod_files(tmp_path, pod, sts, bundle[0])
    config_path = tmp_path / "node.json"
    config_path.write_text(
        json.dumps(rebase(config_json("mpc-node-config", "node.json"), tmp_path))
    )
    config = NodeConfig.load(config_path, environ={"POD_NAME": pod})
    assert (config.name, config.party) == (pod, ordinal + 1)
    identity = NodeIdentity.load(config.identity_file, config.secret_files_group_readable)
    roster = Roster.load(config.roster_file)
    assert identity.public_entry() == roster.by_party(config.party)
    assert len(load_kek(str(config.kek_file), config.secret_files_group_readable)) == 32
    # Without the Kubernetes flag the same group-readable file is refused.
    with pytest.raises(Exception, match="accessible by group"):
        NodeIdentity.load(config.identity_file)
    others = [p for p in files if re.search(r"mpc-\d", p) and pod not in p]
    assert others == []
    visible_identities = [
        p for p in tmp_path.rglob("*") if p.is_file() and p.name == "identity.json"
    ]
    assert len(visible_identities) == 1
    assert tls.read_pem(config.tls_cert).startswith(b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(Exception, match="POD_NAME"):
        NodeConfig.load(config_path, environ={})


def test_coordinator_config_loads_from_the_rendered_mounts(
    tmp_path: Path, bundle: tuple[list[Doc], dict[str, bytes]]
) -> None:
    deployment = one("Deployment", "mpc-coordinator")
    render_pod_files(tmp_path, "mpc-coordinator-abc", deployment, bundle[0])
    config_path = tmp_path / "coordinator.json"
    config_path.write_text(
        json.dumps(rebase(config_json("mpc-coordinator-config", "coordinator.json"), tmp_path))
    )
    config = CoordinatorConfig.load(config_path)
    roster = Roster.load(config.roster_file)
    assert [(n.name, n.party) for n in config.nodes] == [(e.name, e.party) for e in roster]
    assert config.metrics_listen is not None
    # The audit key (a group-readable Secret file) loads, and the audit log opens on the claim.
    assert config.audit_key_file is not None and config.secret_files_group_readable
    audit = open_audit_log(config)
    assert audit is not None
    with audit:
        assert audit.head()["public_key"] == (
            AuditSigner.load(config.audit_key_file, group_readable=True).public_key.hex()
        )
    with pytest.raises(Exception, match="accessible by group"):
        AuditSigner.load(config.audit_key_file)


def test_k8s_secrets_command_writes_a_private_bundle(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = subprocess.run(
        [sys.executable, "-m", "coordinator.k8s_secrets", "--out", str(out), "--namespace", "prod"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["apply"] == f"kubectl -n prod apply -f {out / 'secrets.yaml'}"
    assert os.stat(out).st_mode & 0o077 == 0
    for name in ("secrets.yaml", "ca.key", "client.key"):
        assert os.stat(out / name).st_mode & 0o077 == 0, name
    docs = list(yaml.safe_load_all((out / "secrets.yaml").read_text()))
    assert {d["metadata"]["name"] for d in docs} == {
        k8s_secrets.NODE_TLS_SECRET,
        k8s_secrets.NODE_IDENTITY_SECRET,
        k8s_secrets.NODE_KEK_SECRET,
        k8s_secrets.COORDINATOR_TLS_SECRET,
        k8s_secrets.COORDINATOR_AUDIT_SECRET,
        k8s_secrets.TRUST_CONFIGMAP,
    }
    assert b"PRIVATE KEY" not in (out / "ca.pem").read_bytes()
    public = json.loads(result.stdout)["audit_public_key"]
    assert (out / "audit.pub").read_text().strip() == public
    (audit_secret,) = [
        d for d in docs if d["metadata"]["name"] == k8s_secrets.COORDINATOR_AUDIT_SECRET
    ]
    key_file = tmp_path / "audit.key"
    key_file.write_bytes(__import__("base64").b64decode(audit_secret["data"]["audit.key"]))
    key_file.chmod(0o600)
    assert AuditSigner.load(key_file).public_key.hex() == public
    # The CA key is in no Secret: whoever can read Secrets cannot mint certificates.
    import base64

    ca_key = (out / "ca.key").read_bytes()
    stored = [
        base64.b64decode(v) if d["kind"] == "Secret" else v.encode()
        for d in docs
        for v in d["data"].values()
    ]
    assert len(stored) == 3 * NODES * 1 + 2 * NODES - NODES + 2 + 1 + 2
    assert not any(ca_key in value for value in stored)
    again = subprocess.run(
        [sys.executable, "-m", "coordinator.k8s_secrets", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert again.returncode == 1 and "exists" in again.stderr


@pytest.mark.cluster
def test_a_node_process_starts_from_what_its_pod_sees(
    tmp_path: Path, bundle: tuple[list[Doc], dict[str, bytes]]
) -> None:
    """`mpc-node` itself, started as the pod's command with the rendered mounts (ports moved
    to local free ones): it reaches SERVING on the health port, makes its store directory
    0700 inside a volume root it does not own (fsGroup-writable, as a PVC is), and stops
    cleanly on SIGTERM, as the kubelet stops it."""
    import signal

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    pod = "mpc-1"
    sts = one("StatefulSet", "mpc")
    render_pod_files(tmp_path, pod, sts, bundle[0])
    volume = tmp_path / "var/lib/mpc"
    volume.mkdir(parents=True)
    os.chmod(volume, 0o2775)
    config = rebase(config_json("mpc-node-config", "node.json"), tmp_path)
    base = 53850
    config["listen"] = f"127.0.0.1:{base}"
    config["health_listen"] = f"127.0.0.1:{base + 1}"
    config["metrics_listen"] = f"127.0.0.1:{base + 2}"
    config["prime_pool_target"] = 0
    config_path = tmp_path / "node.json"
    config_path.write_text(json.dumps(config))
    command = container(sts)["command"]
    assert command[0] == "mpc-node"
    env = {**os.environ, "POD_NAME": pod, "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mpcnode.server", "--config", str(config_path)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        channel = grpc.insecure_channel(config["health_listen"])
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="readiness")
        reply = stub.Check(request, timeout=60, wait_for_ready=True)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        channel.close()
        store = Path(config["data_dir"])
        assert store.is_dir() and os.stat(store).st_mode & 0o777 == 0o700
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
        output = process.communicate()[0].decode(errors="replace")
    assert pod in output, output
