#!/usr/bin/env python3
"""Schema validation of deploy/kubernetes, run by scripts/deploy-check in its kubernetes-validate venv.

  k8s-validate.py DIR OUT     every resource of DIR/kustomization.yaml, with the kustomization's `namespace`
                              and `images` applied, written to OUT and validated
  k8s-validate.py --rendered FILE
                              the output of `kubectl kustomize`, validated

Core kinds: kubernetes-validate --strict (unknown fields rejected). KEDA kinds (ScaledObject,
TriggerAuthentication): the JSON schemas in DIR/schemas/ (KEDA's CRDs are not in kubernetes-validate and there
is no network here; the schemas are a strict subset of KEDA 2.12+'s CRD, see their descriptions).
"""
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

K8S_VERSION = "1.30.0"
SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "kubernetes", "schemas")
CUSTOM = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda.sh-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentication-keda.sh-v1alpha1.json",
}


def render(directory):
    """The kustomization's resources with its namespace and image transforms (what kustomize does for them)."""
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        kustomization = yaml.safe_load(f)
    images = {i["name"]: i for i in kustomization.get("images", [])}
    docs = []
    for resource in kustomization["resources"]:
        with open(os.path.join(directory, resource)) as f:
            for doc in yaml.safe_load_all(f):
                if doc is None:
                    continue
                if "namespace" in kustomization and doc["kind"] != "Namespace":
                    doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
                for container in containers(doc):
                    image = images.get(container["image"].split(":")[0])
                    if image:
                        name = image.get("newName", image["name"])
                        container["image"] = (
                            f"{name}@{image['digest']}" if "digest" in image else f"{name}:{image['newTag']}"
                        )
                docs.append(doc)
    return docs


def containers(doc):
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def validate(docs):
    failures = 0
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        custom = CUSTOM.get((doc["apiVersion"], doc["kind"]))
        try:
            if custom:
                with open(os.path.join(SCHEMAS, custom)) as f:
                    schema = json.load(f)
                jsonschema.Draft202012Validator(schema).validate(doc)
                how = f"schemas/{custom}"
            else:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
                how = f"kubernetes-validate --strict {K8S_VERSION}"
            print(f"ok   {name} ({how})")
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as e:
            failures += 1
            path = "/".join(str(p) for p in e.path)
            print(f"FAIL {name}: {path}: {e.message}", file=sys.stderr)
        except kubernetes_validate.SchemaNotFoundError as e:
            failures += 1
            print(f"FAIL {name}: no schema ({e.message})", file=sys.stderr)
    return failures


def dangling_secrets(docs):
    """Secret names the Deployments and TriggerAuthentications use that no Secret of `docs` has."""
    have = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    used = set()
    for d in docs:
        spec = d.get("spec", {})
        for v in spec.get("template", {}).get("spec", {}).get("volumes", []):
            if "secret" in v:
                used.add(v["secret"]["secretName"])
        for ref in spec.get("secretTargetRef", []):
            used.add(ref["name"])
    return sorted(used - have)


def main(argv):
    if len(argv) == 3 and argv[1] == "--rendered":
        with open(argv[2]) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        missing = dangling_secrets(docs)
        if missing:
            print(f"FAIL secrets used but not generated (kustomize nameReference?): {missing}", file=sys.stderr)
            return 1
    elif len(argv) == 3:
        docs = render(argv[1])
        with open(argv[2], "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if not docs:
        print("no resources", file=sys.stderr)
        return 1
    return 1 if validate(docs) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
