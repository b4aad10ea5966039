"""What makes `select` fast must not change what it says: the sizing shortcuts give the figures
the plain computation gives, and the parse and template caches give back what was parsed and
compiled, or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmselect import yamlfile
from llmselect.catalog import load_catalog
from llmselect.errors import LLMSelectError
from llmselect.sizing.engines import get_engine
from llmselect.sizing.estimate import Shapes, estimate, memory
from llmselect.sizing.hardware import find_device
from llmselect.sizing.quant import GGML_BLOCKS, weight_bytes
from llmselect.yamlfile import LineDict, LineList, load_yaml


def _bisect(fits: Any, upper: int) -> int:
    """The search `estimate` used before: plain bisection on [1, upper]."""
    if not fits(1):
        return 0
    low, high = 1, upper
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


@pytest.mark.parametrize(
    ("gpu", "devices", "engine_id", "quant", "context", "batch"),
    [
        ("H100-80GB", 1, "vllm", "bf16", 4096, 8),
        ("RTX-4090", 2, "llama.cpp", "Q4_K_M", 32768, 1),
        ("A100-80GB", 1, "transformers-eager", "bf16", 8192, 3),  # quadratic in the context
    ],
)
def test_largest_context_and_batch_are_the_plain_bisections(
    gpu: str, devices: int, engine_id: str, quant: str, context: int, batch: int
) -> None:
    device, engine = find_device(gpu), get_engine(engine_id)
    cards = [c for c in load_catalog() if c.architecture.is_complete]
    assert len(cards) > 100
    for card in cards:
        arch = card.architecture
        fit = estimate(card, device, devices, engine, quant=quant, context=context, batch=batch)
        stored = weight_bytes(arch, quant)

        def fits(c: int, b: int, arch: Any = arch, stored: int = stored) -> bool:
            m = memory(arch, quant, device, devices, engine, c, b, total_weight_bytes=stored)
            return m.total_bytes <= m.available_bytes

        upper = max(arch.context_length or 0, context)
        assert fit.max_context == _bisect(lambda c: fits(c, batch), upper), card.id
        assert fit.max_batch == _bisect(lambda b: fits(context, b), 4096), card.id
        # What `select` passes for every precision changes nothing.
        again = estimate(
            card,
            device,
            devices,
            engine,
            quant=quant,
            context=context,
            batch=batch,
            shapes=Shapes(arch),
        )
        assert again == fit


def test_the_ggml_block_table_is_the_gguf_packages() -> None:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    for name, block in GGML_BLOCKS.items():
        assert GGML_QUANT_SIZES[GGMLQuantizationType[name]] == block, name


# -- the parse cache of the package's YAML files ---------------------------------------------


def _same(a: Any, b: Any) -> None:
    """Equal, of the same types, with the same lines."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, LineDict):
        assert (a.line, a.key_lines, list(a)) == (b.line, b.key_lines, list(b))
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, LineList):
        assert (a.line, a.item_lines, len(a)) == (b.line, b.item_lines, len(b))
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return yamlfile.cache_dir()


def test_every_builtin_file_reads_back_from_the_cache_as_parsed(cache: Path) -> None:
    package = Path(yamlfile.__file__).parent
    files = sorted(package.rglob("*.yaml"))
    assert len(files) > 50
    parsed = [load_yaml(path) for path in files]  # parsed, and kept
    assert len(list(cache.glob("*.json"))) == len(files)
    for path, first in zip(files, parsed, strict=True):
        again = load_yaml(path)  # from the cache
        assert again is not first
        _same(first, again)


@pytest.fixture
def package_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> Path:
    """A file the cache takes for one of the package's own."""
    monkeypatch.setattr(yamlfile, "_PACKAGE", tmp_path.resolve())
    path = tmp_path / "data.yaml"
    path.write_text("name: a\nreleased: 2024-05-01\nsizes: [1, 2.5, null, true]\n")
    return path


def test_a_changed_file_is_parsed_again(package_file: Path, cache: Path) -> None:
    assert load_yaml(package_file)["name"] == "a"
    assert len(list(cache.glob("*.json"))) == 1
    package_file.write_text("name: b\n")
    assert load_yaml(package_file) == {"name": "b"}
    assert len(list(cache.glob("*.json"))) == 1  # the entry replaced, not another one


def test_a_damaged_or_unwritable_cache_is_no_cache(
    package_file: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_yaml(package_file)
    (entry,) = cache.glob("*.json")
    for damage in ("{", '{"key": 1}', '{"key": "x", "data": 3}', ""):
        entry.write_text(damage)
        _same(load_yaml(package_file), first)
    # A cache directory that cannot be made (a file stands in its way): nothing is kept, and
    # nothing fails.
    monkeypatch.setattr(yamlfile, "cache_dir", lambda: package_file / "yaml")
    entry.unlink()
    _same(load_yaml(package_file), first)
    assert not list(cache.glob("*.json"))


def test_an_invalid_file_still_names_its_line_and_is_not_kept(
    package_file: Path, cache: Path
) -> None:
    package_file.write_text("name: a\nsizes: [1, 2\n")
    for _ in range(2):
        with pytest.raises(LLMSelectError) as error:
            load_yaml(package_file)
        assert error.value.file == str(package_file) and error.value.line == 3
    assert not list(cache.glob("*.json"))


def test_the_users_own_files_are_not_kept(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("name: mine\n")
    assert load_yaml(path) == {"name": "mine"}
    assert not cache.exists() or not list(cache.glob("*.json"))


def test_a_selection_that_measures_nothing_loads_no_statistics(tmp_path: Path) -> None:
    """scipy.stats alone costs about a second to import: `select` pays for it only when the
    study runs models (the evaluation's statistics), not to rank the catalog and write the
    report."""
    import subprocess
    import sys

    study = tmp_path / "study.yaml"
    study.write_text("hardware: H100-80GB\ncandidates: {ids: [meta-llama/Llama-2-7b-hf]}\n")
    code = (
        "import sys; from pathlib import Path; import llmselect.cli.select; "
        "from llmselect.jobs.select import select_study; "
        f"done = select_study(Path({str(study)!r}), out_dir=Path({str(tmp_path / 'out')!r})); "
        "assert done.files and done.selection.entries; "
        "print(sorted(m for m in ('scipy', 'numpy', 'torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
