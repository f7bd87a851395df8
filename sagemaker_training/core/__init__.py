"""The shared basics every layer above uses; nothing here starts a process or touches S3.

| module | concern |
|---|---|
| ``values.py`` | value classes (``Value``): a small stand-in for ``dataclasses`` on the supervisor's start-up path |
| ``logs.py`` | the supervisor's logging: one format, secrets redacted, without importing ``logging`` |
| ``settings.py`` | the one reader of the ``SAGEMAKER_*`` numeric knobs |
| ``recordio.py`` | MXNet's RecordIO framing, written and read in bounded memory (Pipe mode's ``RecordIO`` wrapper) |
| ``hyperparameters.py`` | decoding both client encodings, splitting, rendering |
| ``guarded_json.py`` | the one JSON reader for outside input (nesting bounded) |
"""
