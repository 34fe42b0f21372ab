/*
 * serve_node.c - `usher serve --node NAME`: serve one node's slice of a
 * multi-node plan (layer 9, over include/usher/planfile.h).
 *
 * The server takes a plan file and a repository and serves every model of
 * the repository with the replicas the plan gives it, mapping the plan's
 * GPUs in order onto this machine's devices. For one node of a fleet both
 * are narrowed here, before the server starts, in a private folder
 * ($TMPDIR/usher-node-XXXXXX, removed at exit):
 *   - plan.json: the node's slice (usher_planfile_write_slice: its GPUs in
 *     the file's order, so its first GPU is cuda:0; the models it holds);
 *   - repo/: only when the repository holds models the node does not: a
 *     copy of the node's model directories in which every regular file is a
 *     hard link to the original (a byte copy where the folder is on another
 *     file system). The server opens models without following symbolic
 *     links, so links would not do. A repository holding exactly the node's
 *     models (a Kubernetes pod mounting one subPath per model, as `usher
 *     export k8s` writes) is served as it is.
 * A model of the slice missing from the repository is an error (the node
 * would serve less than planned). SIGHUP rewrites the slice from the plan
 * file; the models the node holds are fixed at start (a slice that adds or
 * drops a model is reported, and takes a restart).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "usher/planfile.h"

#define VIEW_MAX_DEPTH 4     /* MODEL/VERSION/file, and one folder below */
#define VIEW_MAX_ENTRIES 100000

/* a model's name, kept across re-reads of the plan (its strings go with it) */
static uint64_t fnv_model(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* the node's models, sorted and distinct (malloc'ed array of strings into p) */
static const char **node_models(const usher_planfile *p, const char *node, uint32_t *n_out,
                                uint32_t *n_gpus, uint32_t *n_replicas)
{
    usher_planfile_info info;
    usher_planfile_get_info(p, &info);
    /* a merge group's replica serves each of its members */
    size_t cap = (size_t)info.n_replicas * (info.n_groups ? USHER_PLANFILE_MAX_SERVED : 1);
    const char **set = calloc(cap ? cap : 1, sizeof *set);
    uint32_t n = 0;
    *n_gpus = *n_replicas = 0;
    if (!set)
        return NULL;
    for (uint32_t g = 0; g < info.n_gpus; g++) {
        usher_planfile_gpu gi;
        usher_planfile_gpu_at(p, g, &gi);
        if (!gi.node || strcmp(gi.node, node) != 0)
            continue;
        (*n_gpus)++;
        for (uint32_t r = 0; r < gi.n_replicas; r++) {
            usher_planfile_replica rp;
            usher_planfile_replica_at(p, g, r, &rp);
            (*n_replicas)++;
            const char *served[USHER_PLANFILE_MAX_SERVED];
            uint32_t ns = usher_planfile_served_models(p, rp.model, served,
                                                       USHER_PLANFILE_MAX_SERVED);
            for (uint32_t j = 0; j < ns; j++) {
                uint32_t k = 0;
                while (k < n && strcmp(set[k], served[j]) < 0)
                    k++;
                if (k < n && strcmp(set[k], served[j]) == 0)
                    continue;
                memmove(set + k + 1, set + k, (n - k) * sizeof *set);
                set[k] = served[j];
                n++;
            }
        }
    }
    *n_out = n;
    return set;
}

static int write_slice(const usher_planfile *p, const char *node, const char *path)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    usher_error err;
    if (!f) {
        fprintf(stderr, "usher serve: --node: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    int rc = usher_planfile_write_slice(p, node, f, &err);
    if (fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "usher serve: --node: cannot write %s\n", tmp);
        rc = -1;
    } else if (rc < 0) {
        fprintf(stderr, "usher serve: --node: %s\n", err.msg);
    }
    if (rc < 0 || rename(tmp, path) < 0) {
        if (rc == 0)
            fprintf(stderr, "usher serve: --node: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[1 << 16];
    ssize_t r;
    int rc = 0;
    while ((r = read(in, buf, sizeof buf)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = -1;
                break;
            }
            off += w;
        }
        if (rc < 0)
            break;
    }
    close(in);
    if (close(out) < 0)
        rc = -1;
    return rc;
}

/* from/ into to/ (created): folders made, regular files hard-linked or copied, other
 * entries (symbolic links, devices) left out as the server would refuse them */
static int replicate(const char *from, const char *to, int depth, size_t *entries)
{
    if (mkdir(to, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "usher serve: --node: cannot create %s: %s\n", to, strerror(errno));
        return -1;
    }
    DIR *d = opendir(from);
    if (!d) {
        fprintf(stderr, "usher serve: --node: cannot read %s: %s\n", from, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (++*entries > VIEW_MAX_ENTRIES) {
            fprintf(stderr, "usher serve: --node: more than %d files under the node's models\n",
                    VIEW_MAX_ENTRIES);
            rc = -1;
            break;
        }
        char a[PATH_MAX], b[PATH_MAX];
        if (snprintf(a, sizeof a, "%s/%s", from, e->d_name) >= (int)sizeof a ||
            snprintf(b, sizeof b, "%s/%s", to, e->d_name) >= (int)sizeof b) {
            fprintf(stderr, "usher serve: --node: a path under %s is too long\n", from);
            rc = -1;
            break;
        }
        struct stat st;
        if (lstat(a, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < VIEW_MAX_DEPTH)
                rc = replicate(a, b, depth + 1, entries);
        } else if (S_ISREG(st.st_mode)) {
            if (link(a, b) < 0 && copy_file(a, b) < 0) {
                fprintf(stderr, "usher serve: --node: cannot link or copy %s to %s: %s\n", a, b,
                        strerror(errno));
                rc = -1;
            }
        }
    }
    closedir(d);
    return rc;
}

/* remove what replicate and the slice made (depth-limited, no links followed) */
static void remove_tree(const char *path, int depth)
{
    DIR *d = depth <= VIEW_MAX_DEPTH + 2 ? opendir(path) : NULL;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char a[PATH_MAX];
            if (snprintf(a, sizeof a, "%s/%s", path, e->d_name) >= (int)sizeof a)
                continue;
            struct stat st;
            if (lstat(a, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(a, depth + 1);
            else
                unlink(a);
        }
        closedir(d);
    }
    rmdir(path);
}

void cli_node_view_free(cli_node_view *v)
{
    if (v->dir[0])
        remove_tree(v->dir, 0);
    free(v->models);
    memset(v, 0, sizeof *v);
}

int cli_node_view_make(cli_node_view *v, const char *plan, const char *node, const char *repo)
{
    memset(v, 0, sizeof *v);
    snprintf(v->node, sizeof v->node, "%s", node);
    snprintf(v->src_plan, sizeof v->src_plan, "%s", plan);
    usher_planfile *p = NULL;
    usher_error err;
    int rc = -1;
    if (usher_planfile_load(plan, &p, &err) < 0) {
        fprintf(stderr, "usher serve: %s\n", err.msg);
        return -1;
    }
    uint32_t n = 0, n_gpus = 0, n_replicas = 0;
    const char **models = node_models(p, node, &n, &n_gpus, &n_replicas);
    if (!models) {
        fprintf(stderr, "usher serve: out of memory\n");
        goto out;
    }
    if (n_gpus == 0) {
        usher_planfile_info info;
        usher_planfile_get_info(p, &info);
        fprintf(stderr, "usher serve: --node %s: %s places no GPU on that node (nodes:", node,
                plan);
        const char *seen[64];
        size_t ns = 0;
        for (uint32_t g = 0; g < info.n_gpus && ns < 64; g++) {
            usher_planfile_gpu gi;
            usher_planfile_gpu_at(p, g, &gi);
            bool dup = false;
            for (size_t k = 0; k < ns; k++)
                dup |= (seen[k] && gi.node && strcmp(seen[k], gi.node) == 0) || seen[k] == gi.node;
            if (!dup) {
                seen[ns++] = gi.node;
                fprintf(stderr, " %s", gi.node ? gi.node : "(none)");
            }
        }
        fprintf(stderr, ")\n");
        goto out;
    }
    /* the repository: the node's models present; others present too? */
    bool others = false;
    for (uint32_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", repo, models[i]);
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "usher serve: --node %s: model '%s' of the node's slice is not in "
                            "the repository %s\n", node, models[i], repo);
            goto out;
        }
    }
    DIR *d = opendir(repo);
    if (!d) {
        fprintf(stderr, "usher serve: model repository '%s': %s\n", repo, strerror(errno));
        goto out;
    }
    struct dirent *e;
    while (!others && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        bool mine = false;
        for (uint32_t i = 0; i < n && !mine; i++)
            mine = strcmp(models[i], e->d_name) == 0;
        others = !mine;
    }
    closedir(d);
    const char *tmpdir = getenv("TMPDIR");
    snprintf(v->dir, sizeof v->dir, "%s/usher-node-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(v->dir)) {
        fprintf(stderr, "usher serve: --node: cannot create %s: %s\n", v->dir, strerror(errno));
        v->dir[0] = 0;
        goto out;
    }
    snprintf(v->plan, sizeof v->plan, "%s/plan.json", v->dir);
    if (write_slice(p, node, v->plan) < 0)
        goto out;
    if (others) {
        snprintf(v->repo, sizeof v->repo, "%s/repo", v->dir);
        if (mkdir(v->repo, 0755) < 0) {
            fprintf(stderr, "usher serve: --node: cannot create %s: %s\n", v->repo,
                    strerror(errno));
            goto out;
        }
        size_t entries = 0;
        for (uint32_t i = 0; i < n; i++) {
            char a[PATH_MAX], b[PATH_MAX];
            if (snprintf(a, sizeof a, "%s/%s", repo, models[i]) >= (int)sizeof a ||
                snprintf(b, sizeof b, "%s/%s", v->repo, models[i]) >= (int)sizeof b) {
                fprintf(stderr, "usher serve: --node: the path of model '%s' is too long\n",
                        models[i]);
                goto out;
            }
            if (replicate(a, b, 1, &entries) < 0)
                goto out;
        }
    } else {
        snprintf(v->repo, sizeof v->repo, "%s", repo);
    }
    v->models = calloc(n ? n : 1, sizeof *v->models);
    if (!v->models)
        goto out;
    v->n_models = n;
    for (uint32_t i = 0; i < n; i++)
        v->models[i] = fnv_model(models[i]);
    printf("usher serve: node %s: %u GPU%s, %u replica%s of %u model%s (%s's slice%s)\n", node,
           n_gpus, n_gpus == 1 ? "" : "s", n_replicas, n_replicas == 1 ? "" : "s", n,
           n == 1 ? "" : "s", plan, others ? "; the repository's other models left out" : "");
    rc = 0;
out:
    free(models);
    usher_planfile_free(p);
    if (rc < 0)
        cli_node_view_free(v);
    return rc;
}

int cli_node_view_refresh(cli_node_view *v)
{
    usher_planfile *p = NULL;
    usher_error err;
    if (usher_planfile_load(v->src_plan, &p, &err) < 0) {
        fprintf(stderr, "usher serve: %s\n", err.msg);
        return -1;
    }
    uint32_t n = 0, n_gpus = 0, n_replicas = 0;
    const char **models = node_models(p, v->node, &n, &n_gpus, &n_replicas);
    int rc = models ? write_slice(p, v->node, v->plan) : -1;
    if (rc == 0) {
        bool same = n == v->n_models;
        for (uint32_t i = 0; same && i < n; i++)
            same = fnv_model(models[i]) == v->models[i];
        if (!same)
            fprintf(stderr, "usher serve: --node %s: the new slice holds other models than at "
                            "start; their replicas apply after a restart\n", v->node);
    }
    free(models);
    usher_planfile_free(p);
    return rc;
}
