/* file.c - see file.h. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc.h"
#include "err.h"

#if defined(__linux__) && defined(SYS_openat2)
#include <linux/openat2.h>
#define HAVE_OPENAT2 1
#endif

int us_file_map_fd(int fd, const char *label, uint64_t max_bytes, us_mapped *out,
                   usher_error *err)
{
    struct stat st;
    out->data = NULL;
    out->len = 0;
    if (fstat(fd, &st) != 0)
        return us_err_set(err, USHER_ERR_IO, "%s: cannot stat: %s", label, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return us_err_set(err, USHER_ERR_INVALID, "%s: not a regular file", label);
    if ((uint64_t)st.st_size > max_bytes)
        return us_err_set(err, USHER_ERR_LIMIT,
                          "%s: file is %lld bytes, over the limit of %llu bytes", label,
                          (long long)st.st_size, (unsigned long long)max_bytes);
    if (st.st_size == 0)
        return USHER_OK;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return us_err_set(err, USHER_ERR_IO, "%s: cannot map: %s", label, strerror(errno));
    out->data = p;
    out->len = (size_t)st.st_size;
    return USHER_OK;
}

int us_file_map(const char *path, uint64_t max_bytes, us_mapped *out, usher_error *err)
{
    out->data = NULL;
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return us_err_set(err, errno == ENOENT ? USHER_ERR_NOT_FOUND : USHER_ERR_IO,
                          "%s: cannot open: %s", path, strerror(errno));
    int rc = us_file_map_fd(fd, path, max_bytes, out, err);
    close(fd);
    return rc;
}

void us_file_unmap(us_mapped *m)
{
    if (m && m->data)
        munmap((void *)(uintptr_t)m->data, m->len);
    if (m) {
        m->data = NULL;
        m->len = 0;
    }
}

int us_path_check_relative(const char *rel, usher_error *err)
{
    size_t n = strlen(rel);
    if (n == 0)
        return us_err_set(err, USHER_ERR_DENIED, "empty path");
    if (n > 4096)
        return us_err_set(err, USHER_ERR_DENIED, "path longer than 4096 bytes");
    if (rel[0] == '/')
        return us_err_set(err, USHER_ERR_DENIED, "path '%s' is absolute", rel);
    if (strchr(rel, '\\'))
        return us_err_set(err, USHER_ERR_DENIED, "path '%s' contains a backslash", rel);
    const char *p = rel;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0)
            return us_err_set(err, USHER_ERR_DENIED, "path '%s' has an empty component", rel);
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return us_err_set(err, USHER_ERR_DENIED, "path '%s' has a '%.*s' component", rel,
                              (int)len, p);
        if (!e)
            break;
        p = e + 1;
        if (!*p)
            return us_err_set(err, USHER_ERR_DENIED, "path '%s' ends with '/'", rel);
    }
    return USHER_OK;
}

static int check_final(int fd, const char *rel, usher_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return us_err_set(err, USHER_ERR_IO, "'%s': cannot stat: %s", rel, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return us_err_set(err, USHER_ERR_DENIED, "'%s' is not a regular file", rel);
    if (st.st_nlink != 1)
        return us_err_set(err, USHER_ERR_DENIED, "'%s' has %lu hard links (1 required)", rel,
                          (unsigned long)st.st_nlink);
    return USHER_OK;
}

static int open_walk(int dirfd, const char *rel, usher_error *err)
{
    /* component by component, never following a symbolic link */
    char comp[256];
    int cur = dirfd, owned = 0;
    const char *p = rel;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len >= sizeof comp) {
            if (owned)
                close(cur);
            return us_err_set(err, USHER_ERR_DENIED, "path '%s' has a component over 255 bytes",
                              rel);
        }
        memcpy(comp, p, len);
        comp[len] = '\0';
        int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (e ? O_DIRECTORY : 0);
        int fd = openat(cur, comp, flags);
        int saved = errno;
        if (owned)
            close(cur);
        if (fd < 0) {
            if (saved == ELOOP || saved == ENOTDIR)
                return us_err_set(err, USHER_ERR_DENIED,
                                  "path '%s': component '%s' is a symbolic link or not a "
                                  "directory",
                                  rel, comp);
            return us_err_set(err, saved == ENOENT ? USHER_ERR_NOT_FOUND : USHER_ERR_IO,
                              "cannot open '%s': %s", rel, strerror(saved));
        }
        if (!e)
            return fd;
        cur = fd;
        owned = 1;
        p = e + 1;
    }
}

int us_file_open_beneath(int dirfd, const char *rel, usher_error *err)
{
    int rc = us_path_check_relative(rel, err);
    if (rc < 0)
        return rc;
    int fd = -1;
#ifdef HAVE_OPENAT2
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
    if (fd < 0 && errno != ENOSYS && errno != EPERM) {
        int saved = errno;
        if (saved == ELOOP || saved == EXDEV)
            return us_err_set(err, USHER_ERR_DENIED,
                              "path '%s' leaves its directory or goes through a symbolic link",
                              rel);
        return us_err_set(err, saved == ENOENT ? USHER_ERR_NOT_FOUND : USHER_ERR_IO,
                          "cannot open '%s': %s", rel, strerror(saved));
    }
#endif
    if (fd < 0) {
        fd = open_walk(dirfd, rel, err);
        if (fd < 0)
            return fd;
    }
    rc = check_final(fd, rel, err);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int us_file_open_parent_dir(const char *path, usher_error *err)
{
    const char *slash = strrchr(path, '/');
    int fd;
    if (!slash) {
        fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        size_t n = (size_t)(slash - path);
        char *dir = us_strndup(path, n == 0 ? 1 : n);
        if (!dir)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        us_free(dir);
    }
    if (fd < 0)
        return us_err_set(err, USHER_ERR_IO, "%s: cannot open its directory: %s", path,
                          strerror(errno));
    return fd;
}

bool us_file_is_special(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

int us_file_replace(const char *tmp, const char *path, usher_error *err)
{
    if (!us_file_is_special(path)) {
        if (rename(tmp, path) != 0)
            return us_err_set(err, USHER_ERR_IO, "%s: cannot rename into place: %s", path,
                              strerror(errno));
        return USHER_OK;
    }
    int in = open(tmp, O_RDONLY | O_CLOEXEC), rc = USHER_OK;
    if (in < 0)
        return us_err_set(err, USHER_ERR_IO, "%s: cannot open: %s", tmp, strerror(errno));
    us_writer w;
    if ((rc = us_writer_open(&w, path, err)) < 0) {
        close(in);
        return rc;
    }
    char buf[65536];
    ssize_t k;
    while ((k = read(in, buf, sizeof buf)) != 0) {
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = us_err_set(err, USHER_ERR_IO, "%s: read failed: %s", tmp, strerror(errno));
            break;
        }
        us_writer_write(&w, buf, (size_t)k);
    }
    close(in);
    if (rc < 0)
        us_writer_abort(&w);
    else
        rc = us_writer_commit(&w, err);
    if (rc == USHER_OK)
        unlink(tmp);
    return rc;
}

int us_writer_open(us_writer *w, const char *path, usher_error *err)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    size_t plen = strlen(path);
    w->path = us_strdup(path);
    w->tmp = us_malloc(plen + 32);
    if (!w->path || !w->tmp) {
        us_writer_abort(w);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        us_writer_abort(w);
        return us_err_set(err, USHER_ERR_IO, "%s: is a directory", path);
    }
    if (exists && !S_ISREG(st.st_mode)) { /* us_file_is_special */
        w->direct = true;
        w->fd = open(path, O_WRONLY | O_CLOEXEC);
        if (w->fd < 0) {
            int rc = us_err_set(err, USHER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
            us_writer_abort(w);
            return rc;
        }
        return USHER_OK;
    }
    snprintf(w->tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int rc = us_err_set(err, USHER_ERR_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
        us_writer_abort(w);
        return rc;
    }
    return USHER_OK;
}

int us_writer_write(us_writer *w, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    if (w->failed_errno)
        return -1;
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            w->failed_errno = k < 0 ? errno : EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
        w->written += (uint64_t)k;
    }
    return 0;
}

void us_writer_abort(us_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
        if (!w->direct)
            unlink(w->tmp);
    }
    us_free(w->path);
    us_free(w->tmp);
    w->path = w->tmp = NULL;
}

int us_writer_commit(us_writer *w, usher_error *err)
{
    int rc = USHER_OK;
    if (w->failed_errno)
        rc = us_err_set(err, USHER_ERR_IO, "%s: write failed: %s", w->path,
                        strerror(w->failed_errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0 && rc == USHER_OK)
        rc = us_err_set(err, USHER_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
    if (rc == USHER_OK && !w->direct && rename(w->tmp, w->path) != 0)
        rc = us_err_set(err, USHER_ERR_IO, "%s: cannot rename into place: %s", w->path,
                        strerror(errno));
    if (rc != USHER_OK && !w->direct)
        unlink(w->tmp);
    us_free(w->path);
    us_free(w->tmp);
    w->path = w->tmp = NULL;
    return rc;
}

int us_file_write_atomic(const char *path, const void *buf, size_t n, usher_error *err)
{
    us_writer w;
    int rc = us_writer_open(&w, path, err);
    if (rc < 0)
        return rc;
    us_writer_write(&w, buf, n);
    return us_writer_commit(&w, err);
}
