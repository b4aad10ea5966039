"""An AI bill of materials: CycloneDX 1.6 ML-BOM of a model, its ancestors and its datasets."""

from __future__ import annotations

import json
from typing import Any

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.output.json import JsonV1Dot6

from llmselect.catalog import Catalog, ModelCard
from llmselect.licensing.knowledge import load_licenses


def _license(license_id: str | None) -> list[DisjunctiveLicense]:
    if not license_id:
        return []
    lic = load_licenses().get(license_id.lower())
    if lic is not None and lic.spdx:
        return [DisjunctiveLicense(id=_spdx_case(license_id))]
    # Not an SPDX id: CycloneDX wants it by name.
    return [DisjunctiveLicense(name=lic.name if lic else license_id)]


def _spdx_case(license_id: str) -> str:
    """The SPDX spelling of an id the base stores in lower case (`apache-2.0` -> `Apache-2.0`)."""
    from license_expression import get_spdx_licensing

    return str(get_spdx_licensing().parse(license_id, validate=False, simple=True))


def _model_component(card: ModelCard) -> Component:
    props = [Property(name="llmselect:license:code", value=card.licenses.code)]
    props.append(Property(name="llmselect:data:disclosure", value=card.licenses.data.disclosure))
    if card.base_model:
        props.append(Property(name="llmselect:base_model", value=card.base_model))
    if card.base_model_relation:
        props.append(
            Property(name="llmselect:base_model_relation", value=card.base_model_relation.value)
        )
    if card.params:
        props.append(Property(name="llmselect:params", value=str(card.params)))
    return Component(
        name=card.id,
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=f"model:{card.id}",
        licenses=_license(card.licenses.weights),
        supplier=None,
        properties=props,
        description=card.display_name,
    )


def ml_bom(card: ModelCard, catalog: Catalog) -> dict[str, Any]:
    """The ML-BOM as a JSON-ready dict: the model is the metadata component; ancestors and
    datasets are components, tied by dependencies (model -> base model, model -> its data)."""
    bom = Bom()
    chain = [c for i in catalog.lineage(card.id) if (c := catalog.find(i))]
    components: dict[str, Component] = {}
    for step in chain:
        components[step.id] = _model_component(step)
    bom.metadata.component = components[card.id]
    for step in chain[1:]:
        bom.components.add(components[step.id])
    for step in chain:
        deps = []
        base = catalog.find(step.base_model) if step.base_model else None
        if base is not None and base.id in components:
            deps.append(components[base.id])
        for ds in step.licenses.data.datasets:
            data = Component(
                name=ds.name,
                type=ComponentType.DATA,
                bom_ref=f"data:{step.id}:{ds.name}",
                licenses=_license(ds.license),
                description=ds.note,
                properties=[Property(name="llmselect:stage", value=ds.stage)],
            )
            bom.components.add(data)
            deps.append(data)
        if deps:
            bom.register_dependency(components[step.id], deps)
    result: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    return result
