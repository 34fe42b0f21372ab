/* ipc.c - see ipc.h: message framing and checks shared by the server and the worker. */
#include "runtime/ipc.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/err.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the worker protocol copies little-endian structs: big-endian hosts are not supported"
#endif

/* The wire layout is the struct layout: pin every size and the offsets that could pad. */
_Static_assert(sizeof(rt_ipc_hdr) == 16, "rt_ipc_hdr is 16 bytes");
_Static_assert(sizeof(rt_ipc_tensor) == 288, "rt_ipc_tensor is 288 bytes");
_Static_assert(offsetof(rt_ipc_tensor, dim) == 144, "rt_ipc_tensor.dim at 144");
_Static_assert(offsetof(rt_ipc_tensor, offset) == 272, "rt_ipc_tensor.offset at 272");
_Static_assert(sizeof(rt_ipc_hello) == 544, "rt_ipc_hello is 544 bytes");
_Static_assert(sizeof(rt_ipc_run) == 32, "rt_ipc_run is 32 bytes");
_Static_assert(sizeof(rt_ipc_done) == 544, "rt_ipc_done is 544 bytes");
_Static_assert(offsetof(rt_ipc_done, msg) == 32, "rt_ipc_done.msg at 32");
_Static_assert(sizeof(rt_ipc_ping) == 24, "rt_ipc_ping is 24 bytes");
_Static_assert(sizeof(rt_ipc_pong) == 40, "rt_ipc_pong is 40 bytes");
_Static_assert(RT_IPC_TEXT == USHER_ERROR_MAX, "an usher_error message fits a message's text");
/* the largest message, a HELLO of RT_MAX_IO inputs and outputs, fits one datagram */
_Static_assert(sizeof(rt_ipc_hello) + 2 * RT_MAX_IO * sizeof(rt_ipc_tensor) <= RT_IPC_MAX_MSG,
               "a full HELLO fits RT_IPC_MAX_MSG");
/* dim[] is part of the wire format: a new rank limit is a new protocol version */
_Static_assert(US_TENSOR_MAX_RANK == 16, "rt_ipc_tensor carries 16 dims");

size_t rt_ipc_fixed_size(uint16_t type)
{
    switch (type) {
    case RT_IPC_HELLO: return sizeof(rt_ipc_hello);
    case RT_IPC_RUN: return sizeof(rt_ipc_run);
    case RT_IPC_DONE: return sizeof(rt_ipc_done);
    case RT_IPC_PING: return sizeof(rt_ipc_ping);
    case RT_IPC_PONG: return sizeof(rt_ipc_pong);
    case RT_IPC_QUIT: return sizeof(rt_ipc_hdr);
    default: return 0;
    }
}

static const char *type_name(uint16_t type)
{
    static const char *const names[] = {"?", "HELLO", "RUN", "DONE", "PING", "PONG", "QUIT"};
    return type < sizeof names / sizeof names[0] ? names[type] : "?";
}

void rt_ipc_hdr_init(rt_ipc_hdr *h, rt_ipc_type type, size_t size)
{
    memset(h, 0, sizeof *h);
    h->magic = RT_IPC_MAGIC;
    h->version = RT_IPC_VERSION;
    h->type = (uint16_t)type;
    h->size = (uint32_t)size; /* callers build messages of at most RT_IPC_MAX_MSG */
}

int rt_ipc_check(const void *msg, size_t n, rt_ipc_hdr *h, usher_error *err)
{
    if (n < sizeof *h)
        return us_err_set(err, USHER_ERR_PARSE, "message of %zu bytes: shorter than its header",
                          n);
    memcpy(h, msg, sizeof *h);
    if (h->magic != RT_IPC_MAGIC || h->version != RT_IPC_VERSION)
        return us_err_set(err, USHER_ERR_PARSE,
                          "message with magic 0x%08x version %u: not this build's worker "
                          "protocol (0x%08x version %u)",
                          (unsigned)h->magic, (unsigned)h->version, (unsigned)RT_IPC_MAGIC,
                          (unsigned)RT_IPC_VERSION);
    size_t fixed = rt_ipc_fixed_size(h->type);
    if (!fixed)
        return us_err_set(err, USHER_ERR_PARSE, "message of unknown type %u", (unsigned)h->type);
    if (h->size != n || n < fixed)
        return us_err_set(err, USHER_ERR_PARSE, "%s of %zu bytes says %u (at least %zu)",
                          type_name(h->type), n, (unsigned)h->size, fixed);
    uint64_t count = 0;
    if (h->type == RT_IPC_HELLO) {
        rt_ipc_hello m;
        memcpy(&m, msg, sizeof m);
        if (m.n_in > RT_MAX_IO || m.n_out > RT_MAX_IO)
            return us_err_set(err, USHER_ERR_PARSE, "HELLO with %u inputs and %u outputs (at "
                              "most %d each)", (unsigned)m.n_in, (unsigned)m.n_out, RT_MAX_IO);
        count = (uint64_t)m.n_in + m.n_out;
    } else if (h->type == RT_IPC_RUN) {
        rt_ipc_run m;
        memcpy(&m, msg, sizeof m);
        if (m.n_in > RT_MAX_IO)
            return us_err_set(err, USHER_ERR_PARSE, "RUN with %u inputs (at most %d)",
                              (unsigned)m.n_in, RT_MAX_IO);
        count = m.n_in;
    } else if (h->type == RT_IPC_DONE) {
        rt_ipc_done m;
        memcpy(&m, msg, sizeof m);
        if (m.n_out > RT_MAX_IO)
            return us_err_set(err, USHER_ERR_PARSE, "DONE with %u outputs (at most %d)",
                              (unsigned)m.n_out, RT_MAX_IO);
        count = m.n_out;
    }
    /* counts are <= 2 * RT_MAX_IO: no overflow possible */
    if ((uint64_t)n != fixed + count * sizeof(rt_ipc_tensor))
        return us_err_set(err, USHER_ERR_PARSE, "%s of %zu bytes for %llu tensors (%llu expected)",
                          type_name(h->type), n, (unsigned long long)count,
                          (unsigned long long)(fixed + count * sizeof(rt_ipc_tensor)));
    return USHER_OK;
}

void rt_ipc_tensor_get(const void *msg, size_t fixed, size_t i, rt_ipc_tensor *t)
{
    memcpy(t, (const uint8_t *)msg + fixed + i * sizeof *t, sizeof *t);
}

void rt_ipc_tensor_put(void *msg, size_t fixed, size_t i, const rt_ipc_tensor *t)
{
    memcpy((uint8_t *)msg + fixed + i * sizeof *t, t, sizeof *t);
}

int rt_ipc_tensor_check(const rt_ipc_tensor *t, bool declared, const uint8_t *base,
                        uint64_t region_bytes, const char *what, usher_error *err)
{
    if (!memchr(t->name, '\0', sizeof t->name))
        return us_err_set(err, USHER_ERR_PARSE, "%s: name not terminated", what);
    if (t->dtype == US_DT_INVALID || t->dtype >= US_DT_COUNT)
        return us_err_set(err, USHER_ERR_PARSE, "%s '%s': data type %u out of range", what,
                          t->name, (unsigned)t->dtype);
    if (t->rank < 0 || t->rank > US_TENSOR_MAX_RANK)
        return us_err_set(err, USHER_ERR_PARSE, "%s '%s': rank %d out of range", what, t->name,
                          (int)t->rank);
    for (int d = 0; d < t->rank; d++)
        if (t->dim[d] < (declared ? -1 : 0))
            return us_err_set(err, USHER_ERR_PARSE, "%s '%s': dim %d is %lld", what, t->name, d,
                              (long long)t->dim[d]);
    if (declared)
        return USHER_OK;
    if (t->offset > region_bytes || t->bytes > region_bytes - t->offset)
        return us_err_set(err, USHER_ERR_PARSE,
                          "%s '%s': bytes [%llu, +%llu) outside the shared region of %llu", what,
                          t->name, (unsigned long long)t->offset, (unsigned long long)t->bytes,
                          (unsigned long long)region_bytes);
    us_shape shape;
    memset(&shape, 0, sizeof shape);
    shape.rank = t->rank;
    memcpy(shape.dim, t->dim, sizeof shape.dim);
    /* the tensor functions name it in their messages: "output 0 'y': ..." */
    char label[US_TENSOR_NAME_MAX + 64];
    snprintf(label, sizeof label, "%s '%s'", what, t->name);
    usher_error e; /* their codes are INVALID or LIMIT; a bad message is PARSE */
    if (t->dtype == US_DT_BYTES) {
        uint64_t elements;
        int rc = us_shape_elements(&shape, label, &elements, &e);
        if (rc == 0 && base)
            rc = us_bytes_check(base + t->offset, t->bytes, elements, label, &e);
        return rc ? us_err_set(err, USHER_ERR_PARSE, "%s", e.msg) : USHER_OK;
    }
    uint64_t want;
    if (us_tensor_nbytes((us_dtype)t->dtype, &shape, label, &want, &e) != 0)
        return us_err_set(err, USHER_ERR_PARSE, "%s", e.msg);
    if (want != t->bytes)
        return us_err_set(err, USHER_ERR_PARSE, "%s: %llu bytes for a shape of %llu bytes", label,
                          (unsigned long long)t->bytes, (unsigned long long)want);
    return USHER_OK;
}

void rt_ipc_tensor_from(rt_ipc_tensor *t, uint32_t index, const char *name, us_dtype dtype,
                        const us_shape *shape, uint64_t offset, uint64_t bytes)
{
    memset(t, 0, sizeof *t);
    rt_ipc_text(t->name, sizeof t->name, name);
    t->index = index;
    t->dtype = (uint32_t)dtype;
    int rank = shape->rank;
    if (rank < 0 || rank > US_TENSOR_MAX_RANK)
        rank = -1; /* sent as is: the reader's check refuses it, which is where it is reported */
    t->rank = rank;
    for (int d = 0; d < rank; d++)
        t->dim[d] = shape->dim[d];
    t->offset = offset;
    t->bytes = bytes;
}

void rt_ipc_tensor_to(const rt_ipc_tensor *t, us_tensor *out)
{
    memset(out->name, 0, sizeof out->name);
    rt_ipc_text(out->name, sizeof out->name, t->name);
    out->dtype = (us_dtype)t->dtype;
    memset(&out->shape, 0, sizeof out->shape);
    out->shape.rank = t->rank;
    memcpy(out->shape.dim, t->dim, sizeof out->shape.dim);
    out->bytes = t->bytes;
}

bool rt_ipc_place(uint64_t *cursor, uint64_t bytes, uint64_t region_bytes, uint64_t *off)
{
    uint64_t o, end;
    if (__builtin_add_overflow(*cursor, (uint64_t)(RT_IPC_ALIGN - 1), &o))
        return false;
    o &= ~(uint64_t)(RT_IPC_ALIGN - 1);
    if (__builtin_add_overflow(o, bytes, &end) || end > region_bytes)
        return false;
    *off = o;
    *cursor = end;
    return true;
}

void rt_ipc_text(char *dst, size_t cap, const char *src)
{
    if (!cap)
        return;
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

int rt_ipc_send(int fd, const void *msg, size_t n, bool dontwait)
{
    for (;;) {
        ssize_t r = send(fd, msg, n, MSG_NOSIGNAL | (dontwait ? MSG_DONTWAIT : 0));
        if (r == (ssize_t)n)
            return 0;
        if (r >= 0)
            return -EMSGSIZE; /* SOCK_SEQPACKET sends whole datagrams: cannot happen */
        if (errno != EINTR)
            return -errno;
    }
}

ssize_t rt_ipc_recv(int fd, void *buf, size_t cap, bool dontwait)
{
    for (;;) {
        struct iovec iov = {.iov_base = buf, .iov_len = cap};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | (dontwait ? MSG_DONTWAIT : 0));
        if (r >= 0) {
            /* a datagram cut to cap is dropped whole: never parse half of one */
            if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
                return -EMSGSIZE;
            return r;
        }
        if (errno != EINTR)
            return -errno;
    }
}

uint64_t rt_ipc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
