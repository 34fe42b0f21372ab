/*
 * onnx_import.c - protobuf-c ModelProto (skeleton) to ir_model (layer 3).
 *
 * Scope of a graph, as ONNX defines it: initializers, graph inputs and node
 * outputs of the graph itself, then those of enclosing graphs. Names are
 * registered before any node is wired, so a subgraph may read an outer
 * value produced by a node later in the file (the IR sorts afterwards).
 *
 * Tensor bytes, in order of preference:
 *   raw_data        - a span of the mapped file (zero-copy);
 *   typed fields    - float_data, int32_data, ... converted to
 *                     little-endian bytes in a model-owned buffer;
 *   external data   - a file beside the model, checked for containment
 *                     before it is opened (file.h), mapped once per file;
 *   none            - allowed in graph-only mode (IR_TF_NODATA), an error
 *                     otherwise.
 * Checked: dtype codes, rank <= 16, dims >= 0, element and byte counts in
 * 64 bits with overflow checks, payload size == element count x size,
 * duplicate names, graph nesting, attribute list sizes.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/file.h"
#include "core/hash.h"
#include "core/log.h"
#include "onnx.h"
#include "onnx_impl.h"

#define MAX_ATTR_ELEMS (1u << 24)
#define MAX_OPSETS 1024
#define GRAPH_ONLY_KEY "usher.graph_only"
#define DIM_DEFAULT_PREFIX "usher.dim."

typedef struct ext_file {
    char *loc;
    us_mapped map;
} ext_file;

typedef struct imp {
    ir_model *m;
    const uint8_t *file;
    size_t file_len;
    const onnx_span *spans;
    size_t n_spans;
    const onnx_load_params *p;
    usher_error *err;
    int dirfd;
    ext_file *ext;
    size_t n_ext;
    uint64_t ext_bytes;
} imp;

onnx_load_params onnx_load_default_params(void)
{
    onnx_load_params p;
    memset(&p, 0, sizeof p);
    p.max_file_bytes = (uint64_t)4 << 30;
    p.max_external_bytes = (uint64_t)64 << 30;
    p.max_expansion = (uint64_t)1 << 30;
    p.max_tensors = 1000000;
    p.max_nodes = 1000000;
    return p;
}

static const char *S(const char *s) { return s ? s : ""; }

static int oom(imp *im) { return us_err_set(im->err, USHER_ERR_NOMEM, "out of memory"); }

/* ---- types and shapes ------------------------------------------------------------- */
static int import_dims(imp *im, const Onnx__TensorShapeProto *sp, const char *tname,
                       ir_shape *out, const char *where)
{
    if (sp->n_dim > IR_MAX_RANK)
        return us_err_set(im->err, USHER_ERR_LIMIT, "%s '%s': rank %zu is over the limit of %d",
                          where, tname, sp->n_dim, IR_MAX_RANK);
    out->rank = (int32_t)sp->n_dim;
    for (size_t i = 0; i < sp->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sp->dim[i];
        if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            d->dim_value >= 0) {
            out->d[i] = ir_dim_lit(d->dim_value);
            continue;
        }
        char name[300];
        bool anon = true;
        if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
            d->dim_param && d->dim_param[0]) {
            if (strlen(d->dim_param) > 256)
                return us_err_set(im->err, USHER_ERR_LIMIT,
                                  "%s '%s': dim_param of axis %zu is longer than 256 bytes",
                                  where, tname, i);
            snprintf(name, sizeof name, "%s", d->dim_param);
            anon = false;
        } else {
            snprintf(name, sizeof name, "%.200s:%zu", tname, i);
        }
        uint32_t before = im->m->n_syms;
        int32_t id = ir_model_symbol(im->m, name);
        if (id < 0)
            return oom(im);
        if (im->m->n_syms > before)
            im->m->syms[id].anon = anon;
        out->d[i] = ir_dim_symbol(id);
    }
    return USHER_OK;
}

static int check_dtype(imp *im, int64_t dt, const char *where, const char *tname)
{
    if (dt <= 0 || dt >= IR_DT_COUNT)
        return us_err_set(im->err, USHER_ERR_PARSE, "%s '%s': data type %lld is not a known ONNX "
                                                    "type",
                          where, tname, (long long)dt);
    return USHER_OK;
}

static int import_type(imp *im, const Onnx__TypeProto *tp, ir_tensor *t, const char *where)
{
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return USHER_OK; /* sequences, maps, optionals: no tensor type to record */
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0) {
        int rc = check_dtype(im, tt->elem_type, where, t->name);
        if (rc < 0)
            return rc;
        t->dtype = tt->elem_type;
        t->decl_dtype = tt->elem_type;
        t->has_decl_type = true;
    }
    if (tt->shape)
        return import_dims(im, tt->shape, t->name, &t->decl, where);
    return USHER_OK;
}

/* ---- tensor data -------------------------------------------------------------------- */
static int parse_u64(const char *s, uint64_t *v)
{
    if (!s || !*s || strlen(s) > 19)
        return -1;
    uint64_t r = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        r = r * 10 + (uint64_t)(*p - '0');
    }
    *v = r;
    return 0;
}

static int import_external(imp *im, const Onnx__TensorProto *tp, ir_tensor *t, uint64_t bytes,
                           const char *where)
{
    const char *loc = NULL;
    uint64_t off = 0, len = bytes;
    bool has_len = false;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        const char *k = e ? S(e->key) : "", *v = e ? e->value : NULL;
        if (strcmp(k, "location") == 0)
            loc = v;
        else if (strcmp(k, "offset") == 0) {
            if (parse_u64(v, &off) < 0)
                return us_err_set(im->err, USHER_ERR_PARSE,
                                  "%s '%s': external_data offset '%.40s' is not a non-negative "
                                  "decimal integer",
                                  where, t->name, S(v));
        } else if (strcmp(k, "length") == 0) {
            if (parse_u64(v, &len) < 0)
                return us_err_set(im->err, USHER_ERR_PARSE,
                                  "%s '%s': external_data length '%.40s' is not a non-negative "
                                  "decimal integer",
                                  where, t->name, S(v));
            has_len = true;
        } else if (strcmp(k, "checksum") != 0) {
            return us_err_set(im->err, USHER_ERR_PARSE,
                              "%s '%s': unknown external_data key '%.40s'", where, t->name, k);
        }
    }
    if (!loc || !*loc)
        return us_err_set(im->err, USHER_ERR_PARSE, "%s '%s': external data without a location",
                          where, t->name);
    if (has_len && len != bytes)
        return us_err_set(im->err, USHER_ERR_PARSE,
                          "%s '%s': external data length %llu, but the tensor needs %llu bytes",
                          where, t->name, (unsigned long long)len, (unsigned long long)bytes);
    if (im->dirfd < 0)
        return us_err_set(im->err, USHER_ERR_DENIED,
                          "%s '%s': external data needs a model loaded from a file", where,
                          t->name);
    ext_file *ef = NULL;
    for (size_t i = 0; i < im->n_ext; i++)
        if (strcmp(im->ext[i].loc, loc) == 0)
            ef = &im->ext[i];
    if (!ef) {
        usher_error e2;
        int rc = us_path_check_relative(loc, &e2);
        if (rc < 0)
            return us_err_set(im->err, rc, "%s '%s': external data location: %s", where, t->name,
                              e2.msg);
        int fd = us_file_open_beneath(im->dirfd, loc, &e2);
        if (fd < 0)
            return us_err_set(im->err, fd, "%s '%s': external data: %s", where, t->name, e2.msg);
        ext_file *ne = us_realloc(im->ext, (im->n_ext + 1) * sizeof *ne);
        if (!ne) {
            close(fd);
            return oom(im);
        }
        im->ext = ne;
        ef = &im->ext[im->n_ext];
        memset(ef, 0, sizeof *ef);
        ef->loc = us_strdup(loc);
        if (!ef->loc) {
            close(fd);
            return oom(im);
        }
        rc = us_file_map_fd(fd, loc, im->p->max_external_bytes, &ef->map, &e2);
        close(fd);
        if (rc < 0) {
            us_free(ef->loc);
            return us_err_set(im->err, rc, "%s '%s': external data: %s", where, t->name, e2.msg);
        }
        im->n_ext++;
        if (ef->map.data && ir_model_add_mapping(im->m, ef->map.data, ef->map.len) < 0) {
            us_file_unmap(&ef->map);
            return oom(im);
        }
    }
    uint64_t end;
    if (__builtin_add_overflow(off, bytes, &end) || end > ef->map.len)
        return us_err_set(im->err, USHER_ERR_PARSE,
                          "%s '%s': external data offset %llu + %llu bytes runs past the end "
                          "of '%s' (%zu bytes)",
                          where, t->name, (unsigned long long)off, (unsigned long long)bytes, loc,
                          ef->map.len);
    if (__builtin_add_overflow(im->ext_bytes, bytes, &im->ext_bytes) ||
        im->ext_bytes > im->p->max_external_bytes)
        return us_err_set(im->err, USHER_ERR_LIMIT,
                          "%s '%s': external data over the limit of %llu bytes", where, t->name,
                          (unsigned long long)im->p->max_external_bytes);
    t->data = bytes ? ef->map.data + off : NULL;
    t->nbytes = bytes;
    t->flags |= IR_TF_EXTERNAL;
    t->doc = us_arena_strdup(&im->m->arena, ef->loc);
    if (!t->doc)
        return oom(im);
    return USHER_OK;
}

/* copy a typed repeated field into a little-endian buffer of the tensor's type */
static int import_typed(imp *im, const Onnx__TensorProto *tp, ir_tensor *t, uint64_t numel,
                        uint64_t bytes, const char *where)
{
    int dt = t->dtype;
    size_t have;
    const char *field;
    uint64_t want = numel;
    if (tp->n_float_data) {
        have = tp->n_float_data;
        field = "float_data";
        if (dt != IR_DT_FLOAT && dt != IR_DT_COMPLEX64)
            goto wrong;
        if (dt == IR_DT_COMPLEX64)
            want = numel * 2;
    } else if (tp->n_double_data) {
        have = tp->n_double_data;
        field = "double_data";
        if (dt != IR_DT_DOUBLE && dt != IR_DT_COMPLEX128)
            goto wrong;
        if (dt == IR_DT_COMPLEX128)
            want = numel * 2;
    } else if (tp->n_int64_data) {
        have = tp->n_int64_data;
        field = "int64_data";
        if (dt != IR_DT_INT64)
            goto wrong;
    } else if (tp->n_uint64_data) {
        have = tp->n_uint64_data;
        field = "uint64_data";
        if (dt != IR_DT_UINT64 && dt != IR_DT_UINT32)
            goto wrong;
    } else {
        have = tp->n_int32_data;
        field = "int32_data";
        if (dt == IR_DT_INT4 || dt == IR_DT_UINT4)
            want = (numel + 1) / 2;
        if (!(dt == IR_DT_INT32 || dt == IR_DT_INT16 || dt == IR_DT_INT8 || dt == IR_DT_UINT16 ||
              dt == IR_DT_UINT8 || dt == IR_DT_BOOL || dt == IR_DT_FLOAT16 ||
              dt == IR_DT_BFLOAT16 || (dt >= IR_DT_FLOAT8E4M3FN && dt <= IR_DT_INT4)))
            goto wrong;
    }
    if (have != want)
        return us_err_set(im->err, USHER_ERR_PARSE,
                          "%s '%s': %s holds %zu values, dims need %llu", where, t->name, field,
                          have, (unsigned long long)want);
    uint8_t *b = ir_model_alloc_blob(im->m, (size_t)bytes);
    if (!b)
        return oom(im);
    size_t es = ir_dtype_bits(dt) >= 8 ? ir_dtype_bits(dt) / 8 : 1;
    for (size_t i = 0; i < have; i++) {
        if (tp->n_float_data)
            memcpy(b + 4 * i, &tp->float_data[i], 4);
        else if (tp->n_double_data)
            memcpy(b + 8 * i, &tp->double_data[i], 8);
        else if (tp->n_int64_data)
            memcpy(b + 8 * i, &tp->int64_data[i], 8);
        else if (tp->n_uint64_data) {
            if (dt == IR_DT_UINT32) {
                uint32_t v = (uint32_t)tp->uint64_data[i];
                memcpy(b + 4 * i, &v, 4);
            } else
                memcpy(b + 8 * i, &tp->uint64_data[i], 8);
        } else {
            int32_t v = tp->int32_data[i];
            if (es == 4)
                memcpy(b + 4 * i, &v, 4);
            else if (es == 2) {
                uint16_t h = (uint16_t)v;
                memcpy(b + 2 * i, &h, 2);
            } else
                b[i] = (uint8_t)v;
        }
    }
    t->data = b;
    t->nbytes = bytes;
    return USHER_OK;
wrong:
    return us_err_set(im->err, USHER_ERR_PARSE, "%s '%s': %s cannot hold data type %s", where,
                      t->name, field, ir_dtype_name(dt));
}

static int import_tensor(imp *im, const Onnx__TensorProto *tp, ir_tensor *t, const char *where)
{
    if (!tp->has_data_type || tp->data_type == 0)
        return us_err_set(im->err, USHER_ERR_PARSE, "%s '%s': data_type is missing", where,
                          t->name);
    int rc = check_dtype(im, tp->data_type, where, t->name);
    if (rc < 0)
        return rc;
    t->dtype = tp->data_type;
    t->has_decl_type = true;
    if (tp->n_dims > IR_MAX_RANK)
        return us_err_set(im->err, USHER_ERR_LIMIT, "%s '%s': rank %zu is over the limit of %d",
                          where, t->name, tp->n_dims, IR_MAX_RANK);
    uint64_t numel = 1;
    t->decl.rank = (int32_t)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0)
            return us_err_set(im->err, USHER_ERR_PARSE, "%s '%s': dims[%zu] = %lld is negative",
                              where, t->name, i, (long long)d);
        if (__builtin_mul_overflow(numel, (uint64_t)d, &numel))
            return us_err_set(im->err, USHER_ERR_LIMIT,
                              "%s '%s': element count overflows 64 bits", where, t->name);
        t->decl.d[i] = ir_dim_lit(d);
    }
    t->shape = t->decl;
    uint64_t bytes;
    if (t->dtype == IR_DT_STRING) {
        bytes = 0;
    } else if (!ir_dtype_nbytes(t->dtype, numel, &bytes) || bytes > ((uint64_t)1 << 62)) {
        return us_err_set(im->err, USHER_ERR_LIMIT, "%s '%s': byte size overflows", where,
                          t->name);
    }
    t->flags |= IR_TF_CONST;
    int sources = (tp->has_raw_data ? 1 : 0) + (tp->n_float_data || tp->n_double_data ||
                                                tp->n_int32_data || tp->n_int64_data ||
                                                tp->n_uint64_data || tp->n_string_data) +
                  (tp->has_data_location &&
                   tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL);
    if (sources > 1)
        return us_err_set(im->err, USHER_ERR_PARSE,
                          "%s '%s': data is given in more than one form", where, t->name);
    if (t->dtype == IR_DT_STRING) {
        if (!tp->n_string_data && numel > 0 && !im->m->graph_only)
            return us_err_set(im->err, USHER_ERR_PARSE, "%s '%s': string tensor without data",
                              where, t->name);
        if (tp->n_string_data && tp->n_string_data != numel)
            return us_err_set(im->err, USHER_ERR_PARSE,
                              "%s '%s': string_data holds %zu values, dims need %llu", where,
                              t->name, tp->n_string_data, (unsigned long long)numel);
        t->flags |= IR_TF_NODATA; /* string contents are not kept */
        return USHER_OK;
    }
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (im->m->graph_only) {
            t->flags |= IR_TF_NODATA | IR_TF_EXTERNAL;
            return USHER_OK;
        }
        return import_external(im, tp, t, bytes, where);
    }
    if (tp->has_data_location && tp->data_location != 0)
        return us_err_set(im->err, USHER_ERR_PARSE, "%s '%s': data_location %d is not known",
                          where, t->name, (int)tp->data_location);
    if (tp->has_raw_data) {
        uint64_t idx = 0;
        if (tp->raw_data.len != 8)
            return us_err_set(im->err, USHER_ERR_INTERNAL, "%s '%s': raw_data reference lost",
                              where, t->name);
        for (int i = 0; i < 8; i++)
            idx |= (uint64_t)tp->raw_data.data[i] << (8 * i);
        if (idx >= im->n_spans)
            return us_err_set(im->err, USHER_ERR_INTERNAL, "%s '%s': raw_data reference lost",
                              where, t->name);
        const onnx_span *sp = &im->spans[idx];
        if (sp->len != bytes)
            return us_err_set(im->err, USHER_ERR_PARSE,
                              "%s '%s': raw_data holds %llu bytes, %llu %s elements need %llu",
                              where, t->name, (unsigned long long)sp->len,
                              (unsigned long long)numel, ir_dtype_name(t->dtype),
                              (unsigned long long)bytes);
        t->data = bytes ? im->file + sp->off : NULL;
        t->nbytes = bytes;
        return USHER_OK;
    }
    if (sources == 1)
        return import_typed(im, tp, t, numel, bytes, where);
    if (numel == 0)
        return USHER_OK;
    if (im->m->graph_only) {
        t->flags |= IR_TF_NODATA;
        return USHER_OK;
    }
    return us_err_set(im->err, USHER_ERR_PARSE,
                      "%s '%s': no data (%llu %s elements); a graph-only model must say so "
                      "with metadata '" GRAPH_ONLY_KEY "' or be loaded in graph-only mode",
                      where, t->name, (unsigned long long)numel, ir_dtype_name(t->dtype));
}

/* ---- graphs, nodes, attributes ---------------------------------------------------------- */
static int import_graph(imp *im, const Onnx__GraphProto *gp, ir_graph *parent, ir_node *owner,
                        const char *where, ir_graph **out);

static int copy_list(imp *im, void **dst, const void *src, size_t n, size_t es, const char *where,
                     const char *aname)
{
    if (n > MAX_ATTR_ELEMS)
        return us_err_set(im->err, USHER_ERR_LIMIT, "%s: attribute '%s' has %zu values, over %u",
                          where, aname, n, MAX_ATTR_ELEMS);
    *dst = us_arena_array(&im->m->arena, n ? n : 1, es);
    if (!*dst)
        return oom(im);
    if (n)
        memcpy(*dst, src, n * es);
    return USHER_OK;
}

static int import_attr(imp *im, const Onnx__AttributeProto *ap, ir_attr *a, ir_node *n,
                       const char *where)
{
    us_arena *ar = &im->m->arena;
    if (!ap->name || !ap->name[0])
        return us_err_set(im->err, USHER_ERR_PARSE, "%s: attribute without a name", where);
    a->name = us_arena_strdup(ar, ap->name);
    if (!a->name)
        return oom(im);
    int type = ap->has_type ? (int)ap->type : 0;
    if (type == 0) { /* IR version 1 files did not record the type */
        if (ap->n_graphs) type = IR_ATTR_GRAPHS;
        else if (ap->n_tensors) type = IR_ATTR_TENSORS;
        else if (ap->n_strings) type = IR_ATTR_STRINGS;
        else if (ap->n_ints) type = IR_ATTR_INTS;
        else if (ap->n_floats) type = IR_ATTR_FLOATS;
        else if (ap->g) type = IR_ATTR_GRAPH;
        else if (ap->t) type = IR_ATTR_TENSOR;
        else if (ap->has_s) type = IR_ATTR_STRING;
        else if (ap->has_i) type = IR_ATTR_INT;
        else if (ap->has_f) type = IR_ATTR_FLOAT;
    }
    a->type = (ir_attr_type)type;
    char w2[400];
    snprintf(w2, sizeof w2, "%.300s attribute '%.60s'", where, a->name);
    int rc = USHER_OK;
    switch (type) {
    case IR_ATTR_FLOAT: a->f = ap->f; break;
    case IR_ATTR_INT: a->i = ap->i; break;
    case IR_ATTR_STRING:
        a->s = us_arena_strndup(ar, ap->s.data ? (const char *)ap->s.data : "", ap->s.len);
        if (!a->s)
            return oom(im);
        a->s_len = ap->s.len;
        break;
    case IR_ATTR_FLOATS:
        a->n = ap->n_floats;
        rc = copy_list(im, (void **)&a->floats, ap->floats, ap->n_floats, sizeof(float), where,
                       a->name);
        break;
    case IR_ATTR_INTS:
        a->n = ap->n_ints;
        rc = copy_list(im, (void **)&a->ints, ap->ints, ap->n_ints, sizeof(int64_t), where,
                       a->name);
        break;
    case IR_ATTR_STRINGS:
        if (ap->n_strings > MAX_ATTR_ELEMS)
            return us_err_set(im->err, USHER_ERR_LIMIT, "%s: too many strings", w2);
        a->n = ap->n_strings;
        a->strings = us_arena_array(ar, a->n ? a->n : 1, sizeof *a->strings);
        a->string_lens = us_arena_array(ar, a->n ? a->n : 1, sizeof *a->string_lens);
        if (!a->strings || !a->string_lens)
            return oom(im);
        for (size_t i = 0; i < a->n; i++) {
            a->strings[i] = us_arena_strndup(
                ar, ap->strings[i].data ? (const char *)ap->strings[i].data : "",
                ap->strings[i].len);
            if (!a->strings[i])
                return oom(im);
            a->string_lens[i] = ap->strings[i].len;
        }
        break;
    case IR_ATTR_TENSOR:
        if (!ap->t)
            return us_err_set(im->err, USHER_ERR_PARSE, "%s: tensor attribute without a tensor",
                              w2);
        a->t = ir_model_new_attr_tensor(im->m, ap->t->name ? ap->t->name : a->name);
        if (!a->t)
            return oom(im);
        rc = import_tensor(im, ap->t, a->t, w2);
        break;
    case IR_ATTR_TENSORS:
        if (ap->n_tensors > MAX_ATTR_ELEMS)
            return us_err_set(im->err, USHER_ERR_LIMIT, "%s: too many tensors", w2);
        a->n = ap->n_tensors;
        a->tensors = us_arena_array(ar, a->n ? a->n : 1, sizeof *a->tensors);
        if (!a->tensors)
            return oom(im);
        for (size_t i = 0; i < a->n && rc == USHER_OK; i++) {
            a->tensors[i] = ir_model_new_attr_tensor(im->m, S(ap->tensors[i]->name));
            if (!a->tensors[i])
                return oom(im);
            rc = import_tensor(im, ap->tensors[i], a->tensors[i], w2);
        }
        break;
    case IR_ATTR_GRAPH:
        if (!ap->g)
            return us_err_set(im->err, USHER_ERR_PARSE, "%s: graph attribute without a graph", w2);
        rc = import_graph(im, ap->g, n->graph, n, w2, &a->g);
        break;
    case IR_ATTR_GRAPHS:
        if (ap->n_graphs > 4096)
            return us_err_set(im->err, USHER_ERR_LIMIT, "%s: too many graphs", w2);
        a->n = ap->n_graphs;
        a->graphs = us_arena_array(ar, a->n ? a->n : 1, sizeof *a->graphs);
        if (!a->graphs)
            return oom(im);
        for (size_t i = 0; i < a->n && rc == USHER_OK; i++)
            rc = import_graph(im, ap->graphs[i], n->graph, n, w2, &a->graphs[i]);
        break;
    case IR_ATTR_SPARSE_TENSOR: case IR_ATTR_SPARSE_TENSORS: case IR_ATTR_TYPE_PROTO:
    case IR_ATTR_TYPE_PROTOS:
        break; /* kept by type only; nodes that need them fail inference by name */
    default:
        return us_err_set(im->err, USHER_ERR_PARSE, "%s: unknown attribute type %d", w2, type);
    }
    return rc;
}

/* Constant: the output takes the attribute's type, dims and bytes */
static int wire_constant(imp *im, ir_node *n, const char *where)
{
    if (n->n_out < 1 || !n->out[0])
        return us_err_set(im->err, USHER_ERR_PARSE, "%s: Constant without an output", where);
    ir_tensor *o = n->out[0];
    o->flags |= IR_TF_CONST;
    for (uint32_t i = 0; i < n->n_attr; i++) {
        const ir_attr *a = &n->attr[i];
        uint64_t cnt = 1;
        int dt = 0;
        const void *src = NULL;
        bool list = false;
        if (strcmp(a->name, "value") == 0 && a->type == IR_ATTR_TENSOR) {
            o->dtype = a->t->dtype;
            o->decl = a->t->decl;
            o->data = a->t->data;
            o->nbytes = a->t->nbytes;
            o->flags |= a->t->flags & (IR_TF_NODATA | IR_TF_EXTERNAL);
            o->has_decl_type = true;
            return USHER_OK;
        }
        if (strcmp(a->name, "value_float") == 0 && a->type == IR_ATTR_FLOAT) {
            dt = IR_DT_FLOAT;
            src = &a->f;
        } else if (strcmp(a->name, "value_int") == 0 && a->type == IR_ATTR_INT) {
            dt = IR_DT_INT64;
            src = &a->i;
        } else if (strcmp(a->name, "value_floats") == 0 && a->type == IR_ATTR_FLOATS) {
            dt = IR_DT_FLOAT;
            src = a->floats;
            cnt = a->n;
            list = true;
        } else if (strcmp(a->name, "value_ints") == 0 && a->type == IR_ATTR_INTS) {
            dt = IR_DT_INT64;
            src = a->ints;
            cnt = a->n;
            list = true;
        } else if ((strcmp(a->name, "value_string") == 0 && a->type == IR_ATTR_STRING) ||
                   (strcmp(a->name, "value_strings") == 0 && a->type == IR_ATTR_STRINGS)) {
            o->dtype = IR_DT_STRING;
            o->decl.rank = a->type == IR_ATTR_STRINGS;
            o->decl.d[0] = ir_dim_lit((int64_t)a->n);
            o->flags |= IR_TF_NODATA;
            o->has_decl_type = true;
            return USHER_OK;
        } else {
            continue;
        }
        size_t es = ir_dtype_bits(dt) / 8, bytes = (size_t)cnt * es;
        uint8_t *b = ir_model_alloc_blob(im->m, bytes);
        if (!b)
            return oom(im);
        memcpy(b, src, bytes);
        o->dtype = dt;
        o->decl.rank = list ? 1 : 0;
        o->decl.d[0] = ir_dim_lit((int64_t)cnt);
        o->data = b;
        o->nbytes = bytes;
        o->has_decl_type = true;
        return USHER_OK;
    }
    /* sparse_value or nothing: leave the rank unknown, inference reports it */
    o->decl.rank = IR_RANK_UNKNOWN;
    return USHER_OK;
}

static int import_graph(imp *im, const Onnx__GraphProto *gp, ir_graph *parent, ir_node *owner,
                        const char *where, ir_graph **out)
{
    ir_model *m = im->m;
    ir_graph *g = ir_graph_new(m, parent, owner, gp->name ? gp->name : "");
    if (!g)
        return oom(im);
    *out = g;
    if (g->depth > IR_MAX_GRAPH_DEPTH)
        return us_err_set(im->err, USHER_ERR_LIMIT, "%s: subgraphs nested deeper than %d", where,
                          IR_MAX_GRAPH_DEPTH);
    const char *gw = parent ? where : "graph";
    char w[400];
    int rc;
    if (gp->n_sparse_initializer)
        return us_err_set(im->err, USHER_ERR_UNSUPPORTED,
                          "%s: sparse_initializer is not supported (%zu present)", gw,
                          gp->n_sparse_initializer);
    /* 1. initializers */
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        snprintf(w, sizeof w, "%.340s.initializer[%zu]", gw, i);
        if (!tp->name || !tp->name[0])
            return us_err_set(im->err, USHER_ERR_PARSE, "%s: initializer without a name", w);
        ir_tensor *dup, *t = ir_graph_add_tensor(g, tp->name, &dup);
        if (!t)
            return dup ? us_err_set(im->err, USHER_ERR_PARSE, "%s: name '%s' is used twice", w,
                                    tp->name)
                       : oom(im);
        t->flags |= IR_TF_INITIALIZER;
        if ((rc = import_tensor(im, tp, t, w)) < 0)
            return rc;
    }
    /* 2. inputs (an input that names an initializer is that initializer) */
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        snprintf(w, sizeof w, "%.340s.input[%zu]", gw, i);
        if (!vi->name || !vi->name[0])
            return us_err_set(im->err, USHER_ERR_PARSE, "%s: input without a name", w);
        ir_tensor *dup, *t = ir_graph_add_tensor(g, vi->name, &dup);
        if (!t) {
            if (dup && (dup->flags & IR_TF_INITIALIZER))
                continue;
            return dup ? us_err_set(im->err, USHER_ERR_PARSE, "%s: name '%s' is used twice", w,
                                    vi->name)
                       : oom(im);
        }
        if ((rc = import_type(im, vi->type, t, w)) < 0)
            return rc;
        if (ir_graph_add_input(g, t) < 0)
            return oom(im);
    }
    /* 3. every node output, so that names resolve whatever the file order */
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        for (size_t k = 0; k < np->n_output; k++) {
            const char *on = np->output[k];
            if (!on || !on[0])
                continue;
            ir_tensor *dup, *t = ir_graph_add_tensor(g, on, &dup);
            if (!t)
                return dup ? us_err_set(im->err, USHER_ERR_PARSE,
                                        "%s.node[%zu] '%s': output '%s' is already defined", gw,
                                        i, S(np->name), on)
                           : oom(im);
        }
    }
    /* 4. nodes */
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        snprintf(w, sizeof w, "%.280s.node[%zu] '%.80s'", gw, i, S(np->name));
        if (!np->op_type || !np->op_type[0])
            return us_err_set(im->err, USHER_ERR_PARSE, "%s: op_type is missing", w);
        if (np->n_input > 65536 || np->n_output > 65536 || np->n_attribute > 65536)
            return us_err_set(im->err, USHER_ERR_LIMIT, "%s: too many inputs, outputs or "
                                                        "attributes",
                              w);
        ir_node *n = ir_graph_add_node(g, np->name, np->domain, np->op_type,
                                       (uint32_t)np->n_input, (uint32_t)np->n_output,
                                       (uint32_t)np->n_attribute);
        if (!n)
            return oom(im);
        if (!np->name || !np->name[0]) { /* unnamed nodes get a stable name from the file */
            snprintf(w, sizeof w, "%.300s.node[%zu] (%.40s)", gw, i, np->op_type);
            char nm[64];
            snprintf(nm, sizeof nm, "%s_%zu", np->op_type, i);
            n->name = us_arena_strdup(&m->arena, nm);
            if (!n->name)
                return oom(im);
        }
        for (size_t k = 0; k < np->n_input; k++) {
            const char *in = np->input[k];
            if (!in || !in[0])
                continue;
            ir_tensor *t = ir_graph_lookup(g, in);
            if (!t)
                return us_err_set(im->err, USHER_ERR_PARSE,
                                  "%s (%s): input '%s' is not defined in its scope", w,
                                  np->op_type, in);
            n->in[k] = t;
        }
        for (size_t k = 0; k < np->n_output; k++) {
            const char *on = np->output[k];
            if (!on || !on[0])
                continue;
            ir_tensor *t = us_map_get(&g->names, on);
            if (!t || t->producer || (t->flags & (IR_TF_INPUT | IR_TF_INITIALIZER)))
                return us_err_set(im->err, USHER_ERR_PARSE,
                                  "%s: output '%s' is already defined", w, on);
            t->producer = n;
            t->producer_slot = (uint32_t)k;
            n->out[k] = t;
        }
        for (size_t k = 0; k < np->n_attribute; k++) {
            if ((rc = import_attr(im, np->attribute[k], &n->attr[k], n, w)) < 0)
                return rc;
            for (size_t j = 0; j < k; j++)
                if (strcmp(n->attr[j].name, n->attr[k].name) == 0)
                    return us_err_set(im->err, USHER_ERR_PARSE,
                                      "%s: attribute '%s' is given twice", w, n->attr[k].name);
        }
        if (n->op == IR_OP_CONSTANT && (rc = wire_constant(im, n, w)) < 0)
            return rc;
    }
    /* 5. outputs */
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        snprintf(w, sizeof w, "%.340s.output[%zu]", gw, i);
        if (!vi->name || !vi->name[0])
            return us_err_set(im->err, USHER_ERR_PARSE, "%s: output without a name", w);
        ir_tensor *t = ir_graph_lookup(g, vi->name);
        if (!t)
            return us_err_set(im->err, USHER_ERR_PARSE, "%s: output '%s' is never produced", w,
                              vi->name);
        if (t->graph == g && !t->producer && !(t->flags & (IR_TF_INPUT | IR_TF_CONST)))
            return us_err_set(im->err, USHER_ERR_PARSE, "%s: output '%s' is never produced", w,
                              vi->name);
        if (t->decl.rank < 0 && t->graph == g && !(t->flags & IR_TF_CONST)) {
            ir_tensor tmp = *t;
            if ((rc = import_type(im, vi->type, &tmp, w)) < 0)
                return rc;
            t->decl = tmp.decl;
            t->decl_dtype = tmp.decl_dtype;
            if (!t->has_decl_type && tmp.has_decl_type && !t->producer)
                t->dtype = tmp.dtype;
        }
        if (ir_graph_add_output(g, t) < 0)
            return oom(im);
    }
    return USHER_OK;
}

/* Metadata "usher.dim.<name>" = "<decimal>" records the value a dynamic dim takes when the
 * caller binds nothing (the zoo's sequence length, image size, KV length), so that a model
 * with a dynamic sequence still gives its usual figures by default. The value must be a
 * plain decimal in [1, 2^40] and <name> a dim_param of the graph's inputs or outputs. */
static int import_dim_defaults(imp *im, ir_model *m)
{
    const size_t plen = sizeof DIM_DEFAULT_PREFIX - 1;
    for (uint32_t i = 0; i < m->n_meta; i++) {
        const char *key = m->meta[i].key, *val = m->meta[i].value;
        if (strncmp(key, DIM_DEFAULT_PREFIX, plen) != 0)
            continue;
        int64_t v = 0;
        size_t n = 0;
        for (; val[n] >= '0' && val[n] <= '9' && n < 14; n++)
            v = v * 10 + (val[n] - '0');
        if (n == 0 || val[n] != '\0' || v < 1 || v > ((int64_t)1 << 40))
            return us_err_set(im->err, USHER_ERR_PARSE,
                              "model: metadata_props '%.64s' = '%.40s': not a decimal in [1, 2^40]",
                              key, val);
        int32_t sym = -1;
        for (uint32_t k = 0; k < m->n_declared && sym < 0; k++)
            if (!m->syms[k].anon && strcmp(m->syms[k].name, key + plen) == 0)
                sym = (int32_t)k;
        if (sym < 0)
            return us_err_set(im->err, USHER_ERR_PARSE,
                              "model: metadata_props '%.64s': the graph has no dynamic dim '%.54s'", key,
                              key + plen);
        m->syms[sym].dflt = v;
    }
    return USHER_OK;
}

static int import_model(imp *im, const Onnx__ModelProto *mp)
{
    ir_model *m = im->m;
    us_arena *ar = &m->arena;
    m->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    m->model_version = mp->has_model_version ? mp->model_version : 0;
    m->producer_name = us_arena_strdup(ar, S(mp->producer_name));
    m->producer_version = us_arena_strdup(ar, S(mp->producer_version));
    m->domain = us_arena_strdup(ar, S(mp->domain));
    m->doc = us_arena_strdup(ar, "");
    if (!m->producer_name || !m->producer_version || !m->domain || !m->doc)
        return oom(im);
    if (mp->n_opset_import > MAX_OPSETS)
        return us_err_set(im->err, USHER_ERR_LIMIT, "model: %zu opset imports, over %d",
                          mp->n_opset_import, MAX_OPSETS);
    m->opsets = us_arena_array(ar, mp->n_opset_import ? mp->n_opset_import : 1, sizeof *m->opsets);
    if (!m->opsets)
        return oom(im);
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        m->opsets[i].domain = us_arena_strdup(ar, S(mp->opset_import[i]->domain));
        if (!m->opsets[i].domain)
            return oom(im);
        m->opsets[i].version = mp->opset_import[i]->version;
    }
    m->n_opsets = (uint32_t)mp->n_opset_import;
    if (mp->n_metadata_props > 4096)
        return us_err_set(im->err, USHER_ERR_LIMIT, "model: %zu metadata entries, over 4096",
                          mp->n_metadata_props);
    m->meta = us_arena_array(ar, mp->n_metadata_props ? mp->n_metadata_props : 1, sizeof *m->meta);
    if (!m->meta)
        return oom(im);
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = mp->metadata_props[i];
        m->meta[i].key = us_arena_strdup(ar, S(e->key));
        m->meta[i].value = us_arena_strdup(ar, S(e->value));
        if (!m->meta[i].key || !m->meta[i].value)
            return oom(im);
        if (strcmp(m->meta[i].key, GRAPH_ONLY_KEY) == 0 && strcmp(m->meta[i].value, "1") == 0)
            m->graph_only = true;
    }
    m->n_meta = (uint32_t)mp->n_metadata_props;
    if (!mp->graph)
        return us_err_set(im->err, USHER_ERR_PARSE, "model: no graph");
    ir_graph *g;
    int rc = import_graph(im, mp->graph, NULL, NULL, "graph", &g);
    if (rc < 0)
        return rc;
    rc = import_dim_defaults(im, m);
    if (rc < 0)
        return rc;
    return ir_model_finalize(m, im->err);
}

static int load_bytes(const uint8_t *data, size_t len, int dirfd, const onnx_load_params *p,
                      ir_model *m, usher_error *err)
{
    if (len == 0)
        return us_err_set(err, USHER_ERR_PARSE, "empty file");
    onnx_wire_limits lim = {
        .max_tensors = p->max_tensors,
        .max_nodes = p->max_nodes,
        .max_messages = (uint64_t)p->max_tensors * 4 + (uint64_t)p->max_nodes * 64 + 100000,
        .max_expansion = p->max_expansion,
        .max_depth = 6 * IR_MAX_GRAPH_DEPTH + 32,
        .max_graph_depth = IR_MAX_GRAPH_DEPTH + 1,
    };
    onnx_skeleton sk;
    int rc = onnx_wire_skeleton(data, len, &lim, &sk, err);
    if (rc < 0)
        return rc;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&onnx_pb_allocator, sk.len, sk.data);
    if (!mp) {
        rc = us_err_set(err, USHER_ERR_PARSE, "protobuf decoding failed (or out of memory)");
        goto out;
    }
    imp im = {.m = m, .file = data, .file_len = len, .spans = sk.spans, .n_spans = sk.n_spans,
              .p = p, .err = err, .dirfd = dirfd};
    m->graph_only = p->graph_only;
    /* the skeleton holds everything but weight bytes: its hash names the structure */
    m->fingerprint = us_hash64(sk.data, sk.len, 0x6d6f64656cULL);
    rc = import_model(&im, mp);
    for (size_t i = 0; i < im.n_ext; i++)
        us_free(im.ext[i].loc);
    us_free(im.ext);
    onnx__model_proto__free_unpacked(mp, &onnx_pb_allocator);
out:
    onnx_skeleton_free(&sk);
    return rc;
}

int onnx_load_file(const char *path, const onnx_load_params *p, ir_model **out, usher_error *err)
{
    onnx_load_params defaults = onnx_load_default_params();
    if (!p)
        p = &defaults;
    *out = NULL;
    us_mapped map;
    int rc = us_file_map(path, p->max_file_bytes, &map, err);
    if (rc < 0)
        return rc;
    ir_model *m = ir_model_new();
    if (!m) {
        us_file_unmap(&map);
        return us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", path);
    }
    if (map.data && ir_model_add_mapping(m, map.data, map.len) < 0) {
        us_file_unmap(&map);
        ir_model_free(m);
        return us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", path);
    }
    int dirfd = p->graph_only ? -1 : us_file_open_parent_dir(path, NULL);
    rc = load_bytes(map.data, map.len, dirfd < 0 ? -1 : dirfd, p, m, err);
    if (dirfd >= 0)
        close(dirfd);
    if (rc < 0) {
        ir_model_free(m);
        return us_err_prefix(err, rc, "%s: ", path);
    }
    *out = m;
    return USHER_OK;
}

int onnx_load_memory(const void *data, size_t len, const char *label, const onnx_load_params *p,
                     ir_model **out, usher_error *err)
{
    onnx_load_params defaults = onnx_load_default_params();
    if (!p)
        p = &defaults;
    *out = NULL;
    if (!label)
        label = "model";
    if (len > p->max_file_bytes)
        return us_err_set(err, USHER_ERR_LIMIT, "%s: %zu bytes, over the limit of %llu", label,
                          len, (unsigned long long)p->max_file_bytes);
    ir_model *m = ir_model_new();
    if (!m)
        return us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", label);
    uint8_t *copy = ir_model_alloc_blob(m, len);
    if (!copy) {
        ir_model_free(m);
        return us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", label);
    }
    if (len)
        memcpy(copy, data, len);
    int rc = load_bytes(copy, len, -1, p, m, err);
    if (rc < 0) {
        ir_model_free(m);
        return us_err_prefix(err, rc, "%s: ", label);
    }
    *out = m;
    return USHER_OK;
}
