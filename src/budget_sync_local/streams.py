"""Read a table's DynamoDB stream and shape its records as Lambda delivers them.

The records come from the real DynamoDB Streams API (moto's here); only the envelope
that Lambda adds (``eventSourceARN``, epoch ``ApproximateCreationDateTime``) is added.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient


def lambda_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """One GetRecords record -> one record of Lambda's DynamoDB event."""
    stream = dict(raw["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": raw["awsRegion"],
        "dynamodb": stream,
        "eventSourceARN": stream_arn,
    }


def lambda_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def read_from_start(client: DynamoDBStreamsClient, stream_arn: str) -> list[dict[str, Any]]:
    """Every record now in the stream, from TRIM_HORIZON, shard by shard, in order."""
    records: list[dict[str, Any]] = []
    shards = client.describe_stream(StreamArn=stream_arn)["StreamDescription"].get("Shards", [])
    for shard in shards:
        iterator: str | None = client.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        ).get("ShardIterator")
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=1000)
            batch = page.get("Records", [])
            records.extend(lambda_record(dict(r), stream_arn) for r in batch)
            iterator = page.get("NextShardIterator") if batch else None
    return records
