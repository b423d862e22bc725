"""Start the app: ``python -m app.launch`` (what ``make run`` calls).

Makes sure the demo project exists (unless ``FHN_PROJECT`` names another project), then
runs ``streamlit run app/serve.py`` (app/main.py behind a small ASGI wrapper) headless on
127.0.0.1, port 8501 or ``FHN_PORT``, with the project folder handed over in
``FHN_PROJECT``. Prints the address to open. On POSIX the launcher replaces itself with the
server process, so its process id is the server's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_SCRIPT = ROOT / "app" / "serve.py"
DEFAULT_PORT = 8501


def streamlit_command(port: int, address: str = "127.0.0.1") -> list[str]:
    """The streamlit command line that serves the app."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.headless", "true",
        "--server.address", address,
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Ensure the project, then run the streamlit server until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m app.launch",
                                     description="Start the fhn app in the browser.")
    parser.add_argument("--project", type=Path, default=None,
                        help="project folder to open (default: $FHN_PROJECT or the demo)")
    parser.add_argument("--port", type=int, default=None,
                        help=f"port (default: $FHN_PORT or {DEFAULT_PORT})")
    args = parser.parse_args(argv)

    from io_adapters.errors import DataError

    project = args.project or (Path(os.environ["FHN_PROJECT"]) if os.environ.get("FHN_PROJECT")
                               else None)
    try:
        if project is None:
            from assets.demo_project import ensure_demo_project

            print("Preparing the demo project (first start builds the demo survey)...",
                  flush=True)
            project = ensure_demo_project()
        else:
            from io_adapters.project import Project

            project = Project.open(project).folder
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        port = int(args.port or os.environ.get("FHN_PORT") or DEFAULT_PORT)
    except ValueError:
        print(f"error: FHN_PORT={os.environ.get('FHN_PORT')!r} is not a port number",
              file=sys.stderr)
        return 2
    env = dict(os.environ, FHN_PROJECT=str(project))
    print(f"fhn: project {project}", flush=True)
    print(f"fhn: open http://127.0.0.1:{port} in your browser (Ctrl+C stops the server)",
          flush=True)
    command = streamlit_command(port)
    if os.name == "posix":
        # become the server: Ctrl+C and kill <pid> reach streamlit itself, no orphan is left
        os.chdir(ROOT)
        os.execve(command[0], command, env)
    try:
        return subprocess.call(command, cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
