import os
import uuid

import pytest

from emulator import azurite as azurite_process

pytestmark = pytest.mark.azurite


def test_blob_queue_and_table_answer(azurite: azurite_process.Azurite) -> None:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    name = f"t{uuid.uuid4().hex[:12]}"
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    blobs.create_container(name).upload_blob("hello", b"world")
    assert blobs.get_container_client(name).download_blob("hello").readall() == b"world"

    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    tables.create_table(name).create_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})
    assert tables.get_table_client(name).get_entity("p", "r")["v"] == 1

    queues = QueueServiceClient.from_connection_string(azurite.connection_string)
    queues.create_queue(name).send_message("m")
    assert queues.get_queue_client(name).get_queue_properties().approximate_message_count == 1


def test_stop_ends_the_process() -> None:
    server = azurite_process.start()
    azurite_process.stop(server)
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
