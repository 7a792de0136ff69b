"""Rule summary: the Dice table of every test section, a Markdown summary and figures."""

import json
from pathlib import Path

import pandas as pd

from txmorph.classes import REFERENCE_DICE
from txmorph.evaluate.figures import summary_figure
from txmorph.evaluate.metrics import label_map
from txmorph.evaluate.tables import checks_markdown, dice_markdown, not_evaluable_markdown
from txmorph.io.canonical import read_image, read_labels
from txmorph.outputs import atomic_path
from txmorph.probmap.mapsio import read_probability_map
from txmorph.reference import class_labels, read_reference
from txmorph.scripting import run_rule



def learned_lines(learned):
    """What the models learned: the class set, how labels were placed, what was left out."""
    if "models" in learned:  # reused models (config `models`, rule reused_classes)
        lines = [f"Models reused from `{learned['models']}`: they learned "
                 f"{', '.join(learned['classes'])} (patch centres per class "
                 f"{learned['centres_per_class']})."]
    else:
        lines = [f"Models learned {', '.join(learned['classes'])} (patch centres: "
                 f"`patches.labels: {learned['labels']}`; per class "
                 f"{learned['centres_per_class']})."]
    lines += [f"- `{name}` left out: {reason}" for name, reason in learned["dropped"].items()]
    return lines + [""]


def niche_lines(reference):
    """With niches: K, each niche's name, its most enriched genes and its training pixels."""
    niches = reference.get("niches")
    if not niches:
        return []
    pixels = reference.get("class_pixels", {})
    tissue = sum(pixels.get(name, 0) for name in niches) or 1
    rows = [f"| `{name}` | {', '.join(entry['top_genes']) or '-'} | "
            f"{pixels.get(name, 0) / tissue:.1%} |" for name, entry in niches.items()]
    return ["## Niches", "",
            f"{len(niches)} expression niches of all genes' spots, clustered jointly over the "
            f"training and test sections ({', '.join(reference['training_sections'])} trained "
            "on); numbered by size, named by their most enriched genes.", "",
            "| niche | most enriched genes | share of the training tissue |",
            "|---|---|---|", *rows, ""]


DICE_COLUMNS = ["section", "model", "class", "dice", "evaluable", "note"]


def predicted_labels(smk, section):
    """Each model's arg-max labels of one mapped section, as Dice sees them, and the stride
    of each (its probability map's grid)."""
    predictions, strides = {}, {}
    for model in smk.params.models:
        path = next(p for p in smk.input.probmaps if Path(p).parent.name == section
                    and Path(p).stem == model)
        prob_map = read_probability_map(path)
        context_px = smk.params.context_um / (smk.params.pixel_sizes_um[section]
                                              * prob_map.stride)
        predictions[model] = label_map(prob_map.probabilities, prob_map.classes,
                                       smk.params.classes, context_px)
        strides[model] = prob_map.stride
    return predictions, strides


def main(smk, log):
    # A run of prediction-only sections has no Dice: the table keeps its header.
    tables = [pd.read_csv(path) for path in smk.input.dice]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=DICE_COLUMNS)
    with atomic_path(smk.output.dice) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")

    models = list(smk.params.models)
    reference = read_reference(smk.input.reference)
    labels = class_labels(reference, smk.params.classes)
    lines = [
        "# txmorph summary",
        "",
        f"Classes: {', '.join(labels.values())}. Models: {', '.join(models)}.",
        f"Dice of each model's arg-max labels against the reference regions derived from the "
        f"test section's own spots; `mean` is the mean over classes. Reference: mean Dice "
        f"{REFERENCE_DICE} (Andersson et al., ISBI 2020). `n/e`: not evaluable (an empty "
        "reference region or tissue, or a gene too sparse for the reference rule); such "
        "classes are left out of the mean, and a section without an evaluable gene class has "
        "no mean. `chance`: an image-blind prediction, every pixel the training sections' most "
        "frequent class, scored the same way: the floor that every other row reads against.",
        "",
        *learned_lines(json.loads(Path(smk.input.classes).read_text())),
        *niche_lines(reference),
        "## Input checks",
        "",
        checks_markdown([json.loads(Path(path).read_text()) for path in smk.input.checks]),
        "",
    ]
    images = {Path(path).parent.name: path for path in smk.input.images}
    truths = {Path(path).stem: path for path in smk.input.truths}
    figures = {Path(path).stem: Path(path) for path in smk.output.figures}
    for section in smk.params.sections:
        image = read_image(images[section])
        truth = read_labels(truths[section])
        figure = figures[section]
        predictions, strides = predicted_labels(smk, section)
        summary_figure(image, truth, predictions, list(labels.values()), figure,
                       strides=strides)
        section_table = table[table["section"] == section]
        lines += [
            f"## Test section `{section}`",
            "",
            dice_markdown(section_table),
            "",
        ]
        not_evaluable = not_evaluable_markdown(section_table[section_table["model"] == models[-1]])
        lines += [not_evaluable, ""] if not_evaluable else []
        lines += [
            f"![image, reference regions and predictions]({figure.name})",
            "",
        ]
        log.info("section %s:\n%s", section, dice_markdown(section_table))
    for section in smk.params.predict_sections:
        figure = figures[section]
        predictions, strides = predicted_labels(smk, section)
        summary_figure(read_image(images[section]), None, predictions,
                       list(labels.values()), figure, strides=strides)
        lines += [
            f"## Prediction-only section `{section}`",
            "",
            "No spots, so no reference regions and no Dice: each model's arg-max labels "
            f"(ensemble as a label image: `results/labels/{section}.tif`).",
            "",
            f"![image and predictions]({figure.name})",
            "",
        ]
        log.info("section %s: prediction only", section)
    with atomic_path(smk.output.summary) as tmp:
        tmp.write_text("\n".join(lines))


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
