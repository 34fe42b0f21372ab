/*
 * file.h - reading untrusted files safely (layer 1).
 *
 * us_file_map maps a whole regular file read-only, refusing anything that
 * is not a regular file or is larger than a limit. Mapped pages are shared
 * with the page cache, so a 500 MB model costs no private copy.
 *
 * us_file_open_beneath opens a path given *relative to a directory* and
 * guarantees the result lies inside it: the path must be relative, without
 * "." / ".." components, empty components or NUL bytes, and no component
 * may be a symbolic link (openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS
 * where the kernel has it; otherwise a component-by-component walk with
 * O_NOFOLLOW). The final file must be a regular file with one hard link.
 * This is what ONNX external data needs (see docs/internals/onnx.md).
 */
#ifndef US_FILE_H
#define US_FILE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "usher/status.h"

typedef struct us_mapped {
    const unsigned char *data; /* NULL when len == 0 */
    size_t len;
} us_mapped;

/* Map `path`; the file must be a regular file of at most max_bytes bytes. */
int us_file_map(const char *path, uint64_t max_bytes, us_mapped *out, usher_error *err);
/* Map an already open fd (not closed by this call). */
int us_file_map_fd(int fd, const char *label, uint64_t max_bytes, us_mapped *out,
                   usher_error *err);
void us_file_unmap(us_mapped *m);

/* Check a relative path against the rules above without touching the disk. */
int us_path_check_relative(const char *rel, usher_error *err);
/* Open rel beneath dirfd for reading; returns fd >= 0 or a negative status. */
int us_file_open_beneath(int dirfd, const char *rel, usher_error *err);
/* Open the directory holding `path` (for external data); fd or status. */
int us_file_open_parent_dir(const char *path, usher_error *err);

/*
 * Streaming writer: bytes go to "<path>.tmp.<pid>", which replaces path only
 * on us_writer_commit, so a failed or interrupted write never leaves a
 * half-written file under the final name. A path that exists and is not a
 * regular file (/dev/null, /dev/stdout, a FIFO) is written directly: renaming
 * over it would replace a device node with a file (as root, `usher plan -o
 * /dev/null` did). A directory is refused.
 */
typedef struct us_writer {
    int fd;
    char *path, *tmp;
    int failed_errno; /* first write error, 0 if none */
    uint64_t written;
    bool direct; /* writing into a special file: no temporary, no rename */
} us_writer;

int us_writer_open(us_writer *w, const char *path, usher_error *err);
/* Errors are remembered and reported by commit; returns 0 or -1. */
int us_writer_write(us_writer *w, const void *p, size_t n);
/* Close, check, rename into place. Frees the writer's resources either way. */
int us_writer_commit(us_writer *w, usher_error *err);
/* Drop the temp file. NULL / already finished writers are fine. */
void us_writer_abort(us_writer *w);

/* path exists and is neither a regular file nor a directory (a device, a FIFO, a
 * socket): output goes into it as it is, never renamed over it */
bool us_file_is_special(const char *path);
/* The finished temporary tmp becomes path: renamed over it, or, when path is
 * special (us_file_is_special), copied into it and removed. */
int us_file_replace(const char *tmp, const char *path, usher_error *err);

/* Write all of buf to path through a us_writer. */
int us_file_write_atomic(const char *path, const void *buf, size_t n, usher_error *err);

#endif
