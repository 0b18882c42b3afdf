"""Package for local use and for Dataflow workers (--setup_file ./setup.py).

Exact, tested versions are pinned in constraints.txt; the ranges here are what
the code supports.
"""

from setuptools import find_packages, setup

setup(
    name="lstm-text-pipeline",
    version="0.1.0",
    description="Batch pipelines for LSTM text models: Beam ingest -> Keras LSTM -> Beam bulk scoring and generation.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(
        include=[
            "pipelines",
            "pipelines.*",
            "lstm_model",
            "lstm_model.*",
            "schemas",
            "schemas.*",
            "textprep",
            "textprep.*",
        ]
    ),
    package_data={"schemas": ["expectations/*.json"]},
    install_requires=[
        "apache-beam[gcp]>=2.77,<3",
        "tensorflow>=2.21,<2.22",
        "tensorflow-text>=2.21,<2.22",
        "tensorboard>=2.21,<2.22",
        "pyarrow>=20",
        "great-expectations>=1.24,<2",
        "pandas>=2.2",
        "scikit-learn>=1.5",
        "matplotlib>=3.9",
        "sacrebleu>=2.4,<3",
        "charset-normalizer>=3.3",
    ],
    extras_require={"dev": ["pytest>=8", "ruff>=0.8", "duckdb>=1.1", "hypothesis>=6.100"]},
    entry_points={
        "console_scripts": [
            "lstm-ingest=pipelines.ingest:main",
            "lstm-train=lstm_model.train:main",
            "lstm-score=pipelines.score:main",
            "lstm-generate=pipelines.generate:main",
        ]
    },
)
