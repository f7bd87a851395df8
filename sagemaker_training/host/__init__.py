"""What one host of a job needs before and around the user's code (below the framework runners).

| module | concern |
|---|---|
| ``submit_dir.py`` | ``sagemaker_submit_directory`` into the code dir (S3, ``file://``, tarball or directory) |
| ``entry_point.py`` | requirements, how an entry point runs, what it sees |
| ``distributed.py`` | host resolution, ports, TF_CONFIG and DMLC_* builders |
"""
