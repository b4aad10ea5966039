"""Evaluation datasets mapped to items (input, reference, choices).

A dataset is a file (JSONL, JSON, CSV, Parquet, Arrow) or a folder: one written by Hugging Face
`datasets`' `save_to_disk` (Arrow streams, read with pyarrow alone), or a dataset repository as
the Hub holds it (`data/test-00000-of-00001.parquet`, `train.jsonl`, `validation/part-0.csv`),
from which one split is read. Errors name the file, the line (the row index for Parquet and
Arrow, 0-based as pyarrow and pandas show it) and the field; duplicates and empty references are
reported, not silently kept or dropped.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from llmselect.errors import LLMSelectError

MAX_BYTES = 500_000_000
MAX_LINE_BYTES = 1_000_000
"""A longer line (JSONL, CSV) or item input is an error before anything runs: a 50 MB line
would exhaust memory in the tokenizer and the model. The study's `dataset.max_line_bytes`."""
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16's, which it starts with
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
"""A byte-order mark says the encoding for sure: such a file is read in it."""
TEXT_SUFFIXES = (".jsonl", ".json", ".csv")
TABLE_SUFFIXES = (".parquet", ".arrow")
DEFAULT_SPLITS = ("test", "validation", "train")
"""Read when the study names no split: held-out data first, as an evaluation wants."""
SPLIT_KEYWORDS = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "testing", "eval", "evaluation"),
}
"""The words that name a split in a file or folder name, as the Hub reads a repository."""
_SHARD = re.compile(r"(?P<split>[\w.]+?)-\d{5}-of-\d{5}\.\w+")
"""`push_to_hub` names its files `data/<split>-00000-of-00001.parquet`, whatever the split."""
_METADATA = {"dataset_info.json", "dataset_infos.json", "state.json", "dataset_dict.json"}
DATA_EXTRA = "pip install 'llmselect[data]'"


class FieldMap(BaseModel):
    """Which column holds what; names are the dataset's own."""

    model_config = ConfigDict(extra="forbid")

    input: str = "input"
    reference: str | None = "reference"
    choices: str | None = None
    """A list column; the reference is then the index (or the text) of the right choice."""
    id: str | None = None


class Item(BaseModel):
    id: str
    input: str
    reference: Any = None
    choices: list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    line: int
    """Where the item is in its file (1-based), for error messages."""
    file: str | None = None
    """The file the item came from, when the dataset is a folder of files."""
    row: int | None = None
    """The row index (0-based) in a Parquet or Arrow file."""


class Dataset(BaseModel):
    path: str
    items: list[Item]
    warnings: list[str]
    sha256: str
    """Of the data files' bytes: results name exactly which data they were measured on."""
    split: str | None = None
    """The split read from a dataset folder (None for a single file)."""
    files: list[str] = Field(default_factory=list)
    """The files read, in order."""


class Where(NamedTuple):
    """A row's place: a line of a text file, or a row index of a Parquet or Arrow file."""

    file: Path
    line: int | None = None
    row: int | None = None

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}" if self.line is not None else f"{self.file} row {self.row}"
        )

    def error(
        self, message: str, *, field: str | None = None, hint: str | None = None
    ) -> LLMSelectError:
        if self.line is not None:
            return LLMSelectError(message, file=self.file, line=self.line, field=field, hint=hint)
        return LLMSelectError(
            f"row index {self.row}: {message}", file=self.file, field=field, hint=hint
        )


Row = tuple[Where, dict[str, Any]]


# -- one file ------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """UTF-8, or UTF-8, UTF-16 or UTF-32 with a byte-order mark; anything else is an error that
    names the line and the byte, rather than a text read wrongly."""
    data = path.read_bytes()
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise LLMSelectError(
            f"not valid {encoding.upper()}: byte 0x{data[exc.start]:02x} at column {column}",
            file=path,
            line=line,
            hint="save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.jsonl > out.jsonl`)",
        ) from None
    if encoding == "utf-8" and "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise LLMSelectError(
            "a NUL byte: this looks like UTF-16 or UTF-32 without a byte-order mark",
            file=path,
            line=line,
            hint="save the file as UTF-8 (e.g. `iconv -f utf-16le -t utf-8 in.jsonl > out.jsonl`)",
        )
    return text


def _check_length(where: Where, text: str, limit: int, what: str = "line") -> None:
    # Characters first: a line is never shorter in UTF-8 bytes than in characters.
    if len(text) > limit // 4 and len(text.encode("utf-8", "surrogatepass")) > limit:
        raise where.error(
            f"the {what} is {len(text.encode('utf-8', 'surrogatepass')):,} bytes long, over the "
            f"limit of {limit:,}",
            hint="shorten it, or raise `max_line_bytes:` under `dataset:` in the study",
        )


def _text_rows(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> list[Row]:
    suffix = path.suffix.lower()
    text = read_text(path)
    if suffix in (".jsonl", ".csv"):
        for number, line in enumerate(text.splitlines(), start=1):
            _check_length(Where(path, line=number), line, max_line_bytes)
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LLMSelectError(
                    f"invalid JSON: {exc.msg} (column {exc.colno})", file=path, line=number
                ) from exc
            if not isinstance(row, dict):
                raise LLMSelectError("each line must be a JSON object", file=path, line=number)
            rows.append((Where(path, line=number), row))
        return rows
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LLMSelectError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from exc
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise LLMSelectError("a .json dataset is a list of objects", file=path, line=1)
        return [(Where(path, line=index + 1), row) for index, row in enumerate(data)]
    return _csv_rows(path, text)


def _csv_rows(path: Path, text: str) -> list[Row]:
    """Rows of a CSV file, each with the line it starts on (a quoted field may span lines).

    Every row has as many fields as the header has columns, and every quote closes: csv's
    lenient defaults would otherwise shift or merge fields without a word."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[Row] = []
    header: list[str] | None = None
    header_line = start = 1
    while True:
        try:
            fields = next(reader, None)
        except csv.Error as exc:
            problem = (
                "a quoted field is never closed"
                if "end of data" in str(exc)
                else f"malformed quoting ({exc})"
            )
            raise LLMSelectError(
                problem,
                file=path,
                line=start,
                hint='close each quote; a quote inside a quoted field is written twice ("")',
            ) from None
        if fields is None:
            return rows
        where, start = Where(path, line=start), reader.line_num + 1
        if not fields:
            continue  # a blank line
        if header is None:
            twice = sorted({f for f in fields if fields.count(f) > 1})
            if twice:
                raise where.error(f"the header names the column {twice[0]!r} twice")
            header, header_line = fields, where.line or 1
            continue
        if len(fields) != len(header):
            raise where.error(
                f"this row has {len(fields)} field{'s' if len(fields) != 1 else ''}; the header "
                f"(line {header_line}) has {len(header)} columns: {', '.join(header)}",
                hint="give every row one value per column (an empty one as ,,), and quote a "
                "value that holds a comma",
            )
        rows.append((where, dict(zip(header, fields, strict=True))))


def _pyarrow(path: Path) -> Any:
    try:
        import pyarrow
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError as exc:
        raise LLMSelectError(
            "reading Parquet and Arrow datasets needs pyarrow", file=path, hint=DATA_EXTRA
        ) from exc
    return pyarrow


def _table_rows(path: Path) -> list[Row]:
    pa = _pyarrow(path)
    try:
        if path.suffix.lower() == ".parquet":
            table = pa.parquet.read_table(path)
        else:
            # `save_to_disk` writes Arrow streams; an Arrow IPC file is read the other way.
            try:
                with pa.memory_map(str(path)) as source:
                    table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                with pa.memory_map(str(path)) as source:
                    table = pa.ipc.open_file(source).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise LLMSelectError(f"unreadable {path.suffix} file: {exc}", file=path) from exc
    return [(Where(path, row=index), row) for index, row in enumerate(table.to_pylist())]


def _file_rows(path: Path, max_line_bytes: int) -> list[Row]:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return _text_rows(path, max_line_bytes)
    if suffix in TABLE_SUFFIXES:
        return _table_rows(path)
    raise LLMSelectError(
        f"unsupported dataset format {suffix or '(none)'}",
        file=path,
        hint="use .jsonl, .json, .csv, .parquet or .arrow, or a Hugging Face dataset folder",
    )


# -- a folder: save_to_disk, or a Hub dataset repository ------------------------------------


def _saved_split_files(folder: Path) -> list[Path]:
    """The Arrow files of one split written by `Dataset.save_to_disk`, in their order."""
    state = folder / "state.json"
    if state.is_file():
        try:
            names = [f["filename"] for f in json.loads(state.read_text())["_data_files"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise LLMSelectError(
                "not a state.json written by `datasets` (no `_data_files`)", file=state
            ) from exc
        # Only names inside the folder: the file is data, not a list of paths to follow.
        files = [folder / Path(n).name for n in names]
    else:
        files = sorted(folder.glob("data-*.arrow"))
    for path in files:
        if not path.is_file():
            raise LLMSelectError("a data file named in state.json is missing", file=path)
    return files


def _saved_splits(folder: Path) -> dict[str, list[Path]] | None:
    """Splits of a `save_to_disk` folder (a Dataset or a DatasetDict), or None if it is not one."""
    index = folder / "dataset_dict.json"
    if index.is_file():
        try:
            names = json.loads(index.read_text())["splits"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise LLMSelectError(
                "not a dataset_dict.json written by `datasets` (no `splits`)", file=index
            ) from exc
        return {str(n): _saved_split_files(folder / Path(str(n)).name) for n in names}
    if (folder / "state.json").is_file() or (folder / "dataset_info.json").is_file():
        name = "train"
        # `_split` is set when the dataset came from a split of a loaded DatasetDict.
        with contextlib.suppress(OSError, json.JSONDecodeError, AttributeError):
            name = json.loads((folder / "state.json").read_text()).get("_split") or name
        return {str(name): _saved_split_files(folder)}
    return None


def _split_of(relative: Path) -> str | None:
    """The split a repository file belongs to, from its name or its folders' names."""
    shard = _SHARD.fullmatch(relative.name)
    if shard:
        return shard.group("split")
    # A keyword counts only between separators: `train.csv`, `data/dev-1.jsonl`, `test/a.csv`,
    # but not `pretrain.csv` (the Hub's rule).
    for part in (relative.name, *reversed(relative.parent.parts)):
        words = set(re.split(r"[-._ 0-9]+", part.lower()))
        for split, keywords in SPLIT_KEYWORDS.items():
            if words & set(keywords):
                return split
    return None


def _repo_splits(folder: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """Data files of a Hub-style dataset repository grouped by split, and those in none."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in TEXT_SUFFIXES + TABLE_SUFFIXES
        and p.name not in _METADATA
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    splits: dict[str, list[Path]] = {}
    unnamed: list[Path] = []
    for path in files:
        split = _split_of(path.relative_to(folder))
        (splits.setdefault(split, []) if split else unnamed).append(path)
    if unnamed and not splits:
        return {"train": unnamed}, []  # no split named anywhere: the Hub calls it all `train`
    return splits, unnamed


def _split_files(folder: Path, split: str | None) -> tuple[str, list[Path], list[Path]]:
    """The split to read, its files, and the data files that belong to no split."""
    splits = _saved_splits(folder)
    ignored: list[Path] = []
    if splits is None:
        splits, ignored = _repo_splits(folder)
    if not splits:
        raise LLMSelectError(
            "no data files in this folder",
            file=folder,
            hint="a dataset folder holds .parquet, .arrow, .jsonl, .json or .csv files, "
            "or what `save_to_disk` wrote",
        )
    available = ", ".join(sorted(splits))
    if split is not None:
        if split not in splits:
            raise LLMSelectError(
                f"no split {split!r} in this dataset (it has: {available})",
                file=folder,
                field="dataset.split",
                hint=f"set `split:` to one of: {available}",
            )
        return split, splits[split], ignored
    for name in DEFAULT_SPLITS:
        if name in splits:
            return name, splits[name], ignored
    raise LLMSelectError(
        f"no test, validation or train split in this dataset (it has: {available})",
        file=folder,
        field="dataset.split",
        hint=f"name the split to read with `split:`, one of: {available}",
    )


# -- rows to items --------------------------------------------------------------------------


def _sources(path: Path, split: str | None) -> tuple[str | None, list[Path], list[Path]]:
    if path.is_dir():
        return _split_files(path, split)
    if not path.is_file():
        raise LLMSelectError("no such dataset file or folder", file=path)
    if split is not None:
        raise LLMSelectError(
            f"`split: {split}` applies to a dataset folder; this is a single file",
            file=path,
            field="dataset.split",
            hint="remove `split:`, or point `path:` at the dataset folder",
        )
    return None, [path], []


def _digest(files: list[Path], root: Path) -> str:
    total = sum(f.stat().st_size for f in files)
    if total > MAX_BYTES:
        raise LLMSelectError("the dataset's files are larger than 500 MB", file=root)
    digest = hashlib.sha256()
    if len(files) == 1 and files[0] == root:
        digest.update(root.read_bytes())  # a single file: the plain hash of its bytes
        return digest.hexdigest()
    for path in files:
        # The name goes in too, so renaming a split's files changes what was measured.
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _all_rows(files: list[Path], max_line_bytes: int) -> Iterator[Row]:
    for path in files:
        yield from _file_rows(path, max_line_bytes)


def _default_id(where: Where, several_files: bool) -> str:
    local = f"line-{where.line}" if where.line is not None else f"row-{where.row}"
    return f"{where.file.name}:{local}" if several_files else local


def _choices(row: dict[str, Any], fields: FieldMap, where: Where, reference: Any) -> Any:
    """The choice list and the index of the right one."""
    assert fields.choices is not None
    raw = row.get(fields.choices)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)  # CSV cells hold lists as JSON text
        except json.JSONDecodeError:
            raw = None
    if not isinstance(raw, list) or len(raw) < 2:
        raise where.error("choices must be a list of at least two options", field=fields.choices)
    choices = [str(c) for c in raw]
    if isinstance(reference, str) and reference in choices:
        reference = choices.index(reference)
    try:
        reference = int(reference)
    except (TypeError, ValueError):
        raise where.error(
            "the reference of a multiple-choice item is the index or text of a choice",
            field=fields.reference,
        ) from None
    if not 0 <= reference < len(choices):
        raise where.error(
            f"reference index {reference} is out of range for {len(choices)} choices",
            field=fields.reference,
        )
    return choices, reference


def load_dataset(
    path: Path,
    fields: FieldMap | None = None,
    limit: int | None = None,
    split: str | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Dataset:
    """Read a dataset file or folder; `split` picks one split of a folder (default: test, then
    validation, then train). A line or an input over `max_line_bytes` is an error."""
    fields = fields or FieldMap()
    chosen, files, ignored = _sources(path, split)
    digest = _digest(files, path)
    several = len(files) > 1
    # Items name their file when the dataset is more than one file or a folder.
    name_file = several or path.is_dir()
    items: list[Item] = []
    warnings = [
        f"{f}: not read (its name says no split: train, validation or test)" for f in ignored
    ]
    seen_ids: dict[str, Where] = {}
    seen_inputs: dict[str, Where] = {}
    for where, row in _all_rows(files, max_line_bytes):
        if fields.input not in row or row[fields.input] in (None, ""):
            raise where.error(
                f"missing input field {fields.input!r}",
                field=fields.input,
                hint="map the right column with `fields: {input: <column>}`",
            )
        _check_length(where, str(row[fields.input]), max_line_bytes, what="input")
        reference = row.get(fields.reference) if fields.reference else None
        choices = None
        if fields.choices:
            choices, reference = _choices(row, fields, where, reference)
        elif fields.reference and reference in (None, ""):
            warnings.append(f"{where}: empty reference")
        raw_id = row.get(fields.id) if fields.id else None
        item_id = str(raw_id) if raw_id is not None else _default_id(where, several)
        if item_id in seen_ids:
            first = _earlier(seen_ids[item_id], where)
            raise where.error(f"duplicate id {item_id!r} (first on {first})", field=fields.id)
        seen_ids[item_id] = where
        text = str(row[fields.input])
        if text in seen_inputs:
            warnings.append(f"{where}: same input as {_earlier(seen_inputs[text], where)}")
        seen_inputs.setdefault(text, where)
        used = {fields.input, fields.reference, fields.choices, fields.id}
        items.append(
            Item(
                id=item_id,
                input=text,
                reference=reference,
                choices=choices,
                metadata={k: v for k, v in row.items() if k not in used},
                line=where.line if where.line is not None else (where.row or 0) + 1,
                file=str(where.file) if name_file else None,
                row=where.row,
            )
        )
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise LLMSelectError("the dataset has no items", file=files[0] if len(files) == 1 else path)
    return Dataset(
        path=str(path),
        items=items,
        warnings=warnings,
        sha256=digest,
        split=chosen,
        files=[str(f) for f in files],
    )


def _earlier(first: Where, now: Where) -> str:
    """`line 3` within the same file, else the file too."""
    if first.file != now.file:
        return str(first)
    return f"line {first.line}" if first.line is not None else f"row index {first.row}"
