/*
 * ipc.h - the messages between the server and a worker process (private to
 * src/runtime, layer 7; prefix rt_ipc_).
 *
 * Transport: one AF_UNIX SOCK_SEQPACKET socketpair per worker for control
 * messages (one message per datagram, at most RT_IPC_MAX_MSG bytes), and one
 * memfd of shm_bytes mapped MAP_SHARED by both sides for tensor bytes.
 * Tensors never travel through the socket: a RUN or DONE names where they
 * lie in the region (offset, bytes).
 *
 * Every message is a fixed-size little-endian struct (fields of explicit
 * width, no implicit padding: the static_asserts in ipc.c pin every size)
 * starting with rt_ipc_hdr; RUN, DONE and HELLO are followed by an array of
 * rt_ipc_tensor whose count is in the fixed part, and the datagram's size
 * must be exactly the fixed part plus that array. Both ends are the same
 * binary on the same host, and CMake refuses big-endian hosts, so the structs
 * are copied with memcpy; the magic and version still catch a worker from
 * another build (a stale binary after an upgrade).
 *
 *   worker -> server  HELLO {status, message, n_in, n_out, io[n_in + n_out]}
 *                      once, after be_open (status != 0: it failed; the worker
 *                      exits non-zero right after)
 *   server -> worker  RUN   {seq, n_in, tensor[n_in]}   inputs in the region
 *   worker -> server  DONE  {seq, status, message, n_out, tensor[n_out]}
 *   server -> worker  PING  {nonce}
 *   worker -> server  PONG  {nonce, busy_ns, runs}  from a separate thread,
 *                      so a long run still answers
 *   server -> worker  QUIT  {}
 *
 * Shared region layout (both sides use rt_ipc_place, so they agree): the
 * server writes the inputs from offset 0, each at the next multiple of
 * RT_IPC_ALIGN; the worker writes the outputs after the last input, aligned
 * the same way. Every offset and size read from a message is checked against
 * the region, with overflow checks, by the side that reads it: a bug fails a
 * request; it never reads or writes outside the mapping.
 */
#ifndef RT_IPC_H
#define RT_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/tensor.h"
#include "runtime/rt.h"
#include "usher/status.h"

#define RT_IPC_MAGIC 0x4B575355u /* "USWK" as little-endian bytes */
#define RT_IPC_VERSION 1
#define RT_IPC_MAX_MSG 65536 /* bytes of one datagram */
#define RT_IPC_ALIGN 64      /* tensors in the region start at multiples of this */
#define RT_IPC_TEXT 512      /* message text, terminator included (= USHER_ERROR_MAX) */

typedef enum rt_ipc_type {
    RT_IPC_HELLO = 1,
    RT_IPC_RUN = 2,
    RT_IPC_DONE = 3,
    RT_IPC_PING = 4,
    RT_IPC_PONG = 5,
    RT_IPC_QUIT = 6,
} rt_ipc_type;

typedef struct rt_ipc_hdr {
    uint32_t magic;    /* RT_IPC_MAGIC */
    uint16_t version;  /* RT_IPC_VERSION */
    uint16_t type;     /* rt_ipc_type */
    uint32_t size;     /* bytes of the whole datagram, this header included */
    uint32_t reserved; /* 0 */
} rt_ipc_hdr;          /* 16 bytes */

/* A tensor (RUN, DONE) or a declared input/output (HELLO: offset, bytes 0, dims may be -1). */
typedef struct rt_ipc_tensor {
    char name[US_TENSOR_NAME_MAX];   /* terminated inside the array */
    uint32_t index;                  /* position in the model's inputs or outputs */
    uint32_t dtype;                  /* us_dtype */
    int32_t rank;                    /* 0 .. US_TENSOR_MAX_RANK */
    uint32_t reserved;               /* 0 */
    int64_t dim[US_TENSOR_MAX_RANK]; /* dims past rank are 0 */
    uint64_t offset;                 /* in the shared region */
    uint64_t bytes;
} rt_ipc_tensor; /* 288 bytes */

typedef struct rt_ipc_hello {
    rt_ipc_hdr h;
    int32_t status; /* usher_status of be_open */
    uint32_t n_in, n_out;
    uint32_t reserved;
    char msg[RT_IPC_TEXT]; /* the error when status != 0 */
    /* rt_ipc_tensor io[n_in + n_out]: inputs, then outputs */
} rt_ipc_hello; /* 544 bytes */

typedef struct rt_ipc_run {
    rt_ipc_hdr h;
    uint64_t seq;
    uint32_t n_in;
    uint32_t reserved;
    /* rt_ipc_tensor in[n_in] */
} rt_ipc_run; /* 32 bytes */

typedef struct rt_ipc_done {
    rt_ipc_hdr h;
    uint64_t seq;   /* the RUN's */
    int32_t status; /* usher_status */
    uint32_t n_out; /* 0 unless status == 0 */
    char msg[RT_IPC_TEXT];
    /* rt_ipc_tensor out[n_out] */
} rt_ipc_done; /* 544 bytes */

typedef struct rt_ipc_ping {
    rt_ipc_hdr h;
    uint64_t nonce;
} rt_ipc_ping; /* 24 bytes */

typedef struct rt_ipc_pong {
    rt_ipc_hdr h;
    uint64_t nonce;   /* the PING's */
    uint64_t busy_ns; /* how long the current run has been going; 0 when idle */
    uint64_t runs;    /* be_run calls started so far (at-most-once checks, LEDGER-5) */
} rt_ipc_pong;        /* 40 bytes */

/* the fixed header of a message of this type (0 for an unknown type) */
size_t rt_ipc_fixed_size(uint16_t type);
void rt_ipc_hdr_init(rt_ipc_hdr *h, rt_ipc_type type, size_t size);

/*
 * Check a received datagram: magic, version, a known type, and a size that is
 * exactly what its type and counts say (each count at most RT_MAX_IO).
 * Copies the header into *h. USHER_ERR_PARSE with the reason in err.
 */
int rt_ipc_check(const void *msg, size_t n, rt_ipc_hdr *h, usher_error *err);

/* the i-th tensor following a message's fixed part (memcpy: the buffer may be unaligned) */
void rt_ipc_tensor_get(const void *msg, size_t fixed, size_t i, rt_ipc_tensor *t);
void rt_ipc_tensor_put(void *msg, size_t fixed, size_t i, const rt_ipc_tensor *t);

/*
 * Check a tensor read from a message. declared: a HELLO entry (dims >= -1,
 * no data). Otherwise: dims >= 0, [offset, offset + bytes) inside a region of
 * region_bytes (overflow-checked), bytes equal to the shape's size for
 * fixed-size types, and for BYTES a well-formed layout of the bytes at
 * base + offset (base NULL: not looked at; a reader that copies the bytes out
 * checks the copy, which the other process can no longer change).
 * `what` names it in the message ("output 2"). USHER_ERR_PARSE.
 */
int rt_ipc_tensor_check(const rt_ipc_tensor *t, bool declared, const uint8_t *base,
                        uint64_t region_bytes, const char *what, usher_error *err);

void rt_ipc_tensor_from(rt_ipc_tensor *t, uint32_t index, const char *name, us_dtype dtype,
                        const us_shape *shape, uint64_t offset, uint64_t bytes);
/* name, dtype and shape of a checked tensor into a descriptor (data untouched) */
void rt_ipc_tensor_to(const rt_ipc_tensor *t, us_tensor *out);

/*
 * Where the next tensor of `bytes` goes: *off = *cursor rounded up to
 * RT_IPC_ALIGN; false if that or *off + bytes overflows or passes region_bytes.
 * On success *cursor = *off + bytes.
 */
bool rt_ipc_place(uint64_t *cursor, uint64_t bytes, uint64_t region_bytes, uint64_t *off);

/* "text" into a fixed message field, cut to fit and always terminated */
void rt_ipc_text(char *dst, size_t cap, const char *src);

/*
 * One datagram out: 0, or -errno (EPIPE / ECONNRESET when the peer is gone).
 * Never raises SIGPIPE. dontwait: fail with -EAGAIN rather than block.
 */
int rt_ipc_send(int fd, const void *msg, size_t n, bool dontwait);
/*
 * One datagram in, into buf[0..cap): its size; 0 at end of stream (the peer
 * is gone); -EMSGSIZE for a datagram larger than cap (dropped); -errno
 * otherwise (-EAGAIN with dontwait and nothing queued). Retries EINTR.
 */
ssize_t rt_ipc_recv(int fd, void *buf, size_t cap, bool dontwait);

/* CLOCK_MONOTONIC in ns: real waits use the real clock, never rt_now_ns's virtual one */
uint64_t rt_ipc_now_ns(void);

#endif
