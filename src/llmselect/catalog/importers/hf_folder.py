"""Import a local Hugging Face model folder: config.json, README.md front matter, safetensors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from llmselect.catalog.importers.hf_config import architecture_from_config, read_config
from llmselect.catalog.params import IncompleteArchitecture, count_params
from llmselect.catalog.schema import LICENSE_ID, REPO_ID, Dataset, Licenses, ModelCard, TrainingData
from llmselect.errors import LLMSelectError
from llmselect.yamlfile import validate

MAX_README_BYTES = 2_000_000
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.DOTALL)
_RELATIONS = {"finetune", "adapter", "quantized", "merge", "continued-pretraining"}


def read_front_matter(readme: Path) -> dict[str, Any]:
    """The YAML metadata block at the top of a model card; {} when there is none."""
    if not readme.is_file():
        return {}
    if readme.stat().st_size > MAX_README_BYTES:
        raise LLMSelectError("model card is too large to be a model card", file=readme)
    text = readme.read_text(encoding="utf-8", errors="replace")
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 2 if exc.problem_mark else None  # +1 for the `---` line
        raise LLMSelectError(
            f"invalid YAML front matter: {exc.problem}", file=readme, line=line
        ) from exc
    except yaml.YAMLError as exc:
        raise LLMSelectError(f"invalid YAML front matter: {exc}", file=readme) from exc
    return meta if isinstance(meta, dict) else {}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int | float)]
    return []


def safetensors_param_count(folder: Path) -> int | None:
    """Exact parameter count from the safetensors headers (no weights are read)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    from safetensors import safe_open

    total = 0
    seen: set[str] = set()
    for path in files:
        try:
            with safe_open(str(path), framework="numpy") as handle:
                for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                    if name in seen:
                        continue
                    seen.add(name)
                    shape = handle.get_slice(name).get_shape()
                    count = 1
                    for dim in shape:
                        count *= dim
                    total += count
        except Exception as exc:  # safetensors raises its own error types
            raise LLMSelectError(f"unreadable safetensors file: {exc}", file=path) from exc
    return total or None


def _guess_id(folder: Path, config: dict[str, Any], meta: dict[str, Any]) -> str:
    name = config.get("_name_or_path")
    if isinstance(name, str) and re.fullmatch(REPO_ID, name) and "/" in name:
        return name
    slug = re.sub(r"[^\w.\-]+", "-", folder.resolve().name).strip("-.") or "model"
    return f"local/{slug}"


def import_hf_folder(
    folder: Path,
    *,
    model_id: str | None = None,
    family: str | None = None,
    stated_params: tuple[int, str] | None = None,
) -> ModelCard:
    """Read a folder written by `save_pretrained`. `stated_params` is (count, source) when known
    from elsewhere (the Hub's metadata); otherwise the safetensors headers are counted."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise LLMSelectError(
            "no config.json: not a Hugging Face model folder",
            file=folder,
            hint="point at the folder that save_pretrained wrote, or at a .gguf file",
        )
    config = read_config(config_path)
    arch = architecture_from_config(config, file=config_path)
    readme = folder / "README.md"
    meta = read_front_matter(readme)

    stated, params_source = stated_params or (None, "")
    weights_format = release_format(config)
    # Packed 4-bit blocks and their scales make the stored element count differ from the
    # parameter count, so a quantized release is counted from its architecture.
    if stated is None and weights_format is None:
        stated = safetensors_param_count(folder)
        params_source = f"safetensors headers in {folder}"
    if stated is None:
        try:
            stated = count_params(arch).total
            why = f"stored as {weights_format}" if weights_format else "no safetensors files"
            params_source = f"computed from {config_path} ({why})"
        except IncompleteArchitecture as exc:
            raise LLMSelectError(
                f"no safetensors weights, and {exc}",
                file=config_path,
                hint="add the missing fields to config.json, or import the folder with its weights",
            ) from exc
    active = None
    if arch.is_moe:
        try:
            active = count_params(arch).active
        except IncompleteArchitecture:
            active = None

    license_id = str(meta.get("license") or "unknown").lower()
    if license_id == "other" and isinstance(meta.get("license_name"), str):
        license_id = meta["license_name"].lower()
    notes = []
    if not re.fullmatch(LICENSE_ID, license_id):
        notes.append(f"The card's license field is not a license id: {license_id[:200]!r}.")
        license_id = "other"
    datasets = [
        Dataset(name=d[:200], license=None, stage="finetuning")
        for d in _as_list(meta.get("datasets"))
    ]
    bases = _as_list(meta.get("base_model"))
    relation = meta.get("base_model_relation")
    if bases and relation not in _RELATIONS:
        relation = "merge" if len(bases) > 1 else "finetune"
    # Code that ships in the folder (auto_map) is under the model's own license; otherwise the
    # architecture is transformers' implementation, Apache-2.0.
    code_license = license_id if config.get("auto_map") else "apache-2.0"
    if config.get("auto_map"):
        notes.append("The folder ships custom modeling code (auto_map); llmselect never runs it.")
    if len(bases) > 1:
        notes.append("Merged from: " + ", ".join(bases))

    data = {
        "id": model_id or _guess_id(folder, config, meta),
        "family": family or arch.model_type or "unknown",
        "params": stated,
        "active_params": active,
        "architecture": arch.model_dump(),
        "licenses": Licenses(
            code=code_license,
            weights=license_id,
            data=TrainingData(
                disclosure="partial" if datasets else "undisclosed", datasets=datasets
            ),
        ).model_dump(),
        "base_model": bases[0] if bases else None,
        "base_model_relation": relation if bases else None,
        "languages": _as_list(meta.get("language")),
        "kind": _kind(meta),
        "sources": {
            "params": [params_source] if params_source else [],
            "architecture": [str(config_path)],
            "licenses": [f"{readme} front matter"] if meta else [],
            "lineage": [f"{readme} front matter"] if bases else [],
        },
        "notes": " ".join(notes) or None,
        "origin": str(folder),
        "weights_format": weights_format,
        "input_modalities": _modalities(config),
    }
    return validate(ModelCard, data, file=readme if meta else config_path)


def release_format(config: dict[str, Any]) -> str | None:
    """The storage format of a checkpoint released quantized (config.json's
    `quantization_config`): `mxfp4`, `nvfp4`, `fp8-block`, or the method's own name."""
    quant = config.get("quantization_config")
    if not isinstance(quant, dict):
        return None
    method = str(quant.get("quant_method") or "").lower()
    if method == "fp8" and quant.get("weight_block_size"):
        return "fp8-block"
    if method == "modelopt" and "fp4" in str(quant.get("quant_algo") or "").lower():
        return "nvfp4"
    return {"mxfp4": "mxfp4", "fp8": "fp8", "awq": "awq", "gptq": "gptq"}.get(method)


def _modalities(config: dict[str, Any]) -> list[str]:
    found = ["text"]
    if isinstance(config.get("vision_config"), dict):
        found.append("image")
    if isinstance(config.get("audio_config"), dict):
        found.append("audio")
    return found


def _kind(meta: dict[str, Any]) -> list[str]:
    tags = {t.lower() for t in _as_list(meta.get("tags"))}
    if "code" in tags:
        return ["code"]
    if tags & {"chat", "conversational"}:
        return ["chat"]
    if tags & {"instruct", "instruction-tuned"}:
        return ["instruct"]
    return ["base"]
