"""`digest templates export`: the built-in email and web templates written out, as the
starting point of a publisher's own templates folder (`[render] templates_dir`).

Only `email/` and `web/` are written. The gettext catalogs (`locale/`) and `babel.cfg` stay
out: a copied catalog would hide every new or corrected message of later versions, and a
publisher who wants their own wording copies `locale/` deliberately.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from digest.bundled import templates_dir
from digest.errors import InvalidInput

__all__ = ["EXPORTED", "builtin_templates", "export_templates"]

EXPORTED = ("email", "web")  # the folders of the built-ins a publisher may override


def builtin_templates() -> list[str]:
    """The built-in templates' names (`email/digest.mjml.j2`, ...), sorted."""
    root = templates_dir()
    return sorted(
        path.relative_to(root).as_posix()
        for folder in EXPORTED
        for path in (root / folder).rglob("*.j2")
        if path.is_file()
    )


def export_templates(directory: Path, *, force: bool = False) -> list[Path]:
    """Write every built-in template under `directory` (created if needed); the files
    written. Refuses before writing anything if one of them exists, unless `force`."""
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(f"{directory} exists and is not a folder")
    names = builtin_templates()
    targets = [directory / name for name in names]
    existing = [t for t in targets if t.exists() or t.is_symlink()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise InvalidInput(
            f"{existing[0]} already exists{more}: pass --force to replace the built-in "
            "templates there (your other files are left alone)"
        )
    source = templates_dir()
    for name, target in zip(names, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        _replace(target, (source / name).read_bytes())
    return targets


def _replace(target: Path, data: bytes) -> None:
    """Write `target` whole or not at all (a symlink there is replaced, not followed)."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
