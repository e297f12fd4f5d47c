"""An installed delistbot (not the source tree) finds its draft templates: the wheel carries
every template, and `delistbot draft` works from a fresh virtualenv, run from another directory.

Offline: the wheel is built without build isolation (setuptools comes from the dev extras) from a
copy of the sources, and the fresh venv borrows the test environment's dependencies through a
.pth line instead of downloading them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(p.name for p in (REPO / "templates").glob("*.j2"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db*")
    for part in ("bot", "templates"):
        shutil.copytree(REPO / part, src / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, src / part)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(tmp / "dist")],
        capture_output=True, text=True, timeout=300)
    if "invalid command 'bdist_wheel'" in built.stderr:
        pytest.skip("setuptools < 70.1 here: `make test` installs the dev extras with a newer one")
    assert built.returncode == 0, built.stderr
    [found] = (tmp / "dist").glob("delistbot-*.whl")
    return found


def test_the_wheel_carries_every_draft_template(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(Path(n).name for n in names if "/share/delistbot/templates/" in n)
    assert shipped == TEMPLATES and "_base.txt.j2" in shipped


def test_an_installed_delistbot_drafts_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                                "'purelib'))"], capture_output=True, text=True,
                               check=True).stdout.strip())
    # The dependencies (jinja2, dnspython, ...) from the test environment, after the venv's own
    # site-packages, so `bot` is the installed copy, not this checkout.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "DELISTBOT_DB": str(work / "t.db")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(env_dir / "bin" / "delistbot"), *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=60)

    where = subprocess.run([str(python), "-c", "import bot; print(bot.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))  # the installed copy, not the source tree
    opened = run("open", str(REPO / "examples" / "seed-bounce.txt"))
    assert opened.returncode == 0 and opened.stdout.strip() == "DL-1", opened.stderr
    draft = run("draft", "DL-1")
    assert draft.returncode == 0, draft.stderr
    assert draft.stdout.startswith("Subject: ") and "203.0.113.44" in draft.stdout



def test_without_templates_the_error_names_every_place_looked_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.adapters import render

    monkeypatch.setattr(render, "SOURCE_TEMPLATES", tmp_path / "templates")
    monkeypatch.setattr(render, "INSTALLED_TEMPLATES", Path("share", "nothing-here"))
    with pytest.raises(render.TemplateError) as caught:
        render.Renderer().render("email_request", {})
    message = str(caught.value)
    assert str(tmp_path / "templates" / "_base.txt.j2") in message
    assert str(Path(sys.prefix) / "share" / "nothing-here" / "_base.txt.j2") in message
