"""Packaging for tf_resattn."""

import os
import pathlib
import runpy

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


class BuildOpLibrary(build_ext):
    """Builds `tf_resattn/ops/_lsh_sort_ops.so` with `custom_ops/build.py` (TensorFlow's compiler flags).

    CPU kernels always; CUDA kernels too when `TF_RESATTN_BUILD_CUDA=1`. If the
    build fails the package still installs and uses its pure-TensorFlow path,
    unless `TF_RESATTN_REQUIRE_OPS=1` makes the failure fatal.
    """

    def build_extension(self, ext):
        builder = runpy.run_path(str(ROOT / "custom_ops" / "build.py"))
        cuda = os.environ.get("TF_RESATTN_BUILD_CUDA") == "1"
        try:
            builder["build_library"](self.get_ext_fullpath(ext.name), cuda=cuda)
        except builder["BuildError"] as error:
            if os.environ.get("TF_RESATTN_REQUIRE_OPS") == "1":
                raise
            print(f"WARNING: compiled op library not built, the pure-TensorFlow path will be used: {error}")

    def get_ext_filename(self, ext_name):
        return os.path.join(*ext_name.split(".")) + ".so"


setup(
    name="tf_resattn",
    version="0.1.0",
    description="Residual Attention U-Net (ResNeXt encoder, LSH-attention decoder) for COVID-19 CT segmentation",
    packages=find_packages(include=["tf_resattn", "tf_resattn.*"]),
    ext_modules=[Extension("tf_resattn.ops._lsh_sort_ops", sources=[])],
    cmdclass={"build_ext": BuildOpLibrary},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.12",
        "numpy",
        "opencv-python-headless",
        "nibabel",
        "scikit-learn",
        "keras-tuner",
        "tensorboard",
        "ai-edge-litert",
        "matplotlib",
        "pydicom",
        "pyyaml",
    ],
    extras_require={
        "test": ["pytest"],
        "bench": ["torch==2.13.0", "reformer-pytorch"],
    },
    entry_points={
        "console_scripts": [
            "tf-resattn-cv=tf_resattn.training.cli:main",
            "tf-resattn-predict=tf_resattn.export.predict_cli:main",
            "tf-resattn-export=tf_resattn.export.export_cli:main",
            "tf-resattn-tune=tf_resattn.tuning.cli:main",
        ]
    },
)
