#!/usr/bin/env python3
"""Writes the openAPIV3Schema of one version of a CustomResourceDefinition, for tests/k8s to validate our
custom resources offline. `description` texts and the `status` subtree are left out (validation needs neither;
RayService's CRD shrinks from 1 MB to under 200 kB); everything else is kept as the CRD has it.

    python k8s/schemas/extract.py CRD.yaml VERSION OUT --source "github.com/OWNER/REPO TAG PATH" --license Apache-2.0

The output is YAML: a comment header naming the source, then the schema as indented JSON (JSON is YAML).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml


def strip(node: Any, top: bool = False) -> Any:
    if isinstance(node, dict):
        kept = {}
        for key, value in node.items():
            if key == "description" and not isinstance(value, dict):
                continue  # a text, not a property called "description"
            if top and key == "properties":
                value = {name: sub for name, sub in value.items() if name != "status"}
            kept[key] = strip(value)
        return kept
    if isinstance(node, list):
        return [strip(item) for item in node]
    return node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("crd", type=Path)
    parser.add_argument("version")
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", required=True, help="repository, tag and path of the CRD file")
    parser.add_argument("--license", required=True)
    args = parser.parse_args()

    crd = yaml.safe_load(args.crd.read_text())
    spec = crd["spec"]
    (version,) = [v for v in spec["versions"] if v["name"] == args.version]
    schema = strip(version["schema"]["openAPIV3Schema"], top=True)
    header = (
        f"# openAPIV3Schema of {spec['names']['kind']} {spec['group']}/{args.version}, from the CRD\n"
        f"# {spec['names']['plural']}.{spec['group']} in {args.source}\n"
        f"# License: {args.license} (the CRD's source repository). Descriptions and `status` removed; written by\n"
        f"# k8s/schemas/extract.py. tests/k8s/test_manifests.py validates the built manifests against it.\n"
    )
    args.out.write_text(header + json.dumps(schema, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
