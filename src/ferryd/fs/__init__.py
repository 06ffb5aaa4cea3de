"""The account filesystem: jailed, permission-checked file access shared by every protocol."""

from ferryd.fs.account_fs import AccountFS
from ferryd.fs.errors import FsError
from ferryd.fs.reading import ReadHandle
from ferryd.fs.sweep import sweep_stale_uploads
from ferryd.fs.uploads import WriteHandle

__all__ = ["AccountFS", "FsError", "ReadHandle", "WriteHandle", "sweep_stale_uploads"]
