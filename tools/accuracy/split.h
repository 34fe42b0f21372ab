/*
 * split.h - how the accuracy report holds data out (tools/accuracy).
 *
 * Every split is by group, never by row: a fold holds out every measurement
 * of one source, one GPU architecture family or one model family, the
 * calibration rows are fitted on the rest, and the held-out group is
 * predicted with what the fit left (own rows where they exist in training,
 * otherwise the borrow path of gpu_calib_lookup). The in-sample split trains
 * and tests on everything and is labelled as such.
 */
#ifndef ACC_SPLIT_H
#define ACC_SPLIT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum acc_split {
    ACC_SPLIT_IN_SAMPLE = 0, /* one fold: train on all, test on all */
    ACC_SPLIT_SOURCE,        /* leave one source out */
    ACC_SPLIT_ARCH,          /* leave one GPU architecture family out */
    ACC_SPLIT_FAMILY,        /* leave one model family out */
    ACC_SPLIT_COUNT
} acc_split;

/* what a split looks at of one measurement */
typedef struct acc_item {
    const char *source;      /* "nvidia-dle" */
    const char *arch;        /* "ampere" (gpu_arch_family) */
    const char *model;       /* "resnet50" */
} acc_item;

const char *acc_split_name(acc_split s);  /* "leave-one-source-out", ... */
const char *acc_split_title(acc_split s); /* "Leave one source out" */

/* The model family of a zoo model: its name up to the first digit or '-'
 * ("resnet50" -> "resnet", "bert-large" -> "bert"). */
void acc_model_family(const char *model, char *out, size_t n);

/* The fold key of an item under a split ("" for the in-sample split). */
void acc_fold_key(acc_split s, const acc_item *it, char *out, size_t n);

/* One fold: train[i] / test[i] for the n items. */
typedef struct acc_fold {
    char key[64];
    bool *train, *test;
    size_t n_train, n_test;
} acc_fold;

/*
 * The folds of split s over n items: one per distinct key, in order of first
 * appearance; an item is tested in exactly one fold and trained on in the
 * others (the in-sample split: one fold, all items both). Returns the number
 * of folds, or -1 when out of memory. Free with acc_folds_free.
 */
int acc_make_folds(acc_split s, const acc_item *items, size_t n, acc_fold **out);
void acc_folds_free(acc_fold *f, int n_folds);

/*
 * Check a fold: no source (ACC_SPLIT_SOURCE), architecture (ACC_SPLIT_ARCH)
 * or model family (ACC_SPLIT_FAMILY) has items in both train and test.
 * Returns true when it holds; otherwise false with what broke in why.
 */
bool acc_fold_check(acc_split s, const acc_item *items, size_t n, const acc_fold *f, char *why,
                    size_t why_len);

#endif
