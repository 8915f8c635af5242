"""Packaging for tf_resattn."""

from setuptools import find_packages, setup

setup(
    name="tf_resattn",
    version="0.1.0",
    description="Residual Attention U-Net (ResNeXt encoder, LSH-attention decoder) for COVID-19 CT segmentation",
    packages=find_packages(include=["tf_resattn", "tf_resattn.*"]),
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
