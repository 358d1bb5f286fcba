"""Build hook: the wheel carries the bundled models and the samplesheet schema (pyproject.toml holds the rest).

Their home is the repository's top level, outside the package, where package data cannot reach:
``registry/models/`` (the ``.onnx`` files and their cards) and ``assets/`` (``schema_input.json``, which
main.nf reads too). ``build_py`` copies them into the build tree under the same paths inside ``atacdenoise/``
(the source tree is left alone), where ``atacdenoise.bundled`` finds them. Editable installs skip the copy:
they read the repository's folders in place.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"registry/models": ("*.onnx", "*.md"), "assets": ("*.json",)}  # folder: the patterns the wheel carries


class BuildPyWithShippedFiles(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        for folder, patterns in SHIPPED.items():
            target = Path(self.build_lib) / "atacdenoise" / folder
            self.mkpath(str(target))
            for source in (path for pattern in patterns for path in sorted((ROOT / folder).glob(pattern))):
                self.copy_file(str(source), str(target / source.name))


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
