"""The package code a rule script runs: its ``code`` input, and how the script finds the package.

``script_code`` lists every txmorph module a rule script imports, directly or through other
modules, so that editing one re-runs exactly the rules that use it (and is part of the key of
cached rules). It is derived from the imports (``ast``, nothing is executed), so the list cannot
fall behind the code.
"""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import MutableMapping
from pathlib import Path

PACKAGE = "txmorph"


@functools.cache
def txmorph_imports(path: Path) -> frozenset[str]:
    """The txmorph modules one Python file imports, dotted below the package.

    Recognised: ``from txmorph.x import``, ``from txmorph.io.x import``, ``from txmorph import
    x``, ``from txmorph.io import x``, ``import txmorph.x``. A name that is not a module (a
    function of ``from txmorph.io import``) is kept here and dropped by ``script_code``.

    Parameters
    ----------
    path : Path
        The Python file.

    Returns
    -------
    frozenset of str
        Module names such as ``"canonical"`` or ``"io.images"``.
    """
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            below = node.module.split(".")[1:]
            if below:
                found.add(".".join(below))
            found.update(".".join([*below, alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".", 1)[1] for a in node.names
                         if a.name.startswith(f"{PACKAGE}."))
    return frozenset(found)


def module_file(package_root: Path, name: str) -> Path | None:
    """The file of txmorph module ``name`` ("io.images" -> txmorph/io/images.py).

    Parameters
    ----------
    package_root : Path
        The folder that holds the ``txmorph`` package (``workflow/``).
    name : str
        Dotted module name below the package.

    Returns
    -------
    Path or None
        The file; None for a package (its ``__init__.py`` holds no code) or a name that is not
        a module.
    """
    path = Path(package_root, PACKAGE, *name.split(".")).with_suffix(".py")
    return path if path.is_file() else None


def listed_package_dir(package_root: Path, workdir: Path) -> Path:
    """The package folder as code inputs name it.

    Relative to the working directory when the package lies inside it (the usual
    checkout-as-workdir case), so that moving the checkout with its results does not look like
    a change of inputs; otherwise the package folder as given.

    Parameters
    ----------
    package_root : Path
        The folder that holds the ``txmorph`` package.
    workdir : Path
        Snakemake's working directory.

    Returns
    -------
    Path
        The ``txmorph`` folder, relative to ``workdir`` where possible.
    """
    package_dir = Path(package_root, PACKAGE)
    if package_dir.resolve().is_relative_to(Path(workdir).resolve()):
        return package_dir.resolve().relative_to(Path(workdir).resolve())
    return package_dir


def script_code(script: Path, package_root: Path, listed_dir: Path) -> list[str]:
    """Every txmorph module a rule script uses, directly or through other modules.

    Parameters
    ----------
    script : Path
        The rule script.
    package_root : Path
        The folder that holds the ``txmorph`` package, where the modules are read.
    listed_dir : Path
        The package folder as the returned paths name it (``listed_package_dir``).

    Returns
    -------
    list of str
        The modules' files under ``listed_dir``, sorted by module name.
    """
    names, todo = set(), list(txmorph_imports(Path(script)))
    while todo:
        name = todo.pop()
        if name not in names and (path := module_file(package_root, name)) is not None:
            names.add(name)
            todo.extend(txmorph_imports(path))
    return [str(Path(listed_dir).joinpath(*name.split(".")).with_suffix(".py"))
            for name in sorted(names)]


def put_package_on_pythonpath(package_root: str,
                              environ: MutableMapping[str, str] = os.environ) -> None:
    """Put ``package_root`` first on ``PYTHONPATH``, for the rule scripts' processes.

    Rule scripts import the txmorph package of this checkout, also inside conda envs and
    containers where it is not pip-installed: Snakemake starts them with the environment of
    the process that parses the workflow. (Not an ``envvars:`` directive, which asserts that
    the user set a variable: nobody needs to set this one.)

    Parameters
    ----------
    package_root : str
        The folder that holds the ``txmorph`` package.
    environ : MutableMapping[str, str]
        The environment to change (``os.environ``; replaceable in tests).
    """
    others = [path for path in environ.get("PYTHONPATH", "").split(os.pathsep) if path]
    environ["PYTHONPATH"] = os.pathsep.join([package_root] + others)
