"""S3 and ``file://`` locations: the only layer that touches them.

| module | concern |
|---|---|
| ``uri.py`` | locations, one rule: S3 and ``file://`` URIs parsed, prefix or object, joining, the artifact path |
| ``s3_client.py`` | the S3 client from the environment (endpoint, region, retries), boto3's errors as ours |
| ``transfer.py`` | list, download, upload, sync; one rule refusing keys that land outside their destination |
| ``mirror.py`` | a directory kept in step with an S3 prefix: restore, periodic sync, last sync |
"""
