"""Config mistakes in one or two lines: the key path, the file it came from, what to write.

``snakemake.utils.validate`` raises the whole jsonschema error, often hundreds of lines of
schema dump, for one wrong key. :func:`config_problem` checks the config against the same
schema (with the same default filling, on a copy) and returns the first violated rule as a short
message: the config file(s) the user gave, the key path (``patches.sizes[1]``), and for an
unknown key the nearest valid one (``did you mean `patches.sizes`?``), also when the key sits at
the wrong level. The full jsonschema report is appended only when asked for (``verbose``; the
Snakefile sets it from the ``TXMORPH_VERBOSE_ERRORS`` environment variable). A key that
has moved (:data:`MOVED_KEYS`) is reported first, with where it goes now.

Over 400 lines through its documentation only (about 310 of code): the key-path, suggestion
and description helpers serve the one message and change with it.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

VERBOSE_ENV = "TXMORPH_VERBOSE_ERRORS"
SCHEMA_FILE = "workflow/schemas/config.schema.yaml"

# How a key that the user names (a section, a patch size) is shown in a suggested key path.
PLACEHOLDERS = {("sections",): "<section>", ("training", "per_size"): "<size>"}
SECTION_CHARS = "letters, digits, '_', '.' and '-', starting with a letter or digit"
# Keys that have moved: {old key path: (new key path, why)}. Refused with the exact fix rather
# than accepted with a warning, so that a config always means one thing.
MOVED_KEYS: dict[tuple[str, ...], tuple[tuple[str, ...], str]] = {
    ("patches", "network_input"): (("training", "network_input"), "it is a model setting"),
}
#: Keys that are gone, with what replaced them: reported before the schema's errors.
REMOVED_KEYS: dict[tuple[str, ...], str] = {
    ("tissue_mask", "min_relative_density"): (
        "tissue is no longer a share of each section's own density but the same rule in every "
        "section: set `tissue_mask.gap_um` (the width in µm of a transcript-free gap that is "
        "background) instead"),
    ("tissue_mask", "spot_sigma_um"): (
        "the transcript-density bandwidth is replaced by `tissue_mask.gap_um` (the width in µm "
        "of a transcript-free gap that is background)"),
}

KeyPath = tuple[Any, ...]


@dataclass(frozen=True)
class Source:
    """One config file in effect (or ``--config``), as shown to the user, and its own YAML.

    Parameters
    ----------
    name : str
        The file as shown (relative to the working directory when inside it), or ``--config``.
    data : Mapping[str, Any]
        The file's own values, before merging.
    cli : bool
        Given on the command line (--configfile, --config), not by the Snakefile.
    """

    name: str
    data: Mapping[str, Any]
    cli: bool  # given on the command line (--configfile, --config), not by the Snakefile


def verbose_from_env(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the full schema report is asked for (``TXMORPH_VERBOSE_ERRORS`` set, not 0/false/no).

    Parameters
    ----------
    environ : Mapping[str, str]
        The environment.

    Returns
    -------
    bool
        True to append the full report.
    """
    return environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def config_sources(
    workflow_files: Sequence[str | os.PathLike[str]],
    cli_files: Sequence[str | os.PathLike[str]],
    cli_values: Mapping[str, Any] | None = None,
) -> list[Source]:
    """The config files in effect, in merge order (later wins), each with its own values.

    Plain paths in, so this module needs no Snakemake: the Snakefile says which files its
    ``configfile:`` loaded and which came from ``--configfile`` (and ``--config``).

    Parameters
    ----------
    workflow_files : Sequence[str or os.PathLike[str]]
        The files the Snakefile's ``configfile:`` loaded (none with
        ``--replace-workflow-config``).
    cli_files : Sequence[str or os.PathLike[str]]
        The ``--configfile`` files, in order.
    cli_values : Mapping[str, Any] or None
        The ``--config`` values.

    Returns
    -------
    list[Source]
        One per file (and ``--config``).
    """
    sources = [Source(_shown(Path(path)), _load(Path(path)), False) for path in workflow_files]
    sources += [Source(_shown(Path(path)), _load(Path(path)), True) for path in cli_files]
    if cli_values:
        sources.append(Source("--config", dict(cli_values), True))
    return sources


def _load(path: Path) -> Mapping[str, Any]:
    """A config file's own values: YAML (JSON is YAML too), as Snakemake reads it."""
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def _shown(path: Path) -> str:
    """A config file's path relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def describe_files(sources: Sequence[Source]) -> str:
    """``my.yaml`` or ``config.yaml + my.yaml``: the config files in effect.

    Parameters
    ----------
    sources : Sequence[Source]
        The config files.

    Returns
    -------
    str
        Their names joined by `` + ``, or ``the config`` when there are none.
    """
    names = [source.name for source in sources]
    return " + ".join(names) if names else "the config"


def _default_filling(validator_class: Any) -> Any:
    """The validator of ``snakemake.utils.validate(set_default=True)``: it fills in defaults
    while validating, so that errors are found with the same config that the workflow sees."""
    check_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        for name, subschema in properties.items():
            if "default" in subschema and isinstance(instance, dict):
                instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def fill_defaults(config: dict[str, Any], schema: Mapping[str, Any]) -> None:
    """Fill in the schema's defaults, in place, as ``snakemake.utils.validate`` does.

    Parameters
    ----------
    config : dict[str, Any]
        A config that passes the schema (changed in place).
    schema : Mapping[str, Any]
        The config schema.
    """
    _default_filling(Draft202012Validator)(dict(schema)).validate(config)


def schema_errors(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[ValidationError]:
    """Every schema violation of (a copy of) ``config``, in the validator's order.

    Parameters
    ----------
    config : Mapping[str, Any]
        The config (not modified; defaults are filled into a copy, as Snakemake would).
    schema : Mapping[str, Any]
        The config schema.

    Returns
    -------
    list[ValidationError]
        Empty for a valid config.
    """
    validator = _default_filling(Draft202012Validator)(dict(schema))
    return list(validator.iter_errors(copy.deepcopy(dict(config))))


def config_problem(
    config: Mapping[str, Any],
    schema: Mapping[str, Any],
    sources: Sequence[Source] = (),
    verbose: bool = False,
) -> str | None:
    """None when ``config`` is valid, else the first violated rule in one or two lines.

    Parameters
    ----------
    config : Mapping[str, Any]
        The merged config, as Snakemake holds it (not modified).
    schema : Mapping[str, Any]
        The config schema (``workflow/schemas/config.schema.yaml``, loaded).
    sources : Sequence[Source]
        The config files in effect (:func:`config_sources`), to name the one that sets the key.
    verbose : bool
        Append the full jsonschema report.

    Returns
    -------
    str or None
        The message (first line ``Config error in <file>: ...``), or None for a valid config.
    """
    moved = moved_key_problem(config, sources)
    if moved is not None:
        return moved
    errors = schema_errors(config, schema)
    if not errors:
        return None
    error = errors[0]
    path = tuple(error.absolute_path)
    text, key = _explain(error, config, schema)
    where = _naming(sources, key if key is not None else path)
    lines = [f"Config error in {where}: {text}"]
    more = f"{len(errors) - 1} more config error{'s' if len(errors) > 2 else ''}; " \
        if len(errors) > 1 else ""
    lines.append(f"({more}every key is described in {SCHEMA_FILE}; "
                 f"{VERBOSE_ENV}=1 prints the full schema report)")
    if verbose:
        lines.append("")
        lines.append(f"Full schema report ({VERBOSE_ENV}):")
        lines += [str(each) for each in errors]
    return "\n".join(lines)


def moved_key_problem(config: Mapping[str, Any], sources: Sequence[Source] = ()) -> str | None:
    """The message for a key of :data:`MOVED_KEYS` that ``config`` still uses, else None.

    Parameters
    ----------
    config : Mapping[str, Any]
        The merged config.
    sources : Sequence[Source]
        The config files in effect, to name the one that sets the old key.

    Returns
    -------
    str or None
        Two lines: the file, the old and the new key path and the line to move; then where every
        key is described. None when no moved key is used.
    """
    for old, why in REMOVED_KEYS.items():
        if _has(config, old):
            return (f"Config error in {_naming(sources, old)}: `{'.'.join(old)}` is gone: {why}"
                    f"\n(every key is described in {SCHEMA_FILE})")
    for old, (new, why) in MOVED_KEYS.items():
        if not _has(config, old):
            continue
        value: Any = config
        for part in old:
            value = value[part]
        return (f"Config error in {_naming(sources, old)}: `{'.'.join(old)}` is now "
                f"`{'.'.join(new)}` ({why}): move `{old[-1]}: {value}` from `{old[0]}:` to "
                f"`{new[0]}:`\n(every key is described in {SCHEMA_FILE})")
    return None


def _explain(error: ValidationError, config: Mapping[str, Any],
             schema: Mapping[str, Any]) -> tuple[str, KeyPath | None]:
    """The message for one error, and the key path it is about (None: the error's path)."""
    path = tuple(error.absolute_path)
    shown = key_path(path, config)
    kind = error.validator
    if "propertyNames" in error.schema_path:
        return _bad_key_name(path, error.instance, config), path + (error.instance,)
    if kind == "additionalProperties" and error.validator_value is False:
        allowed = set(error.schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in allowed]
        if unknown:
            key = unknown[0]
            full = key_path(path + (key,), config)
            guesses = suggest(path, str(key), schema, config)
            if guesses:
                hint = "did you mean " + " or ".join(f"`{g}`" for g in guesses) + "?"
            else:
                hint = "valid keys here: " + ", ".join(sorted(allowed))
            return f"unknown key `{full}`; {hint}", path + (key,)
    if kind == "required":
        missing = [key for key in error.validator_value if key not in error.instance]
        if missing:
            needed = ", ".join(error.validator_value)
            return (f"`{key_path(path + (missing[0],), config)}` is missing "
                    f"(required here: {needed})"), path
    if kind == "type":
        return (f"`{shown}` is {_short(error.instance)} ({_kind_of(error.instance)}); "
                f"expected {describe(error.schema, schema)}"), None
    if kind == "enum":
        choices = ", ".join(str(value) for value in error.validator_value)
        return f"`{shown}` is {_short(error.instance)}; expected one of: {choices}", None
    if kind in ("oneOf", "anyOf"):
        # For a list or mapping, the alternative of the value's own kind (e.g. a list of
        # genes, not marker sets) says what is wrong; the others only say "not a dict".
        # A scalar is best described by all alternatives ("'native' or an integer").
        fitting = [sub for sub in error.context or () if sub.validator != "type"]
        if fitting and isinstance(error.instance, (list, dict)):
            return _explain(fitting[0], config, schema)
        return (f"`{shown}` is {_short(error.instance)}; "
                f"expected {describe(error.schema, schema)}"), None
    if kind == "not" and isinstance(error.validator_value, Mapping) \
            and "enum" in error.validator_value:
        taken = ", ".join(str(value) for value in error.validator_value["enum"])
        return f"`{shown}` is {_short(error.instance)}, a reserved name (not allowed: {taken})", \
            None
    if kind == "uniqueItems":
        seen, twice = set(), []
        for item in error.instance:
            if repr(item) in seen and item not in twice:
                twice.append(item)
            seen.add(repr(item))
        return (f"`{shown}` has non-unique elements "
                f"({', '.join(str(item) for item in twice)} more than once)"), None
    if kind in ("minProperties", "minItems"):
        return (f"`{shown}` has {len(error.instance)} "
                f"entr{'y' if len(error.instance) == 1 else 'ies'}; "
                f"at least {error.validator_value} are needed"), None
    message = error.message
    full = repr(error.instance)
    if message.startswith(full):
        message = _short(error.instance) + message[len(full):]
    return f"`{shown}`: {message}", None


def _bad_key_name(path: KeyPath, name: Any, config: Mapping[str, Any]) -> str:
    """Why a section name is rejected: it becomes a folder name in results/."""
    name = str(name)
    reasons = []
    if not name:
        reasons.append("it is empty")
    elif not name[0].isalnum() or not name[0].isascii():
        reasons.append(f"it starts with {name[0]!r}" + (" (a hidden folder)" if name[0] == "."
                                                         else ""))
    bad = sorted({char for char in name[1:] if not re.fullmatch(r"[A-Za-z0-9_.-]", char)},
                 key=name.index)
    for char in bad:
        reasons.append("it contains " + {" ": "a space", "/": "'/' (a sub-folder)"}.get(
            char, repr(char)))
    plain = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lstrip("._-") or "section1"
    what = "section name" if path == ("sections",) else f"key in `{key_path(path, config)}`"
    return (f"{what} {name!r} is not a plain name: {' and '.join(reasons)}.\n"
            f"Section names become folder names in results/ (results/sections/<name>/): use only "
            f"{SECTION_CHARS}, e.g. {plain!r}")


def key_path(path: KeyPath, config: Any) -> str:
    """``patches.sizes[1]``: mapping keys joined by dots, list positions in brackets.

    Parameters
    ----------
    path : KeyPath
        The keys and list indices from the top.
    config : Any
        The config, to tell list positions from mapping keys.

    Returns
    -------
    str
        The key path as the user writes it; ``(top level)`` for an empty path.
    """
    shown, node = "", config
    for part in path:
        if isinstance(node, list) and isinstance(part, int):
            shown += f"[{part}]"
            node = node[part] if 0 <= part < len(node) else None
        else:
            shown += f".{part}" if shown else str(part)
            node = node.get(part) if isinstance(node, Mapping) else None
    return shown or "(top level)"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def _kind_of(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    return {int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string",
              "array": "a list", "object": "a mapping (key: value)", "boolean": "true or false",
              "null": "null"}


def describe(subschema: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """What a value must be, in words: ``an integer >= 8``, ``'native' or an integer >= 1``.

    Parameters
    ----------
    subschema : Mapping[str, Any]
        The schema of the value.
    schema : Mapping[str, Any]
        The whole schema, for ``$ref``.

    Returns
    -------
    str
        The description.
    """
    subschema = _resolve(subschema, schema)
    for alternatives in ("oneOf", "anyOf"):
        if alternatives in subschema:
            return " or ".join(describe(each, schema) for each in subschema[alternatives])
    if "enum" in subschema:
        return " or ".join(repr(value) for value in subschema["enum"])
    types = subschema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    words = " or ".join(TYPE_NAMES.get(each, each) for each in types) or "a valid value"
    bounds = [f"{sign} {subschema[key]}" for key, sign in
              (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
               ("exclusiveMaximum", "<")) if key in subschema]
    if subschema.get("minLength") == 1:
        words = "a non-empty string"
    if "items" in subschema and types == ["array"]:
        words += " of " + describe(subschema["items"], schema).replace("an integer", "integers") \
            .replace("a number", "numbers").replace("a string", "strings")
    return " ".join([words, " and ".join(bounds)]).strip()


def _resolve(subschema: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follows a local ``$ref`` (``#/definitions/...``), merged with the keys beside it."""
    ref = subschema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return subschema
    target: Any = schema
    for part in ref[2:].split("/"):
        target = target[part]
    merged = {**_resolve(target, schema), **subschema}
    merged.pop("$ref")
    return merged


def valid_key_paths(schema: Mapping[str, Any]) -> list[KeyPath]:
    """Every key path the schema allows; user-named keys (sections, sizes) as ``None``.

    Parameters
    ----------
    schema : Mapping[str, Any]
        The config schema.

    Returns
    -------
    list[KeyPath]
        Key paths, parents before children.
    """

    def walk(node: Mapping[str, Any], prefix: KeyPath) -> Iterator[KeyPath]:
        node = _resolve(node, schema)
        for key, sub in node.get("properties", {}).items():
            yield prefix + (key,)
            yield from walk(sub, prefix + (key,))
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping):
            yield from walk(extra, prefix + (None,))

    return list(walk(schema, ()))


def suggest(path: KeyPath, key: str, schema: Mapping[str, Any], config: Any = None) -> list[str]:
    """The valid key paths nearest to the unknown ``key`` at ``path``: a close key at the same
    level first, else anywhere in the schema (a key put at the wrong level).

    Parameters
    ----------
    path : KeyPath
        Where the unknown key is.
    key : str
        The unknown key.
    schema : Mapping[str, Any]
        The config schema.
    config : Any
        The config, to show key paths as the user writes them.

    Returns
    -------
    list[str]
        At most two key paths, best first; empty when none is close.
    """
    paths = valid_key_paths(schema)
    here = [each for each in paths if len(each) == len(path) + 1 and _fits(each[:-1], path)]
    siblings = [str(each[-1]) for each in here]
    lowered = key.lower()
    close = difflib.get_close_matches(lowered, siblings, n=2, cutoff=0.75)
    close += [each for each in siblings if len(lowered) >= 3 and each not in close
              and (each.startswith(lowered) or lowered.startswith(each))]
    if close:
        return [key_path(path + (each,), config) for each in close[:2]]
    wanted = "_".join(str(part) for part in path + (lowered,)).lower()
    scored = []
    for each in paths:
        if each in here or _fits(each, path[:len(each)]):  # a sibling, or the key's own parent
            continue
        filled = tuple(
            path[i] if part is None and i < len(path) and _fits(each[:i + 1], path[:i + 1])
            else part for i, part in enumerate(each))
        flat = "_".join("name" if part is None else str(part) for part in filled).lower()
        # The key alone against the last part (``sizes`` -> patches.sizes), or the whole path
        # flattened against the whole key (``patch_sizez`` -> patches.sizes).
        scores = [difflib.SequenceMatcher(None, lowered, str(each[-1]).lower()).ratio(),
                  difflib.SequenceMatcher(None, wanted, flat).ratio()]
        score = max([ratio for ratio, cutoff in zip(scores, (0.88, 0.8)) if ratio >= cutoff],
                    default=0.0)
        if score:
            scored.append((-score, None in filled, len(each), filled))
    if not scored:
        return []
    scored.sort(key=lambda item: item[:3])
    best = [item for item in scored if item[0] == scored[0][0]]
    if any(not item[1] for item in best):
        best = [item for item in best if not item[1]]
    return [_placeholder_path(item[3]) for item in best[:2]]


def _fits(pattern: KeyPath, path: KeyPath) -> bool:
    """Whether a schema key path (None = any user-named key) matches a config key path."""
    return len(pattern) == len(path) and all(
        want is None or want == got for want, got in zip(pattern, path))


def _placeholder_path(path: KeyPath) -> str:
    parts: list[str] = []
    for part in path:
        parts.append(PLACEHOLDERS.get(tuple(parts), "<key>") if part is None else str(part))
    return ".".join(parts)


def section_sources(sources: Sequence[Source], names: Iterable[str]) -> dict[str, str]:
    """Which config file each section comes from, to name it in the rules' messages.

    The last config file that defines a section wins, as in Snakemake's merge (``config.yaml``
    defines none: the demo's are the schema's default); a sample sheet (``sections:`` a path)
    defines all of its file's sections. Sections no file defines (the demo's) are left out.

    Parameters
    ----------
    sources : Sequence[Source]
        The config files in effect.
    names : Iterable[str]
        The sections of the config in effect.

    Returns
    -------
    dict[str, str]
        Per section name, the file that defines it (the sample sheet for its rows).
    """
    defining = [source for source in sources
                if isinstance(source.data, Mapping) and "sections" in source.data]
    defining = [source for source in defining if source.cli] or defining
    result = {}
    for name in names:
        for source in reversed(defining):
            sections = source.data["sections"]
            if isinstance(sections, str):
                result[str(name)] = sections
                break
            if isinstance(sections, Mapping) and name in sections:
                result[str(name)] = source.name
                break
    return result


def _naming(sources: Sequence[Source], path: KeyPath) -> str:
    """The config file(s) that set ``path`` (the deepest part of it that any file sets)."""
    for depth in range(len(path), 0, -1):
        setting = [source for source in sources if _has(source.data, path[:depth])]
        if setting:
            return describe_files(setting[-1:])  # the last file that sets it wins
    return describe_files(sources)


def _has(data: Any, path: KeyPath) -> bool:
    for part in path:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False
    return True


# Public names for other readers of config-shaped input (txmorph.samplesheet checks each row
# of a sample sheet against the section entry of the same schema).
explain_error = _explain
resolve_ref = _resolve
