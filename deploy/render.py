"""Render a kustomization directory the way `kustomize build` does, for the few features deploy/k8s uses.

CI machines have no kustomize binary, so the checks and tests/deploy render the overlays with this.
Supported, and nothing else (an unknown key is an error rather than a silently different result):
`resources` (files, and directories holding a kustomization.yaml), `namespace`, `labels` (pairs added to
`metadata.labels` only: selectors are never rewritten), `images` (newName/newTag/digest) and `patches`
(strategic-merge patches, inline or by path, matched by kind and name). deploy/check.sh compares the
output with `kubectl kustomize` wherever that is installed.

Usage: python deploy/render.py deploy/k8s/overlays/prod > prod.yaml
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}

# Kinds that live outside any namespace: kustomize leaves them alone, except that it renames a Namespace.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}

# Strategic-merge keys of the list fields these manifests patch (from the Kubernetes OpenAPI
# `x-kubernetes-patch-merge-key`); any other list is replaced whole, as kustomize does.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}


def load_documents(path: Path) -> list[Manifest]:
    """Every non-empty YAML document in a file."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def merge(target: Any, patch: Any, field: str | None = None) -> Any:
    """Strategic merge of `patch` into `target`: maps merge, `null` deletes, keyed lists merge by key."""
    if isinstance(target, dict) and isinstance(patch, dict):
        result = dict(target)
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = merge(result[key], value, key)
            else:
                result[key] = copy.deepcopy(value)
        return result
    merge_key = MERGE_KEYS.get(field or "")
    if merge_key and isinstance(target, list) and isinstance(patch, list):
        existing = {item[merge_key]: item for item in target}
        patched_keys = {item[merge_key] for item in patch}
        # kustomize (kyaml) puts the patch's items first, in the patch's order, then the rest.
        merged = [
            merge(existing[item[merge_key]], item) if item[merge_key] in existing else copy.deepcopy(item)
            for item in patch
        ]
        return merged + [item for item in target if item[merge_key] not in patched_keys]
    return copy.deepcopy(patch)


def pod_spec_containers(manifest: Manifest) -> list[Manifest]:
    """The containers and init containers of a workload (a Deployment, StatefulSet or Job)."""
    pod_spec = manifest.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]


def set_image(container: Manifest, rule: Manifest) -> None:
    """Apply one `images` rule to a container whose image name matches it."""
    reference = str(container["image"]).split("@")[0]
    name, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:  # no tag; a colon there belongs to a registry's port
        name, tag = reference, ""
    if name != rule["name"]:
        return
    new_name = rule.get("newName", name)
    if "digest" in rule:
        container["image"] = f"{new_name}@{rule['digest']}"
    else:
        new_tag = rule.get("newTag", tag)
        container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def apply_patch(manifests: list[Manifest], patch: Manifest) -> None:
    """Merge one strategic-merge patch into the single manifest of the same kind and name."""
    matches = [
        index
        for index, manifest in enumerate(manifests)
        if manifest["kind"] == patch["kind"] and manifest["metadata"]["name"] == patch["metadata"]["name"]
    ]
    if len(matches) != 1:
        raise ValueError(f"patch {patch['kind']}/{patch['metadata']['name']} matches {len(matches)} objects")
    manifests[matches[0]] = merge(manifests[matches[0]], patch)


def patches_of(directory: Path, kustomization: Manifest) -> list[Manifest]:
    """The strategic-merge patch documents a kustomization lists, inline or in files."""
    documents: list[Manifest] = []
    for item in kustomization.get("patches", []):
        if set(item) - {"patch", "path"}:
            raise ValueError(f"{directory}: only untargeted strategic-merge patches are supported")
        if "patch" in item:
            documents.extend(doc for doc in yaml.safe_load_all(item["patch"]) if doc)
        else:
            documents.extend(load_documents(directory / item["path"]))
    return documents


def set_namespace(manifests: list[Manifest], namespace: str) -> None:
    """kustomize's `namespace`: every namespaced object moves there, and a Namespace is renamed to it."""
    for manifest in manifests:
        if manifest["kind"] == "Namespace":
            manifest["metadata"]["name"] = namespace
        elif manifest["kind"] not in CLUSTER_SCOPED:
            manifest["metadata"]["namespace"] = namespace


def add_labels(directory: Path, manifests: list[Manifest], label_sets: list[Manifest]) -> None:
    """kustomize's `labels`, limited to `metadata.labels` (no selectors, no pod templates)."""
    for label_set in label_sets:
        if label_set.get("includeSelectors") or label_set.get("includeTemplates"):
            raise ValueError(f"{directory}: labels may only add metadata labels here")
        for manifest in manifests:
            manifest["metadata"].setdefault("labels", {}).update(label_set["pairs"])


def render(directory: Path) -> list[Manifest]:
    """The manifests that `kustomize build directory` would print, in resource order."""
    kustomization = load_documents(directory / "kustomization.yaml")[0]
    unsupported = set(kustomization) - SUPPORTED_KEYS
    if unsupported:
        raise ValueError(f"{directory}: render.py does not support {sorted(unsupported)}")

    manifests: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        manifests.extend(render(path) if path.is_dir() else load_documents(path))
    for patch in patches_of(directory, kustomization):
        apply_patch(manifests, patch)
    if namespace := kustomization.get("namespace"):
        set_namespace(manifests, namespace)
    add_labels(directory, manifests, kustomization.get("labels", []))
    for rule in kustomization.get("images", []):
        for manifest in manifests:
            for container in pod_spec_containers(manifest):
                set_image(container, rule)
    return manifests


def main(argv: list[str]) -> int:
    """Print the rendered kustomization named on the command line as a YAML stream."""
    if len(argv) != 2:
        sys.stderr.write(__doc__ or "")
        return 2
    yaml.safe_dump_all(render(Path(argv[1])), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
