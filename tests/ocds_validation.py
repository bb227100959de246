"""Validate an OCDS package with the OCDS project's own library, against the vendored official schema."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from libcoveocds.api import ocds_json_output
from libcoveocds.config import LibCoveOCDSConfig

SCHEMA = Path(__file__).parent / "data" / "ocds-1__1__5" / "schema"
EXTENSIONS = Path(__file__).parent / "data" / "ocds-extensions"  # the vendored extensions (README there)


def _closed_codelists(node: Any, out: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each closed codelist's codes, which the official schema repeats as the field's ``enum``."""
    if isinstance(node, dict):
        if node.get("openCodelist") is False and "enum" in node:
            out[node["codelist"]] = [code for code in node["enum"] if code is not None]
        for value in node.values():
            _closed_codelists(value, out)
    elif isinstance(node, list):
        for value in node:
            _closed_codelists(value, out)
    return out


def extension_folder(url: str) -> Path:
    """The vendored copy of a declared extension (``…/ocds_metrics_extension/…/extension.json`` → ``metrics``)."""
    for folder in EXTENSIONS.iterdir():
        if folder.is_dir() and f"ocds_{folder.name}_extension" in url:
            return folder
    raise AssertionError(f"the package declares an extension that is not vendored in {EXTENSIONS}: {url}")


def standard_zip(folder: Path, extensions: tuple[str, ...] = ()) -> str:
    """The vendored schema, with the declared extensions' patches applied (``json_merge_patch``, as
    ``ocdsextensionregistry`` does), laid out as the standard repository's zip, as ``libcoveocds`` reads it."""
    import json_merge_patch

    names = "-".join(sorted(extension_folder(u).name for u in extensions))
    path = folder / f"standard-1__1__5{'-' + names if names else ''}.zip"
    if not path.exists():
        release = json.loads((SCHEMA / "release-schema.json").read_text())
        for url in extensions:
            patch = json.loads((extension_folder(url) / "release-schema.json").read_text())
            release = json_merge_patch.merge(release, patch)
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("standard-1__1__5/", "")
            for file in sorted(SCHEMA.glob("*.json")):
                if file.name == "release-schema.json":
                    archive.writestr(f"standard-1__1__5/schema/{file.name}", json.dumps(release))
                else:
                    archive.write(file, f"standard-1__1__5/schema/{file.name}")
            codelists = _closed_codelists(json.loads((SCHEMA / "release-schema.json").read_text()), {})
            for name, codes in codelists.items():
                text = io.StringIO()
                writer = csv.writer(text)
                writer.writerow(["Code"])
                writer.writerows([code] for code in codes)
                archive.writestr(f"standard-1__1__5/schema/codelists/{name}", text.getvalue())
    return f"file://{path}"


def validation_errors(package: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """Schema errors and closed-codelist violations ``libcoveocds`` finds; an empty list means valid.

    The package's declared extensions are applied from the vendored copies, and the package is given
    to ``libcoveocds`` without its ``extensions`` array (which it would try to download)."""
    extensions = tuple(package.get("extensions", ()))
    config = LibCoveOCDSConfig({"context": "api", "standard_zip": standard_zip(folder, extensions)})
    offline = {k: v for k, v in package.items() if k != "extensions"}
    result = ocds_json_output(json_data=offline, lib_cove_ocds_config=config, schema_version="1.1")
    errors = [{"error": e["description"], "path": e.get("path")} for e in result.get("validation_errors", [])]
    for path, info in result.get("additional_closed_codelist_values", {}).items():
        errors.append({"error": f"{info['values']} not in the closed codelist {info['codelist']}", "path": path})
    return errors
