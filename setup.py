"""The build of tf_resattn that pyproject.toml cannot declare: the compiled op library and the released models."""

import os
import pathlib
import runpy

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError

ROOT = pathlib.Path(__file__).resolve().parent
BUILD_ERROR_NAME = "_lsh_sort_ops.build-error.txt"
JAX_FFI_EXTENSION = "tf_resattn.ops._lsh_jax_ffi"


class BuildOpLibrary(build_ext):
    """Builds `tf_resattn/ops/_lsh_sort_ops.so` with `custom_ops/build.py` (TensorFlow's compiler flags), and
    beside it `_lsh_jax_ffi.so`, the same kernels as XLA FFI targets for the JAX backend.

    TensorFlow comes from `[build-system] requires` (pyproject.toml), so the
    build needs nothing installed beforehand. CPU kernels always; CUDA kernels
    too when `TF_RESATTN_BUILD_CUDA=1`. If the build fails, the package still
    installs without the library and uses its pure-TensorFlow path: the reason
    is written beside where the library would be (`BUILD_ERROR_NAME`), and the
    loader's one warning repeats it. `TF_RESATTN_REQUIRE_OPS=1` makes the
    failure fatal.
    """

    def build_extension(self, ext):
        builder = runpy.run_path(str(ROOT / "custom_ops" / "build.py"))
        library = pathlib.Path(self.get_ext_fullpath(ext.name))
        if ext.name == JAX_FFI_EXTENSION:
            # The same CPU kernels as XLA FFI custom calls for Keras's JAX backend, where jaxlib's headers are
            # (pyproject.toml's build requirements); skipped with the reason as a warning otherwise.
            if builder["build_jax_ffi_library"](library) is None:
                raise CompileError("JAX FFI library not built; under the JAX backend the layers use keras.ops")
            return
        reason_files = [library.with_name(BUILD_ERROR_NAME)]
        if self.editable_mode or self.inplace:
            reason_files.append(ROOT / "tf_resattn" / "ops" / BUILD_ERROR_NAME)
        for path in reason_files:
            path.unlink(missing_ok=True)
        cuda = os.environ.get("TF_RESATTN_BUILD_CUDA") == "1"
        try:
            builder["build_library"](library, cuda=cuda)
        except builder["BuildError"] as error:
            if os.environ.get("TF_RESATTN_REQUIRE_OPS") == "1":
                raise
            library.unlink(missing_ok=True)  # a library left by an earlier build must not be packaged
            for path in reason_files:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{error}\n")
            # An optional extension's CompileError is a warning to setuptools: nothing is copied or packaged.
            raise CompileError(
                f"compiled op library not built, the pure-TensorFlow path will be used: {error}"
            ) from None

    def get_ext_filename(self, ext_name):
        return os.path.join(*ext_name.split(".")) + ".so"


# Metadata, dependencies and console scripts are in pyproject.toml; here what it cannot say: the op library's
# build and the released models of saved_models/, installed as tf_resattn/saved_models/ (tf_resattn.from_pretrained).
setup(
    packages=find_packages(include=["tf_resattn", "tf_resattn.*", "tf_resattn_process"]) + ["tf_resattn.saved_models"],
    package_dir={"tf_resattn.saved_models": "saved_models"},
    package_data={"tf_resattn.saved_models": ["*/model.keras", "*/*.json", "*/*.md", "*/*.png", "*/samples/*"]},
    ext_modules=[
        Extension("tf_resattn.ops._lsh_sort_ops", sources=[], optional=True),
        Extension(JAX_FFI_EXTENSION, sources=[], optional=True),
    ],
    cmdclass={"build_ext": BuildOpLibrary},
)
