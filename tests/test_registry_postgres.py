"""The registry on a real PostgreSQL backend (Debian's postgresql, started here on 127.0.0.1).

SQLite is the default and is covered by test_registry.py; this checks that
`--backend postgresql://...` works end to end: server up, a run logged, a model
registered and an alias set, all read back from PostgreSQL.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from atacdenoise.registry.server import free_port, start_server

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _as_postgres(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True, check=True)


@pytest.fixture(scope="module")
def postgres_uri():
    if not PG_BIN or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install \"psycopg[binary]\")")
    # Not under pytest's tmp folder: that one is private to root, and PostgreSQL runs as 'postgres'.
    root = Path(tempfile.mkdtemp(prefix="atacdenoise-pg-"))
    data = root / "data"
    data.mkdir()
    for path in (root, data):
        shutil.chown(path, "postgres", "postgres")
    pg_ctl = os.path.join(PG_BIN[-1], "pg_ctl")
    _as_postgres(os.path.join(PG_BIN[-1], "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    port = free_port("127.0.0.1")
    _as_postgres(pg_ctl, "-D", str(data), "-w", "-l", str(data / "server.log"), "-o",
                 f"-p {port} -c listen_addresses=127.0.0.1 -k {data}", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres(pg_ctl, "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_mlflow_server_on_postgresql_backend(postgres_uri, tmp_path):
    from mlflow import MlflowClient

    with start_server(tmp_path / "mlflow", backend=postgres_uri) as server:
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        experiment = client.create_experiment("postgres-check")
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "best_val_loss", 0.5, step=3)
        client.create_registered_model("atac-denoiser")
        version = client.create_model_version("atac-denoiser", source=f"runs:/{run.info.run_id}/model",
                                              run_id=run.info.run_id)
        client.set_registered_model_alias("atac-denoiser", "champion", version.version)

        assert client.get_metric_history(run.info.run_id, "best_val_loss")[0].value == 0.5
        assert client.get_model_version_by_alias("atac-denoiser", "champion").version == version.version
    # the rows live in PostgreSQL, not in a SQLite file beside the server
    assert not list((tmp_path / "mlflow").glob("*.db"))
    import psycopg

    with psycopg.connect(postgres_uri) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT name FROM registered_models")
        assert ("atac-denoiser",) in cursor.fetchall()
