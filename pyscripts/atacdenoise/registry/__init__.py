"""Model registry: an MLflow tracking server, search logging, ONNX export and registration.

- :mod:`.server`: start ``mlflow server`` (SQLite or PostgreSQL backend, local or S3 artifacts);
- :mod:`.tracking`: one MLflow run per search, one nested run per child;
- :mod:`.onnx_export`: the ONNX file with its contract, checked against PyTorch;
- :mod:`.register`: register, promote by alias, compare champion and challenger;
- :mod:`.bundled`: where the models shipped with the package lie (source checkout or wheel).

Only :mod:`.onnx_export` and :mod:`.register` need torch; ``denoise`` imports only :mod:`.bundled` from here.
"""
