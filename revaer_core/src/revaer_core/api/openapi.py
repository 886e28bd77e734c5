"""The API's OpenAPI document, as committed in ``docs/openapi.json`` (``revaer run``'s).

``python -m revaer_core.api.openapi docs/openapi.json`` (or ``nox -s openapi``)
rewrites the file; a test fails when the committed copy and the app disagree.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from revaer_core.api.app import create_app
from revaer_core.store import RuntimeStore


def openapi_document(*, standalone: bool = False) -> dict[str, Any]:
    """The document ``revaer run``'s API serves at ``/schema/openapi.json`` (it does not depend on the store).

    :param standalone: the document of ``revaer api`` instead, which names torrents by UUID only.
    """
    document: dict[str, Any] = create_app(RuntimeStore.none(), ref_prefixes=not standalone).openapi_schema.to_schema()
    return document


def render() -> str:
    """The document as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m revaer_core.api.openapi PATH", file=sys.stderr)
        return 2
    target = Path(args[0])
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, delete=False) as tmp:
        tmp.write(render())
    Path(tmp.name).replace(target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
