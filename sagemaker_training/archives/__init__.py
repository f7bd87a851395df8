"""Tarballs: extraction as a safety policy, packing, and replacing a directory all at once.

| module | concern |
|---|---|
| ``tarball.py`` | extraction of a tarball into a directory, packing a directory |
| ``policy.py`` | which tar members extraction accepts: names, links, kinds, depth, the size limit |
| ``staging.py`` | replacing a directory all at once (build beside it, swap in; never empty a mount) |
"""
