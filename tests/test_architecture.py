"""The layering written in pyproject's import-linter contracts holds for the code as it is."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_operator_folder_is_not_an_importable_operator_package() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()
    import operator

    assert operator.__file__ is None or "site-packages" not in operator.__file__
    assert Path(operator.__file__ or "").parent != ROOT / "operator"
