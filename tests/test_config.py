"""The config schema and the cross-field checks reject mistakes before any job runs."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO, demo_config, run_snakemake, tiny_config

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")


def _default():
    """config.yaml with the sections and genes it leaves to the schema's defaults (the demo's)."""
    return demo_config()


def test_default_config_is_valid_and_defaults_fill_in():
    config = _default()
    del config["truth"]
    validate(config, SCHEMA)
    assert config["truth"] == {"quantity": "density", "sigma_um": 15.0, "rule": "otsu", "enrichment": 2.0,
                               "min_spots_per_region": 10}
    del config["checks"]
    validate(config, SCHEMA)
    assert config["checks"] == {"on_failure": "error", "min_fraction_in_tissue": 0.25,
                                "min_tissue_covered": 0.6}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["genes"].pop(), "is not valid under any of the given schemas"),
        (lambda c: c["genes"].__setitem__(1, "tissue"), "is not valid under any"),
        (lambda c: c.update(genes={"a": ["X"], "b": []}), "is not valid under any"),
        (lambda c: c["training"].update(epochs=0), "less than the minimum"),
        (lambda c: c["training"].update(learing_rate=0.1), "learing_rate"),
        (lambda c: c["sections"]["train"].update(role="training"), "is not one of"),
        (lambda c: c["sections"]["train"].pop("image"), "image"),
        (lambda c: c["sections"]["test"].update(pixel_size_um=-1), "less than or equal"),
        (lambda c: c["patches"].update(sizes=[]), "should be non-empty"),
        (lambda c: c["truth"].update(rule="mean"), "is not one of"),
        (lambda c: c["baseline"].update(features="cells"), "is not one of"),
        (lambda c: c["training"]["per_size"].update({64: {"lr": 1}}), "lr"),
    ],
)
def test_schema_rejects_bad_config(mutate, message):
    config = _default()
    mutate(config)
    with pytest.raises(Exception, match=message):
        validate(config, SCHEMA)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["patches"].update(sizes=[32, 48]), "48 is not a multiple of"),
        (lambda c: c["sections"]["test"].update(role="train"), "no section has role: test"),
        (lambda c: c["training"].update(per_size={100: {"epochs": 3}}), "100 is not one of"),
        (lambda c: c["genes"].append("Snap25") or c["genes"].append("Snap25"), "non-unique"),
    ],
)
def test_snakemake_stops_early_with_a_clear_message(tmp_path, mutate, message):
    config = copy.deepcopy(tiny_config())
    mutate(config)
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def _user_sections(tmp_path, image_writer):
    """A config whose train section has no pixel_size_um and its own image (see image_writer)."""
    import numpy as np

    data = tmp_path / "data"
    data.mkdir(parents=True)
    image = np.zeros((64, 64), np.uint16)
    image[16:48, 16:48] = 1000  # not blank (a blank image is refused at import)
    image_writer(data / "img.ome.tif", image)
    (data / "spots.csv").write_text("gene,x,y\nProx1,1,1\nMbp,2,2\n")
    config = copy.deepcopy(tiny_config())
    config["sections"]["train"] = {"role": "train", "image": "data/img.ome.tif",
                                   "spots": "data/spots.csv"}
    return config


def test_pixel_size_from_ome_metadata(tmp_path):
    import tifffile

    def ome(path, image):
        tifffile.imwrite(path, image, ome=True, metadata={"axes": "YX", "PhysicalSizeX": 0.65,
                                                          "PhysicalSizeY": 0.65})

    import json

    result = run_snakemake(tmp_path, "--cores", "1", "results/sections/train/image.json",
                           config=_user_sections(tmp_path, ome))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "results/sections/train/image.json").read_text())
    assert summary["pixel_size_um"] == 0.65 and summary["metadata_pixel_size_um"] == 0.65


def test_missing_pixel_size_without_metadata_is_explained(tmp_path):
    import tifffile

    def plain(path, image):
        tifffile.imwrite(path, image)

    result = run_snakemake(tmp_path, "-n", config=_user_sections(tmp_path, plain))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "does not record its pixel size" in output
    assert "set 'pixel_size_um' for section 'train'" in output


# --- Short config errors (txmorph.configcheck) and user sections (issue 11, points 5 and 6) ---

from pathlib import Path  # noqa: E402

from txmorph import configcheck  # noqa: E402

SCHEMA_DICT = yaml.safe_load(Path(SCHEMA).read_text())


def _problem(mutate, verbose=False):
    config = _default()
    mutate(config)
    return configcheck.config_problem(
        config, SCHEMA_DICT, [configcheck.Source("my.yaml", config, True)], verbose=verbose
    )


def test_valid_config_has_no_problem():
    assert _problem(lambda c: None) is None


@pytest.mark.parametrize(
    "mutate, expected",
    [
        # a wrong type, with the key path down to the list item and what is expected
        (lambda c: c["patches"].update(sizes=[32, "abc"]),
         "`patches.sizes[1]` is 'abc' (a string); expected an integer >= 8"),
        # unknown keys: nested, at the top level, and keys put at the wrong level
        (lambda c: c["patches"].update(sizez=[32]),
         "unknown key `patches.sizez`; did you mean `patches.sizes`?"),
        (lambda c: c.update(patch_sizez=[32]),
         "unknown key `patch_sizez`; did you mean `patches.sizes`?"),
        (lambda c: c.update(sizes=[32]), "unknown key `sizes`; did you mean `patches.sizes`?"),
        (lambda c: c["patches"].update(epochs=3),
         "unknown key `patches.epochs`; did you mean `training.epochs`?"),
        (lambda c: c["sections"]["train"].update(imag="x.tif"),
         # (`image_element`, the SpatialData sections' key, is offered after it)
         "unknown key `sections.train.imag`; did you mean `sections.train.image`"),
        (lambda c: c["training"].update(learing_rate=0.1),
         "did you mean `training.learning_rate`?"),
        (lambda c: c["sections"]["train"].pop("image"), "`sections.train.image` is missing"),
        (lambda c: c["probmap"].update(output_stride="fast"),
         "`probmap.output_stride` is 'fast'; expected 'native' or an integer >= 1"),
        (lambda c: c["genes"].append(c["genes"][0]), "`genes` has non-unique elements"),
        (lambda c: c["genes"].pop(), "`genes` has 1 entry; at least 2 are needed"),
        (lambda c: c["genes"].__setitem__(1, "tissue"), "`genes[1]` is 'tissue', a reserved name"),
    ],
)
def test_config_problem_is_one_short_rule(mutate, expected):
    message = _problem(mutate)
    first, *rest = message.splitlines()
    assert first.startswith("Config error in my.yaml: ")
    assert expected in first
    assert len(rest) <= 1 and "TXMORPH_VERBOSE_ERRORS=1" in rest[0]
    assert "Failed validating" not in message and "additionalProperties" not in message



def test_moved_network_input_is_refused_with_the_fix():
    def old_place(config):
        del config["training"]["network_input"]
        config["patches"]["network_input"] = 48

    message = _problem(old_place)
    first, second = message.splitlines()
    assert first == ("Config error in my.yaml: `patches.network_input` is now "
                     "`training.network_input` (it is a model setting): move "
                     "`network_input: 48` from `patches:` to `training:`")
    assert "config.schema.yaml" in second
    assert _problem(lambda c: c["training"].update(network_input=48)) is None

@pytest.mark.parametrize(
    "name, why",
    [("a/b", "it contains '/'"), ("brain 1", "it contains a space"),
     (".hidden", "it starts with '.'")],
)
def test_section_name_that_is_not_a_plain_name_says_why(name, why):
    message = _problem(lambda c: c["sections"].update({name: c["sections"].pop("train")}))
    assert f"section name {name!r} is not a plain name: {why}" in message
    assert "become folder names in results/" in message
    assert "letters, digits, '_', '.' and '-', starting with a letter or digit" in message
    assert len(message.splitlines()) <= 3


def test_verbose_flag_adds_the_full_schema_report():
    mutate = lambda c: c["patches"].update(sizez=[32])  # noqa: E731
    assert "Failed validating 'additionalProperties'" in _problem(mutate, verbose=True)
    assert "Failed validating" not in _problem(mutate)
    assert configcheck.verbose_from_env({"TXMORPH_VERBOSE_ERRORS": "1"})
    assert not configcheck.verbose_from_env({"TXMORPH_VERBOSE_ERRORS": "0"})
    assert not configcheck.verbose_from_env({})


def test_message_names_the_file_that_sets_the_key():
    demo, user = _default(), {"patches": {"sizes": [32, "x"]}}
    merged = copy.deepcopy(demo)
    merged["patches"].update(user["patches"])
    sources = [configcheck.Source("config.yaml", demo, False),
               configcheck.Source("../my.yaml", user, True)]
    message = configcheck.config_problem(merged, SCHEMA_DICT, sources)
    assert message.startswith("Config error in ../my.yaml: `patches.sizes[1]`")
    assert configcheck.describe_files(sources) == "config.yaml + ../my.yaml"


def _user_config_file(tmp_path, sections=None, **keys):
    """A user config outside the working directory, with sections of its own (files exist)."""
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name in ("left", "right"):
        (data / f"{name}.tif").write_bytes(b"")
        (data / f"{name}.csv").write_text("gene,x,y\n")
    if sections is None:
        sections = {name: {"role": role, "image": f"data/{name}.tif",
                           "spots": f"data/{name}.csv", "pixel_size_um": 1.0}
                    for name, role in (("left", "train"), ("right", "test"))}
    path = tmp_path / "user" / "my.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"sections": sections, "genes": ["Prox1", "Mbp"], **keys}))
    return path


@pytest.mark.parametrize(
    "keys, key, expected",
    [
        ({"patches": {"sizez": [32, 64]}}, "patches.sizez", "did you mean `patches.sizes`?"),
        ({"sizes": [32, 64]}, "sizes", "did you mean `patches.sizes`?"),
        ({"patches": {"sizes": [32, "abc"]}}, "patches.sizes[1]", "expected an integer"),
    ],
)
def test_snakemake_config_error_is_short_and_names_file_and_key(tmp_path, keys, key, expected):
    user = _user_config_file(tmp_path, **keys)
    work = tmp_path / "work"
    result = run_snakemake(work, "-n", "--configfile", str(user), config=tiny_config())
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"Config error in {user}: " in output and f"`{key}`" in output and expected in output
    assert "Failed validating" not in output and "'properties':" not in output
    assert len(output.splitlines()) < 10, output
    assert not (work / "results").exists()

    verbose = run_snakemake(work, "-n", "--configfile", str(user), config=tiny_config(),
                            env={"TXMORPH_VERBOSE_ERRORS": "1"})
    assert verbose.returncode != 0 and "Failed validating" in verbose.stdout + verbose.stderr



def test_snakemake_names_the_file_with_the_moved_network_input(tmp_path):
    user = _user_config_file(tmp_path, patches={"network_input": 32})
    result = run_snakemake(tmp_path / "work", "-n", "--configfile", str(user),
                           config=tiny_config())
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (f"Config error in {user}: `patches.network_input` is now `training.network_input`"
            in output and "move `network_input: 32` from `patches:` to `training:`" in output)
    assert len(output.splitlines()) < 10, output

def test_snakemake_section_name_with_slash_is_explained(tmp_path):
    user = _user_config_file(tmp_path)
    config = yaml.safe_load(user.read_text())
    config["sections"]["left/1"] = config["sections"].pop("left")
    user.write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path / "work", "-n", "--configfile", str(user),
                           config=tiny_config())
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "section name 'left/1' is not a plain name: it contains '/'" in output
    assert "become folder names in results/" in output and str(user) in output
    assert len(output.splitlines()) < 10, output


def test_snakemake_cross_field_error_names_the_config_files(tmp_path):
    user = _user_config_file(tmp_path, patches={"sizes": [32, 48]})
    result = run_snakemake(tmp_path / "work", "-n", "--configfile", str(user),
                           config=tiny_config())
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "48 is not a multiple of" in output
    assert f"Config error in config.yaml + {user}:" in output
    assert "config.yaml is inconsistent" not in output


@pytest.mark.parametrize("replace", [False, True])
def test_user_config_does_not_inherit_the_demo_sections(tmp_path, replace):
    user = _user_config_file(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    for name in ("left", "right"):  # the user's paths are relative to the working directory
        (work / "data").mkdir(exist_ok=True)
        for ext in ("tif", "csv"):
            (work / "data" / f"{name}.{ext}").write_bytes((tmp_path / "data" / f"{name}.{ext}")
                                                           .read_bytes())
    args = ["-n", "--configfile", str(user)] + (["--replace-workflow-config"] if replace else [])
    shipped = tiny_config()
    del shipped["sections"]  # as the shipped config.yaml: the demo's are the schema's default
    result = run_snakemake(work, *args, config=shipped)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "section=left" in output and "section=right" in output
    assert "section=train" not in output and "section=test" not in output
    assert "demo_data" not in output


def test_rule_messages_name_the_file_that_defines_the_section(monkeypatch):
    import json

    from txmorph.configcheck import Source, section_sources
    from txmorph.scripting import SECTION_FILES_ENV, name_config_file

    workflow = Source("config.yaml", {"sections": {"train": {}, "test": {}}}, cli=False)
    assert section_sources([workflow], ["train", "test"]) == {"train": "config.yaml",
                                                              "test": "config.yaml"}
    # Command-line configs with sections replace the workflow's (later files win).
    sources = [workflow, Source("a.yaml", {"sections": {"train": {}, "test": {}}}, cli=True),
               Source("my.yaml", {"sections": {"test": {}}}, cli=True)]
    files = section_sources(sources, ["train", "test"])
    assert files == {"train": "a.yaml", "test": "my.yaml"}
    sheet = [workflow, Source("my.yaml", {"sections": "config/sections.tsv"}, cli=True)]
    assert section_sources(sheet, ["train", "a"]) == {"train": "config/sections.tsv",
                                                      "a": "config/sections.tsv"}
    monkeypatch.setenv(SECTION_FILES_ENV, json.dumps(files))
    message = "Set 'columns' (gene, x, y) for this section in config.yaml."
    assert name_config_file(message, "test") == message.replace("config.yaml", "my.yaml")
    assert name_config_file(message, "train") == message.replace("config.yaml", "a.yaml")
    assert name_config_file(message, "other") == message
    assert name_config_file(message, None) == message
