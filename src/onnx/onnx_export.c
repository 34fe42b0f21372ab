/*
 * onnx_export.c - ir_model to an ONNX file (layer 3).
 *
 * The protobuf-c structures are built in an arena; bytes fields point at
 * the IR's tensor data, so nothing is copied, and protobuf-c packs them
 * straight into a us_writer (temp file, renamed into place when complete).
 * With external data, tensors of at least external_min_bytes are appended
 * to a second file beside the model, 64-byte aligned, and referenced with
 * location/offset/length; that file is written through its own us_writer.
 *
 * What is written: ir_version (8 when the model has none), opset imports,
 * producer "usher", metadata (plus "usher.graph_only" = "1" when any
 * constant lacks data, and "usher.original_producer" naming the tool that
 * made the model first), the graph with inputs and outputs typed as declared
 * (unnamed dynamic dims written unnamed), initializers, nodes with every
 * attribute, and subgraphs. Not written: value_info (readers recompute it),
 * string constants' contents (not kept by the importer), training info and
 * functions (not imported).
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/file.h"
#include "onnx.h"
#include "onnx_impl.h"

/* protobuf-c cannot frame one message over 2 GiB */
#define MAX_INLINE_BYTES ((uint64_t)2000 << 20)

typedef struct exp {
    us_arena a;
    ir_model *m;
    const onnx_save_params *p;
    usher_error *err;
    bool oom, nodata;
    us_writer ext;
    bool ext_open;
    const char *ext_name;
    uint64_t ext_off, inline_bytes;
    int rc;
} exp;

onnx_save_params onnx_save_default_params(void)
{
    onnx_save_params p;
    memset(&p, 0, sizeof p);
    p.external_min_bytes = 1024;
    return p;
}

static void *A(exp *e, size_t n)
{
    void *p = us_arena_alloc(&e->a, n);
    if (!p)
        e->oom = true;
    return p;
}

static char *Sdup(exp *e, const char *s)
{
    char *d = us_arena_strdup(&e->a, s ? s : "");
    if (!d)
        e->oom = true;
    return d;
}

static Onnx__StringStringEntryProto *kv(exp *e, const char *k, const char *v)
{
    Onnx__StringStringEntryProto *p = A(e, sizeof *p);
    if (!p)
        return NULL;
    onnx__string_string_entry_proto__init(p);
    p->key = Sdup(e, k);
    p->value = Sdup(e, v);
    return p;
}

static Onnx__TensorProto *ex_tensor(exp *e, ir_tensor *t)
{
    Onnx__TensorProto *tp = A(e, sizeof *tp);
    if (!tp)
        return NULL;
    onnx__tensor_proto__init(tp);
    tp->name = Sdup(e, t->name);
    tp->has_data_type = 1;
    tp->data_type = t->dtype;
    int r = t->decl.rank > 0 ? t->decl.rank : 0;
    tp->n_dims = (size_t)r;
    tp->dims = A(e, sizeof(int64_t) * (r ? (size_t)r : 1));
    if (!tp->dims)
        return NULL;
    for (int i = 0; i < r; i++)
        tp->dims[i] = ir_dim_is_lit(t->decl.d[i]) ? t->decl.d[i].c : 0;
    if (!t->data || (t->flags & IR_TF_NODATA)) {
        if (t->flags & IR_TF_NODATA)
            e->nodata = true;
        return tp;
    }
    if (e->p->external_data && t->nbytes >= e->p->external_min_bytes) {
        uint64_t off = (e->ext_off + 63) & ~(uint64_t)63;
        static const uint8_t zeros[64];
        if (us_writer_write(&e->ext, zeros, (size_t)(off - e->ext_off)) < 0 ||
            us_writer_write(&e->ext, t->data, (size_t)t->nbytes) < 0) {
            e->rc = USHER_ERR_IO;
            return tp;
        }
        e->ext_off = off + t->nbytes;
        char num[32];
        tp->n_external_data = 3;
        tp->external_data = A(e, 3 * sizeof *tp->external_data);
        if (!tp->external_data)
            return NULL;
        tp->external_data[0] = kv(e, "location", e->ext_name);
        snprintf(num, sizeof num, "%llu", (unsigned long long)off);
        tp->external_data[1] = kv(e, "offset", num);
        snprintf(num, sizeof num, "%llu", (unsigned long long)t->nbytes);
        tp->external_data[2] = kv(e, "length", num);
        tp->has_data_location = 1;
        tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        return tp;
    }
    e->inline_bytes += t->nbytes;
    tp->has_raw_data = 1;
    tp->raw_data.len = (size_t)t->nbytes;
    tp->raw_data.data = (uint8_t *)(uintptr_t)t->data;
    return tp;
}

static Onnx__ValueInfoProto *ex_value_info(exp *e, const ir_tensor *t)
{
    Onnx__ValueInfoProto *vi = A(e, sizeof *vi);
    Onnx__TypeProto *tp = A(e, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = A(e, sizeof *tt);
    if (!vi || !tp || !tt)
        return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    vi->name = Sdup(e, t->name);
    int dt0 = t->decl_dtype ? t->decl_dtype : t->dtype;
    if (!dt0 && t->decl.rank < 0)
        return vi; /* untyped, as the file had it (a subgraph output): no TypeProto, since
                    * one without elem_type is refused by ONNX Runtime */
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    int dt = t->decl_dtype ? t->decl_dtype : t->dtype;
    if (dt) {
        tt->has_elem_type = 1;
        tt->elem_type = dt;
    }
    if (t->decl.rank < 0)
        return vi;
    Onnx__TensorShapeProto *sp = A(e, sizeof *sp);
    if (!sp)
        return NULL;
    onnx__tensor_shape_proto__init(sp);
    tt->shape = sp;
    sp->n_dim = (size_t)t->decl.rank;
    sp->dim = A(e, sizeof *sp->dim * (sp->n_dim ? sp->n_dim : 1));
    if (!sp->dim)
        return NULL;
    for (int i = 0; i < t->decl.rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = A(e, sizeof *d);
        if (!d)
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        ir_dim x = t->decl.d[i];
        if (ir_dim_is_lit(x)) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = x.c;
        } else if ((uint32_t)x.sym < e->m->n_declared && !e->m->syms[x.sym].anon && x.a == 1 &&
                   x.c == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = Sdup(e, e->m->syms[x.sym].name);
        }
        sp->dim[i] = d;
    }
    return vi;
}

static Onnx__GraphProto *ex_graph(exp *e, ir_graph *g);

static Onnx__AttributeProto *ex_attr(exp *e, ir_attr *a)
{
    Onnx__AttributeProto *ap = A(e, sizeof *ap);
    if (!ap)
        return NULL;
    onnx__attribute_proto__init(ap);
    ap->name = Sdup(e, a->name);
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    switch (a->type) {
    case IR_ATTR_FLOAT: ap->has_f = 1; ap->f = a->f; break;
    case IR_ATTR_INT: ap->has_i = 1; ap->i = a->i; break;
    case IR_ATTR_STRING:
        ap->has_s = 1;
        ap->s.len = a->s_len;
        ap->s.data = (uint8_t *)(uintptr_t)a->s;
        break;
    case IR_ATTR_FLOATS: ap->n_floats = a->n; ap->floats = a->floats; break;
    case IR_ATTR_INTS: ap->n_ints = a->n; ap->ints = a->ints; break;
    case IR_ATTR_STRINGS:
        ap->n_strings = a->n;
        ap->strings = A(e, sizeof *ap->strings * (a->n ? a->n : 1));
        if (!ap->strings)
            return NULL;
        for (size_t i = 0; i < a->n; i++) {
            ap->strings[i].len = a->string_lens[i];
            ap->strings[i].data = (uint8_t *)(uintptr_t)a->strings[i];
        }
        break;
    case IR_ATTR_TENSOR: ap->t = ex_tensor(e, a->t); break;
    case IR_ATTR_TENSORS:
        ap->n_tensors = a->n;
        ap->tensors = A(e, sizeof *ap->tensors * (a->n ? a->n : 1));
        if (!ap->tensors)
            return NULL;
        for (size_t i = 0; i < a->n; i++)
            ap->tensors[i] = ex_tensor(e, a->tensors[i]);
        break;
    case IR_ATTR_GRAPH: ap->g = ex_graph(e, a->g); break;
    case IR_ATTR_GRAPHS:
        ap->n_graphs = a->n;
        ap->graphs = A(e, sizeof *ap->graphs * (a->n ? a->n : 1));
        if (!ap->graphs)
            return NULL;
        for (size_t i = 0; i < a->n; i++)
            ap->graphs[i] = ex_graph(e, a->graphs[i]);
        break;
    default:
        e->rc = us_err_set(e->err, USHER_ERR_UNSUPPORTED,
                           "attribute '%s' of type %d cannot be written (its contents were not "
                           "kept when the model was read)",
                           a->name, (int)a->type);
        break;
    }
    return ap;
}

static Onnx__NodeProto *ex_node(exp *e, ir_node *n)
{
    Onnx__NodeProto *np = A(e, sizeof *np);
    if (!np)
        return NULL;
    onnx__node_proto__init(np);
    np->name = Sdup(e, n->name);
    np->op_type = Sdup(e, n->op_type);
    if (n->domain[0])
        np->domain = Sdup(e, n->domain);
    np->n_input = n->n_in;
    np->input = A(e, sizeof(char *) * (n->n_in ? n->n_in : 1));
    np->n_output = n->n_out;
    np->output = A(e, sizeof(char *) * (n->n_out ? n->n_out : 1));
    np->n_attribute = n->n_attr;
    np->attribute = A(e, sizeof *np->attribute * (n->n_attr ? n->n_attr : 1));
    if (!np->input || !np->output || !np->attribute)
        return NULL;
    for (uint32_t i = 0; i < n->n_in; i++)
        np->input[i] = Sdup(e, n->in[i] ? n->in[i]->name : "");
    for (uint32_t i = 0; i < n->n_out; i++)
        np->output[i] = Sdup(e, n->out[i] ? n->out[i]->name : "");
    for (uint32_t i = 0; i < n->n_attr; i++)
        np->attribute[i] = ex_attr(e, &n->attr[i]);
    return np;
}

static Onnx__GraphProto *ex_graph(exp *e, ir_graph *g)
{
    Onnx__GraphProto *gp = A(e, sizeof *gp);
    if (!gp)
        return NULL;
    onnx__graph_proto__init(gp);
    gp->name = Sdup(e, g->name[0] ? g->name : "main");
    size_t ninit = 0;
    for (uint32_t i = 0; i < g->n_tensors; i++)
        ninit += (g->tensors[i]->flags & IR_TF_INITIALIZER) != 0;
    gp->initializer = A(e, sizeof *gp->initializer * (ninit ? ninit : 1));
    gp->input = A(e, sizeof *gp->input * (g->n_inputs ? g->n_inputs : 1));
    gp->output = A(e, sizeof *gp->output * (g->n_outputs ? g->n_outputs : 1));
    gp->node = A(e, sizeof *gp->node * (g->n_nodes ? g->n_nodes : 1));
    if (!gp->initializer || !gp->input || !gp->output || !gp->node)
        return NULL;
    for (uint32_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i]->flags & IR_TF_INITIALIZER)
            gp->initializer[gp->n_initializer++] = ex_tensor(e, g->tensors[i]);
    for (uint32_t i = 0; i < g->n_inputs; i++)
        gp->input[gp->n_input++] = ex_value_info(e, g->inputs[i]);
    for (uint32_t i = 0; i < g->n_outputs; i++)
        gp->output[gp->n_output++] = ex_value_info(e, g->outputs[i]);
    for (uint32_t i = 0; i < g->n_nodes; i++)
        gp->node[gp->n_node++] = ex_node(e, g->nodes[i]);
    return gp;
}

typedef struct file_sink {
    ProtobufCBuffer base;
    us_writer *w;
} file_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_sink *s = (file_sink *)b;
    us_writer_write(s->w, data, len);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int onnx_save_file(ir_model *m, const char *path, const onnx_save_params *p, usher_error *err)
{
    onnx_save_params defaults = onnx_save_default_params();
    if (!p)
        p = &defaults;
    exp e;
    memset(&e, 0, sizeof e);
    us_arena_init(&e.a, 256 * 1024);
    e.m = m;
    e.p = p;
    e.err = err;
    int rc = USHER_OK;
    char *ext_path = NULL;
    us_writer out;
    bool out_open = false;
    if (!m->main) {
        rc = us_err_set(err, USHER_ERR_STATE, "model has no graph");
        goto done;
    }
    if (p->external_data) {
        usher_error e2;
        if (us_path_check_relative(p->external_data, &e2) < 0 || strchr(p->external_data, '/')) {
            rc = us_err_set(err, USHER_ERR_INVALID,
                            "external data name '%s' must be a plain file name", p->external_data);
            goto done;
        }
        size_t dl = (size_t)(base_name(path) - path);
        ext_path = us_malloc(dl + strlen(p->external_data) + 1);
        if (!ext_path) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto done;
        }
        memcpy(ext_path, path, dl);
        memcpy(ext_path + dl, p->external_data, strlen(p->external_data) + 1);
        if ((rc = us_writer_open(&e.ext, ext_path, err)) < 0)
            goto done;
        e.ext_open = true;
        e.ext_name = p->external_data;
    }
    Onnx__ModelProto *mp = A(&e, sizeof *mp);
    if (!mp) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto done;
    }
    onnx__model_proto__init(mp);
    mp->has_ir_version = 1;
    mp->ir_version = m->ir_version > 0 ? m->ir_version : 8;
    mp->producer_name = Sdup(&e, "usher");
    mp->producer_version = Sdup(&e, "0.1.0");
    if (m->domain && m->domain[0])
        mp->domain = Sdup(&e, m->domain);
    if (m->model_version) {
        mp->has_model_version = 1;
        mp->model_version = m->model_version;
    }
    mp->n_opset_import = m->n_opsets;
    mp->opset_import = A(&e, sizeof *mp->opset_import * (m->n_opsets ? m->n_opsets : 1));
    for (uint32_t i = 0; mp->opset_import && i < m->n_opsets; i++) {
        Onnx__OperatorSetIdProto *o = A(&e, sizeof *o);
        if (!o)
            break;
        onnx__operator_set_id_proto__init(o);
        o->domain = Sdup(&e, m->opsets[i].domain);
        o->has_version = 1;
        o->version = m->opsets[i].version;
        mp->opset_import[i] = o;
    }
    mp->graph = ex_graph(&e, m->main);
    if (e.oom || !mp->graph) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (e.rc < 0) {
        rc = e.rc == USHER_ERR_IO ? us_err_set(err, USHER_ERR_IO, "%s: write failed", ext_path)
                                  : e.rc;
        goto done;
    }
    mp->metadata_props = A(&e, sizeof *mp->metadata_props * (m->n_meta + 2));
    if (!mp->metadata_props) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto done;
    }
    bool flagged = false;
    for (uint32_t i = 0; i < m->n_meta; i++) {
        bool go = strcmp(m->meta[i].key, "usher.graph_only") == 0;
        if (go && !e.nodata)
            continue; /* data was filled in: no longer graph-only */
        flagged |= go;
        mp->metadata_props[mp->n_metadata_props++] = kv(&e, m->meta[i].key, m->meta[i].value);
    }
    if (e.nodata && !flagged)
        mp->metadata_props[mp->n_metadata_props++] = kv(&e, "usher.graph_only", "1");
    /* keep who made the model originally: producer_name now says usher */
    bool has_origin = false;
    for (uint32_t i = 0; i < m->n_meta; i++)
        has_origin |= strcmp(m->meta[i].key, "usher.original_producer") == 0;
    if (!has_origin && m->producer_name && m->producer_name[0] &&
        strcmp(m->producer_name, "usher") != 0) {
        char origin[256];
        snprintf(origin, sizeof origin, "%.120s %.120s", m->producer_name,
                 m->producer_version ? m->producer_version : "");
        mp->metadata_props[mp->n_metadata_props++] = kv(&e, "usher.original_producer", origin);
    }
    if (e.oom) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (e.inline_bytes > MAX_INLINE_BYTES) {
        rc = us_err_set(err, USHER_ERR_LIMIT,
                        "%llu bytes of weights do not fit in one protobuf message; write them "
                        "as external data",
                        (unsigned long long)e.inline_bytes);
        goto done;
    }
    if ((rc = us_writer_open(&out, path, err)) < 0)
        goto done;
    out_open = true;
    file_sink sink = {{sink_append}, &out};
    protobuf_c_message_pack_to_buffer(&mp->base, &sink.base);
    /* the data file first: a model file never names data that is not there */
    if (e.ext_open) {
        e.ext_open = false;
        if ((rc = us_writer_commit(&e.ext, err)) < 0)
            goto done;
    }
    out_open = false;
    rc = us_writer_commit(&out, err);
done:
    if (out_open)
        us_writer_abort(&out);
    if (e.ext_open)
        us_writer_abort(&e.ext);
    us_free(ext_path);
    us_arena_free(&e.a);
    return rc;
}
