"""The one way this project starts Rasa: install the Rasa fixes, then run Rasa's own command line.

    python -m bot.server run --model models --credentials credentials.yml --endpoints endpoints.yml …

Everything after ``bot.server`` is Rasa's command line, unchanged (``run``, ``shell``, ``test`` …).
Before Rasa parses it, :func:`bot.rasa_fixes.install` puts the fixes of ``bot/rasa_fixes.py`` in
place (polite answers when a part fails, the action-reply validator built once, log masking), so a
reader of ``scripts/run``, the tests or the Kubernetes recipe sees where they come from.
``python -m rasa run`` still works, without them: the ops channel then logs a warning.

uvloop: Rasa 3.6 runs Sanic with uvloop when it is installed (``rasa.core.run.serve_application``,
``use_uvloop=True``), so nothing is needed for it here; ``docs/performance.md`` has the figures.
"""
from __future__ import annotations

import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> None:
    """Install the fixes and hand the command line to Rasa (which may exit the process)."""
    from bot import rasa_fixes

    rasa_fixes.install()

    import rasa.__main__

    sys.argv = ["rasa", *(sys.argv[1:] if argv is None else argv)]
    rasa.__main__.main()


if __name__ == "__main__":
    main()
