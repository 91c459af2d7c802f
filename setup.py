"""Only the optional compiled extensions live here; every other setting is in pyproject.toml.

``optional=True``: where no C compiler works, the build warns and goes on without them, and
`otel_impact.proto.prefilter` and `otel_impact.processors.intake.otlp_json` fall back to pure
Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "otel_impact.proto._prefilter",
            sources=["proto/_prefilter.c"],
            optional=True,
        ),
        Extension(
            "otel_impact.processors.intake._otlp_json",
            sources=["processors/intake/_otlp_json.c"],
            depends=["processors/intake/_otlp_json_read.h"],  # rebuilt when it changes, shipped in the sdist
            optional=True,
        ),
    ]
)
