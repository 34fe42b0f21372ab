/*
 * split.c - the accuracy report's folds (split.h): group keys, folds and the
 * check that a held-out group never reaches training.
 */
#include "split.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

static const char *const names[ACC_SPLIT_COUNT] = {"in-sample", "leave-one-source-out",
                                                   "leave-one-arch-out",
                                                   "leave-one-model-family-out"};
static const char *const titles[ACC_SPLIT_COUNT] = {
    "In-sample (fitted and scored on the same rows)", "Leave one source out",
    "Leave one GPU architecture out", "Leave one model family out"};

const char *acc_split_name(acc_split s) { return (unsigned)s < ACC_SPLIT_COUNT ? names[s] : "?"; }
const char *acc_split_title(acc_split s)
{
    return (unsigned)s < ACC_SPLIT_COUNT ? titles[s] : "?";
}

void acc_model_family(const char *model, char *out, size_t n)
{
    size_t k = 0;
    while (model[k] && model[k] != '-' && !(model[k] >= '0' && model[k] <= '9'))
        k++;
    if (k == 0) /* a name that starts with a digit: the whole name */
        k = strlen(model);
    snprintf(out, n, "%.*s", (int)k, model);
}

void acc_fold_key(acc_split s, const acc_item *it, char *out, size_t n)
{
    switch (s) {
    case ACC_SPLIT_SOURCE:
        snprintf(out, n, "%s", it->source);
        break;
    case ACC_SPLIT_ARCH:
        snprintf(out, n, "%s", it->arch);
        break;
    case ACC_SPLIT_FAMILY:
        acc_model_family(it->model, out, n);
        break;
    default:
        snprintf(out, n, "all");
        break;
    }
}

void acc_folds_free(acc_fold *f, int n_folds)
{
    for (int i = 0; f && i < n_folds; i++) {
        us_free(f[i].train);
        us_free(f[i].test);
    }
    us_free(f);
}

int acc_make_folds(acc_split s, const acc_item *items, size_t n, acc_fold **out)
{
    acc_fold *f = NULL;
    int nf = 0;
    char key[64];
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        acc_fold_key(s, &items[i], key, sizeof key);
        int j = 0;
        while (j < nf && strcmp(f[j].key, key) != 0)
            j++;
        if (j < nf)
            continue;
        acc_fold *nfp = us_realloc(f, ((size_t)nf + 1) * sizeof *nfp);
        if (!nfp)
            goto fail;
        f = nfp;
        memset(&f[nf], 0, sizeof f[nf]);
        snprintf(f[nf].key, sizeof f[nf].key, "%s", key);
        nf++;
        f[j].train = us_calloc(n ? n : 1, sizeof *f[j].train);
        f[j].test = us_calloc(n ? n : 1, sizeof *f[j].test);
        if (!f[j].train || !f[j].test)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        acc_fold_key(s, &items[i], key, sizeof key);
        for (int j = 0; j < nf; j++) {
            bool mine = strcmp(f[j].key, key) == 0;
            f[j].test[i] = mine;
            f[j].train[i] = s == ACC_SPLIT_IN_SAMPLE || !mine;
            f[j].n_test += f[j].test[i];
            f[j].n_train += f[j].train[i];
        }
    }
    *out = f;
    return nf;
fail:
    acc_folds_free(f, nf);
    return -1;
}

bool acc_fold_check(acc_split s, const acc_item *items, size_t n, const acc_fold *f, char *why,
                    size_t why_len)
{
    if (s == ACC_SPLIT_IN_SAMPLE)
        return true;
    /* compares the items' own fields, not the fold keys that made the fold */
    char a[64], b[64];
    for (size_t i = 0; i < n; i++) {
        if (!f->test[i])
            continue;
        if (f->train[i]) {
            snprintf(why, why_len, "item %zu is in both train and test", i);
            return false;
        }
        for (size_t j = 0; j < n; j++) {
            if (!f->train[j])
                continue;
            if (s == ACC_SPLIT_SOURCE) {
                snprintf(a, sizeof a, "%s", items[i].source);
                snprintf(b, sizeof b, "%s", items[j].source);
            } else if (s == ACC_SPLIT_ARCH) {
                snprintf(a, sizeof a, "%s", items[i].arch);
                snprintf(b, sizeof b, "%s", items[j].arch);
            } else {
                acc_model_family(items[i].model, a, sizeof a);
                acc_model_family(items[j].model, b, sizeof b);
            }
            if (strcmp(a, b) == 0) {
                snprintf(why, why_len, "%s '%s' is in train (item %zu) and test (item %zu)",
                         acc_split_name(s), a, j, i);
                return false;
            }
        }
    }
    return true;
}
