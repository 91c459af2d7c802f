"""Only the optional compiled pre-filter lives here; every other setting is in pyproject.toml.

``optional=True``: where no C compiler works, the build warns and goes on without the extension,
and `otel_impact.proto.prefilter` falls back to pure Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "otel_impact.proto._prefilter",
            sources=["proto/_prefilter.c"],
            optional=True,
        )
    ]
)
