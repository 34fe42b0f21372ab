/*
 * model_api.c - the public usher_model API (include/usher/model.h) over the
 * IR and the ONNX reader/writer (layer 3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "model_impl.h"
#include "onnx.h"

const char *usher_version(void) { return "0.1.0"; }

usher_load_params usher_load_default_params(void)
{
    onnx_load_params o = onnx_load_default_params();
    usher_load_params p;
    memset(&p, 0, sizeof p);
    p.max_file_bytes = o.max_file_bytes;
    p.max_external_bytes = o.max_external_bytes;
    p.max_tensors = o.max_tensors;
    p.max_nodes = o.max_nodes;
    return p;
}

static onnx_load_params to_onnx(const usher_load_params *p)
{
    onnx_load_params o = onnx_load_default_params();
    if (p) {
        o.max_file_bytes = p->max_file_bytes;
        o.max_external_bytes = p->max_external_bytes;
        o.max_tensors = p->max_tensors;
        o.max_nodes = p->max_nodes;
        o.graph_only = p->graph_only;
    }
    return o;
}

static int wrap(ir_model *ir, usher_model **out, usher_error *err)
{
    usher_model *m = us_calloc(1, sizeof *m);
    if (!m) {
        ir_model_free(ir);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    m->ir = ir;
    *out = m;
    us_err_clear(err);
    return USHER_OK;
}

int usher_model_load(const char *path, const usher_load_params *params, usher_model **out,
                     usher_error *err)
{
    if (!out)
        return us_err_set(err, USHER_ERR_INVALID, "out is NULL");
    *out = NULL;
    if (!path)
        return us_err_set(err, USHER_ERR_INVALID, "path is NULL");
    onnx_load_params o = to_onnx(params);
    ir_model *ir;
    int rc = onnx_load_file(path, &o, &ir, err);
    if (rc < 0)
        return rc;
    return wrap(ir, out, err);
}

int usher_model_load_memory(const void *data, size_t len, const usher_load_params *params,
                            usher_model **out, usher_error *err)
{
    if (!out)
        return us_err_set(err, USHER_ERR_INVALID, "out is NULL");
    *out = NULL;
    if (!data && len)
        return us_err_set(err, USHER_ERR_INVALID, "data is NULL");
    onnx_load_params o = to_onnx(params);
    ir_model *ir;
    int rc = onnx_load_memory(data, len, "model", &o, &ir, err);
    if (rc < 0)
        return rc;
    return wrap(ir, out, err);
}

static void clear_results(usher_model *m)
{
    us_free(m->ops);
    us_free(m->problems);
    m->ops = NULL;
    m->problems = NULL;
    m->n_ops = m->n_problems = 0;
    m->inferred = false;
}

void usher_model_free(usher_model *m)
{
    if (!m)
        return;
    clear_results(m);
    ir_model_free(m->ir);
    us_free(m);
}

usher_shape_params usher_shape_default_params(void)
{
    usher_shape_params p;
    memset(&p, 0, sizeof p);
    return p;
}

typedef struct collect {
    usher_model *m;
    bool oom;
} collect;

static void op_key(const ir_node *n, char *buf, size_t len)
{
    if (n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        snprintf(buf, len, "%s.%s", n->domain, n->op_type);
    else
        snprintf(buf, len, "%s", n->op_type);
}

static void collect_node(ir_node *n, void *ud)
{
    collect *c = ud;
    usher_model *m = c->m;
    if (c->oom)
        return;
    char key[160];
    op_key(n, key, sizeof key);
    usher_op_stat *s = NULL;
    for (uint32_t i = 0; i < m->n_ops; i++)
        if (strcmp(m->ops[i].op_type, key) == 0) {
            s = &m->ops[i];
            break;
        }
    if (!s) {
        usher_op_stat *no = us_realloc(m->ops, (m->n_ops + 1) * sizeof *no);
        if (!no) {
            c->oom = true;
            return;
        }
        m->ops = no;
        s = &m->ops[m->n_ops++];
        memset(s, 0, sizeof *s);
        /* the string must outlive this call: keep it in the model's arena */
        s->op_type = us_arena_strdup(&m->ir->arena, key);
        if (!s->op_type) {
            m->n_ops--;
            c->oom = true;
            return;
        }
        s->supported = n->op != IR_OP_UNKNOWN;
    }
    s->count++;
    /* control-flow nodes carry their subgraphs' cost: count it once, in the subgraph */
    if (n->op != IR_OP_IF && n->op != IR_OP_LOOP) {
        s->macs += n->cost.macs;
        s->flops += n->cost.flops;
    }
    if (n->infer_status < 0) {
        model_problem *np = us_realloc(m->problems, (m->n_problems + 1) * sizeof *np);
        if (!np) {
            c->oom = true;
            return;
        }
        m->problems = np;
        model_problem *p = &m->problems[m->n_problems++];
        p->node = n;
        p->code = n->infer_status;
        snprintf(p->message, sizeof p->message, "%s", n->infer_msg ? n->infer_msg : "");
    }
}

static int cmp_ops(const void *a, const void *b)
{
    const usher_op_stat *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->op_type, y->op_type);
}

int usher_model_infer(usher_model *m, const usher_shape_params *params, usher_error *err)
{
    if (!m)
        return us_err_set(err, USHER_ERR_INVALID, "model is NULL");
    clear_results(m);
    ir_infer_params ip = ir_infer_default_params();
    ir_binding *b = NULL;
    if (params) {
        ip.batch = params->batch;
        size_t nb = params->n_dims + params->n_values;
        if ((params->n_dims && !params->dims) || (params->n_values && !params->values) ||
            nb > 4096)
            return us_err_set(err, USHER_ERR_INVALID, "bad dims or values array");
        if (nb) {
            b = us_calloc(nb, sizeof *b);
            if (!b)
                return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            for (size_t i = 0; i < nb; i++) {
                const usher_dim_binding *src = i < params->n_dims
                                                   ? &params->dims[i]
                                                   : &params->values[i - params->n_dims];
                b[i].name = src->name;
                b[i].value = src->value;
            }
            ip.bindings = b;
            ip.n_bindings = params->n_dims;
            ip.values = b + params->n_dims;
            ip.n_values = params->n_values;
        }
    }
    int rc = ir_model_infer(m->ir, &ip, &m->report, err);
    us_free(b);
    if (rc == USHER_ERR_NOMEM || rc == USHER_ERR_NOT_FOUND || rc == USHER_ERR_INVALID ||
        rc == USHER_ERR_STATE)
        return rc;
    ir_model_stats(m->ir, &m->stats);
    collect c = {m, false};
    ir_model_visit(m->ir, collect_node, &c);
    if (c.oom) {
        clear_results(m);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    qsort(m->ops, m->n_ops, sizeof *m->ops, cmp_ops);
    m->inferred = true;
    return rc;
}

int usher_model_get_summary(const usher_model *m, usher_model_summary *s)
{
    if (!m || !s)
        return USHER_ERR_INVALID;
    memset(s, 0, sizeof *s);
    const ir_model *ir = m->ir;
    s->ir_version = ir->ir_version;
    s->opset = ir_model_opset(ir, "");
    s->producer = ir->producer_name;
    s->inferred = m->inferred;
    s->n_inputs = 0;
    for (uint32_t i = 0; i < ir->main->n_inputs; i++)
        s->n_inputs += !(ir->main->inputs[i]->flags & IR_TF_CONST);
    s->n_outputs = ir->main->n_outputs;
    const char *sym;
    while (usher_model_symbol(m, s->n_symbols, &sym) == USHER_OK)
        s->n_symbols++;
    ir_stats st;
    if (m->inferred)
        st = m->stats;
    else
        ir_model_stats(ir, &st);
    s->graph_only = st.weight_bytes_present < st.weight_bytes;
    s->exact = m->inferred && st.exact;
    s->n_nodes = st.n_nodes;
    s->n_graphs = st.n_graphs;
    s->n_params = st.n_params;
    s->weight_bytes = st.weight_bytes;
    if (m->inferred) {
        s->macs = st.macs;
        s->flops = st.flops;
        s->activation_bytes = st.activation_bytes;
        s->peak_activation_bytes = st.peak_activation_bytes;
        s->io_bytes = st.io_bytes;
        s->n_op_types = m->n_ops;
        s->n_unsupported = m->report.n_unsupported;
        s->n_failed = m->report.n_failed;
    }
    return USHER_OK;
}

static int tensor_info(const usher_model *m, const ir_tensor *t, usher_tensor_info *out)
{
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->dtype = ir_dtype_name(t->dtype);
    ir_shape_format(m->ir, m->inferred ? &t->shape : &t->decl, out->shape, sizeof out->shape);
    ir_shape_format(m->ir, &t->decl, out->declared, sizeof out->declared);
    return USHER_OK;
}

int usher_model_input(const usher_model *m, uint32_t i, usher_tensor_info *out)
{
    if (!m || !out)
        return USHER_ERR_INVALID;
    const ir_graph *g = m->ir->main;
    for (uint32_t k = 0; k < g->n_inputs; k++) {
        if (g->inputs[k]->flags & IR_TF_CONST)
            continue;
        if (i-- == 0)
            return tensor_info(m, g->inputs[k], out);
    }
    return USHER_ERR_NOT_FOUND;
}

int usher_model_input_dim(const usher_model *m, uint32_t i, uint32_t axis, const char **name)
{
    if (!m || !name)
        return USHER_ERR_INVALID;
    const ir_graph *g = m->ir->main;
    for (uint32_t k = 0; k < g->n_inputs; k++) {
        const ir_tensor *t = g->inputs[k];
        if ((t->flags & IR_TF_CONST) || i-- != 0)
            continue;
        if (t->decl.rank < 0 || axis >= (uint32_t)t->decl.rank)
            return USHER_ERR_NOT_FOUND;
        ir_dim d = t->decl.d[axis];
        /* a declared symbol as such (what a binding by name sets), not 2*n+1 */
        if (ir_dim_is_lit(d) || d.a != 1 || d.c != 0 || d.sym < 0 ||
            (uint32_t)d.sym >= m->ir->n_declared)
            return USHER_ERR_NOT_FOUND;
        *name = m->ir->syms[d.sym].name;
        return USHER_OK;
    }
    return USHER_ERR_NOT_FOUND;
}

int usher_model_dim_where(const usher_model *m, const char *name, uint32_t *input,
                          uint32_t *axis)
{
    usher_tensor_info ti;
    for (uint32_t j = 0; usher_model_input(m, j, &ti) == USHER_OK; j++)
        for (uint32_t a = 0; a < 64; a++) { /* past the rank: not found */
            const char *nm;
            if (usher_model_input_dim(m, j, a, &nm) == USHER_OK && strcmp(nm, name) == 0) {
                *input = j;
                *axis = a;
                return USHER_OK;
            }
        }
    return USHER_ERR_NOT_FOUND;
}

int usher_model_output(const usher_model *m, uint32_t i, usher_tensor_info *out)
{
    if (!m || !out)
        return USHER_ERR_INVALID;
    if (i >= m->ir->main->n_outputs)
        return USHER_ERR_NOT_FOUND;
    return tensor_info(m, m->ir->main->outputs[i], out);
}

int usher_model_op(const usher_model *m, uint32_t i, usher_op_stat *out)
{
    if (!m || !out)
        return USHER_ERR_INVALID;
    if (i >= m->n_ops)
        return USHER_ERR_NOT_FOUND;
    *out = m->ops[i];
    return USHER_OK;
}

int usher_model_problem(const usher_model *m, uint32_t i, usher_problem *out)
{
    if (!m || !out)
        return USHER_ERR_INVALID;
    if (i >= m->n_problems)
        return USHER_ERR_NOT_FOUND;
    const model_problem *p = &m->problems[i];
    out->node = p->node->name;
    out->op_type = p->node->op_type;
    out->domain = p->node->domain;
    out->code = p->code;
    snprintf(out->message, sizeof out->message, "%s", p->message);
    return USHER_OK;
}

int usher_model_symbol_default(const usher_model *m, const char *name, int64_t *value)
{
    if (!m || !name || !value)
        return USHER_ERR_INVALID;
    for (uint32_t k = 0; k < m->ir->n_declared; k++)
        if (strcmp(m->ir->syms[k].name, name) == 0 && m->ir->syms[k].dflt > 0) {
            *value = m->ir->syms[k].dflt;
            return USHER_OK;
        }
    return USHER_ERR_NOT_FOUND;
}

int usher_model_symbol(const usher_model *m, uint32_t i, const char **name)
{
    if (!m || !name)
        return USHER_ERR_INVALID;
    /* the dynamic dims of the main graph's inputs, first appearance first */
    const ir_graph *g = m->ir->main;
    uint32_t seen = 0;
    for (uint32_t k = 0; k < g->n_inputs; k++) {
        const ir_tensor *t = g->inputs[k];
        if (t->flags & IR_TF_CONST)
            continue;
        for (int a = 0; a < t->decl.rank; a++) {
            int32_t sym = t->decl.d[a].sym;
            if (sym < 0 || (uint32_t)sym >= m->ir->n_declared)
                continue;
            bool dup = false;
            for (uint32_t k2 = 0; k2 <= k && !dup; k2++) {
                const ir_tensor *u = g->inputs[k2];
                int lim = k2 == k ? a : u->decl.rank;
                if (u->flags & IR_TF_CONST)
                    continue;
                for (int a2 = 0; a2 < lim && !dup; a2++)
                    dup = u->decl.d[a2].sym == sym;
            }
            if (dup)
                continue;
            if (seen++ == i) {
                *name = m->ir->syms[sym].name;
                return USHER_OK;
            }
        }
    }
    return USHER_ERR_NOT_FOUND;
}

usher_save_params usher_save_default_params(void)
{
    usher_save_params p;
    memset(&p, 0, sizeof p);
    p.external_min_bytes = 1024;
    return p;
}

int usher_model_save(usher_model *m, const char *path, const usher_save_params *params,
                     usher_error *err)
{
    if (!m || !path)
        return us_err_set(err, USHER_ERR_INVALID, "model or path is NULL");
    usher_save_params d = usher_save_default_params();
    if (!params)
        params = &d;
    int rc;
    if (params->fill_random && (rc = ir_model_fill_random(m->ir, params->seed)) < 0)
        return us_err_set(err, rc, "cannot fill weights: %s", usher_status_message(rc));
    if (params->strip_min_bytes > 0)
        ir_model_strip(m->ir, params->strip_min_bytes);
    onnx_save_params sp = onnx_save_default_params();
    sp.external_data = params->external_data;
    sp.external_min_bytes = params->external_min_bytes;
    return onnx_save_file(m->ir, path, &sp, err);
}

void usher_free(void *p) { us_free(p); }

static void json_tensor(us_json *j, const usher_tensor_info *t)
{
    us_json_obj_begin(j);
    us_json_key(j, "name");
    us_json_str(j, t->name);
    us_json_key(j, "dtype");
    us_json_str(j, t->dtype);
    us_json_key(j, "shape");
    us_json_str(j, t->shape);
    us_json_key(j, "declared");
    us_json_str(j, t->declared);
    us_json_obj_end(j);
}

int usher_model_report_json(const usher_model *m, const char *label, char **json, size_t *len,
                            usher_error *err)
{
    if (!m || !json)
        return us_err_set(err, USHER_ERR_INVALID, "model or json is NULL");
    *json = NULL;
    usher_model_summary s;
    usher_model_get_summary(m, &s);
    us_buf b;
    us_buf_init(&b, (size_t)64 << 20);
    us_json j;
    us_json_init(&j, &b);
    us_json_obj_begin(&j);
    us_json_key(&j, "model");
    us_json_str(&j, label ? label : "");
    us_json_key(&j, "ir_version");
    us_json_int(&j, s.ir_version);
    us_json_key(&j, "opset");
    us_json_int(&j, s.opset);
    us_json_key(&j, "producer");
    us_json_str(&j, s.producer);
    us_json_key(&j, "graph_only");
    us_json_bool(&j, s.graph_only);
    us_json_key(&j, "inferred");
    us_json_bool(&j, s.inferred);
    us_json_key(&j, "exact");
    us_json_bool(&j, s.exact);
    us_json_key(&j, "nodes");
    us_json_uint(&j, s.n_nodes);
    us_json_key(&j, "graphs");
    us_json_uint(&j, s.n_graphs);
    us_json_key(&j, "params");
    us_json_uint(&j, s.n_params);
    us_json_key(&j, "weight_bytes");
    us_json_uint(&j, s.weight_bytes);
    us_json_key(&j, "macs");
    us_json_uint(&j, s.macs);
    us_json_key(&j, "flops");
    us_json_uint(&j, s.flops);
    us_json_key(&j, "activation_bytes");
    us_json_uint(&j, s.activation_bytes);
    us_json_key(&j, "peak_activation_bytes");
    us_json_uint(&j, s.peak_activation_bytes);
    us_json_key(&j, "io_bytes");
    us_json_uint(&j, s.io_bytes);
    us_json_key(&j, "inputs");
    us_json_arr_begin(&j);
    usher_tensor_info ti;
    for (uint32_t i = 0; usher_model_input(m, i, &ti) == USHER_OK; i++)
        json_tensor(&j, &ti);
    us_json_arr_end(&j);
    us_json_key(&j, "outputs");
    us_json_arr_begin(&j);
    for (uint32_t i = 0; usher_model_output(m, i, &ti) == USHER_OK; i++)
        json_tensor(&j, &ti);
    us_json_arr_end(&j);
    us_json_key(&j, "symbols");
    us_json_arr_begin(&j);
    const char *sym;
    for (uint32_t i = 0; usher_model_symbol(m, i, &sym) == USHER_OK; i++)
        us_json_str(&j, sym);
    us_json_arr_end(&j);
    us_json_key(&j, "dim_defaults");
    us_json_obj_begin(&j);
    for (uint32_t i = 0; usher_model_symbol(m, i, &sym) == USHER_OK; i++) {
        int64_t dv;
        if (usher_model_symbol_default(m, sym, &dv) == USHER_OK) {
            us_json_key(&j, sym);
            us_json_int(&j, dv);
        }
    }
    us_json_obj_end(&j);
    us_json_key(&j, "ops");
    us_json_arr_begin(&j);
    usher_op_stat os;
    for (uint32_t i = 0; usher_model_op(m, i, &os) == USHER_OK; i++) {
        us_json_obj_begin(&j);
        us_json_key(&j, "op");
        us_json_str(&j, os.op_type);
        us_json_key(&j, "count");
        us_json_uint(&j, os.count);
        us_json_key(&j, "macs");
        us_json_uint(&j, os.macs);
        us_json_key(&j, "flops");
        us_json_uint(&j, os.flops);
        us_json_key(&j, "supported");
        us_json_bool(&j, os.supported);
        us_json_obj_end(&j);
    }
    us_json_arr_end(&j);
    us_json_key(&j, "problems");
    us_json_arr_begin(&j);
    usher_problem pr;
    for (uint32_t i = 0; usher_model_problem(m, i, &pr) == USHER_OK; i++) {
        us_json_obj_begin(&j);
        us_json_key(&j, "node");
        us_json_str(&j, pr.node);
        us_json_key(&j, "op");
        us_json_str(&j, pr.op_type);
        us_json_key(&j, "domain");
        us_json_str(&j, pr.domain);
        us_json_key(&j, "kind");
        us_json_str(&j, pr.code == USHER_ERR_UNSUPPORTED ? "unsupported" : "failed");
        us_json_key(&j, "message");
        us_json_str(&j, pr.message);
        us_json_obj_end(&j);
    }
    us_json_arr_end(&j);
    us_json_obj_end(&j);
    if (!us_buf_ok(&b) || j.bad || !b.data) {
        us_buf_free(&b);
        return us_err_set(err, b.oom ? USHER_ERR_NOMEM : USHER_ERR_LIMIT,
                          "inspection report does not fit in memory");
    }
    *json = b.data;
    if (len)
        *len = b.len;
    return USHER_OK;
}
