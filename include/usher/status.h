/*
 * usher/status.h - status codes shared by every public call.
 *
 * One X-macro list gives the enum, the symbolic name and the generic
 * message, so the three never drift apart (libuv's UV_ERRNO_MAP habit).
 * Zero is success, negative values are errors. The human detail of a
 * failure (which file, which field) travels in an usher_error next to the
 * code; the code alone says only what class of failure it was.
 */
#ifndef USHER_STATUS_H
#define USHER_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, value, "generic message") */
#define USHER_STATUS_LIST(X)                                               \
    X(OK, 0, "success")                                                    \
    X(ERR_NOMEM, -1, "out of memory")                                      \
    X(ERR_INVALID, -2, "invalid argument")                                 \
    X(ERR_IO, -3, "input/output error")                                    \
    X(ERR_PARSE, -4, "malformed input")                                    \
    X(ERR_LIMIT, -5, "limit exceeded")                                     \
    X(ERR_UNSUPPORTED, -6, "unsupported feature")                          \
    X(ERR_NOT_FOUND, -7, "not found")                                      \
    X(ERR_SHAPE, -8, "shape inference failed")                             \
    X(ERR_DENIED, -9, "access denied by policy")                           \
    X(ERR_STATE, -10, "call not valid in the current state")               \
    X(ERR_INTERNAL, -11, "internal error")

typedef enum usher_status {
#define USHER_STATUS_ENUM_(name, val, msg) USHER_##name = (val),
    USHER_STATUS_LIST(USHER_STATUS_ENUM_)
#undef USHER_STATUS_ENUM_
} usher_status;

/* Longest detail message an usher_error carries, terminator included. */
#define USHER_ERROR_MAX 512

/*
 * The outcome of a call that can fail for reasons worth explaining.
 * On failure `code` is negative and `msg` names the input and the field
 * (for example "resnet.onnx: graph.node[12] 'conv1': attribute 'kernel_shape'
 * has 3 values, input has 2 spatial dims"). On success code is USHER_OK and
 * msg is empty. A NULL usher_error pointer is accepted wherever one is
 * taken: the detail is then dropped.
 */
typedef struct usher_error {
    usher_status code;
    char msg[USHER_ERROR_MAX];
} usher_error;

/* "USHER_ERR_PARSE" style name of a code; "USHER_UNKNOWN" if not a code. */
const char *usher_status_name(int code);
/* Generic one-line message for a code; never NULL. */
const char *usher_status_message(int code);

#ifdef __cplusplus
}
#endif
#endif
