"""The package's version (read by the build through pyproject.toml, written into the files it makes, e.g. DICOM SEG)."""

__version__ = "0.1.0"
