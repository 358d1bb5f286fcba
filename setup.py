"""Build hook: the wheel carries the bundled models (pyproject.toml holds everything else).

The models' home is the repository's top-level ``registry/models/``, outside the package, where package data
cannot reach. ``build_py`` copies the ``.onnx`` files and their cards into the build tree as
``atacdenoise/registry/models/`` (the source tree is left alone), where ``atacdenoise.bundled`` finds
them. Editable installs skip the copy: they read ``registry/models/`` in place.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MODELS = Path(__file__).resolve().parent / "registry" / "models"


class BuildPyWithModels(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "atacdenoise" / "registry" / "models"
        self.mkpath(str(target))
        for source in sorted(MODELS.glob("*.onnx")) + sorted(MODELS.glob("*.md")):
            self.copy_file(str(source), str(target / source.name))


setup(cmdclass={"build_py": BuildPyWithModels})
