/*
 * model_impl.h - the layout behind the public usher_model handle.
 * Higher layers (estimator, planner) reach the IR through model->ir.
 */
#ifndef MODEL_IMPL_H
#define MODEL_IMPL_H

#include "ir/ir.h"
#include "usher/model.h"

typedef struct model_problem {
    const ir_node *node;
    int code;
    char message[USHER_ERROR_MAX];
} model_problem;

struct usher_model {
    ir_model *ir;
    bool inferred;
    ir_stats stats;
    ir_infer_report report;
    usher_op_stat *ops; /* histogram of the last inference */
    uint32_t n_ops;
    model_problem *problems;
    uint32_t n_problems;
};

#endif
