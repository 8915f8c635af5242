"""The package's version (read by setup.py, written into the files it makes, e.g. DICOM SEG)."""

__version__ = "0.1.0"
