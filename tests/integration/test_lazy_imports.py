"""Importing the adapters must not import the Azure SDKs (Functions cold start): they load on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "azure.mgmt",
    "azure.storage",
    "azure.data",
    "azure.keyvault",
    "azure.identity",
    "azure.core",
    "azure.containerregistry",
)


def test_adapter_modules_import_no_azure_sdk() -> None:
    code = (
        "import sys\n"
        "import transfer.adapters.arm, transfer.adapters.blobs, transfer.adapters.credentials\n"
        "import transfer.adapters.keyvault, transfer.adapters.retry\n"
        "import transfer.adapters.sdk_errors, transfer.adapters.registry\n"
        "import transfer.adapters.state, tests.fakes\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_constructing_adapters_loads_no_sdk_until_first_use() -> None:
    code = (
        "import sys\n"
        "from transfer.domain.settings import StorageConnection\n"
        "from transfer.adapters.state import TableStateStore\n"
        "from transfer.adapters.blobs import AzureBlobStore, AzureBlobCopier, AzureBlobWriter\n"
        "from transfer.adapters.keyvault import KeyVaultSecretReader\n"
        "from transfer.adapters.registry import AzureRegistry\n"
        "conn = StorageConnection('S', connection_string='UseDevelopmentStorage=true')\n"
        "TableStateStore(conn); AzureBlobStore(conn, 'transfer')\n"
        "AzureBlobCopier('https://a.blob.core.windows.net/c', sas_token='sv=1&sig=x')\n"
        "AzureBlobWriter(None)\n"
        "KeyVaultSecretReader(object())\n"
        "AzureRegistry('https://r.azurecr.io', object(), audience='https://containerregistry.azure.net')\n"
        "sdks = ('azure.storage', 'azure.data', 'azure.keyvault', 'azure.containerregistry')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(sdks))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_function_app_loads_no_sdk_nor_telemetry_without_a_connection_string() -> None:
    """Cold start: function_app imports the Functions library and the blob binding (which brings
    azure.identity and azure.storage.blob), nothing the service builds later, and the Azure Monitor exporter
    only where APPLICATIONINSIGHTS_CONNECTION_STRING is set."""
    code = (
        "import os, sys\n"
        "os.environ.pop('APPLICATIONINSIGHTS_CONNECTION_STRING', None)\n"
        "import function_app\n"
        "heavy = ('azure.mgmt', 'azure.data', 'azure.keyvault', 'azure.containerregistry', 'azure.monitor',\n"
        "         'opentelemetry')\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
