# WARNING: this file is generated from test_raquel_compat_async.py by tools/async_to_sync.py.
# DO NOT EDIT: change test_raquel_compat_async.py and run `python tools/async_to_sync.py`.

